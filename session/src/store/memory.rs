//! [`MemoryStore`]: sessions in this process's memory.
//!
//! The store every build has, and the one to develop and test with: no
//! server, nothing to configure (`MemoryStore::default()`). Sessions live
//! in a map of 64 shards, each behind its own lock, so every operation is
//! atomic and concurrent requests of different sessions rarely wait for
//! each other. It keeps every rule of the [store contract](super): an
//! expired session is never returned, a write never brings a deleted or
//! moved session back, an update changes exactly the fields it names, a
//! move leaves its forward, and the session index (`#[session(index)]`) is
//! kept exact inside the shards.
//!
//! It is not shared between processes and loses its sessions when the
//! process exits: for several app servers, or sessions that survive a
//! deploy, use a store backed by a server (Redis, Memcached, MongoDB).
//!
//! What [`MemoryStore`] documents: how expired sessions are swept (shard by
//! shard, by store calls and, when idle, by a background thread the store
//! stops when dropped), how its memory shrinks after a mass expiry, what a
//! session costs (about 200 bytes for one small field), and how the session
//! index is kept and what listing and ending cost.

mod forwards;
mod index;
mod names;
mod record;
mod sweeper;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use foldhash::fast::RandomState;
use parking_lot::{Mutex, MutexGuard};

use self::index::Index;
use self::names::Names;
use self::record::{Key, Nanos, Record, key, nanos, now, session_id, system_time};
use self::sweeper::Sweeper;
use super::{
    EXPIRY_FIELD, FieldWrite, INDEX_NAMESPACE, IndexKey, IndexedSession, LoadedFields,
    LoadedNamespace, SessionStore, StoreError,
};
use crate::id::SessionId;

const SHARDS: usize = 64;
/// A shard holding expired sessions is swept at most once per period: by
/// the first store call on it after that, or else by the sweeper thread.
const SWEEP_PERIOD: Duration = Duration::from_secs(1);
/// After a sweep, a table using less than a quarter of its room is shrunk
/// to twice what it holds, so the memory of a mass expiry can be reused;
/// tables this small are left alone.
const SHRINK_ABOVE: usize = 64;

/// Sessions held in a sharded map in this process's memory: the embedded
/// default, for development, tests and single-process deployments.
///
/// Every operation takes one shard's lock (a move, the locks of both ids'
/// shards, taken in shard order) and is atomic. A move leaves its forward
/// (see [`SessionStore::forwarded`]) in a small table of its own, swept as
/// it grows, before it releases the locks. An expired session is never
/// returned. Expired sessions are swept shard by shard, each at
/// most once a second: by the store calls that reach a shard, and for an
/// idle store by a background thread that the store stops when it is
/// dropped. No call pauses the whole store (but see the session index
/// below), and tables shrink after a mass expiry so the memory can be
/// reused. Field names are stored once per shard, not per session: a
/// session of one small field takes about 200 bytes. Sessions are lost
/// when the process exits, and are not shared between processes.
///
/// # Session index
///
/// The store keeps the session index (`#[session(index)]`, see
/// [`SessionStore::list_index`]) inside the shards: each shard maps each
/// index entry and key to the sessions of that shard holding it, and
/// changes that map under its lock in the same step as the session, so it
/// is always exact. A create or update that writes an entry moves the
/// session from its old key to the new one; a delete, a sweep of an expired
/// session and [`end_index`](SessionStore::end_index) take its entries out
/// with it; a move takes them to the new id. The index therefore never
/// holds more than the sessions the store holds, and a key left without
/// sessions is dropped.
///
/// [`list_index`](SessionStore::list_index) and
/// [`end_index`](SessionStore::end_index) visit the shards one lock at a
/// time, skipping expired sessions. A session with an entry that moves to
/// another shard meanwhile (a login cycling its id) could be seen twice or
/// not at all, so moves of such sessions are counted, and a call that raced
/// one visits every shard again holding all their locks: only then does an
/// index call pause the whole store, for as long as the sessions of its key
/// take. So a listing is exact as of one moment, and every session holding
/// the key when `end_index` starts is gone when it returns.
///
/// What it costs: a session without an entry takes no more memory than
/// before and a write without one does no index work beyond comparing its
/// namespace with [`INDEX_NAMESPACE`]. A session with an entry holds one
/// more field, and the index holds its id (inline when it is its key's
/// only session in the shard) and each key's bytes once per shard: about
/// 240 bytes more per session when every session has a key of its own,
/// about 120 bytes when many share a key. Listing or ending a key costs one
/// lock and lookup per shard (64) plus the key's sessions.
pub struct MemoryStore {
    shards: Arc<Shards>,
    forwards: forwards::Forwards,
    /// Dropped with the store, which stops the thread.
    _sweeper: Option<Sweeper>,
}

