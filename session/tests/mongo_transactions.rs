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

/// A move whose every attempt conflicts (another transaction holds `from`
/// and stays open) makes 5 attempts, then reports `Contention(5)`, leaving
/// `from` as it was and `to` empty; once the other transaction ends, the
/// move succeeds.
#[tokio::test]
async fn a_move_that_keeps_conflicting_gives_up_after_five_attempts() {
    use mongodb::bson::doc;
    use std::time::SystemTime;
    use typed_sessions::{SessionStore, StoreError};

    let (store, log) = commands::logged_store(&replica_set().url(), "tx_conflict", |s| s).await;
    let (from, to) = (new_id(), new_id());
    store
        .create(
            &from,
            &[set(NS, "a", b"1")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let mut blocker = store.collection().client().start_session().await.unwrap();
    blocker.start_transaction().await.unwrap();
    store
        .collection()
        .update_one(
            doc! { "_id": from.as_str() },
            doc! { "$set": { "held": true } },
        )
        .session(&mut blocker)
        .await
        .unwrap();
    log.take();

    let moved = store.move_to(&from, &to, in_a_minute()).await;
    assert!(matches!(moved, Err(StoreError::Contention(5))), "{moved:?}");
    let attempts = log
        .take_names()
        .iter()
        .filter(|name| *name == "findAndModify")
        .count();
    assert_eq!(attempts, 5);
    assert!(store.load(&to, NS, &["a"]).await.unwrap().is_none());

    blocker.abort_transaction().await.unwrap();
    let loaded = store.load(&from, NS, &["a"]).await.unwrap().unwrap();
    assert_eq!(loaded.values, vec![Some(b"1".to_vec().into())]);
    assert!(store.move_to(&from, &to, in_a_minute()).await.unwrap());
    store.collection().drop().await.unwrap();
}
