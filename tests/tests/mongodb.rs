//! The HTTP suite on MongoStore (the server at `MONGO_URL`, default
//! `mongodb://127.0.0.1:27017/`; fails when it is unreachable).
#![cfg(feature = "mongodb")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use typed_sessions::store::mongodb::MongoStore;

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
