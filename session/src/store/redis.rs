//! [`RedisStore`]: sessions in Redis, on a single server or on Redis Cluster.
//!
//! # Layout
//!
//! One hash per session at `{prefix}{id}` (prefix `session:` by default, as
//! in sanic_session):
//!
//! | hash field | value |
//! |---|---|
//! | `__created` | the marker: the session exists; its creation time in Unix milliseconds, as decimal text |
//! | `__expires` | the session's expiry in Unix milliseconds, as decimal text: the same value the store passes to `PEXPIREAT` |
//! | `{namespace}.{field}` | the encoded bytes of one field, exactly as the codec produced them |
//! | `__.expiry` | the remembered expiry ([`EXPIRY_FIELD`]): an ordinary field, loaded with every namespace |
//! | `__moving`, `__frozen` | transient, only on Redis Cluster while [`move_to`](SessionStore::move_to) copies the session to another node (see below) |
//! | `__index.{namespace}` | an index entry (namespace [`INDEX_NAMESPACE`](super::INDEX_NAMESPACE)): an ordinary field, holding the index key |
//! | `__indexed_until` | only on a session that has had index entries: until when (Unix milliseconds) their index keys live |
//!
//! Beside the sessions, one sorted set of session ids per index key, at
//! `{prefix}__index:{namespace length}:{namespace}:{key}`, kept by the
//! session index (see [`index`] and [below](#the-session-index)).
//!
//! After a move, the old key holds no marker but, for
//! [`FORWARD_WINDOW`], the forward:
//! `__forward` (the new id) and `__forward_until` (the window's end, Unix
//! milliseconds by the application's clock), written by the script that
//! retires the old key, with the key's expiry at the window's end (on a
//! cluster, the 60 s of the tombstone below; `__forward_until` decides).
//! [`forwarded`](SessionStore::forwarded) is one `HMGET`.
//!
//! Field names always contain a dot and the internal names never do, so
//! they cannot collide. The key's Redis expiry (`PEXPIREAT`, millisecond
//! precision) is the session's expiry, and every operation that sets it also
//! writes `__expires`, so a load reads the expiry with the fields in one
//! plain `HMGET`. Redis never returns a key whose expiry has passed, even
//! before it has reclaimed it, so an expired session is gone at once. A key
//! without the marker is not a session: it is never loaded, updated or
//! touched (and `create` does not overwrite it either).
//!
//! A session written by an earlier version of this store has the marker but
//! no `__expires`. It loads as before, with its expiry read from the key
//! (`PTTL`, one more command and round trip, relative to the application's
//! clock), and gains `__expires` on its next write or touch. When
//! `__expires` has passed by the application's clock but Redis still holds
//! the key, the key's expiry decides, read the same way: the two disagree
//! only when something moved the key's expiry without the field, such as
//! instances of an earlier version sharing the sessions during a rolling
//! upgrade (their writes and touches move the key's expiry but not
//! `__expires`), or `PEXPIRE`/`PERSIST` from outside the store.
//!
//! # Atomicity and round trips
//!
//! Every operation below (the session index aside) is one round trip on one key, on a single server and on
//! a cluster alike: a plain command, or a Lua script run with `EVALSHA`
//! (loaded on first use and again after a server restart), which Redis runs
//! atomically. "Commands" below counts what Redis executes, the `EVALSHA`
//! and the commands inside the script both:
//!
//! | operation | what runs | commands |
//! |---|---|---|
//! | [`load`](SessionStore::load) | `HMGET` of the marker, `__expires` and the requested fields (a session without `__expires`: then `PTTL`, a second round trip) | 1 (2) |
//! | [`load_namespace`](SessionStore::load_namespace) | transaction (no Lua): `MULTI`, `HMGET` of the marker, `__expires` and the remembered expiry, `HSCAN 0 MATCH {namespace}.*` (escaped), `EXEC`; only that namespace's fields leave the hash, but Redis walks every field name of the session. A hash one scan call does not cover: a script instead (`HKEYS`, one `HMGET` per 1000 names), a second round trip. See [`namespace`] (a `PTTL` as for `load` without `__expires`) | 4, atomic (5) |
//! | [`create`](SessionStore::create) | script: only if the key does not exist at all, one `HSET` of marker, `__expires` and fields, `PEXPIREAT` | 4 |
//! | [`update`](SessionStore::update) | script: `HMGET` of the marker, the two move fields and `__indexed_until`; only if the marker exists, one `HSET` of exactly the named fields (and of `__expires` when the expiry moves), one `HDEL` of the removed ones (if any), `PEXPIREAT` when the expiry moves. Nothing else is sent or rewritten, so a small change to a big session sends a few bytes | 3, or 4 when the expiry moves; one more with removals (one or two more while a cluster move is under way) |
//! | [`touch`](SessionStore::touch) | script: `HMGET` of the marker and `__indexed_until`; only if the marker exists, `HSET` of `__expires`, `PEXPIREAT` | 4 |
//! | [`delete`](SessionStore::delete) | `DEL` | 1 |
//! | [`move_to`](SessionStore::move_to), single server, or both keys in one cluster slot | script: `HMGET` of the marker and `__indexed_until`; only if `from` has the marker (and no index entries) and `to` does not exist, `RENAME`, `HSET` of `__expires`, `PEXPIREAT`, then the forward at `from` (`HSET`, `PEXPIREAT`). Atomic | 8 |
//! | writes that set an index entry, `move_to` of a session with entries, [`list_index`](SessionStore::list_index), [`end_index`](SessionStore::end_index) | see [`index`] | |
//!
//! Because `update` and `touch` check the marker inside the script, a write of
//! a slow request that lands after a `delete` or `move_to` of its session
//! changes nothing and reports `false`: no resurrection. A field named
//! several times in one `update` or `create` is written once, with its last
//! value.
//!
//! ## `move_to` on Redis Cluster
//!
//! The old and the new key hash to different slots (usually on different
//! nodes), and Redis cannot run one script over both. The move is then three
//! single-key scripts, each atomic, with the new session created before the
//! old one is deleted:
//!
//! 1. *copy out*: if `from` has the marker, mark it `__moving = token` (a
//!    fresh random token) and return all of its fields (`HGETALL`);
//! 2. *copy in*: create `to` with exactly those fields (marker included, so
//!    the creation time is kept), the new expiry and its `__expires`, only
//!    if `to` does not exist;
//! 3. *finish*: if `from` still carries the token, delete it, leaving a
//!    field-less tombstone for 60 s so that a retried *finish* is recognised.
//!    The tombstone carries the forward. The forward lives at the old key,
//!    in the old key's slot, so it is written atomically with the delete
//!    and no step spans two slots; a racing write of the old id finds no
//!    marker, reads the forward from the old key's node and is applied to
//!    the new key on its own.
//!
//! Every `update` that writes to a session clears `__moving`, so a write to
//! the old id between steps 1 and 3 is never lost: step 3 sees the token
//! gone, the copy is discarded and the move starts over with the newer data.
//! The first attempt lets such writes go on; the later ones (at most 3
//! attempts in all, then [`StoreError::Contention`]) also set
//! `__frozen = now + 1 s`, and an `update` of the old id waits (briefly
//! polling) until the move is done — then it reports `false`, exactly as
//! after the single-server `RENAME` — or until the 1 s lease runs out, so a
//! mover that died blocks writers for at most a second. (An update that has
//! waited 4 s in all, longer than any move holds writes off, gives up with
//! [`StoreError::Contention`].) A concurrent `delete` of the old id wins:
//! step 3 finds `from` gone, the copy is discarded and the move returns
//! `false`.
//!
//! What is *not* atomic: between steps 2 and 3 both ids answer loads (the
//! old one with the data being moved). A failure between the steps, or the
//! layer's timeout cancelling the move part way, never loses the session:
//! `from` is deleted only after `to` holds a complete copy; at worst `to`
//! stays behind, unused and unknown to any client, until its expiry, and
//! writes to `from` wait out the rest of a lease. Steps the cluster client
//! retries after a lost reply are idempotent. If both keys are in one slot
//! (a prefix with a hash tag like `{sessions}:`, which also puts every
//! session on one node), the atomic single-server script is used. Moving a
//! session within the cluster transfers it twice (out and in); sessions are
//! small.
//!
//! # The session index
//!
//! A session's index entries are hash fields like any other; the index
//! keys beside the sessions are a superset *hint* of the sessions holding
//! each key, which [`list_index`](SessionStore::list_index) and
//! [`end_index`](SessionStore::end_index) check member by member (live,
//! and its entry holds the key) and prune. On a single server (or with
//! every key in one cluster slot) a write that sets an entry adds the id to
//! the index key in the same script, atomically. On Redis Cluster, where
//! the index key and the session live in different slots, the id is added
//! to the index key first and the session written second, so a failure
//! between the two leaves only a member that fails its check (never listed
//! or ended, pruned after a grace of 30 s) and never hides a session that
//! holds the key. A write that sets no entry runs exactly the scripts
//! above, which read `__indexed_until` with the fields they already read
//! (absent on a session without entries): no extra round trip or command.
//! Details, the index keys' lifetime and the costs are in [`index`].
//!
//! # Limits
//!
//! A value is limited by Redis' `proto-max-bulk-len` (512 MB by default);
//! keep sessions small. Expiry times have millisecond precision. A session
//! written by an earlier version whose key expiry was removed from outside
//! the store (`PERSIST`) is reported as expiring in the far future.
//!
//! # Failures
//!
//! Connection and server errors become [`StoreError::Backend`], answers the
//! store cannot read (a marker or `__expires` that is not a number of
//! milliseconds, a key that is not a hash) become [`StoreError::Malformed`],
//! logged at warn; nothing panics. The store sets no timeout of its own: the
//! session layer bounds every store call with its timeout
//! (`SessionLayer::with_store_timeout`), and the connections
//! [`RedisStore::connect`] and [`RedisStore::connect_cluster`] open bound
//! each command with their connect and response timeouts (1 s and 2 s; a
//! connection you build yourself has the timeouts you gave it). The
//! connection re-establishes itself after the server (or a cluster node)
//! restarts; calls made while it is down fail quickly, and a call or two
//! right after it comes back may still fail while the connection is
//! rebuilt. A call that fails or times out after the command was sent may
//! or may not have been applied. Server-side scripts are cached by Redis;
//! after a restart the store reloads them by itself. Requires Redis 5 or
//! newer (tested with 7.0).
//!
//! # TLS
//!
//! With the feature `redis-rustls`, [`RedisStore::connect`] and
//! [`RedisStore::connect_cluster`] accept `rediss://` URLs (TLS through
//! rustls with its `ring` provider). The server's certificate must be valid
//! for the host in the URL and signed by a CA of the system trust store,
//! which includes what `SSL_CERT_FILE` and `SSL_CERT_DIR` name: pointing
//! `SSL_CERT_FILE` at a private CA's certificate is enough for `connect`,
//! and for the local cache's own connection (see
//! [`with_local_cache`](RedisStore::with_local_cache)). An untrusted
//! certificate fails the connect with
//! `invalid peer certificate: UnknownIssuer`.
//!
//! To trust a private CA in code only, or to present a client certificate
//! (mutual TLS), build the client yourself and hand its connection to
//! [`RedisStore::new`] (no local cache then); on a cluster,
//! `redis::cluster::ClusterClientBuilder::certs` takes the same
//! certificates:
//!
//! ```no_run
//! # #[cfg(feature = "redis-rustls")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use redis::TlsCertificates;
//! use typed_sessions::store::redis::RedisStore;
//!
//! let client = redis::Client::build_with_tls(
//!     "rediss://redis.internal:6380/",
//!     TlsCertificates {
//!         client_tls: None,
//!         root_cert: Some(std::fs::read("private-ca.pem")?),
//!     },
//! )?;
//! let manager = redis::aio::ConnectionManager::new(client).await?;
//! let store = RedisStore::new(manager);
//! # Ok(()) }
//! ```
//!
//! Tested against a TLS-only `redis-server` (single server; TLS on a
//! cluster is the redis crate's and untested here).

