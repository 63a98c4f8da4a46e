//! MongoStore when its server goes away: a SecantusDB of this test's own (on
//! a spare port, never the shared one) is stopped and restarted, frozen and
//! resumed, or killed. Calls fail with an error within a bound while it is
//! gone (or are dropped at the caller's bound, as the layer does) and succeed
//! again afterwards, on the same `MongoStore` value; acknowledged writes
//! survive a killed server.
#![cfg(feature = "mongodb")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod mongo_support;

use std::time::{Duration, SystemTime};

use typed_sessions::store::Bytes;
use typed_sessions::store::mongodb::MongoStore;
use typed_sessions::{SessionStore, StoreError};

use mongo_support::server::{OwnServer, Storage};
use mongo_support::*;

/// Far above the store's bound on a stopped server (1 s server selection): a
/// call that takes this long is hanging.
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
        .unwrap();
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
        assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
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

/// A server that accepts connections but never answers holds a call until
/// the caller's bound drops it (the store sets no per-call timeout: the
/// layer's bounds every call); the store works again once the server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_dropped_at_the_callers_bound_leave_the_store_working() {
    const BOUND: Duration = Duration::from_secs(2);
    let server = OwnServer::start(Storage::Memory, None);
    let store = MongoStore::connect(&server.url(), DB, "frozen")
        .await
        .unwrap();
    let id = new_id();
    store
        .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();

    server.freeze();
    let load = tokio::time::timeout(BOUND, store.load(&id, NS, &["a"])).await;
    assert!(load.is_err(), "answered by a frozen server: {load:?}");
    let update = tokio::time::timeout(
        BOUND,
        store.update(&id, &[set(NS, "a", b"2")], Some(in_a_minute())),
    )
    .await;
    assert!(update.is_err(), "answered by a frozen server: {update:?}");
    let moved = tokio::time::timeout(BOUND, store.move_to(&id, &new_id(), in_a_minute())).await;
    assert!(moved.is_err(), "answered by a frozen server: {moved:?}");

    server.thaw();
    // The dropped update may or may not have been applied; the dropped move
    // may have marked the session, which then refuses writes for MOVE_LEASE
    // and stays readable.
    let loaded = store.load(&id, NS, &["a"]).await.unwrap().unwrap();
    assert!(
        loaded.values == vec![Some(Bytes::from_static(b"1"))]
            || loaded.values == vec![Some(Bytes::from_static(b"2"))],
        "{loaded:?}"
    );
    let other = new_id();
    store
        .create(
            &other,
            &[set(NS, "a", b"3")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    assert!(
        store
            .update(&other, &[set(NS, "a", b"4")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .load(&other, NS, &["a"])
            .await
            .unwrap()
            .unwrap()
            .values,
        vec![Some(Bytes::from_static(b"4"))]
    );
}

/// Every write acknowledged under the default write concern (journaled) is
/// there after `kill -9` of the server, killed while writers are busy.
/// Without the journal (`w: 1`), SecantusDB lost some in every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_killed_server() {
    const WRITERS: u32 = 6;
    const ACKNOWLEDGED_BEFORE_KILL: usize = 150;
    let mut server = OwnServer::start(Storage::Disk, None);
    let store = MongoStore::connect(&server.url(), DB, "durability")
        .await
        .unwrap();
    let acknowledged = std::sync::atomic::AtomicUsize::new(0);
    let enough = tokio::sync::Notify::new();
    // Each writer alternates creating a session and updating its own one;
    // it stops at its first error (the server is gone).
    let writer = |w: u32| {
        let (store, acknowledged, enough) = (&store, &acknowledged, &enough);
        async move {
            let own = new_id();
            store
                .create(
                    &own,
                    &[set(NS, "n", b"0")],
                    SystemTime::now(),
                    in_a_minute(),
                )
                .await
                .unwrap();
            let (mut created, mut updated) = (Vec::new(), 0);
            for i in 1u32.. {
                let value = (w * 1_000_000 + i).to_string();
                let written = if i % 2 == 0 {
                    let id = new_id();
                    store
                        .create(
                            &id,
                            &[set(NS, "n", value.as_bytes())],
                            SystemTime::now(),
                            in_a_minute(),
                        )
                        .await
                        .map(|()| created.push((id, value)))
                } else {
                    store
                        .update(&own, &[set(NS, "n", value.as_bytes())], None)
                        .await
                        .map(|found| {
                            assert!(found);
                            updated = i;
                        })
                };
                if written.is_err() {
                    break;
                }
                let count = acknowledged.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if count + 1 == ACKNOWLEDGED_BEFORE_KILL {
                    enough.notify_one();
                }
            }
            (own, created, w * 1_000_000 + updated)
        }
    };
    let killer = async {
        enough.notified().await;
        server.kill();
    };
    let (written, ()) = tokio::join!(
        futures_util::future::join_all((0..WRITERS).map(writer)),
        killer
    );
    server.restart();

    let mut lost = Vec::new();
    for (own, created, updated) in &written {
        for (id, value) in created {
            let loaded = store.load(id, NS, &["n"]).await.unwrap();
            if loaded.map(|l| l.values) != Some(vec![Some(Bytes::from(value.clone()))]) {
                lost.push(format!("create {value}"));
            }
        }
        let loaded = store.load(own, NS, &["n"]).await.unwrap().unwrap();
        let stored: u32 = std::str::from_utf8(loaded.values[0].as_deref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        // The write in flight at the kill may have landed unacknowledged.
        if stored < *updated {
            lost.push(format!("update {updated} (stored {stored})"));
        }
    }
    let total = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        lost.is_empty(),
        "{} of {total} acknowledged writes lost: {lost:?}",
        lost.len()
    );
}
