//! The session index of [`RedisStore`]: "(namespace, key) → live session
//! ids", for [`list_index`](SessionStore::list_index) and
//! [`end_index`](SessionStore::end_index).
//!
//! # Layout
//!
//! One sorted set per index key at
//! `{prefix}__index:{namespace length}:{namespace}:{key}` (the key's bytes
//! as they are: the length makes the name unambiguous whatever bytes the
//! namespace and key hold). Its members are session ids, each scored with
//! the server time (Unix milliseconds) it was last added at, made unique
//! and increasing within the set, so that a re-add always changes a
//! member's score. The session itself holds its entries as ordinary hash
//! fields (`__index.{namespace}`, the key's bytes) and, while it has any,
//! `__indexed_until`: a time (Unix milliseconds) until which the index key
//! of each of its entries is guaranteed to live.
//!
//! The set is a *hint*: it holds every live session whose entry holds its
//! key, and maybe more (sessions that changed or removed their entry,
//! were deleted, moved away or expired). Listing and ending check each
//! member against its session (it exists, and its entry for the namespace
//! holds the key) and prune the members that fail, so neither ever acts on
//! a session that does not hold the key, and no write has to find the old
//! index key of an entry it changes or removes.
//!
//! # When the index is written
//!
//! Only a [`create`](SessionStore::create) or
//! [`update`](SessionStore::update) that *sets* an entry, and a
//! [`move_to`](SessionStore::move_to) of a session that has entries, touch
//! index keys; a write without an entry sends exactly what it sent before.
//! Removing an entry is an ordinary field write: the old set's member fails
//! its check at the next listing and is pruned.
//!
//! - **Single server, or every key in one cluster slot** (a prefix with a
//!   hash tag): one script, with the session key and the index keys of the
//!   entries it sets as its `KEYS`, does the ordinary write and, if it
//!   happened, adds the id to each index key, all atomically.
//! - **Redis Cluster, keys in other slots**: first the id is added to each
//!   index key (one single-key script per key, concurrently), then the
//!   ordinary write runs. The set is written *before* the session, so a
//!   crash or a lost reply between the two leaves at worst a member whose
//!   session does not hold the key: never listed, never ended, and pruned
//!   once it is older than 30 s (on a cluster, younger failing members are
//!   kept, since their session's write may still be under way; on a single
//!   server every write is atomic and they are pruned at once).
//! - **`move_to`**: a session with entries (`__indexed_until` present) is
//!   moved by a script that also takes its index keys, after one more round
//!   trip that reads its entries; the new id is added to each index key and
//!   the old one removed, atomically with the rename on a single server.
//!   On a cluster the cross-slot move (see the store's docs) reads the
//!   entries from its copy, adds the new id to each index key before the
//!   copy is created, and removes the old id once the move is done.
//!
//! # Lifetime and bounds
//!
//! An index key expires: each add sets its expiry to at least
//! `E + (E − now)`, `E` the session's expiry, and records that time in the
//! session's `__indexed_until`. The update and touch scripts already read
//! the session's marker fields; they read `__indexed_until` with them and,
//! when a session's new expiry passes it, report so; the store then reads
//! the session's entries and extends their index keys again (two more round
//! trips, once each time a session lives past twice what it had left; never
//! for a session without entries). So an index key lives at least as long
//! as its longest-living member and vanishes when its last session is long
//! gone. Members of ended sessions are pruned when the key is listed or
//! ended, and when an entry is written to a key that has more than 32
//! members (the write then runs one listing of it), so a set holds at most
//! about 32 members more than its live sessions.
//!
//! # Cost
//!
//! | operation | round trips |
//! |---|---|
//! | write setting an entry, single server | 1 (the same script, with the index work) |
//! | write setting an entry, cluster | 2 (index keys, concurrently; then the write); 3 for an `update` that keeps the expiry (it reads the expiry first) |
//! | `move_to` of a session with entries, single server or one slot | 3 (the plain rename script finds `__indexed_until` and stops; the entries are read; the indexed rename) |
//! | `move_to` of a session with entries, cluster across slots | 5 (copy out, the new id into the index keys, copy in, finish, the old id out of the index keys) |
//! | [`list_index`](SessionStore::list_index) of n members | 2 (`ZRANGE`, then one `HMGET` per member, concurrently), 3 when it prunes |
//! | [`end_index`](SessionStore::end_index) of n members | 3 per pass (`ZRANGE`; one conditional delete per member, concurrently; `ZREM`), plus a last `ZRANGE`: passes repeat while new ids appear (a session moved while it ran), at most 8 |
//!
//! [`end_index`](SessionStore::end_index) deletes each session with a
//! script that deletes it only if it still holds the key, as
//! [`delete`](SessionStore::delete) does (no forward). With the near-cache,
//! both calls read Redis, never the cache; an ended session is dropped from
//! this process's cache, and Redis' tracking invalidates it in every other
//! process's.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use futures_util::future::try_join_all;
use redis::cluster_routing::Slot;
use redis::{Cmd, Script, Value};

