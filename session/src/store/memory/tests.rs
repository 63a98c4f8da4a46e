//! Unit tests of the parent module.
use std::time::Instant;

use bytes::Bytes;

use super::*;
use crate::store::FieldKey;

const WAIT: Duration = Duration::from_secs(10);

impl MemoryStore {
    /// A store that sweeps only on its calls.
    fn without_sweeper() -> Self {
        let mut store = Self::new();
        store._sweeper = None;
        store
    }

    fn capacity(&self) -> usize {
        self.shards
            .shards
            .iter()
            .map(|s| s.0.lock().sessions.capacity())
            .sum()
    }

    /// How many (entry, session) pairs the shards' indexes hold.
    fn index_len(&self) -> usize {
        self.shards
            .shards
            .iter()
            .map(|s| s.0.lock().index.len())
            .sum()
    }
}

fn id() -> SessionId {
    SessionId::generate().unwrap()
}

fn set<'a>(namespace: &'a str, field: &'a str, value: &'a [u8]) -> FieldWrite<'a> {
    FieldWrite {
        key: FieldKey { namespace, field },
        value: Some(value),
    }
}

/// The write that sets namespace `User`'s index entry to `key`.
fn entry(key: &[u8]) -> FieldWrite<'_> {
    set(INDEX_NAMESPACE, "User", key)
}

const ADA: IndexKey<'static> = IndexKey {
    namespace: "User",
    key: b"ada",
};

/// Adds `count` sessions of one small field to `store`, expiring `after`
/// from now, and returns when they expire.
async fn fill(store: &MemoryStore, count: usize, after: Duration) -> SystemTime {
    let now = SystemTime::now();
    let expires_at = now + after;
    let before = store.len();
    for i in 0..count {
        let value = (i as u64).to_le_bytes();
        store
            .create(&id(), &[set("ns", "visits", &value)], now, expires_at)
            .await
            .unwrap();
    }
    assert_eq!(store.len(), before + count);
    expires_at
}

/// Waiting for an expiry time is waiting for the event itself.
async fn until(time: SystemTime) {
    if let Ok(left) = time.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
}

/// Polls `done` until it holds, failing after `WAIT`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_idle_store_sweeps_expired_sessions() {
    let store = MemoryStore::new();
    let expired = fill(&store, 20_000, Duration::from_secs(1)).await;
    let full = store.capacity();
    until(expired).await;
    // No call on the store at all (`len` sweeps nothing): its thread does it.
    eventually("the sweeper thread empties the store", || store.is_empty()).await;
    assert!(
        store.capacity() < full / 4,
        "tables shrink: {} of {full}",
        store.capacity()
    );
}

#[tokio::test]
async fn reads_alone_sweep_expired_sessions() {
    let store = MemoryStore::without_sweeper();
    let expired = fill(&store, 20_000, Duration::from_secs(1)).await;
    let full = store.capacity();
    until(expired).await;
    let mut reads = 0;
    while !store.is_empty() {
        // Loads of random ids reach every shard soon enough.
        assert!(reads < 100_000, "{} still held", store.len());
        let loaded = store.load(&id(), "ns", &["visits"]).await.unwrap();
        assert_eq!(loaded, None);
        reads += 1;
    }
    assert!(store.capacity() < full / 4, "tables shrink");
}

#[tokio::test]
async fn live_sessions_survive_a_sweep() {
    let store = MemoryStore::without_sweeper();
    let live = id();
    let now = SystemTime::now();
    store
        .create(&live, &[set("ns", "a", b"1")], now, now + WAIT * 6)
        .await
        .unwrap();
    until(fill(&store, 500, Duration::from_millis(20)).await).await;
    while store.len() > 1 {
        store.load(&id(), "ns", &["a"]).await.unwrap();
    }
    let loaded = store.load(&live, "ns", &["a"]).await.unwrap().unwrap();
    assert_eq!(loaded.values, vec![Some(Bytes::from_static(b"1"))]);
}

