//! MemcacheStore against the store conformance suite, on the memcached at
//! `MEMCACHE_URL` (default `memcache://127.0.0.1:11211`). Fails when that
//! server is unreachable.
#![cfg(all(feature = "conformance", feature = "memcache"))]
#![allow(missing_docs, clippy::expect_used)]

use typed_sessions::store::memcache::MemcacheStore;

async fn store() -> MemcacheStore {
    let url =
        std::env::var("MEMCACHE_URL").unwrap_or_else(|_| "memcache://127.0.0.1:11211".to_owned());
    MemcacheStore::connect(&url)
        .await
        .expect("memcached at MEMCACHE_URL (start it with scripts/test-servers.sh)")
}

typed_sessions::store_conformance_tests!(store());

/// Memcached cannot enumerate sessions: the store refuses index entries
/// and both index calls, changing nothing.
#[tokio::test]
async fn index_is_refused() {
    typed_sessions::conformance::index_is_refused(&store().await).await;
}
