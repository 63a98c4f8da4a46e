//! `redis-server` processes of a test's own, without persistence: plain, a
//! one-node cluster, or TLS-only. Needs `redis-server` (Debian package
//! redis-server).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// A plain or cluster-mode `redis-server`, killed when dropped.
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    cluster: bool,
    child: Option<Child>,
}

impl OwnRedis {
    /// Starts a plain server on a spare port and waits until it answers.
    pub async fn start() -> Self {
        Self::launch(false).await
    }

    /// Starts a one-node Redis Cluster (cluster mode, all 16384 slots on
    /// this node) on a spare port and waits until the cluster is ok. Its
    /// `nodes.conf` survives a restart, so it comes back as the same cluster.
    pub async fn start_cluster() -> Self {
        let server = Self::launch(true).await;
        let reply = server
            .command(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])
            .await;
        assert_eq!(reply, Ok("OK".to_owned()), "CLUSTER ADDSLOTSRANGE");
        server.wait_cluster_ok().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn launch(cluster: bool) -> Self {
        let port = super::spare_port(cluster);
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
        let port = self.port;
        super::wait_until(
            &format!("own redis-server on {port} did not start"),
            Duration::from_secs(10),
            || async { self.command(&["PING"]).await.is_ok_and(|r| r == "PONG") },
        )
        .await;
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        super::kill(&mut self.child);
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

    async fn wait_cluster_ok(&self) {
        let port = self.port;
        super::wait_until(
            &format!("own cluster node on {port} not ok"),
            Duration::from_secs(10),
            || async {
                self.command(&["CLUSTER", "INFO"])
                    .await
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            },
        )
        .await;
    }

    /// One counter of `INFO stats`, such as `total_net_input_bytes`.
    pub async fn info_stat(&self, name: &str) -> u64 {
        let info = self.command(&["INFO", "stats"]).await.unwrap();
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("INFO stats has no {name}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Sends one command on a fresh connection; the reply as text (a simple
    /// string, integer or bulk string), `Err` for an error reply or no
    /// connection. Enough for the launcher's own needs, without a client
    /// crate (the HTTP tests have none).
    pub async fn command(&self, args: &[&str]) -> Result<String, String> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = BufReader::new(stream);
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        let io = |e: std::io::Error| e.to_string();
        stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(io)?;
        let mut line = String::new();
        stream.read_line(&mut line).await.map_err(io)?;
        let line = line.trim_end();
        match line.split_at_checked(1) {
            Some(("+" | ":", text)) => Ok(text.to_owned()),
            Some(("$", len)) => {
                let len: usize = len.parse().map_err(|_| format!("bad reply {line}"))?;
                let mut bulk = vec![0; len + 2];
                stream.read_exact(&mut bulk).await.map_err(io)?;
                bulk.truncate(len);
                String::from_utf8(bulk).map_err(|e| e.to_string())
            }
            _ => Err(line.to_owned()),
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS-only `redis-server` (no plain port), on a spare port, presenting
/// `server.pem`/`server.key` of `dir` (which it deletes when it stops).
pub struct TlsRedis {
    pub port: u16,
    /// A shell that owns the server and kills it when its stdin closes,
    /// which happens when this process exits however it exits: a test may
    /// keep the server in a static, which is never dropped, and the server
    /// must not outlive the test.
    _guard: Child,
}

impl TlsRedis {
    pub fn start(dir: &Path) -> Self {
        let version = Command::new("redis-server")
            .arg("--version")
            .output()
            .expect("redis-server (Debian package redis-server) must be installed");
        assert!(version.status.success(), "redis-server --version failed");

        let port = super::spare_port(false);
        let log = dir.join("redis.log");
        let file = |name: &str| dir.join(name).display().to_string();
        let guard = Command::new("sh")
            .args([
                "-c",
                "redis-server \"$@\" & server=$!; read -r _; kill $server; wait; rm -rf \"$TLS_DIR\"",
                "sh",
            ])
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &file("server.pem")])
            .args(["--tls-key-file", &file("server.key")])
            .args(["--tls-ca-cert-file", &file("ca.pem")])
            .args(["--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--dir", &dir.display().to_string()])
            .args(["--logfile", &log.display().to_string()])
            .env("TLS_DIR", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run sh");

        // Listening is the first sign of life a fresh process gives (a
        // PING would need TLS).
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "TLS redis-server not listening on {address} after 10 s; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            port,
            _guard: guard,
        }
    }

    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.port)
    }
}
