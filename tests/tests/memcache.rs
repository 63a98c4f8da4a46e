//! The HTTP suite on MemcacheStore (memcached at `MEMCACHE_URL`, default
//! `memcache://127.0.0.1:11211`; fails when it is unreachable).
#![cfg(feature = "memcache")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use typed_sessions::store::memcache::MemcacheStore;

fn memcache_url() -> String {
    std::env::var("MEMCACHE_URL").unwrap_or_else(|_| "memcache://127.0.0.1:11211".to_owned())
}

async fn shared_store() -> MemcacheStore {
    MemcacheStore::connect(&memcache_url())
        .await
        .expect("memcached at MEMCACHE_URL (start it with scripts/test-servers.sh)")
}

typed_sessions_tests::http_suite!(async { crate::shared_store().await });

/// Memcached keeps no session index: an indexed write is a loud 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_on_a_store_without_one_fails_loudly() {
    let store = std::sync::Arc::new(shared_store().await);
    typed_sessions_tests::index_cases::index_on_a_store_without_one_fails_loudly(store).await;
}