/// The `redis` crate this module's public API uses, so callers need not
/// depend on a matching version of it themselves.
pub use ::redis;

use std::io::Write as _;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Cmd, RedisError, RedisWrite, Script, ToRedisArgs, Value};

use super::{
    Bytes, EXPIRY_FIELD, FORWARD_WINDOW, FieldKey, FieldWrite, IndexKey, IndexedSession,
    LoadedFields, LoadedNamespace, SessionStore, StoreError,
};
use super::{from_unix_millis, unix_millis};
use crate::id::SessionId;

pub mod cache;
use cache::{CacheStats, LocalCache, Origin};
pub mod index;
pub mod namespace;

/// The default key prefix.
const DEFAULT_PREFIX: &str = "session:";
/// The bound on opening a connection in [`RedisStore::connect`] and
/// [`RedisStore::connect_cluster`].
const CONNECT_BOUND: Duration = Duration::from_secs(3);
/// Connection timeouts of the connections [`RedisStore::connect`] and
/// [`RedisStore::connect_cluster`] open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts of a cluster `move_to` that keeps meeting concurrent writes
/// (the first optimistic, the others with writes held off).
const MOVE_ATTEMPTS: u32 = 3;
/// How long a cluster `move_to` may hold off writes to the old id while it
/// finishes: long enough for two round trips, short enough that a mover that
/// died does not block writers for long.
const MOVE_LEASE: Duration = Duration::from_secs(1);
/// Pauses of an update waiting for a held-off session (see [`MOVE_LEASE`]).
const BUSY_PAUSE_FIRST: Duration = Duration::from_millis(2);
const BUSY_PAUSE_MAX: Duration = Duration::from_millis(50);
/// How long an update waits in all for held-off sessions before it gives
/// up: longer than every lease of one move together, so it only ends a wait
/// on a lease that no mover wrote (a `__frozen` set from outside).
const BUSY_WAIT_MAX: Duration = Duration::from_secs(4);

/// The hash field that marks a session and holds its creation time. Stored
/// field names always contain a dot, this one does not.
const MARKER: &str = "__created";

/// The hash field that holds the expiry written with `PEXPIREAT`, so a load
/// reads it with the fields (Unix milliseconds).
const EXPIRES: &str = "__expires";

/// The hash field with which a cluster move holds off writes (a lease end,
/// server Unix milliseconds); never copied to the new key.
const FROZEN: &str = "__frozen";

/// The hash fields of the forward a move leaves at the old key: the new id,
/// and the end of the forward window (Unix milliseconds). The old key then
/// has no marker, so it is not a session.
const FORWARD: &str = "__forward";
const FORWARD_UNTIL: &str = "__forward_until";

/// ARGV: creation time, expiry, then field/value pairs. One `HSET` of
/// everything (in chunks of 1000 arguments beyond that: Lua's `unpack` has a
/// limit).
static CREATE: LazyLock<Script> = LazyLock::new(|| Script::new(CREATE_LUA));
const CREATE_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = #ARGV
if n <= 1000 then
  redis.call('HSET', KEYS[1], '__created', ARGV[1], '__expires', ARGV[2], unpack(ARGV, 3, n))
else
  redis.call('HSET', KEYS[1], '__created', ARGV[1], '__expires', ARGV[2])
  for i = 3, n, 1000 do redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, n))) end
end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
";

/// ARGV: expiry (empty: keep the stored one), the number n of fields to
/// set, n field/value pairs, then the fields to remove. 1 written, 0 not a
/// session, 2 busy: while `__frozen`
/// holds a time in the future nothing is written (see the module docs). A
/// write clears `__moving`. 3 written, and the expiry moved past
/// `__indexed_until`: the session's index keys need a longer life (see
/// [`index`]).
static UPDATE: LazyLock<Script> = LazyLock::new(|| Script::new(UPDATE_LUA));
const UPDATE_LUA: &str = r"
local m = redis.call('HMGET', KEYS[1], '__created', '__frozen', '__moving', '__indexed_until')
if not m[1] then return 0 end
if m[2] then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) < (tonumber(m[2]) or 0) then
    return 2
  end
  redis.call('HDEL', KEYS[1], '__frozen')
end
local n = #ARGV
local last = 2 + 2 * tonumber(ARGV[2])
local expires = ARGV[1] ~= ''
if expires and last <= 1000 then
  redis.call('HSET', KEYS[1], '__expires', ARGV[1], unpack(ARGV, 3, last))
