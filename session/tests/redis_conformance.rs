//! RedisStore against the store conformance suite, on a single server
//! (`REDIS_URL`, default `redis://127.0.0.1:6379/`) and on Redis Cluster
//! (`REDIS_CLUSTER_URLS`, comma-separated, default the three masters on
//! 127.0.0.1:7000-7002), and the index cases also on a cluster with a
//! hash-tagged prefix (one slot). Fails when a server is unreachable.
#![cfg(all(feature = "redis", feature = "conformance"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod single {
    use typed_sessions::store::redis::RedisStore;

    async fn store() -> RedisStore {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
        RedisStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis at {url}: {e}"))
            .with_prefix("test:conformance:")
    }

    typed_sessions::store_conformance_tests!(store());
    typed_sessions::store_index_conformance_tests!(store());
}

mod cluster {
    use typed_sessions::store::redis::RedisStore;

    async fn store() -> RedisStore {
        let urls = std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
            "redis://127.0.0.1:7000/,redis://127.0.0.1:7001/,redis://127.0.0.1:7002/".into()
        });
        let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
        RedisStore::connect_cluster(&urls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis Cluster at {urls:?}: {e}"))
            .with_prefix("test:conformance:")
    }

    typed_sessions::store_conformance_tests!(store());
    typed_sessions::store_index_conformance_tests!(store());
}

/// A prefix with a hash tag puts every session and index key in one slot:
/// the index is then written by the single-server scripts, atomically.
mod cluster_one_slot {
    use typed_sessions::store::redis::RedisStore;

    async fn store() -> RedisStore {
        let urls = std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
            "redis://127.0.0.1:7000/,redis://127.0.0.1:7001/,redis://127.0.0.1:7002/".into()
        });
        let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
        RedisStore::connect_cluster(&urls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis Cluster at {urls:?}: {e}"))
            .with_prefix("test:conformance:{one}:")
    }

    typed_sessions::store_index_conformance_tests!(store());
}
