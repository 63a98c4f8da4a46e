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

/// A session record memcached holds corrupt is reset, not a 500 on every
/// request. (The store itself reads an unreadable record as absent, so the
/// layer's own reset of a `Malformed` load is not reached here; the
/// `reset_cases` of the suite cover that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_sessions_are_reset() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let store = shared_store().await;
    let address = memcache_url().trim_start_matches("memcache://").to_owned();
    let shared: std::sync::Arc<dyn typed_sessions::SessionStore> =
        std::sync::Arc::new(store.clone());
    typed_sessions_tests::reset_cases::corrupt_record_is_reset(shared, |id| {
        let key = store.key(&id);
        let address = address.clone();
        async move {
            // Over the text protocol: memcached's own `set`, not the store's.
            let garbage = b"not a session record \xff\xfe";
            let mut command = format!("set {key} 0 60 {}\r\n", garbage.len()).into_bytes();
            command.extend_from_slice(garbage);
            command.extend_from_slice(b"\r\n");
            let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
            connection.write_all(&command).await.unwrap();
            let mut reply = [0; 8];
            connection.read_exact(&mut reply).await.unwrap();
            assert_eq!(&reply, b"STORED\r\n");
        }
    })
    .await;
}