struct Shards {
    shards: Box<[Shard]>,
    hasher: RandomState,
    /// Counts the moves of sessions with an index entry from one shard to
    /// another: a pass over the shards one at a time that saw it change may
    /// have seen such a session twice or not at all.
    index_moves: AtomicU64,
}

/// Keys are ids the server generated from 192 random bits, so a fast
/// (seeded, not DoS-hardened) hash is enough: clients cannot choose what is
/// inserted.
type Map<K, V> = HashMap<K, V, RandomState>;

/// Padded to its own cache lines so threads working on neighbouring shards
/// do not contend for one line.
#[derive(Default)]
#[repr(align(128))]
struct Shard(Mutex<ShardState>);

#[derive(Default)]
struct ShardState {
    sessions: Map<Key, Record>,
    names: Names,
    /// The index entries of `sessions`, kept with them under the lock.
    index: Index,
    /// No held session expires before this (a lower bound: sessions whose
    /// expiry moved later may still count); `0` while nothing is held.
    earliest_expiry: Nanos,
    /// No sweep before this, so a bound kept low by moved expiries costs
    /// one sweep per period, not one per call.
    next_sweep: Nanos,
}

impl ShardState {
    /// Holds `record` under `key`, which holds nothing (or nothing live,
    /// taken out with [`remove`](Self::remove) first); its index entries
    /// are the caller's to add.
    fn insert(&mut self, key: Key, record: Record) {
        if self.sessions.is_empty() || record.expires_at < self.earliest_expiry {
            self.earliest_expiry = record.expires_at;
        }
        self.sessions.insert(key, record);
    }

    /// Takes a session out, with its index entries.
    fn remove(&mut self, key: &Key) -> Option<Record> {
        let record = self.sessions.remove(key)?;
        self.index.forget(key, &record.fields);
        Some(record)
    }

    /// Adds to `found` the live sessions whose entry `index` names holds
    /// its key.
    fn list(&self, index: IndexKey<'_>, now: Nanos, found: &mut Vec<IndexedSession>) {
        let Some(name) = self.names.get(INDEX_NAMESPACE, index.namespace) else {
            return;
        };
        found.extend(self.index.sessions(name, index.key).filter_map(|key| {
            let record = self.sessions.get(key).filter(|r| r.is_live(now))?;
            Some(IndexedSession {
                id: session_id(key)?,
                created_at: system_time(record.created_at),
                expires_at: system_time(record.expires_at),
            })
        }));
    }

    /// Deletes, as `delete` does, the sessions whose entry `index` names
    /// holds its key, but `except`; returns how many of them were live
    /// (expired ones go too, uncounted).
    fn end(
        &mut self,
        index: IndexKey<'_>,
        except: Option<&Key>,
        now: Nanos,
        forwards: &forwards::Forwards,
    ) -> usize {
        let Some(name) = self.names.get(INDEX_NAMESPACE, index.namespace) else {
            return 0;
        };
        let ending: Vec<Key> = self
            .index
            .sessions(name, index.key)
            .filter(|key| Some(*key) != except)
            .copied()
            .collect();
        let mut ended = 0;
        for key in &ending {
            let Some(record) = self.remove(key) else {
                continue;
            };
            if let Some(id) = session_id(key) {
                forwards.remove(&id);
            }
            if record.is_live(now) {
                ended += 1;
            }
        }
        ended
    }

    /// Sweeps the shard if one of its sessions may have expired and it was
    /// not swept within the last period.
    fn sweep_if_due(&mut self, now: Nanos) {
        if self.sessions.is_empty() || self.earliest_expiry > now || self.next_sweep > now {
            return;
        }
        let mut earliest = Nanos::MAX;
        let Self {
            sessions, index, ..
        } = self;
        sessions.retain(|key, record| {
            let live = record.is_live(now);
            if live {
                earliest = earliest.min(record.expires_at);
            } else {
                index.forget(key, &record.fields);
            }
            live
        });
        self.earliest_expiry = earliest;
        self.next_sweep = now.saturating_add(SWEEP_PERIOD.as_nanos() as Nanos);
        let (len, capacity) = (self.sessions.len(), self.sessions.capacity());
        if capacity > SHRINK_ABOVE && len < capacity / 4 {
            self.sessions.shrink_to(len * 2);
        }
        self.index.shrink();
    }
}