else
  if expires then redis.call('HSET', KEYS[1], '__expires', ARGV[1]) end
  for i = 3, last, 1000 do redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, last))) end
end
for i = last + 1, n, 1000 do redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, n))) end
if m[3] and n > 2 then redis.call('HDEL', KEYS[1], '__moving') end
if expires then
  redis.call('PEXPIREAT', KEYS[1], ARGV[1])
  if m[4] and tonumber(ARGV[1]) > (tonumber(m[4]) or 0) then return 3 end
end
return 1
";

/// ARGV: expiry. 1 touched, 0 not a session, 3 touched past
/// `__indexed_until` (as for [`UPDATE`]).
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local m = redis.call('HMGET', KEYS[1], '__created', '__indexed_until')
if not m[1] then return 0 end
redis.call('HSET', KEYS[1], '__expires', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
if m[2] and tonumber(ARGV[1]) > (tonumber(m[2]) or 0) then return 3 end
return 1
",
    )
});

/// KEYS: from, to (one slot). ARGV: expiry, the new id, the end of the
/// forward window. 1 moved (leaving the forward at `from`), 0 `from`
/// missing, -1 `to` exists, 2 `from` has index entries (nothing done: the
/// move must take its index keys along, see [`index`]).
static RENAME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local m = redis.call('HMGET', KEYS[1], '__created', '__indexed_until')
if not m[1] then return 0 end
if m[2] then return 2 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], '__expires', ARGV[1])
redis.call('PEXPIREAT', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], '__forward', ARGV[2], '__forward_until', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
",
    )
});

/// Cluster move, step 1 on `from`. ARGV: token, lease in ms (0: writes go
/// on). All fields, or nil.
static COPY_OUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], '__created') == 0 then return false end
redis.call('HSET', KEYS[1], '__moving', ARGV[1])
local lease = tonumber(ARGV[2])
if lease > 0 then
  local now = redis.call('TIME')
  local until_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + lease
  redis.call('HSET', KEYS[1], '__frozen', string.format('%.0f', until_ms))
end
return redis.call('HGETALL', KEYS[1])
",
    )
});

/// Cluster move, step 2 on `to`. ARGV: token, expiry, field/value pairs (the
/// copy, which carries the token; without `__frozen` and `__expires`). 1
/// created (or already created by this move), 0 `to` exists.
static COPY_IN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], '__moving') == ARGV[1] then return 1 end
  return 0
end
local n = #ARGV
if n <= 1000 then
  redis.call('HSET', KEYS[1], '__expires', ARGV[2], unpack(ARGV, 3, n))
else
  redis.call('HSET', KEYS[1], '__expires', ARGV[2])
  for i = 3, n, 1000 do redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, n))) end
end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Cluster move, step 3 on `from`. ARGV: token, the new id, the end of the
/// forward window. 1 done (now, or by an earlier attempt of this step), 0
/// written meanwhile, -1 gone. The tombstone it leaves carries the forward.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], '__moving') == ARGV[1] then
  if redis.call('HEXISTS', KEYS[1], '__created') == 1 then
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], '__moving', ARGV[1], '__forward', ARGV[2], '__forward_until', ARGV[3])
    redis.call('PEXPIRE', KEYS[1], 60000)
  end
  return 1
end
if redis.call('HEXISTS', KEYS[1], '__created') == 1 then return 0 end
return -1
",
    )
});

/// Lets writes to `from` go on after a failed cluster move, if it still
/// carries the move's token.
static THAW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], '__moving') == ARGV[1] then return redis.call('HDEL', KEYS[1], '__frozen') end
return 0
",
    )
});

/// Deletes the copy a cluster move made, if it still carries the move's token.
static DISCARD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], '__moving') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// An `EVALSHA` of `script` with `keys` keys, to which the caller adds the
/// keys and then the arguments. Built as one command, so every argument is
/// written once, straight into the command's buffer.
fn evalsha(script: &Script, keys: usize) -> Cmd {
    let mut command = redis::cmd("EVALSHA");
    command.arg(script.get_hash()).arg(keys);
    command
}

/// A session's Redis key, `{prefix}{id}`, written into a command without
/// building a `String` first.
struct SessionKey<'a>(&'a str, &'a SessionId);

impl ToRedisArgs for SessionKey<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = arg.write_all(self.0.as_bytes());
        let _ = arg.write_all(self.1.as_str().as_bytes());
    }
}

/// The hash field of one session field, `{namespace}.{field}`, written into
/// a command without building a `String` first.
struct HashField<'a>(&'a str, &'a str);

impl ToRedisArgs for HashField<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = arg.write_all(self.0.as_bytes());
        let _ = arg.write_all(b".");
        let _ = arg.write_all(self.1.as_bytes());
    }
}

impl<'a> From<FieldKey<'a>> for HashField<'a> {
    fn from(key: FieldKey<'a>) -> Self {
        Self(key.namespace, key.field)
    }
}

/// A connection [`RedisStore`] runs on: one server or a cluster.
///
/// Both kinds reconnect by themselves and are cheap to clone. Build one from
/// a connection you configured yourself with `From`:
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use typed_sessions::store::redis::RedisStore;
///
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let manager = redis::aio::ConnectionManager::new(client).await?;
/// let store = RedisStore::new(manager).with_prefix("myapp:session:");
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum RedisConnection {
    /// One server, through a [`ConnectionManager`].
    Single(ConnectionManager),
    /// Redis Cluster, through the async [`ClusterConnection`].
    Cluster(ClusterConnection),
}

impl From<ConnectionManager> for RedisConnection {
    fn from(connection: ConnectionManager) -> Self {
        Self::Single(connection)
    }
}

impl From<ClusterConnection> for RedisConnection {
    fn from(connection: ClusterConnection) -> Self {
        Self::Cluster(connection)
    }
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "Single",
            Self::Cluster(_) => "Cluster",
        })
    }
}

/// Sessions in Redis: one hash per session, one hash field per session
/// field; a load is one `HMGET`, every write one atomic script. Works on a
/// single server and on Redis Cluster.
///
/// See the [module docs](self) for the key layout, which operations are
/// atomic, limits and failure behaviour.
///
/// ```no_run
/// # async fn run() -> Result<(), typed_sessions::StoreError> {
/// use typed_sessions::store::redis::RedisStore;
///
/// let single = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// let cluster = RedisStore::connect_cluster(&[
///     "redis://127.0.0.1:7000/",
///     "redis://127.0.0.1:7001/",
///     "redis://127.0.0.1:7002/",
/// ])
/// .await?
/// .with_prefix("myapp:session:");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: RedisConnection,
    prefix: String,
    /// How [`connect`](Self::connect) or
    /// [`connect_cluster`](Self::connect_cluster) reached the server, for
    /// the connection of a local cache.
    origin: Option<Origin>,
    cache: Option<Arc<LocalCache>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("connection", &self.connection)
            .field("prefix", &self.prefix)
            .field("cache", &self.cache)
            .finish()
    }
}

/// Which branch a cluster-move step took.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Done,
    Retry,
    Gone,
}

impl RedisStore {
    /// A store on an existing connection ([`ConnectionManager`] or async
    /// [`ClusterConnection`]), with the default prefix `session:`.
    ///
    /// The store adds no timeout of its own (the session layer bounds every
    /// store call); give the connection the response timeout you want for
    /// calls made outside the layer.
    pub fn new(connection: impl Into<RedisConnection>) -> Self {
        Self {
            connection: connection.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            origin: None,
            cache: None,
        }
    }

