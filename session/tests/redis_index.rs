//! RedisStore's session index beyond the conformance suite: the stored
//! layout and the index keys' lifetime as sessions slide, pruning (on
//! listing, and on entry writes to a grown key), a cluster write that
//! stopped between its index step and its session step, `end_index`
//! racing moves, writes without an entry doing no index work (counted on a
//! redis-server of the test's own), and ended sessions leaving every
//! near-cache. Uses the shared test servers (`REDIS_URL`,
//! `REDIS_CLUSTER_URLS`) otherwise.
#![cfg(feature = "redis")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod field_write;
use field_write::set;

mod own_server;
mod redis_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue};
use redis_support::{OwnRedis, cached_pair, cluster, new_id, raw, raw_cluster, redis_url, single};
use typed_sessions::store::redis::RedisStore;
use typed_sessions::store::{INDEX_NAMESPACE, IndexKey};
use typed_sessions::{FieldKey, FieldWrite, SessionId, SessionStore};

const NS: &str = "acct";
const PREFIX: &str = "test:index:";

fn in_secs(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

fn unix_ms(time: SystemTime) -> i64 {
    i64::try_from(
        time.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn entry(key: &[u8]) -> FieldWrite<'_> {
    FieldWrite {
        key: FieldKey {
            namespace: INDEX_NAMESPACE,
            field: NS,
        },
        value: Some(key),
    }
}

fn unique_key() -> Vec<u8> {
    new_id().as_str().as_bytes().to_vec()
}

fn index(key: &[u8]) -> IndexKey<'_> {
    IndexKey { namespace: NS, key }
}

/// The documented name of an index key.
fn index_key(store: &RedisStore, key: &[u8]) -> Vec<u8> {
    let mut out = format!("{}__index:{}:{NS}:", store.prefix(), NS.len()).into_bytes();
    out.extend_from_slice(key);
    out
}

/// A raw connection to the server (or cluster) a store uses.
enum Raw {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    async fn of(store: &RedisStore) -> Self {
        match store.connection() {
            typed_sessions::store::redis::RedisConnection::Cluster(_) => {
                Self::Cluster(raw_cluster().await)
            }
            _ => Self::Single(raw(&redis_url()).await),
        }
    }

    async fn run<T: FromRedisValue>(&mut self, command: &Cmd) -> T {
        async fn go<T: FromRedisValue>(con: &mut impl ConnectionLike, command: &Cmd) -> T {
            command.query_async(con).await.unwrap()
        }
        match self {
            Self::Single(con) => go(con, command).await,
            Self::Cluster(con) => go(con, command).await,
        }
    }

    async fn zcard(&mut self, key: &[u8]) -> i64 {
        self.run(redis::cmd("ZCARD").arg(key)).await
    }

    async fn pttl(&mut self, key: &[u8]) -> i64 {
        self.run(redis::cmd("PTTL").arg(key)).await
    }

    async fn indexed_until(&mut self, store: &RedisStore, id: &SessionId) -> Option<i64> {
        let text: Option<String> = self
            .run(redis::cmd("HGET").arg(store.key(id)).arg("__indexed_until"))
            .await;
        text.map(|text| text.parse().unwrap())
    }
}

async fn listed(store: &RedisStore, key: &[u8]) -> BTreeSet<String> {
    store
        .list_index(index(key))
        .await
        .unwrap()
        .into_iter()
        .map(|found| found.id.as_str().to_owned())
        .collect()
}

async fn create(store: &RedisStore, writes: &[FieldWrite<'_>], expires: SystemTime) -> SessionId {
    let id = new_id();
    store
        .create(&id, writes, SystemTime::now(), expires)
        .await
        .unwrap();
    id
}

/// `actual` is within `slack` ms after... of `expected` (both Unix ms).
fn assert_near(actual: i64, expected: i64, slack: i64, what: &str) {
    assert!(
        (actual - expected).abs() <= slack,
        "{what}: {actual} is not within {slack} ms of {expected}"
    );
}

/// The index key of an entry is a sorted set of ids that lives twice what
/// its session has left; the session records that time. A move carries
/// both to the new id.
async fn layout_and_lifetime(store: RedisStore) {
    let mut raw = Raw::of(&store).await;
    let key = unique_key();
    let ikey = index_key(&store, &key);
    let id = create(&store, &[set("ns", "a", b"1"), entry(&key)], in_secs(60)).await;
    let members: Vec<String> = raw
        .run(redis::cmd("ZRANGE").arg(&ikey).arg(0).arg(-1))
        .await;
    assert_eq!(members, vec![id.as_str().to_owned()]);
    let now = unix_ms(SystemTime::now());
    assert_near(raw.pttl(&ikey).await, 120_000, 2_000, "index key TTL");
    let until = raw
        .indexed_until(&store, &id)
        .await
        .expect("__indexed_until");
    assert_near(until, now + 120_000, 2_000, "__indexed_until");

    // The session's expiry slides past `__indexed_until`: the index key
    // follows (touch, then update).
    assert!(store.touch(&id, in_secs(600)).await.unwrap());
    let now = unix_ms(SystemTime::now());
    assert_near(raw.pttl(&ikey).await, 1_200_000, 2_000, "after touch");
    let until = raw.indexed_until(&store, &id).await.unwrap();
    assert_near(until, now + 1_200_000, 2_000, "__indexed_until after touch");
    // Within it: nothing changes.
    assert!(
        store
            .update(&id, &[set("ns", "a", b"2")], Some(in_secs(900)))
            .await
            .unwrap()
    );
    assert_eq!(raw.indexed_until(&store, &id).await, Some(until));
    // An index key gone (evicted, say) comes back with its member when the
    // session's expiry next passes the recorded time.
    let _: i64 = raw.run(redis::cmd("DEL").arg(&ikey)).await;
    assert!(
        store
            .update(&id, &[set("ns", "a", b"3")], Some(in_secs(2000)))
            .await
            .unwrap()
    );
    assert_near(raw.pttl(&ikey).await, 4_000_000, 3_000, "after update");
    assert_eq!(
        listed(&store, &key).await,
        BTreeSet::from([id.as_str().to_owned()])
    );

    // A move: the new id replaces the old one, with a life to match.
    let to = new_id();
    assert!(store.move_to(&id, &to, in_secs(30)).await.unwrap());
    let members: Vec<String> = raw
        .run(redis::cmd("ZRANGE").arg(&ikey).arg(0).arg(-1))
        .await;
    assert_eq!(members, vec![to.as_str().to_owned()]);
    let now = unix_ms(SystemTime::now());
    let until = raw
        .indexed_until(&store, &to)
        .await
        .expect("moved __indexed_until");
    assert_near(until, now + 60_000, 2_000, "__indexed_until after the move");
    assert!(raw.pttl(&ikey).await >= 59_000);
}

#[tokio::test]
async fn single_layout_and_lifetime() {
    layout_and_lifetime(single(PREFIX).await).await;
}

#[tokio::test]
async fn cluster_layout_and_lifetime() {
    layout_and_lifetime(cluster(PREFIX).await).await;
}

/// Listing prunes the members whose sessions were deleted, moved, changed
/// or removed their entry; on a single server at once.
#[tokio::test]
async fn listing_prunes_what_it_does_not_list() {
    let store = single(PREFIX).await;
    let mut raw = Raw::of(&store).await;
    let key = unique_key();
    let other = unique_key();
    let ikey = index_key(&store, &key);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(create(&store, &[entry(&key)], in_secs(60)).await);
    }
    store.delete(&ids[0]).await.unwrap();
    assert!(store.update(&ids[1], &[entry(&other)], None).await.unwrap());
    let removal = FieldWrite {
        value: None,
        ..entry(&key)
    };
    assert!(store.update(&ids[2], &[removal], None).await.unwrap());
    let to = new_id();
    assert!(store.move_to(&ids[3], &to, in_secs(60)).await.unwrap());
    // Deleted, changed and removed entries leave their member behind (the
    // move replaced its own).
    assert_eq!(raw.zcard(&ikey).await, 6);
    let expected: BTreeSet<String> = [&ids[4], &ids[5], &to]
        .iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    assert_eq!(listed(&store, &key).await, expected);
    assert_eq!(raw.zcard(&ikey).await, 3, "pruned by the listing");
}

/// A key whose sessions keep expiring without ever being listed stays
/// bounded: an entry written to it once it has more than 32 members prunes
/// it.
async fn entry_writes_bound_an_unlisted_index(store: RedisStore) {
    let mut raw = Raw::of(&store).await;
    let key = unique_key();
    let ikey = index_key(&store, &key);
    let short = SystemTime::now() + Duration::from_millis(1500);
    for _ in 0..40 {
        create(&store, &[entry(&key)], short).await;
    }
    assert_eq!(raw.zcard(&ikey).await, 40);
    // Expiry is time passing.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    if matches!(
        store.connection(),
        typed_sessions::store::redis::RedisConnection::Cluster(_)
    ) {
        // On a cluster, members younger than the grace are kept: age them.
        let old = unix_ms(SystemTime::now()) - 60_000;
        let members: Vec<String> = raw
            .run(redis::cmd("ZRANGE").arg(&ikey).arg(0).arg(-1))
            .await;
        for member in members {
            let _: i64 = raw
                .run(redis::cmd("ZADD").arg(&ikey).arg("XX").arg(old).arg(member))
                .await;
        }
    }
    let live = create(&store, &[entry(&key)], in_secs(60)).await;
    assert_eq!(raw.zcard(&ikey).await, 1, "pruned by the entry write");
    assert_eq!(
        listed(&store, &key).await,
        BTreeSet::from([live.as_str().to_owned()])
    );
}