use super::{
    CREATE_LUA, HashField, MARKER, RedisConnection, RedisStore, UPDATE_LUA, backend, evalsha,
    expiry_millis, forward_until, unexpected,
};
use crate::id::SessionId;
use crate::store::{
    FieldWrite, INDEX_NAMESPACE, IndexKey, IndexedSession, SessionStore, StoreError, unix_millis,
};

mod query;

/// The session hash field until which (Unix milliseconds) the index keys
/// of all of the session's entries live; present only on sessions that
/// have had entries.
pub(super) const INDEXED_UNTIL: &str = "__indexed_until";

/// The hash field prefix of index entries, `{INDEX_NAMESPACE}.`.
const ENTRY_PREFIX: &[u8] = b"__index.";

/// An entry written to an index key with more members than this prunes it.
const PRUNE_ABOVE: i64 = 32;

/// On a cluster, a member that fails its check is pruned only once it is
/// this old: its session's write may still be on its way.
const GRACE: Duration = Duration::from_secs(30);

/// Passes of `end_index` (each one over the ids that appeared since the
/// last): more only when sessions keep moving or logging in while it runs.
const END_PASSES: usize = 8;

/// Attempts of a move whose session's entries change under it.
const MOVE_ATTEMPTS: u32 = 3;

/// `add(key, id, until, now)`: adds `id` to the index key with a score
/// above every other (the server time, or one more than the highest), and
/// makes the key live at least until `until` (Unix milliseconds); returns
/// the number of members.
const ADD_LUA: &str = include_str!("index/add.lua");

/// KEYS: one index key. ARGV: id, until. The number of members.
static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ADD_LUA}return add(KEYS[1], ARGV[1], tonumber(ARGV[2]), server_now())"
    ))
});

/// A write script (`CREATE` or `UPDATE`) that also adds the session to
/// index keys. KEYS: the session, then the index keys (none when a cluster
/// added them before). ARGV: the id, until (empty: from the session's
/// expiry after the write), then the write script's own ARGV. `{status,
/// members}`: the write script's status, 3 also when the index keys were
/// given too short a life (the caller extends them), and the most members
/// of an index key.
fn indexed(write: &str) -> Script {
    Script::new(&format!(
        "local function write(KEYS, ARGV)\n{write}\nend\n{ADD_LUA}{INDEXED_TAIL}"
    ))
}

const INDEXED_TAIL: &str = include_str!("index/indexed_tail.lua");

static CREATE_INDEXED: LazyLock<Script> = LazyLock::new(|| indexed(CREATE_LUA));
pub(super) static UPDATE_INDEXED: LazyLock<Script> = LazyLock::new(|| indexed(UPDATE_LUA));

/// KEYS: from, to, the index keys of from's entries. ARGV: expiry, the new
/// id, the end of the forward window, the old id, until, then the entries
/// the caller read (hash field, key). As `RENAME`, and the new id replaces
/// the old in every index key; 2 when from's entries are not the ones read
/// (nothing done).
static RENAME_INDEXED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{ADD_LUA}{}",
        include_str!("index/rename_indexed.lua")
    ))
});

/// KEYS: a session. ARGV: until, or empty when it has no entries left.
/// Records (or clears) `__indexed_until` on a live session.
static MARK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("index/mark.lua")));

/// KEYS: an index key. Members and scores, flat, as text (whatever the
/// connection's protocol).
static MEMBERS: LazyLock<Script> =
    LazyLock::new(|| Script::new("return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')"));

