//! MongoStore on a replica set, where `move_to` runs in a transaction: a
//! single-node SecantusDB replica set of this test's own (spare port,
//! in memory), shared by the tests of this file and stopped when the test
//! process exits. The whole conformance suite runs on it too.
#![cfg(all(feature = "mongodb", feature = "conformance"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod mongo_support;

use std::sync::OnceLock;

use typed_sessions::store::mongodb::MongoStore;

use mongo_support::commands;
use mongo_support::server::{OwnServer, Storage};
use mongo_support::*;

static REPLICA_SET: OnceLock<OwnServer> = OnceLock::new();

fn replica_set() -> &'static OwnServer {
    REPLICA_SET.get_or_init(|| OwnServer::start(Storage::Memory, Some("secantus")))
}

async fn store() -> MongoStore {
    MongoStore::connect(&replica_set().url(), DB, "sessions")
        .await
        .unwrap()
}

typed_sessions::store_conformance_tests!(crate::store());
typed_sessions::store_index_conformance_tests!(crate::store());

#[tokio::test]
async fn replica_set_moves_in_transactions() {
    assert!(store().await.moves_in_transactions().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_keeps_every_acknowledged_write() {
    // Under a steady stream of conflicting writes the transaction may give
    // up (Contention: on the test server a writer racing the transaction's
    // first write can still invalidate it, now and then five times running);
    // no acknowledged write may be lost either way.
    mongo_support::move_keeps_every_acknowledged_write(&store().await, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_moves_leave_one_session() {
    mongo_support::concurrent_moves_leave_one_session(&store().await).await;
}

/// A move's transaction commits with the store's write concern (inside it,
/// operations carry none: MongoDB refuses them).
#[tokio::test]
async fn move_transactions_commit_with_the_store_write_concern() {
    use mongodb::bson::doc;
    use mongodb::options::WriteConcern;
    use std::time::SystemTime;
    use typed_sessions::SessionStore;

    let chosen = WriteConcern::nodes(1);
    for (store, expected) in [
        (
            commands::logged_store(&replica_set().url(), "tx_default", |s| s).await,
            doc! { "w": "majority", "j": true },
        ),
        (
            commands::logged_store(&replica_set().url(), "tx_chosen", |s| {
                s.with_write_concern(chosen.clone())
            })
            .await,
            doc! { "w": 1 },
        ),
    ] {
        let (store, log) = store;
        let id = new_id();
        store
            .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), in_a_minute())
            .await
            .unwrap();
        log.take();
        assert!(store.move_to(&id, &new_id(), in_a_minute()).await.unwrap());
        let sent = log.take_writes();
        let commit = sent
            .iter()
            .find(|(name, _)| name == "commitTransaction")
            .unwrap_or_else(|| panic!("no commitTransaction among {sent:?}"));
        assert_eq!(commit.1.get_document("writeConcern").ok(), Some(&expected));
        for (name, command) in &sent {
            if name != "commitTransaction" {
                assert!(!command.contains_key("writeConcern"), "{name}: {command}");
            }
        }
        store.collection().drop().await.unwrap();
    }
}
