//! The local near-cache of [`RedisStore::with_local_cache`]: loaded sessions
//! kept in this process, coherent through Redis server-assisted client-side
//! caching.
//!
//! # How it stays coherent
//!
//! The store opens a connection of its own in RESP3 and turns on
//! `CLIENT TRACKING ON NOLOOP` on it (on every node of a cluster). Every
//! command of the store, reads and writes, then goes through that
//! connection. Redis remembers the keys this connection read and pushes an
//! invalidation when one of them is modified by another client (or expires,
//! is evicted, deleted or flushed); the entry is then dropped, and the next
//! load reads the session again, which tracks it again.
//!
//! The store's own writes must not invalidate what they just wrote, or a
//! session that is written on every request would never be served from the
//! cache. Redis 7.0 reports a script's writes to the client that ran it even
//! with `NOLOOP`, so every script runs in a transaction, one round trip:
//! `MULTI`, `CLIENT TRACKING OFF`, the script, `CLIENT TRACKING ON NOLOOP`,
//! `EXISTS key`, `EXEC`. No other client's command runs inside it; with
//! tracking off, the script's writes report nothing to this connection (and
//! keys tracked before stay tracked: Redis drops them lazily, when they
//! change); the `EXISTS` tracks the key again. After a successful write the
//! store updates its entry with what it wrote (field by field, and the
//! expiry). Dropping the entry instead makes the next load of the session a
//! round trip: the benchmark's Redis `incr` with the cache measured 22.9k
//! requests/s updating and 17.0k dropping (32 workers, one run each, on a
//! busy two-core machine).
//!
//! Any event after which invalidations may have been missed (the
//! connection lost or killed, a reconnect, a server restart or failover, a
//! command that failed on the connection, `FLUSHALL`/`FLUSHDB`) drops the
//! whole cache and stops serving from it until tracking is on again on the
//! current connection.
//!
//! Concurrent operations of this process on one key are ordered by a token
//! per key: a load or a write takes a fresh token before it sends its
//! command, and stores its result only if the token is still the key's when
//! the answer comes back (no invalidation, no other load or write, no flush
//! came in between). Otherwise, and whenever a write failed, was cancelled
//! or found the session gone, the entry is dropped. `delete` and `move_to`
//! drop the entries of the ids they touch.
//!
//! # Memory
//!
//! The cache holds at most `max_bytes` by its own estimate (keys, field
//! names, values and a fixed allowance per entry and field for the maps
//! and vectors that hold them), split into 16 shards; when a shard is over
//! its part, it evicts the least recently used of 5 entries sampled at
//! random (as Redis' own approximated LRU does), until it fits.
//!
//! # What is not cached
//!
//! Sessions written by an earlier version of the store (no `__expires`
//! field) are cached like the others, with the expiry their load computed.
//! An entry is never served once its expiry has passed by this machine's
//! clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use redis::aio::ConnectionLike as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, Slot,
    SlotAddr,
};
use redis::{
    Arg, Cmd, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, RedisError, Script, Value,
};

use super::{
    CONNECT_TIMEOUT, EXPIRY_FIELD, FieldWrite, LoadedFields, RESPONSE_TIMEOUT, RedisConnection,
    RedisStore, StoreError, backend, effective,
};
use crate::id::SessionId;

mod store;
use store::{enable_tracking, open};

/// How often the tracked connection is pinged (every node of a cluster).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long after the last answer on the tracked connection the cache
/// still serves: a connection that went silent without closing (a network
/// partition) may be holding invalidations back.
const LEASE: Duration = Duration::from_secs(3);

/// Number of independently locked parts of the cache.
const SHARDS: usize = 16;
/// How many entries an eviction compares (Redis' own approximated LRU
/// samples 5 too).
const SAMPLES: usize = 5;

