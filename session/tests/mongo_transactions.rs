//! MongoStore on a replica set, where `move_to` runs in a transaction: a
//! single-node SecantusDB replica set of this test's own (spare port,
//! in memory), shared by the tests of this file and stopped when the test
//! process exits. The whole conformance suite runs on it too.
#![cfg(all(feature = "mongodb", feature = "conformance"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod mongo_support;

use std::sync::OnceLock;

use typed_sessions::store::mongodb::MongoStore;

use mongo_support::server::{OwnServer, Storage};
use mongo_support::*;

static REPLICA_SET: OnceLock<OwnServer> = OnceLock::new();

async fn store() -> MongoStore {
    let server = REPLICA_SET.get_or_init(|| OwnServer::start(Storage::Memory, Some("secantus")));
    MongoStore::connect(&server.url(), DB, "sessions")
        .await
        .unwrap()
}

typed_sessions::store_conformance_tests!(crate::store());

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