#[tokio::test]
async fn moves_between_shards_keep_every_field() {
    let store = MemoryStore::without_sweeper();
    let mut current = id();
    let now = SystemTime::now();
    let expires = now + WAIT * 6;
    store
        .create(
            &current,
            &[
                set("ns", "a", b"1"),
                set("ns", "b", b"2"),
                set("other", "a", b"3"),
                set(EXPIRY_FIELD.namespace, EXPIRY_FIELD.field, b"e"),
            ],
            now,
            expires,
        )
        .await
        .unwrap();
    // With 64 shards, 20 moves to random ids cross shards almost surely.
    for _ in 0..20 {
        let next = id();
        assert!(store.move_to(&current, &next, expires).await.unwrap());
        assert_eq!(store.forwarded(&current).await.unwrap(), Some(next.clone()));
        current = next;
        let ns = store
            .load(&current, "ns", &["b", "a"])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ns.values,
            vec![
                Some(Bytes::from_static(b"2")),
                Some(Bytes::from_static(b"1"))
            ]
        );
        let other = store
            .load(&current, "other", &["a"])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(other.values, vec![Some(Bytes::from_static(b"3"))]);
        // The remembered expiry comes with every namespace, whichever
        // shard numbered its name.
        assert_eq!(ns.expiry, Some(Bytes::from_static(b"e")));
        assert_eq!(other.expiry, ns.expiry);
    }
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_session_moved_to_an_earlier_expiry_is_swept() {
    let store = MemoryStore::without_sweeper();
    // Long-lived sessions in every shard (almost surely, with 64
    // shards), so no shard's earliest expiry is due by itself.
    let held = 1_000;
    fill(&store, held, WAIT * 6).await;
    let (from, to) = (id(), id());
    let now = SystemTime::now();
    store
        .create(&from, &[set("ns", "a", b"1")], now, now + WAIT * 6)
        .await
        .unwrap();
    let expires = SystemTime::now() + Duration::from_millis(20);
    assert!(store.move_to(&from, &to, expires).await.unwrap());
    until(expires).await;
    let mut reads = 0;
    while store.len() > held {
        // Only if the shard's earliest expiry knows the moved one.
        assert!(reads < 100_000, "the moved session is still held");
        store.load(&id(), "ns", &["a"]).await.unwrap();
        reads += 1;
    }
}

#[tokio::test]
async fn dropping_the_store_frees_it_and_ends_its_thread() {
    let mut store = MemoryStore::new();
    fill(&store, 10, WAIT * 6).await;
    let shards = Arc::downgrade(&store.shards);
    let Some(sweeper) = store._sweeper.take() else {
        panic!("no sweeper thread")
    };
    let Sweeper { _stop, thread } = sweeper;
    // The running thread does not keep the sessions alive...
    drop(store);
    eventually("the store's shards are freed", || {
        shards.upgrade().is_none()
    })
    .await;
    // ...and ends once the store (here: its stop handle) is gone.
    drop(_stop);
    eventually("the sweeper thread ends", || thread.is_finished()).await;
}

#[tokio::test]
async fn ended_sessions_leave_nothing_in_the_index() {
    let store = MemoryStore::without_sweeper();
    let now = SystemTime::now();
    // Long enough for the creates to finish before it (debug builds).
    let soon = now + Duration::from_secs(1);
    let later = now + WAIT * 6;
    let mut deleted = Vec::new();
    for i in 0..3_000 {
        let id = id();
        // Expiring, deleted, and moved away from the key.
        let expires = if i % 3 == 0 { soon } else { later };
        store
            .create(&id, &[entry(b"ada")], now, expires)
            .await
            .unwrap();
        match i % 3 {
            1 => deleted.push(id),
            2 => {
                let entry = entry(b"bob");
                assert!(store.update(&id, &[entry], None).await.unwrap());
                let gone = FieldWrite {
                    value: None,
                    ..entry
                };
                assert!(store.update(&id, &[gone], None).await.unwrap());
            }
            _ => {}
        }
    }
    for id in &deleted {
        store.delete(id).await.unwrap();
    }
    assert_eq!(store.index_len(), 1_000, "only the expiring ones are left");
    until(soon).await;
    assert!(store.list_index(ADA).await.unwrap().is_empty());
    let mut reads = 0;
    while store.index_len() > 0 {
        assert!(reads < 100_000, "{} entries still held", store.index_len());
        store.load(&id(), "User", &["a"]).await.unwrap();
        reads += 1;
    }
    // 1,000 sessions without an entry are all that is left.
    assert_eq!(store.len(), 1_000);
    for shard in store.shards.shards.iter() {
        assert!(shard.0.lock().index.is_empty(), "no empty tables kept");
    }
}

