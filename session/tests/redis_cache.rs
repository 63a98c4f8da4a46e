//! `RedisStore::with_local_cache`: two stores with caches of their own (two
//! application instances) on one Redis and on the Redis Cluster see each
//! other's writes, destroys and id cycles once the invalidation arrived;
//! every gap in the invalidation stream (the tracked connection killed, the
//! server restarted, `FLUSHALL`) drops the whole cache before anything is
//! served again, and the cache fills again afterwards. The fault tests run
//! a redis-server of their own; the others use the shared test servers,
//! each under a prefix of its own, so that broadcast tracking reports only
//! the test's own keys.
#![cfg(feature = "redis")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod field_write;
use field_write::set;

mod own_server;
mod redis_support;

use std::time::{Duration, Instant, SystemTime};

use redis_support::{OwnRedis, cached_pair, create, in_a_minute, new_id, raw, redis_url};
use typed_sessions::store::redis::RedisStore;
use typed_sessions::store::redis::cache::CacheStats;
use typed_sessions::{FieldWrite, SessionId, SessionStore};

/// How long an invalidation may take to arrive before a test fails; the
/// measured delays are printed.
const ARRIVAL: Duration = Duration::from_secs(5);

/// Each pair of stores adds a part of its own to this prefix.
const PREFIX: &str = "cachetest:";

fn stats(store: &RedisStore) -> CacheStats {
    store.cache_stats().expect("the store has a cache")
}

async fn value(store: &RedisStore, id: &SessionId) -> Option<Option<Vec<u8>>> {
    store
        .load(id, "ns", &["a"])
        .await
        .unwrap()
        .map(|loaded| loaded.values[0].as_ref().map(|b| b.to_vec()))
}

/// Waits until `store` has counted more than `before` invalidations (the
/// cache's own signal that Redis' push arrived) and returns how long that
/// took.
async fn invalidated_after(store: &RedisStore, before: u64) -> Duration {
    let start = Instant::now();
    while stats(store).invalidations <= before {
        assert!(
            start.elapsed() < ARRIVAL,
            "no invalidation within {ARRIVAL:?}"
        );
        tokio::task::yield_now().await;
    }
    start.elapsed()
}

