//! RedisStore when its server dies and comes back: calls fail with an error
//! within a bound (never hang), and the same `RedisStore` value works again
//! once the server is back, without reconnecting by hand. Each test starts a
//! redis-server of its own on a free port (plain, and a one-node cluster)
//! and kills that one only.
#![cfg(feature = "redis")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod field_write;
use field_write::set;

mod own_server;
mod redis_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use redis_support::{OwnRedis, create, in_a_minute, new_id};
use tokio::sync::mpsc;
use typed_sessions::store::Bytes;
use typed_sessions::store::redis::RedisStore;
use typed_sessions::{SessionId, SessionStore, StoreError};

/// No call may take longer than this, server up or down.
const BOUND: Duration = Duration::from_secs(5);

/// Runs `call` and fails the test if it does not return within [`BOUND`].
async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for more than {BOUND:?}"))
}

fn assert_store_failure<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::Backend(_) | StoreError::Timeout(_))),
        "{what} while the server is down: {result:?}"
    );
}

/// Every kind of call, each bounded, each failing.
async fn every_call_fails(store: &RedisStore, id: &SessionId) {
    let other = new_id();
    assert_store_failure("load", bounded("load", store.load(id, "ns", &["f"])).await);
    assert_store_failure(
        "create",
        bounded(
            "create",
            store.create(
                &other,
                &[set("ns", "f", b"x")],
                SystemTime::now(),
                in_a_minute(),
            ),
        )
        .await,
    );
    assert_store_failure(
        "update",
        bounded(
            "update",
            store.update(id, &[set("ns", "f", b"y")], Some(in_a_minute())),
        )
        .await,
    );
    assert_store_failure(
        "touch",
        bounded("touch", store.touch(id, in_a_minute())).await,
    );
    assert_store_failure(
        "move_to",
        bounded("move_to", store.move_to(id, &other, in_a_minute())).await,
    );
    assert_store_failure("delete", bounded("delete", store.delete(&other)).await);
}

/// Every kind of call works.
async fn every_call_works(store: &RedisStore) {
    let (id, other) = (new_id(), new_id());
    bounded(
        "create",
        store.create(
            &id,
            &[set("ns", "f", b"1")],
            SystemTime::now(),
            in_a_minute(),
        ),
    )
    .await
    .unwrap();
    assert!(
        bounded(
            "update",
            store.update(&id, &[set("ns", "f", b"2")], Some(in_a_minute()))
        )
        .await
        .unwrap()
    );
    assert!(
        bounded("touch", store.touch(&id, in_a_minute()))
            .await
            .unwrap()
    );
    assert!(
        bounded("move_to", store.move_to(&id, &other, in_a_minute()))
            .await
            .unwrap()
    );
    let loaded = bounded("load", store.load(&other, "ns", &["f"]))
        .await
        .unwrap()
        .expect("moved session");
    assert_eq!(loaded.values, vec![Some(Bytes::from_static(b"2"))]);
    bounded("delete", store.delete(&other)).await.unwrap();
}

/// What a background caller saw.
#[derive(Debug, PartialEq)]
enum Seen {
    Success,
    Failure,
}

/// Callers that keep loading and updating one session until stopped,
/// reporting their first success and first failure; every call bounded.
fn start_callers(
    store: &RedisStore,
    id: &SessionId,
    stop: &Arc<AtomicBool>,
) -> (
    Vec<tokio::task::JoinHandle<()>>,
    mpsc::UnboundedReceiver<Seen>,
) {
    let (report, seen) = mpsc::unbounded_channel();
    let callers = (0..4)
        .map(|n| {
            let (store, id, stop, report) =
                (store.clone(), id.clone(), stop.clone(), report.clone());
            tokio::spawn(async move {
                let (mut succeeded, mut failed) = (false, false);
                while !stop.load(Ordering::Relaxed) {
                    let ok = if n % 2 == 0 {
                        bounded("load", store.load(&id, "ns", &["f"])).await.is_ok()
                    } else {
                        bounded(
                            "update",
                            store.update(&id, &[set("ns", "f", b"z")], Some(in_a_minute())),
                        )
                        .await
                        .is_ok()
                    };
                    if ok && !succeeded {
                        succeeded = true;
                        let _ = report.send(Seen::Success);
                    }
                    if !ok && !failed {
                        failed = true;
                        let _ = report.send(Seen::Failure);
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    (callers, seen)
}

async fn wait_for(seen: &mut mpsc::UnboundedReceiver<Seen>, what: Seen, count: usize) {
    let mut got = 0;
    while got < count {
        let next = bounded("waiting for the callers", seen.recv()).await;
        if next.as_ref() == Some(&what) {
            got += 1;
        }
    }
}

/// After a restart the connection is rebuilt on demand: the first calls may
/// still fail, then calls succeed. Polls (there is no signal for "the
/// connection is back") within a deadline.
async fn wait_until_it_works_again(store: &RedisStore) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut failures = 0;
    loop {
        match bounded("load", store.load(&new_id(), "ns", &["f"])).await {
            Ok(None) => break,
            Ok(Some(_)) => panic!("a random id loaded a session"),
            Err(error) => {
                failures += 1;
                assert!(
                    Instant::now() < deadline,
                    "store still failing after the restart: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    println!("calls failed {failures} times after the restart before one succeeded");
}

async fn kill_and_restart(mut server: OwnRedis, store: RedisStore) {
    let id = new_id();
    create(&store, &id, &[set("ns", "f", b"0")]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (callers, mut seen) = start_callers(&store, &id, &stop);
    wait_for(&mut seen, Seen::Success, 4).await;

    // Killed while the callers run: each of them sees failures, none hangs.
    server.kill();
    wait_for(&mut seen, Seen::Failure, 4).await;
    every_call_fails(&store, &id).await;

    // Back on the same port (without persistence, so the data is gone):
    // the same store value recovers by itself.
    server.restart().await;
    wait_until_it_works_again(&store).await;
    every_call_works(&store).await;

    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_server_killed_and_restarted() {
    let server = OwnRedis::start().await;
    let store = RedisStore::connect(&server.url()).await.unwrap();
    kill_and_restart(server, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_node_killed_and_restarted() {
    let server = OwnRedis::start_cluster().await;
    let store = RedisStore::connect_cluster(&[server.url().as_str()])
        .await
        .unwrap();
    kill_and_restart(server, store).await;
}

/// A server that is not there at all: connecting fails, within the bound.
#[tokio::test]
async fn connecting_to_nothing_fails_fast() {
    let server = OwnRedis::start().await;
    let url = server.url();
    drop(server);
    let result = bounded("connect", RedisStore::connect(&url)).await;
    assert!(result.is_err());
    let result = bounded(
        "connect_cluster",
        RedisStore::connect_cluster(&[url.as_str()]),
    )
    .await;
    assert!(result.is_err());
}