#[tokio::test]
async fn single_entry_writes_bound_an_unlisted_index() {
    entry_writes_bound_an_unlisted_index(single(PREFIX).await).await;
}

#[tokio::test]
async fn cluster_entry_writes_bound_an_unlisted_index() {
    entry_writes_bound_an_unlisted_index(cluster(PREFIX).await).await;
}

/// On a cluster the id goes into the index key before the session is
/// written. A write that stopped in between (a crash, a lost reply) leaves a
/// member whose session does not hold the key: never listed, never ended,
/// kept while its write could still land, pruned once older than that; and
/// when the write does land, the session is listed.
#[tokio::test]
async fn cluster_write_stopped_between_its_steps() {
    let store = cluster(PREFIX).await;
    let mut raw = Raw::of(&store).await;
    let key = unique_key();
    let ikey = index_key(&store, &key);
    // Step 1 of two writes, as the store does it; neither session written.
    let plain = create(&store, &[set("ns", "a", b"1")], in_secs(60)).await;
    let never = new_id();
    let now = unix_ms(SystemTime::now());
    for id in [&plain, &never] {
        let _: i64 = raw
            .run(redis::cmd("ZADD").arg(&ikey).arg(now).arg(id.as_str()))
            .await;
        let _: i64 = raw
            .run(redis::cmd("PEXPIREAT").arg(&ikey).arg(now + 120_000))
            .await;
    }
    assert!(listed(&store, &key).await.is_empty());
    assert_eq!(store.end_index(index(&key), None).await.unwrap(), 0);
    assert!(store.load(&plain, "ns", &["a"]).await.unwrap().is_some());
    assert_eq!(raw.zcard(&ikey).await, 2, "young members are kept");

    // The first write lands late: listed.
    assert!(store.update(&plain, &[entry(&key)], None).await.unwrap());
    assert_eq!(
        listed(&store, &key).await,
        BTreeSet::from([plain.as_str().to_owned()])
    );

    // The other never does: pruned once old.
    let old = now - 60_000;
    let _: i64 = raw
        .run(
            redis::cmd("ZADD")
                .arg(&ikey)
                .arg("XX")
                .arg(old)
                .arg(never.as_str()),
        )
        .await;
    assert_eq!(
        listed(&store, &key).await,
        BTreeSet::from([plain.as_str().to_owned()])
    );
    assert_eq!(raw.zcard(&ikey).await, 1);
}

