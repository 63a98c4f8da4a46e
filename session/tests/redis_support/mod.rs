//! Test support for the Redis store: the shared test servers' addresses, raw
//! connections for inspecting what is stored, and a `redis-server` of the
//! test's own on a free port that it may kill and restart (never the shared
//! ones).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

/// `REDIS_URL`, default `redis://127.0.0.1:6379/`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
}

/// `REDIS_CLUSTER_URLS` (comma-separated), default the three masters on
/// 127.0.0.1:7000-7002.
pub fn cluster_urls() -> Vec<String> {
    std::env::var("REDIS_CLUSTER_URLS")
        .unwrap_or_else(|_| {
            "redis://127.0.0.1:7000/,redis://127.0.0.1:7001/,redis://127.0.0.1:7002/".into()
        })
        .split(',')
        .map(|url| url.trim().to_owned())
        .collect()
}

/// A plain connection for inspecting and tampering with stored data.
pub async fn raw(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Redis at {url}: {e}"))
}

/// A raw cluster connection.
pub async fn raw_cluster() -> redis::cluster_async::ClusterConnection {
    redis::cluster::ClusterClient::new(cluster_urls())
        .unwrap()
        .get_async_connection()
        .await
        .expect("cannot connect to the Redis Cluster")
}

/// One counter of `INFO stats`.
pub async fn info_stat(con: &mut MultiplexedConnection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(con)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("INFO stats has no {name}"))
        .trim()
        .parse()
        .unwrap()
}

/// A `redis-server` process of the test's own, without persistence.
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    cluster: bool,
    child: Option<Child>,
}

impl OwnRedis {
    /// Starts a plain server on a free port and waits until it answers.
    pub async fn start() -> Self {
        Self::launch(false).await
    }

    /// Starts a one-node Redis Cluster (cluster mode, all 16384 slots on
    /// this node) on a free port and waits until the cluster is ok. Its
    /// `nodes.conf` survives a restart, so it comes back as the same cluster.
    pub async fn start_cluster() -> Self {
        let server = Self::launch(true).await;
        let mut con = raw(&server.url()).await;
        let _: () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(0)
            .arg(16383)
            .query_async(&mut con)
            .await
            .unwrap();
        server.wait_cluster_ok().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn launch(cluster: bool) -> Self {
        let port = free_port(cluster);
        let dir = std::env::temp_dir().join(format!(
            "typed-sessions-own-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            cluster,
            child: None,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.cluster {
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ]);
        }
        let child = command
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        self.child = Some(child);
        self.wait_ready().await;
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (and, for a cluster, with
    /// the same node configuration) and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
        if self.cluster {
            self.wait_cluster_ok().await;
        }
    }

    /// Polls until the server answers PING: a freshly started process gives
    /// no other signal of readiness.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            if let Ok(mut con) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut con)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "own redis-server on {} did not start",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_cluster_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut con = raw(&self.url()).await;
        loop {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut con)
                .await
                .unwrap();
            if info.contains("cluster_state:ok") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "own cluster node on {} not ok: {info}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A spare port (see `own_server`); for a cluster node also one whose bus
/// port (+10000) is free.
fn free_port(cluster: bool) -> u16 {
    for _ in 0..100 {
        let port = crate::own_server::spare_port();
        if !cluster {
            return port;
        }
        if let Some(bus) = port.checked_add(10000)
            && TcpListener::bind(("127.0.0.1", bus)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port found");
}
