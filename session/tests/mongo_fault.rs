//! MongoStore when its server goes away: a SecantusDB of this test's own (on
//! a spare port, never the shared one) is stopped and restarted, or frozen
//! and resumed. Calls fail with an error within a bound while it is gone and
//! succeed again afterwards, on the same `MongoStore` value.
#![cfg(feature = "mongodb")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod mongo_support;

use std::time::{Duration, SystemTime};

use typed_sessions::store::Bytes;
use typed_sessions::store::mongodb::MongoStore;
use typed_sessions::{SessionStore, StoreError};

use mongo_support::server::{OwnServer, Storage};
use mongo_support::*;

/// Far above the store's bounds (1 s server selection, 3 s per call): a call
/// that takes this long is hanging.
const HANG: Duration = Duration::from_secs(15);

/// Runs `call` and insists it fails, and fails within [`HANG`].
async fn fails<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> StoreError {
    match tokio::time::timeout(HANG, call).await {
        Err(_) => panic!("{what} hung while the server was unavailable"),
        Ok(Ok(value)) => panic!("{what} succeeded while the server was unavailable: {value:?}"),
        Ok(Err(error)) => error,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_while_the_server_is_down_and_work_after_restart() {
    let mut server = OwnServer::start(Storage::Disk, None);
    let store = MongoStore::connect(&server.url(), DB, "fault")
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(3));
    let id = new_id();
    store
        .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();

    server.stop();
    let errors = [
        fails("load", store.load(&id, NS, &["a"])).await,
        fails(
            "update",
            store.update(&id, &[set(NS, "a", b"2")], Some(in_a_minute())),
        )
        .await,
        fails("touch", store.touch(&id, in_a_minute())).await,
        fails(
            "create",
            store.create(
                &new_id(),
                &[set(NS, "a", b"1")],
                SystemTime::now(),
                in_a_minute(),
            ),
        )
        .await,
        fails("move_to", store.move_to(&id, &new_id(), in_a_minute())).await,
        fails("delete", store.delete(&id)).await,
    ];
    for error in &errors {
        assert!(
            matches!(error, StoreError::Backend(_) | StoreError::Timeout(_)),
            "{error:?}"
        );
    }

    server.restart();
    // Same store value; the session written before the outage is there.
    let loaded = store.load(&id, NS, &["a"]).await.unwrap().unwrap();
    assert_eq!(loaded.values, vec![Some(Bytes::from_static(b"1"))]);
    assert!(
        store
            .update(&id, &[set(NS, "a", b"2")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    let to = new_id();
    assert!(store.move_to(&id, &to, in_a_minute()).await.unwrap());
    assert_eq!(
        store.load(&to, NS, &["a"]).await.unwrap().unwrap().values,
        vec![Some(Bytes::from_static(b"2"))]
    );
}

/// A server that accepts connections but never answers: every call ends
/// with `StoreError::Timeout` at the store's bound instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_times_out_and_recovers() {
    let server = OwnServer::start(Storage::Memory, None);
    let store = MongoStore::connect(&server.url(), DB, "frozen")
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let id = new_id();
    store
        .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();

    server.freeze();
    let error = fails("load", store.load(&id, NS, &["a"])).await;
    assert!(matches!(error, StoreError::Timeout(_)), "{error:?}");
    let error = fails(
        "update",
        store.update(&id, &[set(NS, "a", b"2")], Some(in_a_minute())),
    )
    .await;
    assert!(matches!(error, StoreError::Timeout(_)), "{error:?}");

    server.thaw();
    let loaded = store.load(&id, NS, &["a"]).await.unwrap().unwrap();
    assert!(
        loaded.values == vec![Some(Bytes::from_static(b"1"))]
            || loaded.values == vec![Some(Bytes::from_static(b"2"))],
        "{loaded:?}"
    );
    assert!(
        store
            .update(&id, &[set(NS, "a", b"3")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        store.load(&id, NS, &["a"]).await.unwrap().unwrap().values,
        vec![Some(Bytes::from_static(b"3"))]
    );
}