impl Shards {
    fn index(&self, id: &SessionId) -> usize {
        self.hasher.hash_one(id.as_str()) as usize % self.shards.len()
    }

    fn lock(&self, id: &SessionId) -> MutexGuard<'_, ShardState> {
        self.lock_index(self.index(id))
    }

    fn lock_index(&self, index: usize) -> MutexGuard<'_, ShardState> {
        self.shards[index].0.lock()
    }

    /// One shard's lock at a time, never all of them at once.
    fn sweep_due(&self) {
        for shard in self.shards.iter() {
            shard.0.lock().sweep_if_due(now());
        }
    }

    /// Runs `visit` on every shard with `acc`, one lock at a time, and
    /// returns `acc`, as if all shards were visited at one point in time:
    /// if a session with an index entry moved from one shard to another
    /// meanwhile (so `visit` may have seen it twice, or not at all),
    /// `restart` gets `acc` and `visit` runs again on every shard, under
    /// all their locks at once (taken in shard order, as moves take theirs).
    ///
    /// So an index call pauses the whole store only when it raced the move
    /// of an indexed session (a login), and then only for as long as the
    /// sessions of its key take.
    fn visit_all<T>(
        &self,
        mut acc: T,
        mut visit: impl FnMut(&mut T, &mut ShardState, Nanos),
        restart: impl FnOnce(&mut T),
    ) -> T {
        let moves = self.index_moves.load(Ordering::Acquire);
        for shard in self.shards.iter() {
            let now = now();
            let mut shard = shard.0.lock();
            shard.sweep_if_due(now);
            visit(&mut acc, &mut shard, now);
        }
        // A move that crossed into a shard already visited also locked the
        // shard it left, which was visited after it, so it is counted by now.
        if self.index_moves.load(Ordering::Acquire) == moves {
            return acc;
        }
        restart(&mut acc);
        let mut locked: Vec<_> = self.shards.iter().map(|shard| shard.0.lock()).collect();
        let now = now();
        for shard in &mut locked {
            visit(&mut acc, shard, now);
        }
        acc
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        let shards = Arc::new(Shards {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: RandomState::default(),
            index_moves: AtomicU64::new(0),
        });
        Self {
            _sweeper: Sweeper::start(Arc::downgrade(&shards)),
            shards,
            forwards: forwards::Forwards::default(),
        }
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of sessions held, live or expired but not yet swept.
    pub fn len(&self) -> usize {
        self.shards
            .shards
            .iter()
            .map(|s| s.0.lock().sessions.len())
            .sum()
    }

    /// Whether the store holds no sessions at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `op` under the lock of `id`'s shard, after sweeping the shard if
    /// that is due: every call helps keep the store clean.
    fn with_shard<R>(&self, id: &SessionId, op: impl FnOnce(&mut ShardState, Nanos) -> R) -> R {
        let now = now();
        let mut shard = self.shards.lock(id);
        shard.sweep_if_due(now);
        op(&mut shard, now)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        Ok(self.with_shard(id, |shard, now| {
            let record = shard.sessions.get(&key(id)).filter(|r| r.is_live(now))?;
            let names = shard.names.namespace(namespace);
            let expiry = shard
                .names
                .get(EXPIRY_FIELD.namespace, EXPIRY_FIELD.field)
                .and_then(|name| record.get(name))
                .cloned();
            Some(LoadedFields {
                expiry,
                created_at: system_time(record.created_at),
                expires_at: system_time(record.expires_at),
                values: fields
                    .iter()
                    .map(|field| {
                        let name = names?.get(*field)?;
                        record.get(*name).cloned()
                    })
                    .collect(),
            })
        }))
    }

    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        Ok(self.with_shard(id, |shard, now| {
            let record = shard.sessions.get(&key(id)).filter(|r| r.is_live(now))?;
            let expiry = shard
                .names
                .get(EXPIRY_FIELD.namespace, EXPIRY_FIELD.field)
                .and_then(|name| record.get(name))
                .cloned();
            let fields = record
                .fields
                .iter()
                .filter_map(|(name, value)| {
                    let (stored_namespace, field) = shard.names.name(*name)?;
                    (&**stored_namespace == namespace).then(|| (field.to_string(), value.clone()))
                })
                .collect();
            Some(LoadedNamespace {
                expiry,
                created_at: system_time(record.created_at),
                expires_at: system_time(record.expires_at),
                fields,
            })
        }))
    }

    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let key = key(id);
        self.with_shard(id, |shard, now| {
            match shard.sessions.get(&key) {
                Some(record) if record.is_live(now) => return Err(StoreError::IdExists),
                // Expired, not yet swept: its index entries go before the
                // new session's come.
                Some(_) => {
                    shard.remove(&key);
                }
                None => {}
            }
            let mut record = Record {
                created_at: nanos(created_at),
                expires_at: nanos(expires_at),
                fields: Box::default(),
            };
            // Removals are ignored: the new session holds none of them.
            record.apply(&key, writes, &mut shard.names, &mut shard.index);
            shard.insert(key, record);
            Ok(())
        })
    }

    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let key = key(id);
        Ok(self.with_shard(id, |shard, now| {
            let ShardState {
                sessions,
                names,
                index,
                earliest_expiry,
                ..
            } = &mut *shard;
            let Some(record) = sessions.get_mut(&key).filter(|r| r.is_live(now)) else {
                return false;
            };
            record.apply(&key, writes, names, index);
            if let Some(expires_at) = expires_at {
                record.expires_at = nanos(expires_at);
                *earliest_expiry = (*earliest_expiry).min(record.expires_at);
            }
            true
        }))
    }

    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        self.update(id, &[], Some(expires_at)).await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.with_shard(id, |shard, _| {
            shard.remove(&key(id));
            self.forwards.remove(id);
        });
        Ok(())
    }

    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        // Both shards are locked (in index order, so two moves cannot
        // deadlock) for the whole move, and the forward is in place before
        // they are released: a concurrent write of `from` either lands
        // before the move and is moved with the session, or finds the
        // forward and the session already under `to`.
        let now = SystemTime::now();
        let (from_index, to_index) = (self.shards.index(from), self.shards.index(to));
        if from_index == to_index {
            let mut shard = self.shards.lock_index(from_index);
            self.move_locked(&mut shard, None, from, to, expires_at, now)
        } else {
            let low = self.shards.lock_index(from_index.min(to_index));
            let high = self.shards.lock_index(from_index.max(to_index));
            let (mut from_shard, mut to_shard) = if from_index < to_index {
                (low, high)
            } else {
                (high, low)
            };
            self.move_locked(
                &mut from_shard,
                Some(&mut to_shard),
                from,
                to,
                expires_at,
                now,
            )
        }
    }

    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        Ok(self.forwards.get(id, SystemTime::now()))
    }

    async fn list_index(&self, index: IndexKey<'_>) -> Result<Vec<IndexedSession>, StoreError> {
        Ok(self.shards.visit_all(
            Vec::new(),
            |found, shard, now| shard.list(index, now, found),
            Vec::clear,
        ))
    }

    async fn end_index(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let except = except.map(key);
        // The sessions ended by the first pass stay ended and counted.
        Ok(self.shards.visit_all(
            0,
            |ended, shard, now| *ended += shard.end(index, except.as_ref(), now, &self.forwards),
            |_| {},
        ))
    }
}