    /// Connects to one Redis server, e.g. `redis://127.0.0.1:6379/`
    /// (`rediss://…` with the feature `redis-rustls`, see [TLS](self#tls)).
    ///
    /// The connection manager reconnects by itself; connecting times out
    /// after 1 s, a response after 2 s.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(StoreError::backend)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let manager = tokio::time::timeout(
            CONNECT_BOUND,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StoreError::Timeout(CONNECT_BOUND))?
        .map_err(StoreError::backend)?;
        let mut store = Self::new(manager);
        store.origin = Some(Origin::Single(url.to_owned()));
        Ok(store)
    }

    /// Connects to a Redis Cluster through any of its nodes, e.g.
    /// `["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"]`.
    ///
    /// The cluster connection follows slot moves and reconnects to nodes by
    /// itself; connecting to a node times out after 1 s, a response after
    /// 2 s (per attempt; a request is retried up to 3 times).
    pub async fn connect_cluster(urls: &[&str]) -> Result<Self, StoreError> {
        let client = ClusterClientBuilder::new(urls.iter().copied())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()
            .map_err(StoreError::backend)?;
        let connection = tokio::time::timeout(CONNECT_BOUND, client.get_async_connection())
            .await
            .map_err(|_| StoreError::Timeout(CONNECT_BOUND))?
            .map_err(StoreError::backend)?;
        let mut store = Self::new(connection);
        store.origin = Some(Origin::Cluster(
            urls.iter().map(|url| (*url).to_owned()).collect(),
        ));
        Ok(store)
    }

    /// Sets the key prefix (default `session:`); a session lives at
    /// `{prefix}{id}`. On a cluster, a prefix with a hash tag (`{...}`) puts
    /// every session in one slot, on one node.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Keeps loaded sessions in a local cache of at most `max_bytes`
    /// (estimated), which Redis keeps coherent with server-assisted
    /// client-side caching: a load of a session this instance holds costs
    /// no round trip. Off by default. See the [`cache`] module for how it
    /// works.
    ///
    /// # Consistency
    ///
    /// A write made through another store (another application instance)
    /// becomes visible here once Redis' invalidation for it has arrived on
    /// this store's connection, normally well under a millisecond after the
    /// write returned; until then a load may still return the value from
    /// before that write. This store's own writes are visible to its own
    /// loads at once. Writes always go to Redis through the same atomic
    /// scripts as without the cache, so they are never lost and never bring
    /// a deleted or moved session back, whatever the cache holds. An entry
    /// is never served past its expiry. Whenever invalidations may have been
    /// missed (the connection lost, a reconnect, a server restart or
    /// failover, `FLUSHALL`), the whole cache is dropped before anything is
    /// served again. A connection that goes silent without closing (a
    /// network partition) may hold invalidations back: the store pings it
    /// every second and serves from the cache only within 3 s of its last
    /// answer.
    ///
    /// The cache opens a RESP3 connection of its own (on a cluster, to every
    /// node), turns on `CLIENT TRACKING ON NOLOOP` there, and sends every
    /// command of the store through it; each write script runs inside a
    /// short transaction that keeps the store's own writes from
    /// invalidating its entries (see the [`cache`] module). It needs a store
    /// made by [`connect`](Self::connect) or
    /// [`connect_cluster`](Self::connect_cluster), which know how to open
    /// that connection; on a store made by [`new`](Self::new) this logs a
    /// warning and leaves the cache off.
    #[must_use]
    pub fn with_local_cache(mut self, max_bytes: usize) -> Self {
        match &self.origin {
            Some(origin) => self.cache = Some(LocalCache::new(origin.clone(), max_bytes)),
            None => tracing::warn!(
                "RedisStore::with_local_cache needs a store made by connect or connect_cluster; \
                 running without the cache"
            ),
        }
        self
    }

    /// What the local cache has done so far; `None` without one (see
    /// [`with_local_cache`](Self::with_local_cache)).
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|cache| cache.stats())
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection, e.g. to run other commands on it.
    pub fn connection(&self) -> &RedisConnection {
        &self.connection
    }

    /// The Redis key of a session.
    pub fn key(&self, id: &SessionId) -> String {
        format!("{}{}", self.prefix, id.as_str())
    }

    /// The Redis key of a session, as a command argument.
    fn key_arg<'a>(&'a self, id: &'a SessionId) -> SessionKey<'a> {
        SessionKey(&self.prefix, id)
    }

    /// Sends one command.
    async fn query(&self, command: &Cmd) -> Result<Value, RedisError> {
        let result = match self.active_connection().await? {
            RedisConnection::Single(c) => command.query_async(&mut c.clone()).await,
            RedisConnection::Cluster(c) => command.query_async(&mut c.clone()).await,
        };
        if let (Some(cache), Err(error)) = (&self.cache, &result) {
            cache.observe(error);
        }
        result
    }

    /// The connection commands go through: the local cache's tracked one
    /// when there is a cache.
    async fn active_connection(&self) -> Result<&RedisConnection, RedisError> {
        match &self.cache {
            Some(cache) => cache.connection().await,
            None => Ok(&self.connection),
        }
    }

    /// Sends one command built by [`evalsha`] for `script`; when the server
    /// does not have the script (first use, or after a restart), loads it
    /// and sends the command again.
    async fn eval(&self, script: &Script, command: &Cmd) -> Result<Value, StoreError> {
        // Only the writes after which the cache keeps its entry need the
        // tracked transaction (see the `cache` module).
        if let Some(cache) = &self.cache
            && (std::ptr::eq(script, &*UPDATE) || std::ptr::eq(script, &*TOUCH))
        {
            return self.eval_tracked(cache, script, command).await;
        }
        match self.query(command).await {
            Err(error) if error.code() == Some("NOSCRIPT") => {
                let loaded = match self.active_connection().await.map_err(backend)? {
                    RedisConnection::Single(c) => script.load_async(&mut c.clone()).await,
                    RedisConnection::Cluster(c) => script.load_async(&mut c.clone()).await,
                };
                loaded.map_err(backend)?;
                self.query(command).await.map_err(backend)
            }
            result => result.map_err(backend),
        }
    }

    /// Runs a script that answers with an integer.
    async fn eval_int(&self, script: &Script, command: &Cmd) -> Result<i64, StoreError> {
        match self.eval(script, command).await? {
            Value::Int(n) => Ok(n),
            other => Err(unexpected("an integer", &other)),
        }
    }

    /// The expiry of a session written before `__expires` existed, from the
    /// key's `PTTL` and the application's clock; `None` when the key is gone.
    async fn legacy_expiry(&self, id: &SessionId) -> Result<Option<SystemTime>, StoreError> {
        let mut command = redis::cmd("PTTL");
        command.arg(self.key_arg(id));
        let now = SystemTime::now();
        match self.query(&command).await.map_err(backend)? {
            Value::Int(-2) => Ok(None),
            // No expiry on the key: something outside the store removed it.
            Value::Int(-1) => Ok(Some(from_unix_millis(i64::MAX.unsigned_abs()))),
            Value::Int(ms) if ms >= 0 => Ok(Some(
                now.checked_add(Duration::from_millis(ms.unsigned_abs()))
                    .unwrap_or(now),
            )),
            other => Err(unexpected("a PTTL", &other)),
        }
    }

    /// The creation and expiry times of a session from its marker and
    /// `__expires` as read; `None` when it is not a live session.
    async fn times(
        &self,
        id: &SessionId,
        created: &Value,
        expires: &Value,
    ) -> Result<Option<(SystemTime, SystemTime)>, StoreError> {
        if matches!(created, Value::Nil) {
            return Ok(None);
        }
        let Some(created_at) = parse_millis(created) else {
            tracing::warn!(
                session = %id.log_tag(),
                "session marker `{MARKER}` does not hold a creation time"
            );
            return Err(StoreError::Malformed(format!(
                "session marker `{MARKER}` does not hold a creation time in milliseconds"
            )));
        };
        let expires_at = if matches!(expires, Value::Nil) {
            // Written before `__expires` existed: the key's expiry says it.
            match self.legacy_expiry(id).await? {
                Some(expires_at) => expires_at,
                None => return Ok(None),
            }
        } else {
            let Some(expires_at) = parse_millis(expires) else {
                tracing::warn!(
                    session = %id.log_tag(),
                    "session field `{EXPIRES}` does not hold an expiry time"
                );
                return Err(StoreError::Malformed(format!(
                    "session field `{EXPIRES}` does not hold an expiry time in milliseconds"
                )));
            };
            expires_at
        };
        // Past by the application's clock while Redis still holds the key:
        // something moved the key's expiry without `__expires` (an earlier
        // version during a rolling upgrade), so the key's expiry decides.
        let expires_at = if expires_at <= SystemTime::now() {
            match self.legacy_expiry(id).await? {
                Some(expires_at) if expires_at > SystemTime::now() => expires_at,
                _ => return Ok(None),
            }
        } else {
            expires_at
        };
        Ok(Some((created_at, expires_at)))
    }

    /// A cross-slot move on a cluster: copy out, copy in, finish; again
    /// while concurrent writes to `from` keep invalidating the copy.
    async fn move_across_slots(
        &self,
        from_key: &str,
        to_key: &str,
        from: &SessionId,
        to: &SessionId,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        for attempt in 1..=MOVE_ATTEMPTS {
            // The first attempt lets writes to `from` go on (and carries
            // them over by trying again); later ones hold them off briefly.
            let lease = if attempt == 1 { None } else { Some(MOVE_LEASE) };
            let token = SessionId::generate().map_err(StoreError::backend)?;
            let token = token.as_str();
            let Some(fields) = self.copy_out(from_key, token, lease).await? else {
                return Ok(false);
            };
            let moved_index = match self.index_copy(to, expires_at, &fields).await {
                Ok(moved_index) => moved_index,
                Err(error) => {
                    self.thaw(from_key, token, lease).await;
                    return Err(error);
                }
            };
            let until = moved_index.as_ref().map(|moved| moved.until);
            let result =
                self.copy_in_and_finish(from_key, to_key, to, token, expires_at, &fields, until);
            let step = match result.await {
                Ok(step) => step,
                Err(error) => {
                    self.thaw(from_key, token, lease).await;
                    return Err(error);
                }
            };
            match step {
                Step::Done => {
                    if let Some(moved_index) = &moved_index {
                        self.index_moved(from, moved_index).await;
                    }
                    return Ok(true);
                }
                Step::Retry => {
                    tracing::debug!(
                        from = %from.log_tag(), to = %to.log_tag(), attempt,
                        "session written during a cluster move; copying again"
                    );
                    self.discard(to_key, token).await?;
                }
                Step::Gone => {
                    tracing::debug!(
                        from = %from.log_tag(), to = %to.log_tag(),
                        "session deleted during a cluster move; discarding the copy"
                    );
                    self.discard(to_key, token).await?;
                    return Ok(false);
                }
            }
        }
        tracing::warn!(
            from = %from.log_tag(),
            "cluster move gave up: the session kept being written"
        );
        Err(StoreError::Contention(MOVE_ATTEMPTS))
    }

    /// Lets writes to `from` go on after a failed cluster move that held
    /// them off. Best effort; the lease runs out by itself anyway.
    async fn thaw(&self, from_key: &str, token: &str, lease: Option<Duration>) {
        if lease.is_some() {
            let mut thaw = evalsha(&THAW, 1);
            thaw.arg(from_key).arg(token);
            let _ = self.eval(&THAW, &thaw).await;
        }
    }

    /// Cluster move, steps 2 and 3.
    #[allow(clippy::too_many_arguments)]
    async fn copy_in_and_finish(
        &self,
        from_key: &str,
        to_key: &str,
        to: &SessionId,
        token: &str,
        expires_at: u64,
        fields: &[Value],
        indexed_until: Option<u64>,
    ) -> Result<Step, StoreError> {
        if !self
            .copy_in(to_key, token, expires_at, fields, indexed_until)
            .await?
        {
            return Err(StoreError::IdExists);
        }
        self.finish(from_key, token, to).await
    }

    /// Cluster move, step 1: marks `from` with `token` (and with a lease,
    /// holds off writes to it until the lease ends) and returns all of its
    /// hash fields and values, flat; `None` when it is not a session.
    async fn copy_out(
        &self,
        from_key: &str,
        token: &str,
        lease: Option<Duration>,
    ) -> Result<Option<Vec<Value>>, StoreError> {
        let lease_ms = lease.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut command = evalsha(&COPY_OUT, 1);
        command.arg(from_key).arg(token).arg(lease_ms);
        match self.eval(&COPY_OUT, &command).await? {
            Value::Nil => Ok(None),
            Value::Array(items) if items.len() % 2 == 0 => Ok(Some(items)),
            other => Err(unexpected("the session's fields", &other)),
        }
    }

    /// Cluster move, step 2: creates `to` from the copy, unless it exists.
    /// The lease, the old expiry and the old `__indexed_until` are not
    /// copied; `indexed_until` is the new one.
    async fn copy_in(
        &self,
        to_key: &str,
        token: &str,
        expires_at: u64,
        fields: &[Value],
        indexed_until: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut command = evalsha(&COPY_IN, 1);
        command.arg(to_key).arg(token).arg(expires_at);
        for pair in fields.chunks_exact(2) {
            let (Value::BulkString(name), Value::BulkString(value)) = (&pair[0], &pair[1]) else {
                return Err(StoreError::Malformed(
                    "a session hash field that is not a string".into(),
                ));
            };
            if name != FROZEN.as_bytes()
                && name != EXPIRES.as_bytes()
                && name != index::INDEXED_UNTIL.as_bytes()
            {
                command.arg(name.as_slice()).arg(value.as_slice());
            }
        }
        if let Some(until) = indexed_until {
            command.arg(index::INDEXED_UNTIL).arg(until);
        }
        Ok(self.eval_int(&COPY_IN, &command).await? == 1)
    }

    /// Cluster move, step 3: deletes `from` if nothing wrote to it since
    /// step 1.
    async fn finish(
        &self,
        from_key: &str,
        token: &str,
        to: &SessionId,
    ) -> Result<Step, StoreError> {
        let mut command = evalsha(&FINISH, 1);
        command
            .arg(from_key)
            .arg(token)
            .arg(to.as_str())
            .arg(forward_until());
        Ok(match self.eval_int(&FINISH, &command).await? {
            1 => Step::Done,
            0 => Step::Retry,
            _ => Step::Gone,
        })
    }

    /// Deletes the copy a cluster move made, if it is still that copy.
    async fn discard(&self, to_key: &str, token: &str) -> Result<(), StoreError> {
        let mut command = evalsha(&DISCARD, 1);
        command.arg(to_key).arg(token);
        self.eval_int(&DISCARD, &command).await.map(drop)
    }
}

