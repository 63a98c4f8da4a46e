//! The cluster move (`move_to` across slots) step by step: writes that
//! land between its steps, steps repeated after a lost reply, the lease
//! that holds writes off, and a move cancelled part way.

use super::*;
use crate::store::redis::cluster::Step;
use crate::store::unix_millis;

fn expiry() -> u64 {
    unix_millis(in_a_minute())
}

#[tokio::test]
async fn write_between_copy_and_finish_makes_the_move_copy_again() {
    let store = cluster().await;
    let (from, to, from_key, to_key) = session(&store).await;
    let fields = store
        .copy_out(&from_key, "t1", None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .update(&from, &[set("b", b"late")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Retry
    );
    store.discard(&to_key, "t1").await.unwrap();
    assert_eq!(store.load(&to, "ns", &["a"]).await.unwrap(), None);
    // The whole move now carries the late write over.
    assert!(store.move_to(&from, &to, in_a_minute()).await.unwrap());
    assert_eq!(value(&store, &to, "b").await, Some(Some(b"late".to_vec())));
    assert_eq!(value(&store, &from, "a").await, None);
}

#[tokio::test]
async fn delete_during_the_move_wins() {
    let store = cluster().await;
    let (from, to, from_key, to_key) = session(&store).await;
    let fields = store
        .copy_out(&from_key, "t1", None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    store.delete(&from).await.unwrap();
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Gone
    );
    store.discard(&to_key, "t1").await.unwrap();
    assert_eq!(value(&store, &to, "a").await, None);
}

/// A step the cluster client retries after it already took effect (a
/// lost reply) reports the same outcome and does no harm.
#[tokio::test]
async fn repeated_steps_are_idempotent() {
    let store = cluster().await;
    let (from, to, from_key, to_key) = session(&store).await;
    let fields = store
        .copy_out(&from_key, "t1", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .copy_out(&from_key, "t1", None)
            .await
            .unwrap()
            .unwrap(),
        fields
    );
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .copy_in(&to_key, "t2", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Done
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Done
    );
    assert_eq!(value(&store, &to, "a").await, Some(Some(b"1".to_vec())));
    assert_eq!(value(&store, &from, "a").await, None);
    // Another move's token does not match the tombstone.
    assert_eq!(
        store.finish(&from_key, "t2", &to).await.unwrap(),
        Step::Gone
    );
}

/// While a retrying move holds writes off, an update waits; once the
/// move is done it reports the session gone, as after an atomic rename.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_waits_for_a_held_move_then_reports_it_gone() {
    let store = cluster().await;
    let (from, to, from_key, to_key) = session(&store).await;
    let fields = store
        .copy_out(&from_key, "t1", Some(Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap();
    let writer = {
        let (store, from) = (store.clone(), from.clone());
        tokio::spawn(async move {
            store
                .update(&from, &[set("b", b"late")], Some(in_a_minute()))
                .await
        })
    };
    // The writer is held off: it does not complete while the move runs.
    tokio::task::yield_now().await;
    assert!(!writer.is_finished());
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Done
    );
    assert!(
        !writer.await.unwrap().unwrap(),
        "write landed on a moved session"
    );
    // The lease field is not copied; the moved session takes writes.
    let mut con = match store.connection() {
        RedisConnection::Cluster(c) => c.clone(),
        RedisConnection::Single(_) => unreachable!(),
    };
    let frozen: bool = redis::cmd("HEXISTS")
        .arg(&to_key)
        .arg(FROZEN)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(!frozen);
    assert!(
        store
            .update(&to, &[set("b", b"new")], Some(in_a_minute()))
            .await
            .unwrap()
    );
}

/// A mover that died holding writes off blocks them only until its
/// lease ends; the write then lands and the stale mark is gone.
#[tokio::test]
async fn lease_of_a_dead_mover_runs_out() {
    let store = cluster().await;
    let (from, to, from_key, _to_key) = session(&store).await;
    store
        .copy_out(&from_key, "t1", Some(Duration::from_millis(300)))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .update(&from, &[set("b", b"after")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        value(&store, &from, "b").await,
        Some(Some(b"after".to_vec()))
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Retry
    );
}

/// A cluster move cancelled at any point (the layer's timeout drops the
/// future) never loses the session: the old id still holds it, or the
/// move finished and the new id does. Writes to the old id go on (at
/// most after a lease), and a second move gets through.
#[tokio::test]
async fn cluster_move_cancelled_part_way_loses_nothing() {
    let store = cluster().await;
    let mut outcomes = [0_u32; 2];
    for step in 0..40_u32 {
        let (from, to, _from_key, _to_key) = session(&store).await;
        // Cancelled after a number of waits rather than a time: every wait
        // is a round trip, so the early steps stop the move part way on a
        // fast machine as on a slow one.
        let moved = after_waits(step, store.move_to(&from, &to, in_a_minute())).await;
        let holder = match moved {
            Some(result) => {
                assert!(result.unwrap());
                outcomes[1] += 1;
                &to
            }
            None => match value(&store, &from, "a").await {
                Some(_) => {
                    outcomes[0] += 1;
                    // Writes to the old id still land, and it moves.
                    assert!(
                        store
                            .update(&from, &[set("b", b"2")], Some(in_a_minute()))
                            .await
                            .unwrap()
                    );
                    let again = SessionId::generate().unwrap();
                    assert!(store.move_to(&from, &again, in_a_minute()).await.unwrap());
                    assert_eq!(value(&store, &again, "b").await, Some(Some(b"2".to_vec())));
                    continue;
                }
                // Cancelled after the finish took effect.
                None => &to,
            },
        };
        assert_eq!(value(&store, holder, "a").await, Some(Some(b"1".to_vec())));
        assert_eq!(value(&store, &from, "a").await, None);
    }
    println!(
        "cancelled before the finish: {}, moved: {}",
        outcomes[0], outcomes[1]
    );
    assert!(outcomes[0] > 0, "no move was cancelled part way");
}

/// Polls `future` until it has waited `waits` times, then drops it
/// (`None`), as the layer's timeout drops a store call.
async fn after_waits<F: std::future::Future>(waits: u32, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut waited = 0;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending if waited >= waits => std::task::Poll::Ready(None),
        std::task::Poll::Pending => {
            waited += 1;
            std::task::Poll::Pending
        }
    })
    .await
}

/// A `__frozen` lease no mover wrote (set from outside, far in the
/// future) does not hold an update forever: it gives up with
/// `Contention` once it has waited longer than any move holds writes.
#[tokio::test]
async fn update_gives_up_on_a_lease_no_move_ends() {
    let store = single().await;
    let id = SessionId::generate().unwrap();
    store
        .create(&id, &[set("a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    let key = store.key(&id);
    let far = unix_millis(in_secs(3600)).to_string();
    raw(
        &store,
        &[b"HSET", key.as_bytes(), FROZEN.as_bytes(), far.as_bytes()],
    )
    .await;
    let result = store
        .update(&id, &[set("a", b"2")], Some(in_a_minute()))
        .await;
    assert!(
        matches!(result, Err(StoreError::Contention(_))),
        "{result:?}"
    );
    assert_eq!(value(&store, &id, "a").await, Some(Some(b"1".to_vec())));
}
