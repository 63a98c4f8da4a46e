//! [`MemoryStore`]: sessions in this process's memory.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use foldhash::fast::RandomState;
use parking_lot::Mutex;

use super::{EXPIRY_FIELD, FieldWrite, LoadedFields, SessionStore, StoreError};
use crate::id::SessionId;

mod forwards;

const SHARDS: usize = 64;
/// A shard is swept of expired sessions once every this many writes to it,
/// so cleanup costs a little on each write and never pauses the whole store.
const SWEEP_EVERY: u32 = 256;

/// Sessions held in a sharded map in this process's memory: the embedded
/// default, for development, tests and single-process deployments.
///
/// Every operation takes one shard's lock (a move, the locks of both ids'
/// shards, taken in shard order) and is atomic. A move leaves its forward
/// (see [`SessionStore::forwarded`]) in a small table of its own, swept as
/// it grows, before it releases the locks. An expired session
/// is never returned; expired sessions are swept shard by shard, amortised
/// over writes, so no call pauses the whole store. Sessions are lost when the
/// process exits, and are not shared between processes.
pub struct MemoryStore {
    shards: Box<[Shard]>,
    hasher: RandomState,
    forwards: forwards::Forwards,
}

/// Keys are ids the server generated from 192 random bits, and namespace and
/// field names from the program, so a fast (seeded, not DoS-hardened) hash
/// is enough: clients cannot choose what is inserted.
type Map<V> = HashMap<String, V, RandomState>;

#[derive(Default)]
struct Shard {
    sessions: Mutex<Map<Record>>,
    writes: AtomicU32,
}

#[derive(Clone)]
struct Record {
    created_at: SystemTime,
    expires_at: SystemTime,
    /// namespace -> field -> bytes, shared with the `LoadedFields` that
    /// loads hand out rather than copied into them.
    namespaces: Map<Map<Bytes>>,
}

impl Record {
    fn is_live(&self, now: SystemTime) -> bool {
        self.expires_at > now
    }

    fn apply(&mut self, writes: &[FieldWrite<'_>]) {
        for write in writes {
            match write.value {
                Some(bytes) => {
                    // Look up before inserting: keys are allocated only for
                    // fields the session does not hold yet.
                    let fields = match self.namespaces.get_mut(write.key.namespace) {
                        Some(fields) => fields,
                        None => self
                            .namespaces
                            .entry(write.key.namespace.to_owned())
                            .or_default(),
                    };
                    let bytes = Bytes::copy_from_slice(bytes);
                    match fields.get_mut(write.key.field) {
                        Some(value) => *value = bytes,
                        None => {
                            fields.insert(write.key.field.to_owned(), bytes);
                        }
                    }
                }
                None => {
                    if let Some(fields) = self.namespaces.get_mut(write.key.namespace) {
                        fields.remove(write.key.field);
                    }
                }
            }
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            hasher: RandomState::default(),
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
        self.shards.iter().map(|s| s.sessions.lock().len()).sum()
    }

    /// Whether the store holds no sessions at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, id: &SessionId) -> &Shard {
        &self.shards[self.shard_index(id)]
    }

    fn shard_index(&self, id: &SessionId) -> usize {
        self.hasher.hash_one(id.as_str()) as usize % self.shards.len()
    }

    /// Runs `write` under the shard's lock, sweeping the shard now and then.
    fn write<R>(&self, id: &SessionId, write: impl FnOnce(&mut Map<Record>, SystemTime) -> R) -> R {
        let shard = self.shard(id);
        let now = SystemTime::now();
        let mut sessions = shard.sessions.lock();
        if shard
            .writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            sessions.retain(|_, record| record.is_live(now));
        }
        write(&mut sessions, now)
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
        let now = SystemTime::now();
        let sessions = self.shard(id).sessions.lock();
        let Some(record) = sessions.get(id.as_str()).filter(|r| r.is_live(now)) else {
            return Ok(None);
        };
        let stored = record.namespaces.get(namespace);
        let expiry = record
            .namespaces
            .get(EXPIRY_FIELD.namespace)
            .and_then(|fields| fields.get(EXPIRY_FIELD.field))
            .cloned();
        Ok(Some(LoadedFields {
            expiry,
            created_at: record.created_at,
            expires_at: record.expires_at,
            values: fields
                .iter()
                .map(|field| stored.and_then(|s| s.get(*field)).cloned())
                .collect(),
        }))
    }

    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        self.write(id, |sessions, now| {
            if sessions.get(id.as_str()).is_some_and(|r| r.is_live(now)) {
                return Err(StoreError::IdExists);
            }
            let mut record = Record {
                created_at,
                expires_at,
                namespaces: HashMap::default(),
            };
            record.apply(writes);
            sessions.insert(id.as_str().to_owned(), record);
            Ok(())
        })
    }

    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        Ok(self.write(id, |sessions, now| {
            match sessions.get_mut(id.as_str()).filter(|r| r.is_live(now)) {
                Some(record) => {
                    record.apply(writes);
                    if let Some(expires_at) = expires_at {
                        record.expires_at = expires_at;
                    }
                    true
                }
                None => false,
            }
        }))
    }

    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        self.update(id, &[], Some(expires_at)).await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.write(id, |sessions, _| {
            sessions.remove(id.as_str());
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
        let (from_index, to_index) = (self.shard_index(from), self.shard_index(to));
        if from_index == to_index {
            let mut sessions = self.shards[from_index].sessions.lock();
            self.move_locked(&mut sessions, None, from, to, expires_at, now)
        } else {
            let low = self.shards[from_index.min(to_index)].sessions.lock();
            let high = self.shards[from_index.max(to_index)].sessions.lock();
            let (mut from_map, mut to_map) = if from_index < to_index {
                (low, high)
            } else {
                (high, low)
            };
            self.move_locked(&mut from_map, Some(&mut to_map), from, to, expires_at, now)
        }
    }

    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        Ok(self.forwards.get(id, SystemTime::now()))
    }
}

impl MemoryStore {
    /// `move_to` under the locks of both shards; `to_map` is `None` when
    /// both ids are in one shard.
    fn move_locked(
        &self,
        from_map: &mut Map<Record>,
        to_map: Option<&mut Map<Record>>,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        if !from_map.get(from.as_str()).is_some_and(|r| r.is_live(now)) {
            return Ok(false);
        }
        let taken = |map: &Map<Record>| map.get(to.as_str()).is_some_and(|r| r.is_live(now));
        if to_map.as_deref().map_or_else(|| taken(from_map), taken) {
            return Err(StoreError::IdExists);
        }
        let Some(mut record) = from_map.remove(from.as_str()) else {
            return Ok(false);
        };
        record.expires_at = expires_at;
        to_map
            .unwrap_or(from_map)
            .insert(to.as_str().to_owned(), record);
        self.forwards.insert(from, to, now);
        Ok(true)
    }
}