/// Waits until `store` has dropped its whole cache more than `before` times.
async fn flushed_after(store: &RedisStore, before: u64) {
    let start = Instant::now();
    while stats(store).flushes <= before {
        assert!(start.elapsed() < ARRIVAL, "the cache was not dropped");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A load that the cache answered (the hit counter moved).
async fn hit(store: &RedisStore, id: &SessionId) -> Option<Option<Vec<u8>>> {
    let before = stats(store).hits;
    let loaded = value(store, id).await;
    assert_eq!(stats(store).hits, before + 1, "not answered from the cache");
    loaded
}

/// A load that went to Redis.
async fn miss(store: &RedisStore, id: &SessionId) -> Option<Option<Vec<u8>>> {
    let before = stats(store).misses;
    let loaded = value(store, id).await;
    assert_eq!(stats(store).misses, before + 1, "answered from the cache");
    loaded
}

/// `id` read on each of `a` and `b` twice, first from Redis, then from
/// the store's cache, holding `value` each time.
async fn cached_on_both(a: &RedisStore, b: &RedisStore, id: &SessionId, value: &[u8]) {
    for store in [a, b] {
        assert_eq!(miss(store, id).await, Some(Some(value.to_vec())));
        assert_eq!(hit(store, id).await, Some(Some(value.to_vec())));
    }
}

/// A write on A, then a read on B: B serves the write once the
/// invalidation arrived, A at once. Prints the delays and how many reads
/// made on B right after A's write returned still saw the old value.
async fn write_on_a_is_read_on_b(a: RedisStore, b: RedisStore) {
    let id = new_id();
    create(&a, &id, &[set("ns", "a", b"0")]).await;
    cached_on_both(&a, &b, &id, b"0").await;

    let rounds = 200;
    let mut delays = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let text = round.to_string();
        let before = stats(&b).invalidations;
        assert!(
            a.update(&id, &[set("ns", "a", text.as_bytes())], None)
                .await
                .unwrap()
        );
        delays.push(invalidated_after(&b, before).await);
        assert_eq!(miss(&b, &id).await, Some(Some(text.clone().into_bytes())));
        assert_eq!(hit(&b, &id).await, Some(Some(text.clone().into_bytes())));
        // A's own write: visible to A at once, from its cache.
        assert_eq!(hit(&a, &id).await, Some(Some(text.into_bytes())));
    }
    delays.sort();
    // Reads on B right after A's write returned, without waiting: the
    // old value while the invalidation is still on its way.
    let mut stale = 0;
    for round in 1..=rounds {
        let text = format!("again {round}");
        let before = stats(&b).invalidations;
        assert!(
            a.update(&id, &[set("ns", "a", text.as_bytes())], None)
                .await
                .unwrap()
        );
        if value(&b, &id).await != Some(Some(text.into_bytes())) {
            stale += 1;
        }
        invalidated_after(&b, before).await;
    }
    println!(
        "invalidation on B after A's write returned: median {:?}, p99 {:?}, max {:?}; \
         a read on B at once returned the old value {stale} times of {rounds}",
        delays[rounds / 2],
        delays[rounds * 99 / 100],
        delays[rounds - 1]
    );
    // A's writes never invalidated A's own entry, and A still tracks the
    // key after them: B's write reaches A.
    assert_eq!(stats(&a).invalidations, 0);
    let before = stats(&a).invalidations;
    assert!(
        b.update(&id, &[set("ns", "a", b"from b")], None)
            .await
            .unwrap()
    );
    invalidated_after(&a, before).await;
    assert_eq!(miss(&a, &id).await, Some(Some(b"from b".to_vec())));
    assert_eq!(hit(&a, &id).await, Some(Some(b"from b".to_vec())));
}

#[tokio::test]
async fn single_write_on_a_is_read_on_b() {
    let (a, b) = cached_pair(false, PREFIX).await;
    write_on_a_is_read_on_b(a, b).await;
}

#[tokio::test]
async fn cluster_write_on_a_is_read_on_b() {
    let (a, b) = cached_pair(true, PREFIX).await;
    write_on_a_is_read_on_b(a, b).await;
}

/// Destroy and cycle on A: neither A nor B serves the old id afterwards.
async fn destroy_and_cycle_on_a_end_the_old_id_on_b(a: RedisStore, b: RedisStore) {
    // Destroy.
    let id = new_id();
    create(&a, &id, &[set("ns", "a", b"1")]).await;
    assert_eq!(value(&b, &id).await, Some(Some(b"1".to_vec())));
    assert_eq!(hit(&b, &id).await, Some(Some(b"1".to_vec())));
    let before = stats(&b).invalidations;
    a.delete(&id).await.unwrap();
    assert_eq!(value(&a, &id).await, None);
    invalidated_after(&b, before).await;
    assert_eq!(value(&b, &id).await, None);
    // B's write to the destroyed session changes nothing.
    assert!(!b.update(&id, &[set("ns", "a", b"2")], None).await.unwrap());
    assert_eq!(value(&a, &id).await, None);

    // Cycle.
    let from = new_id();
    let to = new_id();
    create(&a, &from, &[set("ns", "a", b"1")]).await;
    assert_eq!(value(&b, &from).await, Some(Some(b"1".to_vec())));
    assert_eq!(hit(&b, &from).await, Some(Some(b"1".to_vec())));
    let before = stats(&b).invalidations;
    assert!(a.move_to(&from, &to, in_a_minute()).await.unwrap());
    assert_eq!(value(&a, &from).await, None);
    assert_eq!(value(&a, &to).await, Some(Some(b"1".to_vec())));
    invalidated_after(&b, before).await;
    assert_eq!(value(&b, &from).await, None);
    assert_eq!(value(&b, &to).await, Some(Some(b"1".to_vec())));
    assert!(
        !b.update(&from, &[set("ns", "a", b"2")], None)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn single_destroy_and_cycle_on_a_end_the_old_id_on_b() {
    let (a, b) = cached_pair(false, PREFIX).await;
    destroy_and_cycle_on_a_end_the_old_id_on_b(a, b).await;
}

#[tokio::test]
async fn cluster_destroy_and_cycle_on_a_end_the_old_id_on_b() {
    let (a, b) = cached_pair(true, PREFIX).await;
    destroy_and_cycle_on_a_end_the_old_id_on_b(a, b).await;
}

/// An entry is not served past the session's expiry, even though Redis'
/// own expiry and its invalidation may come later.
#[tokio::test]
async fn an_entry_is_never_served_past_its_expiry() {
    let (a, _) = cached_pair(false, PREFIX).await;
    let id = new_id();
    let expires = SystemTime::now() + Duration::from_millis(300);
    a.create(&id, &[set("ns", "a", b"1")], SystemTime::now(), expires)
        .await
        .unwrap();
    assert_eq!(miss(&a, &id).await, Some(Some(b"1".to_vec())));
    assert_eq!(hit(&a, &id).await, Some(Some(b"1".to_vec())));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = stats(&a).hits;
    assert_eq!(value(&a, &id).await, None);
    assert_eq!(stats(&a).hits, before);
}

/// Loads of fields the entry does not hold go to Redis and add them;
/// a write answered "session gone" drops the entry.
#[tokio::test]
async fn partial_entries_and_gone_sessions() {
    let (a, b) = cached_pair(false, PREFIX).await;
    let id = new_id();
    create(&b, &id, &[set("ns", "a", b"1"), set("ns", "b", b"2")]).await;
    assert_eq!(miss(&a, &id).await, Some(Some(b"1".to_vec())));
    let before = stats(&a).misses;
    let loaded = a.load(&id, "ns", &["a", "b"]).await.unwrap().unwrap();
    assert_eq!(stats(&a).misses, before + 1);
    assert_eq!(loaded.values[1].as_deref(), Some(&b"2"[..]));
    let before = stats(&a).hits;
    let loaded = a.load(&id, "ns", &["b", "a"]).await.unwrap().unwrap();
    assert_eq!(stats(&a).hits, before + 1);
    assert_eq!(loaded.values[0].as_deref(), Some(&b"2"[..]));
    // Deleted behind A's back by a store without a cache and another
    // prefix-tracked instance's invalidation not waited for: A's write
    // still finds the session gone, and A forgets it.
    let plain = RedisStore::connect(&redis_url())
        .await
        .unwrap()
        .with_prefix(a.prefix());
    plain.delete(&id).await.unwrap();
    assert!(!a.update(&id, &[set("ns", "a", b"3")], None).await.unwrap());
    assert_eq!(miss(&a, &id).await, None);
}

/// The client id of the store's tracked connection, from `CLIENT LIST`
/// (the only client with broadcast tracking, flag `B`... on the test's own
/// server).
async fn tracked_client(admin: &mut redis::aio::MultiplexedConnection) -> String {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(admin)
        .await
        .unwrap();
    let tracked: Vec<&str> = list
        .lines()
        .filter(|line| {
            line.split(' ')
                .find_map(|part| part.strip_prefix("flags="))
                .is_some_and(|flags| flags.contains('t'))
        })
        .collect();
    assert_eq!(tracked.len(), 1, "{list}");
    tracked[0]
        .split(' ')
        .find_map(|part| part.strip_prefix("id="))
        .unwrap()
        .to_owned()
}

async fn own_store(server: &OwnRedis) -> RedisStore {
    RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_local_cache(1 << 20)
}

async fn hset(
    admin: &mut redis::aio::MultiplexedConnection,
    store: &RedisStore,
    id: &SessionId,
    value: &[u8],
) {
    let _: () = redis::cmd("HSET")
        .arg(store.key(id))
        .arg("ns.a")
        .arg(value)
        .query_async(admin)
        .await
        .unwrap();
}

/// The tracked connection killed: the cache is dropped (a write made while
/// the connection was down is not hidden by it), tracking comes back on the
/// new connection and the cache fills again.
#[tokio::test]
async fn killed_tracking_connection_drops_the_cache() {
    let server = OwnRedis::start().await;
    let store = own_store(&server).await;
    let mut admin = raw(&server.url()).await;
    let id = new_id();
    create(&store, &id, &[set("ns", "a", b"1")]).await;
    assert_eq!(miss(&store, &id).await, Some(Some(b"1".to_vec())));
    assert_eq!(hit(&store, &id).await, Some(Some(b"1".to_vec())));

    let client = tracked_client(&mut admin).await;
    let flushes = stats(&store).flushes;
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&client)
        .query_async(&mut admin)
        .await
        .unwrap();
    flushed_after(&store, flushes).await;
    assert_eq!(stats(&store).entries, 0);
    // No connection tracks this write: only the dropped cache keeps it
    // from being hidden.
    hset(&mut admin, &store, &id, b"2").await;
    assert_eq!(miss(&store, &id).await, Some(Some(b"2".to_vec())));
    assert_eq!(hit(&store, &id).await, Some(Some(b"2".to_vec())));
    // Tracking is on again on the new connection.
    assert_ne!(tracked_client(&mut admin).await, client);
    let before = stats(&store).invalidations;
    hset(&mut admin, &store, &id, b"3").await;
    invalidated_after(&store, before).await;
    assert_eq!(miss(&store, &id).await, Some(Some(b"3".to_vec())));
    assert_eq!(hit(&store, &id).await, Some(Some(b"3".to_vec())));
}

/// A server restart (everything lost: no persistence): the cache is
/// dropped, the store answers what the new server holds, and caches again.
async fn restart_drops_the_cache(mut server: OwnRedis, store: RedisStore) {
    let id = new_id();
    create(&store, &id, &[set("ns", "a", b"1")]).await;
    assert_eq!(miss(&store, &id).await, Some(Some(b"1".to_vec())));
    assert_eq!(hit(&store, &id).await, Some(Some(b"1".to_vec())));
    let flushes = stats(&store).flushes;
    server.restart().await;
    flushed_after(&store, flushes).await;
    // The first calls after the restart may fail while the connection is
    // rebuilt; none of them may answer from the old cache.
    let start = Instant::now();
    let gone = loop {
        match store.load(&id, "ns", &["a"]).await {
            Ok(loaded) => break loaded,
            Err(error) => assert!(start.elapsed() < ARRIVAL, "{error}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(gone, None, "served from before the restart");
    let id = new_id();
    create(&store, &id, &[set("ns", "a", b"1")]).await;
    // Caching again, with tracking on the new connection.
    let mut admin = raw(&server.url()).await;
    assert_eq!(miss(&store, &id).await, Some(Some(b"1".to_vec())));
    assert_eq!(hit(&store, &id).await, Some(Some(b"1".to_vec())));
    let before = stats(&store).invalidations;
    hset(&mut admin, &store, &id, b"2").await;
    invalidated_after(&store, before).await;
    assert_eq!(miss(&store, &id).await, Some(Some(b"2".to_vec())));
}

#[tokio::test]
async fn single_restart_drops_the_cache() {
    let server = OwnRedis::start().await;
    let store = own_store(&server).await;
    restart_drops_the_cache(server, store).await;
}

#[tokio::test]
async fn cluster_restart_drops_the_cache() {
    let server = OwnRedis::start_cluster().await;
    let store = RedisStore::connect_cluster(&[&server.url()])
        .await
        .unwrap()
        .with_local_cache(1 << 20);
    restart_drops_the_cache(server, store).await;
}

/// `FLUSHALL`: both instances drop their caches, then fill them again.
#[tokio::test]
async fn flushall_drops_every_cache() {
    let server = OwnRedis::start().await;
    let a = own_store(&server).await;
    let b = own_store(&server).await;
    let mut admin = raw(&server.url()).await;
    let id = new_id();
    create(&a, &id, &[set("ns", "a", b"1")]).await;
    cached_on_both(&a, &b, &id, b"1").await;
    let (fa, fb) = (stats(&a).flushes, stats(&b).flushes);
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut admin)
        .await
        .unwrap();
    flushed_after(&a, fa).await;
    flushed_after(&b, fb).await;
    assert_eq!(value(&a, &id).await, None);
    assert_eq!(value(&b, &id).await, None);
    let id = new_id();
    create(&a, &id, &[set("ns", "a", b"2")]).await;
    cached_on_both(&a, &b, &id, b"2").await;
}

/// The remembered expiry (`EXPIRY_FIELD`) comes with every load, from the
/// cache as from Redis, and follows writes of it on either instance.
#[tokio::test]
async fn the_remembered_expiry_is_cached_and_kept_coherent() {
    use typed_sessions::store::EXPIRY_FIELD;
    let (a, b) = cached_pair(false, PREFIX).await;
    let id = new_id();
    create(&a, &id, &[set("ns", "a", b"1")]).await;
    let expiry = |store: &RedisStore| {
        let store = store.clone();
        let id = id.clone();
        async move {
            let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
            loaded.expiry.map(|b| b.to_vec())
        }
    };
    assert_eq!(expiry(&a).await, None);
    let remembered = FieldWrite {
        key: EXPIRY_FIELD,
        value: Some(b"remembered"),
    };
    assert!(a.update(&id, &[remembered], None).await.unwrap());
    let hits = stats(&a).hits;
    assert_eq!(expiry(&a).await, Some(b"remembered".to_vec()));
    assert_eq!(stats(&a).hits, hits + 1);
    assert_eq!(expiry(&b).await, Some(b"remembered".to_vec()));
    let hits = stats(&b).hits;
    assert_eq!(expiry(&b).await, Some(b"remembered".to_vec()));
    assert_eq!(stats(&b).hits, hits + 1);
    // Removed on A: B drops it once the invalidation arrived.
    let before = stats(&b).invalidations;
    let removed = FieldWrite {
        key: EXPIRY_FIELD,
        value: None,
    };
    assert!(a.update(&id, &[removed], None).await.unwrap());
    assert_eq!(expiry(&a).await, None);
    invalidated_after(&b, before).await;
    assert_eq!(expiry(&b).await, None);
}