/// A Redis error as a store error: a key of the wrong type is data the store
/// cannot read, everything else is the backend's failure.
fn backend(error: RedisError) -> StoreError {
    if error.code() == Some("WRONGTYPE") {
        tracing::warn!("a session key holds something other than a hash");
        StoreError::Malformed(format!("session key is not a hash: {error}"))
    } else {
        StoreError::backend(error)
    }
}

/// One field's value in a reply: absent, or its bytes.
fn field_value(value: Value) -> Result<Option<Bytes>, StoreError> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => Ok(Some(bytes.into())),
        other => Err(unexpected("a field value", &other)),
    }
}

fn unexpected(what: &str, value: &Value) -> StoreError {
    let kind = match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a string",
        Value::Array(_) => "an array",
        _ => "another kind of reply",
    };
    StoreError::Malformed(format!("expected {what} from Redis, got {kind}"))
}

/// A time the store wrote as decimal Unix milliseconds; `None` for anything
/// else.
fn parse_millis(value: &Value) -> Option<SystemTime> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .map(from_unix_millis),
        _ => None,
    }
}

/// The writes that take effect: for a field written several times, only the
/// last. Quadratic in the number of writes, which is the number of fields a
/// request changed, and allocates nothing.
fn effective<'w, 'a>(writes: &'w [FieldWrite<'a>]) -> impl Iterator<Item = &'w FieldWrite<'a>> {
    writes
        .iter()
        .enumerate()
        .filter(|(i, write)| !writes[i + 1..].iter().any(|later| later.key == write.key))
        .map(|(_, write)| write)
}

/// Milliseconds for `PEXPIREAT` (and `__expires`), within what Redis
/// accepts.
fn expiry_millis(time: SystemTime) -> u64 {
    // Far beyond any useful expiry, and far from overflowing Redis' i64.
    const MAX: u64 = 1 << 52;
    unix_millis(time).min(MAX)
}

