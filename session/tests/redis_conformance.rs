//! RedisStore against the store conformance suite, on a single server
//! (`REDIS_URL`, default `redis://127.0.0.1:6379/`) and on Redis Cluster
//! (`REDIS_CLUSTER_URLS`, comma-separated, default the three masters on
//! 127.0.0.1:7000-7002), and the index cases also on a cluster with a
//! hash-tagged prefix (one slot). Fails when a server is unreachable.
#![cfg(all(feature = "redis", feature = "conformance"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod own_server;
mod redis_support;

mod single {
    use crate::redis_support::single;

    typed_sessions::store_conformance_tests!(single("test:conformance:"));
    typed_sessions::store_index_conformance_tests!(single("test:conformance:"));
}

mod cluster {
    use crate::redis_support::cluster;

    typed_sessions::store_conformance_tests!(cluster("test:conformance:"));
    typed_sessions::store_index_conformance_tests!(cluster("test:conformance:"));
}

/// A prefix with a hash tag puts every session and index key in one slot:
/// the index is then written by the single-server scripts, atomically.
mod cluster_one_slot {
    use crate::redis_support::cluster;

    typed_sessions::store_index_conformance_tests!(cluster("test:conformance:{one}:"));
}
