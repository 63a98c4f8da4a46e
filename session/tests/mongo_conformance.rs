//! MongoStore against the store conformance suite, on the server at
//! `MONGO_URL` (default `mongodb://127.0.0.1:27017/`). Fails, never skips,
//! when the server is unreachable.
#![cfg(all(feature = "conformance", feature = "mongodb"))]
#![allow(missing_docs)]

use typed_sessions::store::mongodb::MongoStore;

async fn store() -> MongoStore {
    let url = std::env::var("MONGO_URL").unwrap_or_else(|_| "mongodb://127.0.0.1:27017/".into());
    MongoStore::connect(&url, "typed_sessions_test", "conformance")
        .await
        .unwrap_or_else(|e| panic!("MongoDB at {url} (set MONGO_URL): {e}"))
}

typed_sessions::store_conformance_tests!(store());
typed_sessions::store_index_conformance_tests!(store());