/// The operations themselves, straight to Redis; the [`SessionStore`]
/// impl puts the local cache, if any, in front of them.
impl RedisStore {
    async fn load_direct(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.key_arg(id))
            .arg(MARKER)
            .arg(EXPIRES)
            .arg(HashField::from(EXPIRY_FIELD));
        for field in fields {
            command.arg(HashField(namespace, field));
        }
        let items = match self.query(&command).await.map_err(backend)? {
            Value::Array(items) if items.len() == fields.len() + 3 => items,
            Value::Array(items) => {
                return Err(StoreError::Malformed(format!(
                    "asked Redis for {} hash fields, got {}",
                    fields.len() + 3,
                    items.len()
                )));
            }
            other => return Err(unexpected("the session's hash fields", &other)),
        };
        let mut items = items.into_iter();
        let Some((created_at, expires_at, expiry)) = self.session_head(id, &mut items).await?
        else {
            return Ok(None);
        };
        let values = items.map(field_value).collect::<Result<_, _>>()?;
        Ok(Some(LoadedFields {
            expiry,
            created_at,
            expires_at,
            values,
        }))
    }

    /// The first three values of a load's reply (marker, `__expires`, the
    /// remembered expiry): the session's times and remembered expiry, or
    /// `None` when the marker says there is no live session.
    async fn session_head(
        &self,
        id: &SessionId,
        items: &mut std::vec::IntoIter<Value>,
    ) -> Result<Option<(SystemTime, SystemTime, Option<Bytes>)>, StoreError> {
        let (Some(created), Some(expires), Some(expiry)) =
            (items.next(), items.next(), items.next())
        else {
            return Err(StoreError::Malformed("a short load reply".into()));
        };
        let Some((created_at, expires_at)) = self.times(id, &created, &expires).await? else {
            return Ok(None);
        };
        Ok(Some((created_at, expires_at, field_value(expiry)?)))
    }

    async fn create_direct(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        if index::sets_entry(writes) {
            return self
                .create_indexed(id, writes, created_at, expires_at)
                .await;
        }
        let mut command = evalsha(&CREATE, 1);
        command.arg(self.key_arg(id));
        self.create_args(&mut command, writes, created_at, expires_at);
        match self.eval_int(&CREATE, &command).await? {
            1 => Ok(()),
            _ => Err(StoreError::IdExists),
        }
    }

    /// `CREATE`'s ARGV.
    fn create_args(
        &self,
        command: &mut Cmd,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) {
        command
            .arg(unix_millis(created_at))
            .arg(expiry_millis(expires_at));
        for write in effective(writes) {
            if let Some(value) = write.value {
                command.arg(HashField::from(write.key)).arg(value);
            }
        }
    }

    async fn update_direct(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let (script, command, index_keys, members) = if index::sets_entry(writes) {
            match self.update_indexed_command(id, writes, expires_at).await? {
                Some((command, keys, members)) => (&*index::UPDATE_INDEXED, command, keys, members),
                None => return Ok(false),
            }
        } else {
            let mut command = evalsha(&UPDATE, 1);
            command.arg(self.key_arg(id));
            self.update_args(&mut command, writes, expires_at);
            (&*UPDATE, command, Vec::new(), 0)
        };
        let mut pause = BUSY_PAUSE_FIRST;
        let mut waited = Duration::ZERO;
        let mut busy: u32 = 0;
        loop {
            let (status, card) = self.indexed_reply(script, &command).await?;
            match status {
                1 | 3 => {
                    if status == 3 {
                        self.extend_index(id).await?;
                    }
                    self.after_index_write(&index_keys, members.max(card))
                        .await?;
                    return Ok(true);
                }
                // A cluster move is finishing: wait for it (it ends, or its
                // lease does, within MOVE_LEASE).
                2 if waited < BUSY_WAIT_MAX => {
                    tracing::debug!(session = %id.log_tag(), "session busy moving; waiting");
                    tokio::time::sleep(pause).await;
                    waited += pause;
                    busy += 1;
                    pause = (pause * 2).min(BUSY_PAUSE_MAX);
                }
                2 => {
                    tracing::warn!(
                        session = %id.log_tag(),
                        "session held off for writes longer than any move does; giving up"
                    );
                    return Err(StoreError::Contention(busy));
                }
                _ => return Ok(false),
            }
        }
    }

    /// `UPDATE`'s ARGV.
    fn update_args(
        &self,
        command: &mut Cmd,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) {
        let sets = effective(writes).filter(|w| w.value.is_some()).count();
        match expires_at {
            Some(expires_at) => command.arg(expiry_millis(expires_at)),
            None => command.arg(""),
        };
        command.arg(sets);
        for write in effective(writes) {
            if let Some(value) = write.value {
                command.arg(HashField::from(write.key)).arg(value);
            }
        }
        for write in effective(writes) {
            if write.value.is_none() {
                command.arg(HashField::from(write.key));
            }
        }
    }

    async fn touch_direct(
        &self,
        id: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let mut command = evalsha(&TOUCH, 1);
        command.arg(self.key_arg(id)).arg(expiry_millis(expires_at));
        match self.eval_int(&TOUCH, &command).await? {
            1 => Ok(true),
            3 => {
                self.extend_index(id).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_direct(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key_arg(id));
        self.query(&command).await.map(drop).map_err(backend)
    }

    async fn move_to_direct(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let from_key = self.key(from);
        let to_key = self.key(to);
        let expires_at = expiry_millis(expires_at);
        let one_slot = match self.connection {
            RedisConnection::Single(_) => true,
            RedisConnection::Cluster(_) => Slot::for_key(&from_key) == Slot::for_key(&to_key),
        };
        if !one_slot {
            return self
                .move_across_slots(&from_key, &to_key, from, to, expires_at)
                .await;
        }
        let mut command = evalsha(&RENAME, 2);
        command
            .arg(&from_key)
            .arg(&to_key)
            .arg(expires_at)
            .arg(to.as_str())
            .arg(forward_until());
        match self.eval_int(&RENAME, &command).await? {
            1 => Ok(true),
            0 => Ok(false),
            2 => self.move_indexed(from, to, expires_at).await,
            _ => Err(StoreError::IdExists),
        }
    }

    async fn forwarded_direct(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.key_arg(id))
            .arg(MARKER)
            .arg(FORWARD)
            .arg(FORWARD_UNTIL);
        let Value::Array(items) = self.query(&command).await.map_err(backend)? else {
            return Err(StoreError::Malformed("a short HMGET reply".into()));
        };
        let [Value::Nil, Value::BulkString(to), until] = items.as_slice() else {
            // A live session (then nothing forwards from it) or no forward.
            return Ok(None);
        };
        if parse_millis(until).is_none_or(|until| until <= SystemTime::now()) {
            return Ok(None);
        }
        let to = std::str::from_utf8(to).ok().and_then(SessionId::parse);
        if to.is_none() {
            tracing::warn!(session = %id.log_tag(), "unreadable forward `{FORWARD}` ignored");
        }
        Ok(to)
    }
}

/// The end of the forward window of a move made now, in Unix milliseconds
/// by the application's clock (as `__expires`).
fn forward_until() -> u64 {
    expiry_millis(SystemTime::now() + FORWARD_WINDOW)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        match &self.cache {
            Some(cache) => self.cached_load(cache, id, namespace, fields).await,
            None => self.load_direct(id, namespace, fields).await,
        }
    }

    /// Always read from Redis: the near-cache holds typed loads only. See
    /// [`namespace`] for how the namespace's fields are found.
    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        self.load_namespace_direct(id, namespace).await
    }

    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        match &self.cache {
            Some(cache) => {
                self.cached_create(cache, id, writes, created_at, expires_at)
                    .await
            }
            None => self.create_direct(id, writes, created_at, expires_at).await,
        }
    }

    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        match &self.cache {
            Some(cache) => self.cached_update(cache, id, writes, expires_at).await,
            None => self.update_direct(id, writes, expires_at).await,
        }
    }

    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        match &self.cache {
            Some(cache) => self.cached_touch(cache, id, expires_at).await,
            None => self.touch_direct(id, expires_at).await,
        }
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        match &self.cache {
            Some(cache) => self.cached_delete(cache, id).await,
            None => self.delete_direct(id).await,
        }
    }

    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        match &self.cache {
            Some(cache) => self.cached_move_to(cache, from, to, expires_at).await,
            None => self.move_to_direct(from, to, expires_at).await,
        }
    }

    /// Never cached: it reads the old id's forward, which is not a session.
    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        self.forwarded_direct(id).await
    }

    /// Always read from Redis (see [`index`]).
    async fn list_index(&self, index: IndexKey<'_>) -> Result<Vec<IndexedSession>, StoreError> {
        self.list_index_direct(index).await
    }

    /// See [`index`]: ended sessions leave every near-cache.
    async fn end_index(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        self.end_index_direct(index, except).await
    }
}