/// What the cache has done so far: see [`RedisStore::cache_stats`](super::RedisStore::cache_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Loads answered from the cache.
    pub hits: u64,
    /// Loads sent to Redis (not cached, a field not cached, expired, or the
    /// cache not in service).
    pub misses: u64,
    /// Entries dropped to stay within the byte budget.
    pub evictions: u64,
    /// Keys Redis reported modified by another client.
    pub invalidations: u64,
    /// Times the whole cache was dropped (see the [module docs](self)).
    pub flushes: u64,
    /// Entries held now.
    pub entries: usize,
    /// Bytes held now (estimated: keys, values, names and bookkeeping).
    pub bytes: usize,
    /// The budget given to [`RedisStore::with_local_cache`](super::RedisStore::with_local_cache).
    pub max_bytes: usize,
}

/// Where the store's connection came from, so the cache can open its own.
#[derive(Debug, Clone)]
pub(super) enum Origin {
    Single(String),
    Cluster(Vec<String>),
}

/// One cached session: what loads returned and writes wrote.
struct Entry {
    created_at: SystemTime,
    expires_at: SystemTime,
    /// Hash field name (`namespace.field`) and its bytes, `None` when known
    /// not to be stored.
    fields: Vec<(Box<str>, Option<Bytes>)>,
}

impl Entry {
    fn position(&self, namespace: &str, field: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|(name, _)| is_name(name, namespace, field))
    }

    fn set(&mut self, namespace: &str, field: &str, value: Option<Bytes>) {
        match self.position(namespace, field) {
            Some(at) => self.fields[at].1 = value,
            None => self
                .fields
                .push((format!("{namespace}.{field}").into_boxed_str(), value)),
        }
    }

    fn bytes(&self, key: &str) -> usize {
        ITEM_OVERHEAD
            + 2 * key.len()
            + self
                .fields
                .iter()
                .map(|(name, value)| {
                    FIELD_OVERHEAD + name.len() + value.as_ref().map_or(0, Bytes::len)
                })
                .sum::<usize>()
    }
}

/// `name == "{namespace}.{field}"`, without building the string.
fn is_name(name: &str, namespace: &str, field: &str) -> bool {
    name.len() == namespace.len() + 1 + field.len()
        && name.starts_with(namespace)
        && name.ends_with(field)
        && name.as_bytes()[namespace.len()] == b'.'
}

/// Whether a [`LocalCache::state`] is one in which the cache serves.
fn in_service(state: u64) -> bool {
    state & 1 == 1
}

/// Bookkeeping per entry beyond its keys and values: the item, its index
/// slot, the entry, and the slack of the growing vector and map (counted
/// twice over to stay on the safe side of `max_bytes`).
const ITEM_OVERHEAD: usize = 2
    * (std::mem::size_of::<Item>()
        + std::mem::size_of::<(Box<str>, usize)>()
        + std::mem::size_of::<Entry>()
        + 16);
/// Per field: the pair in the entry and the shared buffer's header.
const FIELD_OVERHEAD: usize = std::mem::size_of::<(Box<str>, Option<Bytes>)>() + 32;

struct Item {
    key: Box<str>,
    /// The operation allowed to store into this item.
    token: u64,
    /// Last use, in the shard's clock.
    used: u64,
    entry: Option<Entry>,
    bytes: usize,
}

#[derive(Default)]
struct Shard {
    index: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    items: Vec<Item>,
    bytes: usize,
    clock: u64,
    random: u64,
}

impl Shard {
    fn get_mut(&mut self, key: &str) -> Option<&mut Item> {
        let at = *self.index.get(key)?;
        self.items.get_mut(at)
    }

    fn remove(&mut self, key: &str) -> bool {
        let Some(at) = self.index.remove(key) else {
            return false;
        };
        let item = self.items.swap_remove(at);
        self.bytes -= item.bytes;
        if let Some(moved) = self.items.get(at)
            && let Some(slot) = self.index.get_mut(&moved.key)
        {
            *slot = at;
        }
        true
    }