impl MemoryStore {
    /// `move_to` under the locks of both shards; `to_shard` is `None` when
    /// both ids are in one shard.
    fn move_locked(
        &self,
        from_shard: &mut ShardState,
        mut to_shard: Option<&mut ShardState>,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let (from_key, to_key, now_nanos) = (key(from), key(to), nanos(now));
        // Like every call, a move helps sweep the shards it locks.
        from_shard.sweep_if_due(now_nanos);
        if let Some(shard) = to_shard.as_deref_mut() {
            shard.sweep_if_due(now_nanos);
        }
        let live = |shard: &ShardState, key: &Key| {
            shard
                .sessions
                .get(key)
                .is_some_and(|r| r.is_live(now_nanos))
        };
        if !live(from_shard, &from_key) {
            return Ok(false);
        }
        if live(to_shard.as_deref().unwrap_or(from_shard), &to_key) {
            return Err(StoreError::IdExists);
        }
        let Some(mut record) = from_shard.remove(&from_key) else {
            return Ok(false);
        };
        record.expires_at = nanos(expires_at);
        let crosses = to_shard.is_some();
        let (record, to_shard) = match to_shard {
            None => (record, from_shard),
            Some(to_shard) => (
                record.renamed(&from_shard.names, &mut to_shard.names),
                to_shard,
            ),
        };
        // An expired session under `to`, not yet swept, makes room, index
        // entries and all.
        to_shard.remove(&to_key);
        let indexed = to_shard
            .index
            .remember(to_key, &record.fields, &to_shard.names);
        to_shard.insert(to_key, record);
        if crosses && indexed {
            // Under both locks: see `Shards::visit_all`.
            self.shards.index_moves.fetch_add(1, Ordering::AcqRel);
        }
        self.forwards.insert(from, to, now);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
