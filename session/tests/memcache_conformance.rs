//! MemcacheStore against the store conformance suite, on the memcached at
//! `MEMCACHE_URL` (default `memcache://127.0.0.1:11211`). Fails when that
//! server is unreachable.
#![cfg(all(feature = "conformance", feature = "memcache"))]
#![allow(missing_docs, clippy::expect_used)]

typed_sessions::store_conformance_tests!(async {
    let url =
        std::env::var("MEMCACHE_URL").unwrap_or_else(|_| "memcache://127.0.0.1:11211".to_owned());
    typed_sessions::store::memcache::MemcacheStore::connect(&url)
        .await
        .expect("memcached at MEMCACHE_URL (start it with scripts/test-servers.sh)")
});