/// On a single server the entry and its index key are written by one
/// script, so a member that fails its check is pruned at once, and a member
/// re-added between a listing's read and its prune is kept.
#[tokio::test]
async fn single_prunes_at_once() {
    let store = single(PREFIX).await;
    let mut raw = Raw::of(&store).await;
    let key = unique_key();
    let ikey = index_key(&store, &key);
    let never = new_id();
    let _: i64 = raw
        .run(
            redis::cmd("ZADD")
                .arg(&ikey)
                .arg(unix_ms(SystemTime::now()))
                .arg(never.as_str()),
        )
        .await;
    let _: i64 = raw.run(redis::cmd("PEXPIRE").arg(&ikey).arg(60_000)).await;
    assert!(listed(&store, &key).await.is_empty());
    assert_eq!(raw.zcard(&ikey).await, 0);
}

/// `end_index` racing moves of the sessions it ends (logins on other
/// devices cycling their ids, each session several times in a row):
/// whichever wins, no id of any of them is alive afterwards.
async fn end_index_racing_moves(store: RedisStore) {
    let key = unique_key();
    let mut firsts = Vec::new();
    for _ in 0..12 {
        firsts.push(create(&store, &[set("ns", "a", b"1"), entry(&key)], in_secs(60)).await);
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let chains = futures_util::future::join_all(firsts.into_iter().map(|first| {
        let (store, done) = (&store, &done);
        async move {
            let mut chain = vec![first];
            for _ in 0..6 {
                let to = new_id();
                let from = chain.last().unwrap();
                let moved = store.move_to(from, &to, in_secs(60)).await.unwrap();
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                chain.push(to);
                if !moved {
                    break;
                }
            }
            chain
        }
    }));
    let (ended, chains) = tokio::join!(
        async {
            // Start in the middle of the moves.
            while done.load(std::sync::atomic::Ordering::Relaxed) < 24 {
                tokio::task::yield_now().await;
            }
            store.end_index(index(&key), None).await
        },
        chains
    );
    let ended = ended.unwrap();
    println!("ended: {ended}");
    assert!(ended >= 12);
    let moves: usize = chains.iter().map(|chain| chain.len() - 1).sum();
    println!("moves run during the end: {moves}");
    for id in chains.iter().flatten() {
        assert!(store.load(id, "ns", &["a"]).await.unwrap().is_none());
    }
    assert!(listed(&store, &key).await.is_empty());
}

#[tokio::test]
async fn single_end_index_racing_moves() {
    end_index_racing_moves(single(PREFIX).await).await;
}

#[tokio::test]
async fn cluster_end_index_racing_moves() {
    end_index_racing_moves(cluster(PREFIX).await).await;
}

/// Every command Redis ran, from `INFO commandstats`: name → calls.
async fn commandstats(con: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(con)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(name, calls)| {
            let diff = calls - before.get(name).copied().unwrap_or(0);
            (diff > 0 && name != "info").then(|| (name.clone(), diff))
        })
        .collect()
}