/// KEYS: an index key. ARGV: member/score pairs. Removes each member whose
/// score is still the one given (no write re-added it since it was read).
static PRUNE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("index/prune.lua")));

/// KEYS: a session. ARGV: the entry's hash field, the key. Deletes the
/// session (forward and all) if it is live and its entry holds the key.
static END_ONE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("index/end_one.lua")));

/// The Redis key of an index key.
pub(super) fn index_key(prefix: &str, namespace: &str, key: &[u8]) -> Vec<u8> {
    let length = namespace.len().to_string();
    let mut out =
        Vec::with_capacity(prefix.len() + length.len() + namespace.len() + key.len() + 10);
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(b"__index:");
    out.extend_from_slice(length.as_bytes());
    out.push(b':');
    out.extend_from_slice(namespace.as_bytes());
    out.push(b':');
    out.extend_from_slice(key);
    out
}

/// Whether a write sets an index entry: the only writes that do index work.
pub(super) fn sets_entry(writes: &[FieldWrite<'_>]) -> bool {
    writes
        .iter()
        .any(|write| write.key.namespace == INDEX_NAMESPACE && write.value.is_some())
}

/// How long an index key must live for a session that expires at
/// `expires` (Unix milliseconds): twice what the session has left.
fn until(expires: u64) -> u64 {
    let now = unix_millis(SystemTime::now());
    expires.saturating_add(expires.saturating_sub(now))
}

/// The index entries among a session's hash fields as `HGETALL` returns
/// them (flat name/value pairs): (namespace, key).
pub(super) fn entries_of(fields: &[Value]) -> Vec<(String, Vec<u8>)> {
    fields
        .chunks_exact(2)
        .filter_map(|pair| match (&pair[0], &pair[1]) {
            (Value::BulkString(name), Value::BulkString(key)) => {
                let namespace = name.strip_prefix(ENTRY_PREFIX)?;
                Some((String::from_utf8(namespace.to_vec()).ok()?, key.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The index keys a cross-slot cluster move added its new id to, so that
/// it removes the old id once the move is done.
pub(super) struct MovedIndex {
    keys: Vec<Vec<u8>>,
    /// The new session's `__indexed_until`.
    pub(super) until: u64,
}

impl RedisStore {
    /// Whether one script may take all of these keys: always on a single
    /// server, on a cluster when they share a slot.
    fn one_slot<K: AsRef<[u8]>>(&self, first: &[u8], others: &[K]) -> bool {
        match self.connection {
            RedisConnection::Single(_) => true,
            RedisConnection::Cluster(_) => {
                let slot = Slot::for_key(first);
                others.iter().all(|key| Slot::for_key(key.as_ref()) == slot)
            }
        }
    }

    fn index_keys<'w>(&self, writes: &'w [FieldWrite<'w>]) -> Vec<Vec<u8>> {
        super::effective(writes)
            .filter_map(IndexKey::of_write)
            .filter_map(|(namespace, key)| Some(index_key(&self.prefix, namespace, key?)))
            .collect()
    }

    /// Adds `id` to each index key, concurrently (a cluster's first step);
    /// the most members of one.
    async fn add_to_all(
        &self,
        keys: &[Vec<u8>],
        id: &SessionId,
        until: u64,
    ) -> Result<i64, StoreError> {
        let adds = keys.iter().map(|key| async move {
            let mut command = evalsha(&INDEX_ADD, 1);
            command.arg(key.as_slice()).arg(id.as_str()).arg(until);
            self.eval_int(&INDEX_ADD, &command).await
        });
        Ok(try_join_all(adds).await?.into_iter().max().unwrap_or(0))
    }

    /// `create` of a session that sets index entries.
    pub(super) async fn create_indexed(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let session_key = self.key(id);
        let keys = self.index_keys(writes);
        let until = until(expiry_millis(expires_at));
        let one_slot = self.one_slot(session_key.as_bytes(), &keys);
        let mut members = 0;
        if !one_slot {
            members = self.add_to_all(&keys, id, until).await?;
        }
        let mut command = evalsha(&CREATE_INDEXED, if one_slot { 1 + keys.len() } else { 1 });
        command.arg(&session_key);
        if one_slot {
            for key in &keys {
                command.arg(key.as_slice());
            }
        }
        command.arg(id.as_str()).arg(until);
        self.create_args(&mut command, writes, created_at, expires_at);
        let (status, card) = self.indexed_reply(&CREATE_INDEXED, &command).await?;
        if status != 1 {
            return Err(StoreError::IdExists);
        }
        self.after_index_write(&keys, members.max(card)).await
    }

    /// The command of an `update` that sets index entries, and the most
    /// members an index key had after a cluster's first step; `None` when
    /// the session is gone (found by that step's read of its expiry).
    pub(super) async fn update_indexed_command(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<Option<(Cmd, Vec<Vec<u8>>, i64)>, StoreError> {
        let session_key = self.key(id);
        let keys = self.index_keys(writes);
        let one_slot = self.one_slot(session_key.as_bytes(), &keys);
        let mut until_ms = expires_at.map(|at| until(expiry_millis(at)));
        let mut members = 0;
        if !one_slot {
            // The index keys are written first, and need a life: read the
            // expiry the update keeps.
            let until_ms = match until_ms {
                Some(until_ms) => until_ms,
                None => {
                    let Some(expires) = self.current_expiry(id).await? else {
                        return Ok(None);
                    };
                    *until_ms.insert(until(expiry_millis(expires)))
                }
            };
            members = self.add_to_all(&keys, id, until_ms).await?;
        }
        let mut command = evalsha(&UPDATE_INDEXED, if one_slot { 1 + keys.len() } else { 1 });
        command.arg(&session_key);
        if one_slot {
            for key in &keys {
                command.arg(key.as_slice());
            }
        }
        command.arg(id.as_str());
        match until_ms {
            Some(until_ms) => command.arg(until_ms),
            None => command.arg(""),
        };
        self.update_args(&mut command, writes, expires_at);
        Ok(Some((command, keys, members)))
    }

    /// The expiry of a live session, `None` when there is none.
    async fn current_expiry(&self, id: &SessionId) -> Result<Option<SystemTime>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.key_arg(id))
            .arg(MARKER)
            .arg(super::EXPIRES);
        let Value::Array(items) = self.query(&command).await.map_err(backend)? else {
            return Err(StoreError::Malformed("a short HMGET reply".into()));
        };
        let [created, expires] = items.as_slice() else {
            return Err(StoreError::Malformed("a short HMGET reply".into()));
        };
        Ok(self.times(id, created, expires).await?.map(|(_, at)| at))
    }

    /// Runs a write script that answers an integer status, or `{status,
    /// members}` (the indexed ones).
    pub(super) async fn indexed_reply(
        &self,
        script: &Script,
        command: &Cmd,
    ) -> Result<(i64, i64), StoreError> {
        match self.eval(script, command).await? {
            Value::Int(status) => Ok((status, 0)),
            Value::Array(items) => match items.as_slice() {
                [Value::Int(status), Value::Int(members)] => Ok((*status, *members)),
                _ => Err(StoreError::Malformed("a write script's reply".into())),
            },
            other => Err(unexpected("a write script's status", &other)),
        }
    }

    /// After an entry was written: prunes index keys that have grown.
    pub(super) async fn after_index_write(
        &self,
        keys: &[Vec<u8>],
        members: i64,
    ) -> Result<(), StoreError> {
        if members <= PRUNE_ABOVE {
            return Ok(());
        }
        for key in keys {
            let Some(namespace_key) = self.parse_index_key(key) else {
                continue;
            };
            self.list_key(key, namespace_key).await?;
        }
        Ok(())
    }

    /// The namespace and key of an index key this store built.
    fn parse_index_key<'k>(&self, key: &'k [u8]) -> Option<IndexKey<'k>> {
        let rest = key
            .strip_prefix(self.prefix.as_bytes())?
            .strip_prefix(b"__index:")?;
        let colon = rest.iter().position(|b| *b == b':')?;
        let length: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
        let rest = &rest[colon + 1..];
        let namespace = std::str::from_utf8(rest.get(..length)?).ok()?;
        let key = rest.get(length..)?.strip_prefix(b":")?;
        Some(IndexKey { namespace, key })
    }

    /// A write reported that the session's expiry passed `__indexed_until`:
    /// gives every index key of its entries a life to match, and records it.
    pub(super) async fn extend_index(&self, id: &SessionId) -> Result<(), StoreError> {
        let Some(loaded) = self.load_namespace(id, INDEX_NAMESPACE).await? else {
            return Ok(());
        };
        let until = until(expiry_millis(loaded.expires_at));
        let keys: Vec<Vec<u8>> = loaded
            .fields
            .iter()
            .map(|(namespace, key)| index_key(&self.prefix, namespace, key))
            .collect();
        let members = self.add_to_all(&keys, id, until).await?;
        let mut command = evalsha(&MARK, 1);
        command.arg(self.key_arg(id));
        if keys.is_empty() {
            command.arg("");
        } else {
            command.arg(until);
        }
        self.eval_int(&MARK, &command).await?;
        self.after_index_write(&keys, members).await
    }

    /// `move_to` of a session with entries (the plain rename found
    /// `__indexed_until`): reads its entries, then moves it with its index
    /// keys in one script, or across slots on a cluster.
    pub(super) async fn move_indexed(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        let from_key = self.key(from);
        let to_key = self.key(to);
        for _ in 0..MOVE_ATTEMPTS {
            let Some(loaded) = self.load_namespace(from, INDEX_NAMESPACE).await? else {
                return Ok(false);
            };
            let keys: Vec<Vec<u8>> = loaded
                .fields
                .iter()
                .map(|(namespace, key)| index_key(&self.prefix, namespace, key))
                .collect();
            let mut all = keys.clone();
            all.push(to_key.clone().into_bytes());
            if !self.one_slot(from_key.as_bytes(), &all) {
                return self
                    .move_across_slots(&from_key, &to_key, from, to, expires_at)
                    .await;
            }
            let mut command = evalsha(&RENAME_INDEXED, 2 + keys.len());
            command.arg(&from_key).arg(&to_key);
            for key in &keys {
                command.arg(key.as_slice());
            }
            command
                .arg(expires_at)
                .arg(to.as_str())
                .arg(forward_until())
                .arg(from.as_str())
                .arg(until(expires_at));
            for (namespace, key) in &loaded.fields {
                command
                    .arg(HashField(INDEX_NAMESPACE, namespace))
                    .arg(key.as_ref());
            }
            match self.eval_int(&RENAME_INDEXED, &command).await? {
                1 => return Ok(true),
                0 => return Ok(false),
                -1 => return Err(StoreError::IdExists),
                // The entries changed since they were read: read again.
                _ => {}
            }
        }
        Err(StoreError::Contention(MOVE_ATTEMPTS))
    }

    /// Cross-slot cluster move, before the copy is created: adds the new id
    /// to the index key of each entry of the copy. `None` without entries.
    pub(super) async fn index_copy(
        &self,
        to: &SessionId,
        expires_at: u64,
        fields: &[Value],
    ) -> Result<Option<MovedIndex>, StoreError> {
        let entries = entries_of(fields);
        let has_until = fields.chunks_exact(2).any(
            |pair| matches!(&pair[0], Value::BulkString(name) if name == INDEXED_UNTIL.as_bytes()),
        );
        if entries.is_empty() && !has_until {
            return Ok(None);
        }
        let keys: Vec<Vec<u8>> = entries
            .iter()
            .map(|(namespace, key)| index_key(&self.prefix, namespace, key))
            .collect();
        let until = until(expires_at);
        self.add_to_all(&keys, to, until).await?;
        Ok(Some(MovedIndex { keys, until }))
    }

    /// Cross-slot cluster move, once done: the old id leaves the index
    /// keys. Best effort: a member left behind fails its check and is
    /// pruned later.
    pub(super) async fn index_moved(&self, from: &SessionId, moved: &MovedIndex) {
        let removes = moved.keys.iter().map(|key| async move {
            let mut command = redis::cmd("ZREM");
            command.arg(key.as_slice()).arg(from.as_str());
            self.query(&command).await
        });
        if let Err(error) = try_join_all(removes).await {
            tracing::debug!(%error, "old id of a moved session left in an index key");
        }
    }
}

/// Index keys as the tests see them.
#[cfg(test)]
mod tests;
