//! The HTTP suite on MongoStore (the server at `MONGO_URL`, default
//! `mongodb://127.0.0.1:27017/`; fails when it is unreachable), plus a
//! SecantusDB this test starts itself, stops and restarts.
#![cfg(feature = "mongodb")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use typed_sessions::store::mongodb::MongoStore;

/// Starts SecantusDB processes of a test's own (shared with the store tests).
#[path = "../../session/tests/mongo_support/server.rs"]
mod mongo_server;

fn mongo_url() -> String {
    std::env::var("MONGO_URL").unwrap_or_else(|_| "mongodb://127.0.0.1:27017/".to_owned())
}

async fn shared_store() -> MongoStore {
    MongoStore::connect(&mongo_url(), "typed_sessions_test", "http")
        .await
        .expect("MongoDB at MONGO_URL (start it with scripts/test-servers.sh)")
}

typed_sessions_tests::http_suite!(async { crate::shared_store().await });
typed_sessions_tests::http_index_suite!(async { crate::shared_store().await });

/// A SecantusDB this test owns (spare port, data on disk so it survives a
/// restart) and the HTTP app over it: stopped, requests are 500s; restarted,
/// the same app and store work again and the session is still there.
mod own_server {
    use std::time::Duration;

    use typed_sessions::SessionLayer;
    use typed_sessions::store::mongodb::MongoStore;
    use typed_sessions_tests::app::serve;
    use typed_sessions_tests::browser::Browser;

    use crate::mongo_server::{OwnServer, Storage};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stopped_server_gives_500s_and_a_restart_recovers() {
        let mut mongo = OwnServer::start(Storage::Disk, None);
        let store = MongoStore::connect(&mongo.url(), "typed_sessions_test", "http_fault")
            .await
            .unwrap();
        // A layer timeout longer than the browser's 30 s: a 500 below comes
        // from the store failing by itself, not from the layer giving up.
        let layer = SessionLayer::new(store)
            .with_secure(false)
            .with_store_timeout(Duration::from_secs(60));
        let server = serve(layer).await;
        let mut browser = Browser::new(&server.base);
        assert_eq!(browser.get("/count").await.body, "1");
        assert_eq!(browser.get("/count").await.body, "2");

        mongo.stop();
        for path in ["/count", "/read", "/cycle", "/logout"] {
            let reply = browser.get(path).await;
            assert_eq!(reply.status, 500, "{path} with the server down");
            assert_eq!(reply.set_cookie(), None, "{path}");
        }
        let reply = Browser::new(&server.base).get("/count").await;
        assert_eq!(reply.status, 500, "new session with the server down");

        mongo.restart();
        assert_eq!(browser.get("/count").await.body, "3");
        assert_eq!(browser.get("/cycle").await.status, 200);
        assert_eq!(browser.get("/count").await.body, "4");
    }
}
