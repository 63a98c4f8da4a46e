//! Test support for the Redis store: the shared test servers' addresses,
//! stores on them, raw connections for inspecting what is stored, the ids
//! and times the tests write, and (from `own_server`) a `redis-server` of
//! the test's own that it may kill and restart.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use redis::aio::MultiplexedConnection;
use typed_sessions::store::redis::RedisStore;
use typed_sessions::{FieldWrite, SessionId, SessionStore};

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

/// A store on the shared Redis, its keys under `prefix`.
pub async fn single(prefix: &str) -> RedisStore {
    let url = redis_url();
    RedisStore::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Redis at {url}: {e}"))
        .with_prefix(prefix)
}

/// A store on the shared Redis Cluster, its keys under `prefix`.
pub async fn cluster(prefix: &str) -> RedisStore {
    let urls = cluster_urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisStore::connect_cluster(&urls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to Redis Cluster at {urls:?}: {e}"))
        .with_prefix(prefix)
}

/// Two stores with a near-cache each (two application instances) on the
/// shared cluster (`cluster_mode`) or the shared Redis, under a prefix of
/// their own that starts with `prefix`: broadcast tracking then reports
/// only the test's own keys.
pub async fn cached_pair(cluster_mode: bool, prefix: &str) -> (RedisStore, RedisStore) {
    let prefix = format!("{prefix}{}:", new_id().as_str());
    let open = || async {
        let store = if cluster_mode {
            cluster(&prefix).await
        } else {
            single(&prefix).await
        };
        store.with_local_cache(1 << 20)
    };
    (open().await, open().await)
}

/// A fresh random session id.
pub fn new_id() -> SessionId {
    SessionId::generate().unwrap()
}

/// An expiry a minute from now: later than any test takes.
pub fn in_a_minute() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

/// Creates session `id` holding `writes`, for a minute.
pub async fn create(store: &RedisStore, id: &SessionId, writes: &[FieldWrite<'_>]) {
    store
        .create(id, writes, SystemTime::now(), in_a_minute())
        .await
        .unwrap();
}

/// Milliseconds since the Unix epoch, as the store writes times.
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
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

#[allow(unused_imports)]
pub use crate::own_server::redis::OwnRedis;