    /// Sets the token of `key`'s item, creating an empty item if needed;
    /// drops the entry unless `keep`.
    fn claim(&mut self, key: &str, token: u64, keep: bool) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(item) = self.get_mut(key) {
            item.token = token;
            item.used = clock;
            if !keep && item.entry.take().is_some() {
                let bytes = ITEM_OVERHEAD + 2 * key.len();
                let freed = item.bytes - bytes;
                item.bytes = bytes;
                self.bytes -= freed;
            }
            return;
        }
        let bytes = ITEM_OVERHEAD + 2 * key.len();
        self.index.insert(key.into(), self.items.len());
        self.items.push(Item {
            key: key.into(),
            token,
            used: clock,
            entry: None,
            bytes,
        });
        self.bytes += bytes;
    }

    /// Drops sampled least recently used items until within `max`; returns
    /// how many.
    fn shrink(&mut self, max: usize) -> u64 {
        let mut evicted = 0;
        while self.bytes > max && !self.items.is_empty() {
            let mut oldest = self.next_random() % self.items.len();
            for _ in 1..SAMPLES {
                let at = self.next_random() % self.items.len();
                if self.items[at].used < self.items[oldest].used {
                    oldest = at;
                }
            }
            let key = self.items[oldest].key.clone();
            self.remove(&key);
            evicted += 1;
        }
        evicted
    }

    /// xorshift: sampling needs no quality, only speed.
    fn next_random(&mut self) -> usize {
        let mut x = self.random | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        usize::try_from(x >> 16).unwrap_or(usize::MAX)
    }
}

