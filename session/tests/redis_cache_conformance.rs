//! RedisStore with its local near-cache against the store conformance
//! suite, on a single server and on Redis Cluster (the servers of
//! `redis_conformance`): the cache changes no behaviour of the contract.
#![cfg(all(feature = "redis", feature = "conformance"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod own_server;
mod redis_support;

mod single {
    use typed_sessions::store::redis::RedisStore;

    async fn store() -> RedisStore {
        crate::redis_support::single("test:conformance:cached:")
            .await
            .with_local_cache(1 << 20)
    }

    typed_sessions::store_conformance_tests!(store());
    typed_sessions::store_index_conformance_tests!(store());
}

mod cluster {
    use typed_sessions::store::redis::RedisStore;

    async fn store() -> RedisStore {
        crate::redis_support::cluster("test:conformance:cached:")
            .await
            .with_local_cache(1 << 20)
    }

    typed_sessions::store_conformance_tests!(store());
    typed_sessions::store_index_conformance_tests!(store());
}