/// A session with an index entry costs its writes and loads nothing more
/// than one without: the same commands, counted by Redis (on a server of
/// this test's own, so no other traffic is counted), and no index command.
#[tokio::test]
async fn writes_without_an_entry_do_no_index_work() {
    let server = OwnRedis::start().await;
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let mut admin = raw(&server.url()).await;
    let key = unique_key();
    let plain = create(&store, &[set("ns", "a", b"1")], in_secs(600)).await;
    let indexed = create(&store, &[set("ns", "a", b"1"), entry(&key)], in_secs(600)).await;

    async fn round(store: &RedisStore, id: &SessionId) {
        assert!(
            store
                .update(id, &[set("ns", "a", b"2")], None)
                .await
                .unwrap()
        );
        assert!(
            store
                .update(id, &[set("ns", "a", b"3")], Some(in_secs(700)))
                .await
                .unwrap()
        );
        assert!(store.touch(id, in_secs(800)).await.unwrap());
        assert!(store.load(id, "ns", &["a"]).await.unwrap().is_some());
    }
    // Once each first, so that loading the scripts is not counted.
    round(&store, &plain).await;
    round(&store, &indexed).await;

    let before = commandstats(&mut admin).await;
    round(&store, &plain).await;
    let middle = commandstats(&mut admin).await;
    round(&store, &indexed).await;
    let after = commandstats(&mut admin).await;
    let plain_cost = delta(&before, &middle);
    let indexed_cost = delta(&middle, &after);
    assert_eq!(plain_cost, indexed_cost);
    for name in ["zadd", "zrange", "zrem", "zcard", "pttl", "hkeys"] {
        assert!(!indexed_cost.contains_key(name), "{name}: {indexed_cost:?}");
    }
    println!("commands of one round: {indexed_cost:?}");
}

