//! Helpers shared by the MongoStore tests (`mongo_*.rs`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod commands;
#[path = "../field_write/mod.rs"]
mod field_write;
pub use field_write::set;
#[path = "../own_server/mod.rs"]
pub mod own_server;
#[allow(unused_imports)]
pub use own_server::secantus as server;

use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use typed_sessions::store::Bytes;
use typed_sessions::store::mongodb::MongoStore;
use typed_sessions::{SessionId, SessionStore, StoreError};

/// The database every MongoStore test uses.
pub const DB: &str = "typed_sessions_test";
pub const NS: &str = "ns";

/// `MONGO_URL`, default the shared test server.
pub fn mongo_url() -> String {
    std::env::var("MONGO_URL").unwrap_or_else(|_| "mongodb://127.0.0.1:27017/".to_owned())
}

/// A store on the shared server; fails (never skips) when it is unreachable.
pub async fn shared_store(collection: &str) -> MongoStore {
    let url = mongo_url();
    MongoStore::connect(&url, DB, collection)
        .await
        .unwrap_or_else(|e| {
            panic!("MongoDB at {url} (set MONGO_URL, or run scripts/test-servers.sh): {e}")
        })
}

/// A collection name no other test run uses.
pub fn fresh_collection(prefix: &str) -> String {
    format!("{prefix}_{}", &new_id().as_str()[..12])
}

pub fn new_id() -> SessionId {
    SessionId::generate().unwrap()
}

pub fn in_a_minute() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

/// Writers keep changing their own field of a session while it is moved.
/// Every write the store acknowledged (`Ok(true)`) must be found where the
/// session ended up: under the new id after `Ok(true)`, under the old one
/// after `Contention` (accepted only when `allow_contention`); the other id
/// holds nothing.
pub async fn move_keeps_every_acknowledged_write(store: &MongoStore, allow_contention: bool) {
    const WRITERS: usize = 3;
    const WRITES: usize = 25;
    for round in 0..3 {
        let from = new_id();
        let to = new_id();
        store
            .create(
                &from,
                &[set(NS, "seed", b"s")],
                SystemTime::now(),
                in_a_minute(),
            )
            .await
            .unwrap();
        let started = tokio::sync::Barrier::new(WRITERS + 1);
        let writers = (0..WRITERS).map(|w| {
            let (from, started) = (&from, &started);
            async move {
                let field = format!("w{w}");
                let mut acknowledged = None;
                for i in 0..WRITES {
                    let value = format!("{w}-{i}");
                    let ok = store
                        .update(
                            from,
                            &[set(NS, &field, value.as_bytes())],
                            Some(in_a_minute()),
                        )
                        .await
                        .unwrap();
                    if i == 0 {
                        assert!(ok, "first write before the move");
                        started.wait().await;
                    }
                    if !ok {
                        break;
                    }
                    acknowledged = Some(value.into_bytes());
                }
                (field, acknowledged)
            }
        });
        let mover = async {
            started.wait().await;
            store.move_to(&from, &to, in_a_minute()).await
        };
        let (written, moved) = tokio::join!(join_all(writers), mover);
        let (home, gone) = match moved {
            Ok(true) => (&to, &from),
            Err(StoreError::Contention(_)) if allow_contention => (&from, &to),
            other => panic!("move_to: {other:?} (round {round})"),
        };
        assert!(store.load(gone, NS, &["seed"]).await.unwrap().is_none());
        let fields: Vec<&str> = written.iter().map(|(f, _)| f.as_str()).collect();
        let loaded = store.load(home, NS, &fields).await.unwrap().unwrap();
        for ((field, acknowledged), stored) in written.iter().zip(loaded.values) {
            assert_eq!(
                stored.as_deref(),
                acknowledged.as_deref(),
                "acknowledged write to {field} lost by move_to (round {round})"
            );
        }
        let seed = store.load(home, NS, &["seed"]).await.unwrap().unwrap();
        assert_eq!(seed.values, vec![Some(Bytes::from_static(b"s"))]);
    }
}

/// Two concurrent moves of one session: exactly one wins; the session ends
/// up under the winner's id only.
pub async fn concurrent_moves_leave_one_session(store: &MongoStore) {
    for round in 0..3 {
        let from = new_id();
        store
            .create(
                &from,
                &[set(NS, "a", b"1")],
                SystemTime::now(),
                in_a_minute(),
            )
            .await
            .unwrap();
        let (a, b) = (new_id(), new_id());
        let (to_a, to_b) = tokio::join!(
            store.move_to(&from, &a, in_a_minute()),
            store.move_to(&from, &b, in_a_minute())
        );
        let (winner, loser) = match (to_a.unwrap(), to_b.unwrap()) {
            (true, false) => (&a, &b),
            (false, true) => (&b, &a),
            other => panic!("both or neither move won: {other:?} (round {round})"),
        };
        let loaded = store.load(winner, NS, &["a"]).await.unwrap().unwrap();
        assert_eq!(loaded.values, vec![Some(Bytes::from_static(b"1"))]);
        assert!(store.load(loser, NS, &["a"]).await.unwrap().is_none());
        assert!(store.load(&from, NS, &["a"]).await.unwrap().is_none());
    }
}
