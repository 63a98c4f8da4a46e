//! RedisStore with its local near-cache against the store conformance
//! suite, on a single server and on Redis Cluster (the servers of
//! `redis_conformance`): the cache changes no behaviour of the contract.
#![cfg(all(feature = "redis", feature = "conformance"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod single {
    use typed_sessions::store::redis::RedisStore;

    async fn store() -> RedisStore {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
        RedisStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis at {url}: {e}"))
            .with_prefix("test:conformance:cached:")
            .with_local_cache(1 << 20)
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
            .with_prefix("test:conformance:cached:")
            .with_local_cache(1 << 20)
    }

    typed_sessions::store_conformance_tests!(store());
    typed_sessions::store_index_conformance_tests!(store());
}