#[tokio::test]
async fn an_idle_store_prunes_the_index() {
    let store = MemoryStore::new();
    let now = SystemTime::now();
    let soon = now + Duration::from_millis(50);
    for _ in 0..500 {
        store
            .create(&id(), &[entry(b"ada")], now, soon)
            .await
            .unwrap();
    }
    until(soon).await;
    eventually("the sweeper thread prunes the index", || {
        store.index_len() == 0
    })
    .await;
}

#[tokio::test]
async fn a_dead_session_replaced_under_its_id_leaves_no_entry() {
    let store = MemoryStore::without_sweeper();
    let now = SystemTime::now();
    let (old, to) = (id(), id());
    let past = now - Duration::from_secs(1);
    for id in [&old, &to] {
        store
            .create(id, &[entry(b"ada")], past, past)
            .await
            .unwrap();
    }
    store
        .create(&old, &[entry(b"bob")], now, now + WAIT)
        .await
        .unwrap();
    assert!(store.move_to(&old, &to, now + WAIT).await.unwrap());
    assert_eq!(store.index_len(), 1, "only the live session's entry");
    let bob = IndexKey { key: b"bob", ..ADA };
    let listed = store.list_index(bob).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, to);
}

/// Moves the session `from` to fresh ids `moves` times or until it is
/// gone, and returns where it is.
async fn keep_moving(store: &MemoryStore, mut from: SessionId, moves: usize) -> SessionId {
    let expires = SystemTime::now() + WAIT * 6;
    for _ in 0..moves {
        let to = id();
        if !store.move_to(&from, &to, expires).await.unwrap() {
            break;
        }
        from = to;
        tokio::task::yield_now().await;
    }
    from
}

async fn indexed_sessions(store: &MemoryStore, count: usize) -> Vec<SessionId> {
    let now = SystemTime::now();
    let mut ids = Vec::new();
    for _ in 0..count {
        let id = id();
        store
            .create(&id, &[entry(b"ada")], now, now + WAIT * 6)
            .await
            .unwrap();
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_index_racing_moves_leaves_none() {
    let store = Arc::new(MemoryStore::without_sweeper());
    let sessions = 16;
    for _ in 0..50 {
        let moved = store.shards.index_moves.load(Ordering::Acquire);
        let movers: Vec<_> = indexed_sessions(&store, sessions)
            .await
            .into_iter()
            .map(|id| {
                let store = store.clone();
                tokio::spawn(async move { keep_moving(&store, id, 100_000).await })
            })
            .collect();
        // Sessions that cross into a shard already visited, or out of
        // one not yet visited, are ended all the same.
        eventually("the movers are moving", || {
            store.shards.index_moves.load(Ordering::Acquire) > moved + 100
        })
        .await;
        assert_eq!(store.end_index(ADA, None).await.unwrap(), sessions);
        for mover in movers {
            let last = mover.await.unwrap();
            assert_eq!(store.load(&last, "User", &[]).await.unwrap(), None);
        }
        assert_eq!(store.index_len(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_racing_moves_lists_each_session_once() {
    let store = Arc::new(MemoryStore::without_sweeper());
    let sessions = 8;
    let movers: Vec<_> = indexed_sessions(&store, sessions)
        .await
        .into_iter()
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move { keep_moving(&store, id, 2_000).await })
        })
        .collect();
    let mut listings = 0;
    while !movers.iter().all(|mover| mover.is_finished()) {
        let listed = store.list_index(ADA).await.unwrap();
        // Never an old id beside its new one, never a session missed.
        assert_eq!(listed.len(), sessions, "listing {listings}: {listed:?}");
        listings += 1;
        tokio::task::yield_now().await;
    }
    assert!(listings > 0);
    for mover in movers {
        mover.await.unwrap();
    }
    assert_eq!(store.list_index(ADA).await.unwrap().len(), sessions);
}