async fn cached_value(store: &RedisStore, id: &SessionId) -> Option<Vec<u8>> {
    let loaded = store.load(id, "ns", &["a"]).await.unwrap()?;
    loaded
        .values
        .into_iter()
        .next()
        .flatten()
        .map(|b| b.to_vec())
}

/// Sessions ended by `end_index` on one instance are served by no
/// instance's near-cache afterwards: this one drops them at once, the other
/// once Redis' invalidation arrived.
async fn ended_sessions_leave_every_near_cache(a: RedisStore, b: RedisStore) {
    let key = unique_key();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create(&a, &[set("ns", "a", b"1"), entry(&key)], in_secs(60)).await);
    }
    let keep = create(&a, &[set("ns", "a", b"1"), entry(&key)], in_secs(60)).await;
    for store in [&a, &b] {
        for id in ids.iter().chain([&keep]) {
            assert_eq!(cached_value(store, id).await, Some(b"1".to_vec()));
        }
        // Now answered from the cache.
        let hits = store.cache_stats().unwrap().hits;
        assert_eq!(cached_value(store, &ids[0]).await, Some(b"1".to_vec()));
        assert_eq!(store.cache_stats().unwrap().hits, hits + 1);
    }
    let before = b.cache_stats().unwrap().invalidations;
    assert_eq!(a.end_index(index(&key), Some(&keep)).await.unwrap(), 3);
    for id in &ids {
        assert_eq!(cached_value(&a, id).await, None, "served by a");
    }
    let start = Instant::now();
    while b.cache_stats().unwrap().invalidations < before + 3 {
        assert!(start.elapsed() < Duration::from_secs(5), "no invalidation");
        tokio::task::yield_now().await;
    }
    for id in &ids {
        assert_eq!(cached_value(&b, id).await, None, "served by b");
    }
    assert_eq!(cached_value(&b, &keep).await, Some(b"1".to_vec()));
}

#[tokio::test]
async fn single_ended_sessions_leave_every_near_cache() {
    let (a, b) = cached_pair(false, "test:index:cached:").await;
    ended_sessions_leave_every_near_cache(a, b).await;
}

#[tokio::test]
async fn cluster_ended_sessions_leave_every_near_cache() {
    let (a, b) = cached_pair(true, "test:index:cached:").await;
    ended_sessions_leave_every_near_cache(a, b).await;
}

/// On a cluster a failing member is kept while young even when its session
/// key shares the index key's slot: a cross-slot move adds the new id
/// before it creates the session there, whatever the slots.
#[tokio::test]
async fn cluster_keeps_a_young_member_in_the_index_keys_slot() {
    use redis::cluster_routing::Slot;
    let store = cluster(PREFIX).await;
    let mut raw = Raw::of(&store).await;
    let key = unique_key();
    let ikey = index_key(&store, &key);
    let slot = Slot::for_key(&ikey);
    let to = std::iter::repeat_with(new_id)
        .find(|id| Slot::for_key(store.key(id)) == slot)
        .unwrap();
    let now = unix_ms(SystemTime::now());
    let _: i64 = raw
        .run(redis::cmd("ZADD").arg(&ikey).arg(now).arg(to.as_str()))
        .await;
    let _: i64 = raw.run(redis::cmd("PEXPIRE").arg(&ikey).arg(120_000)).await;
    assert!(listed(&store, &key).await.is_empty());
    assert_eq!(raw.zcard(&ikey).await, 1, "kept while its write may land");
    // The copy lands.
    store
        .create(&to, &[entry(&key)], SystemTime::now(), in_secs(60))
        .await
        .unwrap();
    assert_eq!(
        listed(&store, &key).await,
        BTreeSet::from([to.as_str().to_owned()])
    );
}