/// The steps of a cross-slot cluster move, interleaved with other calls in
/// the orders a real race can produce, and moves cancelled part way; the
/// `__expires` field: written with every expiry, missing (sessions of an
/// earlier version), garbage, or in the past; writes of more fields than one
/// Lua `unpack` takes. Needs the Redis (`REDIS_URL`, default 127.0.0.1:6379)
/// and the Redis Cluster (`REDIS_CLUSTER_URLS`, default 127.0.0.1:7000-7002)
/// of the test servers.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::FieldKey;

    async fn single() -> RedisStore {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
        RedisStore::connect(&url)
            .await
            .expect("the Redis of scripts/test-servers.sh")
            .with_prefix("test:unit:")
    }

    async fn cluster() -> RedisStore {
        let urls = std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
            "redis://127.0.0.1:7000/,redis://127.0.0.1:7001/,redis://127.0.0.1:7002/".into()
        });
        let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
        RedisStore::connect_cluster(&urls)
            .await
            .expect("the Redis Cluster of scripts/test-servers.sh")
            .with_prefix("test:unit:")
    }

    fn in_a_minute() -> SystemTime {
        SystemTime::now() + Duration::from_secs(60)
    }

    fn set<'a>(field: &'a str, value: &'a [u8]) -> FieldWrite<'a> {
        FieldWrite {
            key: FieldKey {
                namespace: "ns",
                field,
            },
            value: Some(value),
        }
    }

    /// A session and a fresh target id in different slots.
    async fn session(store: &RedisStore) -> (SessionId, SessionId, String, String) {
        loop {
            let (from, to) = (
                SessionId::generate().unwrap(),
                SessionId::generate().unwrap(),
            );
            let (from_key, to_key) = (store.key(&from), store.key(&to));
            if Slot::for_key(&from_key) == Slot::for_key(&to_key) {
                continue;
            }
            store
                .create(&from, &[set("a", b"1")], SystemTime::now(), in_a_minute())
                .await
                .unwrap();
            return (from, to, from_key, to_key);
        }
    }

    async fn value(store: &RedisStore, id: &SessionId, field: &str) -> Option<Option<Vec<u8>>> {
        let loaded = store.load(id, "ns", &[field]).await.unwrap()?;
        loaded
            .values
            .into_iter()
            .next()
            .map(|v| v.map(|b| b.to_vec()))
    }

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

    /// A command on the store's own connection.
    async fn raw(store: &RedisStore, args: &[&[u8]]) -> Value {
        let mut command = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for arg in &args[1..] {
            command.arg(*arg);
        }
        store.query(&command).await.unwrap()
    }

    /// `__expires` as stored, and the key's `PEXPIRETIME` (Redis 7).
    async fn stored_expiry(store: &RedisStore, key: &str) -> (Value, Value) {
        let field = raw(store, &[b"HGET", key.as_bytes(), EXPIRES.as_bytes()]).await;
        let time = raw(store, &[b"PEXPIRETIME", key.as_bytes()]).await;
        (field, time)
    }

    fn millis_text(time: SystemTime) -> Value {
        Value::BulkString(unix_millis(time).to_string().into_bytes())
    }

    fn millis_int(time: SystemTime) -> Value {
        Value::Int(i64::try_from(unix_millis(time)).unwrap())
    }

    fn in_secs(secs: u64) -> SystemTime {
        SystemTime::now() + Duration::from_secs(secs)
    }

    /// Every operation that sets the key's expiry writes the same
    /// milliseconds to `__expires`, and a load returns them exactly.
    async fn expires_field_follows_every_expiry_write(store: RedisStore) {
        let (from, to, from_key, to_key) = session(&store).await;
        let created = raw(&store, &[b"HGET", from_key.as_bytes(), MARKER.as_bytes()]).await;
        let created = parse_millis(&created).unwrap();
        let check = |key: String, id: SessionId, expires: SystemTime| {
            let store = store.clone();
            async move {
                assert_eq!(
                    stored_expiry(&store, &key).await,
                    (millis_text(expires), millis_int(expires))
                );
                let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
                assert_eq!(unix_millis(loaded.expires_at), unix_millis(expires));
                assert_eq!(loaded.created_at, created);
            }
        };
        let expires = in_secs(70);
        assert!(store.update(&from, &[], Some(expires)).await.unwrap());
        check(from_key.clone(), from.clone(), expires).await;
        let expires = in_secs(80);
        assert!(
            store
                .update(&from, &[set("b", b"2")], Some(expires))
                .await
                .unwrap()
        );
        check(from_key.clone(), from.clone(), expires).await;
        let expires = in_secs(90);
        assert!(store.touch(&from, expires).await.unwrap());
        check(from_key.clone(), from.clone(), expires).await;
        // A rename on a single server, a cross-slot copy on a cluster.
        let expires = in_secs(100);
        assert!(store.move_to(&from, &to, expires).await.unwrap());
        check(to_key, to.clone(), expires).await;
        // And a create.
        let id = SessionId::generate().unwrap();
        let expires = in_secs(110);
        store
            .create(&id, &[set("a", b"1")], created, expires)
            .await
            .unwrap();
        check(store.key(&id), id, expires).await;
    }

    #[tokio::test]
    async fn single_expires_field_follows_every_expiry_write() {
        expires_field_follows_every_expiry_write(single().await).await;
    }

    #[tokio::test]
    async fn cluster_expires_field_follows_every_expiry_write() {
        expires_field_follows_every_expiry_write(cluster().await).await;
    }

    /// A session an earlier version wrote (marker, fields and the key's
    /// expiry, no `__expires`) loads with the key's expiry, never as one
    /// that does not expire; its next write or touch adds `__expires`.
    async fn session_without_expires_field_loads_with_the_key_expiry(store: RedisStore) {
        let id = SessionId::generate().unwrap();
        let key = store.key(&id);
        let created = SystemTime::now() - Duration::from_secs(30);
        let expires = in_secs(45);
        let created_text = unix_millis(created).to_string();
        let expires_text = unix_millis(expires).to_string();
        let k = key.as_bytes();
        raw(&store, &[b"HSET", k, b"__created", created_text.as_bytes()]).await;
        raw(&store, &[b"HSET", k, b"ns.a", b"old"]).await;
        raw(&store, &[b"PEXPIREAT", k, expires_text.as_bytes()]).await;

        let loaded = store.load(&id, "ns", &["a", "b"]).await.unwrap().unwrap();
        assert_eq!(
            owned(loaded.values),
            vec![Some(b"old".to_vec()), None],
            "fields of an old session"
        );
        assert_eq!(unix_millis(loaded.created_at), unix_millis(created));
        // From PTTL and this machine's clock: exact to the round trip.
        let off = loaded
            .expires_at
            .duration_since(expires)
            .unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_millis(500), "expiry off by {off:?}");
        // The namespace load reads the expiry the same way.
        let loaded = store.load_namespace(&id, "ns").await.unwrap().unwrap();
        assert_eq!(loaded.fields, vec![("a".to_owned(), "old".into())]);
        assert_eq!(unix_millis(loaded.created_at), unix_millis(created));
        let off = loaded
            .expires_at
            .duration_since(expires)
            .unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_millis(500), "expiry off by {off:?}");

        let touched = in_secs(55);
        assert!(store.touch(&id, touched).await.unwrap());
        assert_eq!(
            stored_expiry(&store, &key).await,
            (millis_text(touched), millis_int(touched))
        );
        let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
        assert_eq!(unix_millis(loaded.expires_at), unix_millis(touched));

        // An old session whose key expiry was removed from outside: far
        // in the future, as before.
        let id = SessionId::generate().unwrap();
        let key = store.key(&id);
        let k = key.as_bytes();
        raw(&store, &[b"HSET", k, b"__created", created_text.as_bytes()]).await;
        let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
        assert!(loaded.expires_at > in_secs(100 * 365 * 24 * 3600));
        // An update adds `__expires` (and the key's expiry) too.
        let expires = in_secs(65);
        assert!(
            store
                .update(&id, &[set("a", b"1")], Some(expires))
                .await
                .unwrap()
        );
        assert_eq!(
            stored_expiry(&store, &key).await,
            (millis_text(expires), millis_int(expires))
        );
    }

    fn owned<B: AsRef<[u8]>>(values: Vec<Option<B>>) -> Vec<Option<Vec<u8>>> {
        values
            .into_iter()
            .map(|v| v.map(|b| b.as_ref().to_vec()))
            .collect()
    }

    #[tokio::test]
    async fn single_session_without_expires_field_loads_with_the_key_expiry() {
        session_without_expires_field_loads_with_the_key_expiry(single().await).await;
    }

    #[tokio::test]
    async fn cluster_session_without_expires_field_loads_with_the_key_expiry() {
        session_without_expires_field_loads_with_the_key_expiry(cluster().await).await;
    }

    /// Anything but decimal milliseconds in `__expires` is `Malformed`,
    /// never a panic and never a made-up expiry; the next write replaces it.
    #[tokio::test]
    async fn garbage_in_expires_is_malformed_until_the_next_write() {
        let store = single().await;
        let garbage: [&[u8]; 7] = [
            b"soon",
            b"",
            b"-5",
            b"1.5e12",
            b" 1795647679583",
            b"99999999999999999999999",
            b"\xff\xfe",
        ];
        for bad in garbage {
            let id = SessionId::generate().unwrap();
            store
                .create(&id, &[set("a", b"1")], SystemTime::now(), in_a_minute())
                .await
                .unwrap();
            let key = store.key(&id);
            raw(&store, &[b"HSET", key.as_bytes(), b"__expires", bad]).await;
            let result = store.load(&id, "ns", &["a"]).await;
            assert!(
                matches!(result, Err(StoreError::Malformed(_))),
                "{bad:?}: {result:?}"
            );
            assert!(store.touch(&id, in_a_minute()).await.unwrap());
            let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
            assert_eq!(owned(loaded.values), vec![Some(b"1".to_vec())]);
        }
    }

    /// A namespace load leaves out a field name that is not UTF-8, and
    /// answers a key that is not a hash, or a marker that is not a time,
    /// with `Malformed`.
    #[tokio::test]
    async fn namespace_load_of_odd_data() {
        let store = single().await;
        let id = SessionId::generate().unwrap();
        store
            .create(&id, &[set("a", b"1")], SystemTime::now(), in_a_minute())
            .await
            .unwrap();
        let key = store.key(&id);
        raw(&store, &[b"HSET", key.as_bytes(), b"ns.\xff\xfe", b"2"]).await;
        let loaded = store.load_namespace(&id, "ns").await.unwrap().unwrap();
        assert_eq!(loaded.fields, vec![("a".to_owned(), "1".into())]);

        raw(&store, &[b"HSET", key.as_bytes(), b"__created", b"soon"]).await;
        let result = store.load_namespace(&id, "ns").await;
        assert!(
            matches!(result, Err(StoreError::Malformed(_))),
            "{result:?}"
        );

        let id = SessionId::generate().unwrap();
        let key = store.key(&id);
        raw(&store, &[b"SET", key.as_bytes(), b"x", b"EX", b"60"]).await;
        let result = store.load_namespace(&id, "ns").await;
        assert!(
            matches!(result, Err(StoreError::Malformed(_))),
            "{result:?}"
        );
    }

    /// `__expires` in the past while Redis still holds the key (an earlier
    /// version extended the key only): the key's expiry decides; once the
    /// key has no time left either, the session is gone.
    #[tokio::test]
    async fn a_stale_expires_field_defers_to_the_key_expiry() {
        let store = single().await;
        let id = SessionId::generate().unwrap();
        store
            .create(&id, &[set("a", b"1")], SystemTime::now(), in_a_minute())
            .await
            .unwrap();
        let key = store.key(&id);
        let past = unix_millis(SystemTime::now() - Duration::from_secs(1)).to_string();
        raw(
            &store,
            &[b"HSET", key.as_bytes(), b"__expires", past.as_bytes()],
        )
        .await;
        let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
        assert_eq!(owned(loaded.values), vec![Some(b"1".to_vec())]);
        let left = loaded.expires_at.duration_since(SystemTime::now()).unwrap();
        assert!(left > Duration::from_secs(50), "{left:?}");
        // An expiry that has really passed: Redis drops the key.
        raw(&store, &[b"PEXPIRE", key.as_bytes(), b"1"]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.load(&id, "ns", &["a"]).await.unwrap(), None);
    }

    /// Creates, updates and moves of more fields than one Lua `unpack`
    /// takes at once (the scripts write them in chunks).
    async fn many_fields_in_one_write(store: RedisStore) {
        let names: Vec<String> = (0..1500).map(|i| format!("f{i}")).collect();
        let values: Vec<Vec<u8>> = (0..1500).map(|i| format!("v{i}").into_bytes()).collect();
        let writes: Vec<FieldWrite<'_>> = names
            .iter()
            .zip(&values)
            .map(|(name, value)| set(name, value))
            .collect();
        let fields: Vec<&str> = names.iter().map(String::as_str).collect();
        let (from, to, _from_key, _to_key) = session(&store).await;
        assert!(
            store
                .update(&from, &writes, Some(in_a_minute()))
                .await
                .unwrap()
        );
        let loaded = store.load(&from, "ns", &fields).await.unwrap().unwrap();
        assert_eq!(
            owned(loaded.values),
            values.iter().cloned().map(Some).collect::<Vec<_>>()
        );
        // Remove the first 1200, rewrite the others.
        let mut changes: Vec<FieldWrite<'_>> = names[..1200]
            .iter()
            .map(|name| FieldWrite {
                key: FieldKey {
                    namespace: "ns",
                    field: name,
                },
                value: None,
            })
            .collect();
        changes.extend(names[1200..].iter().map(|name| set(name, b"new")));
        assert!(
            store
                .update(&from, &changes, Some(in_a_minute()))
                .await
                .unwrap()
        );
        assert!(store.move_to(&from, &to, in_a_minute()).await.unwrap());
        let loaded = store.load(&to, "ns", &fields).await.unwrap().unwrap();
        let expected: Vec<Option<Vec<u8>>> = (0..1500)
            .map(|i| (i >= 1200).then(|| b"new".to_vec()))
            .collect();
        assert_eq!(owned(loaded.values), expected);
        let id = SessionId::generate().unwrap();
        store
            .create(&id, &writes, SystemTime::now(), in_a_minute())
            .await
            .unwrap();
        let loaded = store.load(&id, "ns", &fields).await.unwrap().unwrap();
        assert_eq!(
            owned(loaded.values),
            values.iter().cloned().map(Some).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn single_many_fields_in_one_write() {
        many_fields_in_one_write(single().await).await;
    }

    #[tokio::test]
    async fn cluster_many_fields_in_one_write() {
        many_fields_in_one_write(cluster().await).await;
    }

    /// The last write of a field wins, in `create` and in `update`.
    #[tokio::test]
    async fn last_write_of_a_field_wins() {
        let store = single().await;
        let id = SessionId::generate().unwrap();
        let remove_a = FieldWrite {
            key: FieldKey {
                namespace: "ns",
                field: "a",
            },
            value: None,
        };
        store
            .create(
                &id,
                &[set("a", b"1"), set("b", b"1"), set("b", b"2"), remove_a],
                SystemTime::now(),
                in_a_minute(),
            )
            .await
            .unwrap();
        let loaded = store.load(&id, "ns", &["a", "b"]).await.unwrap().unwrap();
        assert_eq!(owned(loaded.values), vec![None, Some(b"2".to_vec())]);
        let writes = [remove_a, set("a", b"3"), set("b", b"4"), set("b", b"5")];
        assert!(
            store
                .update(&id, &writes, Some(in_a_minute()))
                .await
                .unwrap()
        );
        let loaded = store.load(&id, "ns", &["a", "b"]).await.unwrap().unwrap();
        assert_eq!(
            owned(loaded.values),
            vec![Some(b"3".to_vec()), Some(b"5".to_vec())]
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
        for step in 0..40_u64 {
            let (from, to, _from_key, _to_key) = session(&store).await;
            let cancel_after = Duration::from_micros(step * 150);
            let moved =
                tokio::time::timeout(cancel_after, store.move_to(&from, &to, in_a_minute())).await;
            let holder = match moved {
                Ok(result) => {
                    assert!(result.unwrap());
                    outcomes[1] += 1;
                    &to
                }
                Err(_) => match value(&store, &from, "a").await {
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
}
