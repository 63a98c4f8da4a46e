//! Test support for the Redis store: the shared test servers' addresses, raw
//! connections for inspecting what is stored, and (from `own_server`) a
//! `redis-server` of the test's own that it may kill and restart.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

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

#[allow(unused_imports)]
pub use crate::own_server::redis::OwnRedis;
