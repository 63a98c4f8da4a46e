//! The HTTP suite on MemcacheStore (memcached at `MEMCACHE_URL`, default
//! `memcache://127.0.0.1:11211`; fails when it is unreachable), plus a
//! memcached this test starts itself, kills and restarts.
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

/// A memcached this test owns, on a spare loopback port, and the HTTP app
/// over it: killed, requests are 500s; restarted, they work again.
mod own_server {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use typed_sessions::SessionLayer;
    use typed_sessions::store::memcache::MemcacheStore;
    use typed_sessions_tests::app::serve;
    use typed_sessions_tests::browser::Browser;

    struct Memcached(Option<Child>);

    impl Memcached {
        async fn start(port: u16) -> Self {
            let child = Command::new("memcached")
                .args([
                    "-u",
                    "memcache",
                    "-l",
                    "127.0.0.1",
                    "-U",
                    "0",
                    "-m",
                    "16",
                    "-p",
                ])
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("the memcached binary (scripts/test.sh installs it)");
            let mut server = Self(Some(child));
            // Nothing signals readiness: poll the port, with a deadline.
            let deadline = Instant::now() + Duration::from_secs(10);
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                assert!(Instant::now() < deadline, "memcached did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let exited = server.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
            assert!(exited.is_none(), "memcached exited: {exited:?}");
            server
        }

        fn kill(&mut self) {
            if let Some(mut child) = self.0.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    impl Drop for Memcached {
        fn drop(&mut self) {
            self.kill();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_memcached_gives_500s_and_a_restart_recovers() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut memcached = Memcached::start(port).await;
        let store = MemcacheStore::connect(&format!("memcache://127.0.0.1:{port}"))
            .await
            .unwrap();
        // A store timeout longer than the browser's 30 s: a 500 below comes
        // from the store failing by itself, not from the layer giving up.
        let layer = SessionLayer::new(store)
            .with_secure(false)
            .with_store_timeout(Duration::from_secs(60));
        let server = serve(layer).await;
        let mut browser = Browser::new(&server.base);
        assert_eq!(browser.get("/count").await.body, "1");
        assert_eq!(browser.get("/count").await.body, "2");

        memcached.kill();
        for path in ["/count", "/read", "/cycle", "/logout"] {
            let reply = browser.get(path).await;
            assert_eq!(reply.status, 500, "{path} with memcached down");
            assert_eq!(reply.set_cookie(), None, "{path}");
        }
        let reply = Browser::new(&server.base).get("/count").await;
        assert_eq!(reply.status, 500, "new session with memcached down");

        // Restarted (empty): the old session is gone, a new one works.
        let _memcached = Memcached::start(port).await;
        assert_eq!(browser.get("/count").await.body, "1");
        assert_eq!(browser.get("/count").await.body, "2");
    }
}