/// The cache and its tracked connection.
pub(super) struct LocalCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    max_bytes: usize,
    shard_max: usize,
    /// Twice the epoch, plus one while the cache is in service (tracking is
    /// on on the current connection). Every gap moves it to the next even
    /// number, so an operation that began before a gap never stores after it.
    state: AtomicU64,
    tokens: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
    origin: Origin,
    /// When the cache was made, and the last answer of a heartbeat after
    /// that, in milliseconds.
    started: Instant,
    heard: AtomicU64,
    connection: tokio::sync::OnceCell<RedisConnection>,
    enabling: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LocalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCache")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl LocalCache {
    pub(super) fn new(origin: Origin, max_bytes: usize) -> Arc<Self> {
        let hasher = foldhash::fast::RandomState::default();
        Arc::new(Self {
            shards: (0..SHARDS)
                .map(|i| {
                    Mutex::new(Shard {
                        random: 0x9E37_79B9_7F4A_7C15 ^ (i as u64),
                        ..Shard::default()
                    })
                })
                .collect(),
            hasher,
            max_bytes,
            shard_max: max_bytes / SHARDS,
            state: AtomicU64::new(0),
            tokens: AtomicU64::new(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            origin,
            started: Instant::now(),
            heard: AtomicU64::new(0),
            connection: tokio::sync::OnceCell::new(),
            enabling: tokio::sync::Mutex::new(()),
        })
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        use std::hash::BuildHasher as _;
        let hash = self.hasher.hash_one(key);
        &self.shards[usize::try_from(hash % SHARDS as u64).unwrap_or(0)]
    }

    pub(super) fn stats(&self) -> CacheStats {
        let (mut entries, mut bytes) = (0, 0);
        for shard in &*self.shards {
            let shard = shard.lock();
            entries += shard.items.iter().filter(|i| i.entry.is_some()).count();
            bytes += shard.bytes;
        }
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            entries,
            bytes,
            max_bytes: self.max_bytes,
        }
    }

    /// The tracked connection, opened on first use.
    pub(super) async fn connection(self: &Arc<Self>) -> Result<&RedisConnection, RedisError> {
        self.connection
            .get_or_try_init(|| open(&self.origin, Arc::downgrade(self)))
            .await
    }

    /// Whether the cache is in service; if it is not, turns tracking on
    /// (unless another call is doing that right now).
    pub(super) async fn ready(self: &Arc<Self>) -> bool {
        let state = self.state.load(Ordering::Acquire);
        if in_service(state) {
            return true;
        }
        let Ok(_enabling) = self.enabling.try_lock() else {
            return false;
        };
        let state = self.state.load(Ordering::Acquire);
        if in_service(state) {
            return true;
        }
        let enabled = match self.connection().await {
            Ok(connection) => enable_tracking(connection).await,
            Err(error) => Err(error),
        };
        match enabled {
            Ok(()) => {
                self.heard.store(self.millis(), Ordering::Release);
                // Not in service if a gap came while tracking was turned on.
                let ok = self
                    .state
                    .compare_exchange(state, state + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                tracing::debug!(ok, "session cache: tracking on; serving from the cache");
                ok
            }
            Err(error) => {
                eprintln!("ENABLE ERR {error}");
                tracing::debug!(%error, "session cache: cannot turn tracking on; not caching");
                false
            }
        }
    }

    /// Drops everything and stops serving until tracking is on again.
    pub(super) fn gap(&self, why: &str) {
        let before = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| Some((s | 1) + 1))
            .unwrap_or(0);
        // A gap while not in service has nothing to drop, and is logged once.
        if !in_service(before) {
            return;
        }
        for shard in &*self.shards {
            let mut shard = shard.lock();
            shard.index.clear();
            shard.items.clear();
            shard.bytes = 0;
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(why, stats = ?self.stats(), "session cache dropped");
    }

    /// A command on the tracked connection failed: if the connection may
    /// have lost pushes, that is a gap.
    pub(super) fn observe(&self, error: &RedisError) {
        if error.is_io_error()
            || error.is_connection_dropped()
            || error.is_unrecoverable_error()
            || error.is_timeout()
            || error.is_connection_refusal()
        {
            self.gap("a command on the tracked connection failed");
        }
    }

    fn on_push(&self, push: PushInfo) {
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    for key in keys {
                        if let Value::BulkString(key) = key
                            && let Ok(key) = std::str::from_utf8(key)
                        {
                            self.invalidations.fetch_add(1, Ordering::Relaxed);
                            self.shard(key).lock().remove(key);
                            tracing::trace!("session cache: key invalidated");
                        }
                    }
                }
                // FLUSHALL / FLUSHDB.
                _ => self.gap("the database was flushed"),
            },
            PushKind::Disconnection => self.gap("the tracked connection was lost"),
            _ => {}
        }
    }

    /// A load answered from the cache, if the cache is in service and
    /// holds every requested field of a live session.
    pub(super) fn lookup(
        &self,
        key: &str,
        namespace: &str,
        fields: &[&str],
    ) -> Option<LoadedFields> {
        let found = self.lookup_inner(key, namespace, fields);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn lookup_inner(&self, key: &str, namespace: &str, fields: &[&str]) -> Option<LoadedFields> {
        let state = self.state.load(Ordering::Acquire);
        if !in_service(state)
            || self
                .millis()
                .saturating_sub(self.heard.load(Ordering::Acquire))
                > LEASE.as_millis() as u64
        {
            return None;
        }
        let mut shard = self.shard(key).lock();
        shard.clock += 1;
        let clock = shard.clock;
        let item = shard.get_mut(key)?;
        let entry = item.entry.as_ref()?;
        if entry.expires_at <= SystemTime::now() {
            return None;
        }
        let mut values = Vec::with_capacity(fields.len());
        for field in fields {
            match entry.position(namespace, field) {
                Some(at) => values.push(entry.fields[at].1.clone()),
                None => return None,
            }
        }
        // Every load returns the remembered expiry too.
        let expiry = entry.position(EXPIRY_FIELD.namespace, EXPIRY_FIELD.field)?;
        item.used = clock;
        Some(LoadedFields {
            created_at: entry.created_at,
            expires_at: entry.expires_at,
            values,
            expiry: entry.fields[expiry].1.clone(),
        })
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A miss that will not be answered by [`lookup`](Self::lookup).
    pub(super) fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts an operation on `key`: until it finishes, only it may store
    /// into the entry. `keep`: the entry may be served meanwhile. `None`
    /// when the cache is not in service.
    pub(super) fn begin<'c>(&'c self, key: String, keep: bool) -> Option<Ticket<'c>> {
        let state = self.state.load(Ordering::Acquire);
        if !in_service(state) {
            return None;
        }
        let token = self.tokens.fetch_add(1, Ordering::Relaxed);
        let evicted = {
            let mut shard = self.shard(&key).lock();
            shard.claim(&key, token, keep);
            shard.shrink(self.shard_max)
        };
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
        Some(Ticket {
            cache: self,
            key,
            token,
            state,
            done: false,
        })
    }

    fn remove(&self, key: &str) {
        self.shard(key).lock().remove(key);
    }
}

/// A pending operation on one key. Dropped without one of its finishing
/// calls (an error, a cancelled future), it drops the entry: the write
/// may have been applied.
pub(super) struct Ticket<'c> {
    cache: &'c LocalCache,
    key: String,
    token: u64,
    state: u64,
    done: bool,
}

impl Ticket<'_> {
    /// Changes the entry with `change` if no invalidation, gap or other
    /// operation came since the ticket was taken; drops it otherwise, or
    /// when `change` returns `false`.
    fn store(mut self, change: impl FnOnce(&mut Option<Entry>) -> bool) {
        self.done = true;
        let cache = self.cache;
        let mut shard = cache.shard(&self.key).lock();
        // Under the shard lock: a gap takes every shard lock after moving
        // the state, so it either sees this store or this sees the new state.
        let current = cache.state.load(Ordering::Acquire) == self.state;
        let Some(item) = shard.get_mut(&self.key) else {
            return;
        };
        if !current || item.token != self.token || !change(&mut item.entry) {
            shard.remove(&self.key);
            return;
        }
        let bytes = item
            .entry
            .as_ref()
            .map_or(ITEM_OVERHEAD + 2 * self.key.len(), |e| e.bytes(&self.key));
        let before = std::mem::replace(&mut item.bytes, bytes);
        shard.bytes = shard.bytes + bytes - before;
        let evicted = shard.shrink(cache.shard_max);
        if evicted > 0 {
            cache.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    /// A load's answer.
    pub(super) fn loaded(self, namespace: &str, fields: &[&str], loaded: Option<&LoadedFields>) {
        let Some(loaded) = loaded else {
            return self.store(|_| false);
        };
        self.store(|entry| {
            let entry = entry.get_or_insert_with(|| Entry {
                created_at: loaded.created_at,
                expires_at: loaded.expires_at,
                fields: Vec::with_capacity(fields.len()),
            });
            entry.created_at = loaded.created_at;
            entry.expires_at = loaded.expires_at;
            for (field, value) in fields.iter().zip(&loaded.values) {
                entry.set(namespace, field, value.clone());
            }
            entry.set(
                EXPIRY_FIELD.namespace,
                EXPIRY_FIELD.field,
                loaded.expiry.clone(),
            );
            true
        });
    }

    /// A successful `update` (or, with no writes, `touch`).
    pub(super) fn written(self, writes: &[FieldWrite<'_>], expires_at: Option<SystemTime>) {
        self.store(|entry| {
            let Some(entry) = entry else {
                return false;
            };
            for write in effective(writes) {
                entry.set(
                    write.key.namespace,
                    write.key.field,
                    write.value.map(Bytes::copy_from_slice),
                );
            }
            if let Some(expires_at) = expires_at {
                entry.expires_at = expires_at;
            }
            true
        });
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.cache.remove(&self.key);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
