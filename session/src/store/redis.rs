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
//! | `{namespace}.{field}` | the encoded bytes of one field, exactly as the codec produced them |
//! | `__moving`, `__frozen` | transient, only on Redis Cluster while [`move_to`](SessionStore::move_to) copies the session to another node (see below) |
//!
//! Field names always contain a dot and the two internal names never do, so
//! they cannot collide. The key's Redis expiry (`PEXPIREAT`, millisecond
//! precision) is the session's expiry: Redis never returns a key whose expiry
//! has passed, even before it has reclaimed it, so an expired session is gone
//! at once. A key without the marker is not a session: it is never loaded,
//! updated or touched (and `create` does not overwrite it either).
//!
//! # Atomicity and round trips
//!
//! Every operation is one command (a Lua script run with `EVALSHA`, loaded
//! on first use and again after a server restart) on one key, so it is atomic
//! and costs one round trip, on a single server and on a cluster alike:
//!
//! | operation | what runs |
//! |---|---|
//! | [`load`](SessionStore::load) | `HGET` of the marker, `HMGET` of the requested fields, `PTTL` and `TIME` (for the absolute expiry) |
//! | [`create`](SessionStore::create) | only if the key does not exist at all: `HSET` of marker and fields, `PEXPIREAT` |
//! | [`update`](SessionStore::update) | only if the marker exists: `HSET`/`HDEL` of exactly the named fields, `PEXPIREAT`. Nothing else is sent or rewritten, so a small change to a big session sends a few bytes |
//! | [`touch`](SessionStore::touch) | only if the marker exists: `PEXPIREAT` |
//! | [`delete`](SessionStore::delete) | `DEL` |
//! | [`move_to`](SessionStore::move_to), single server, or both keys in one cluster slot | only if `from` has the marker and `to` does not exist: `RENAME`, `PEXPIREAT`. Atomic |
//!
//! Because `update` and `touch` check the marker inside the script, a write of
//! a slow request that lands after a `delete` or `move_to` of its session
//! changes nothing and reports `false`: no resurrection.
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
//!    the creation time is kept) and the new expiry, only if `to` does not
//!    exist;
//! 3. *finish*: if `from` still carries the token, delete it, leaving a
//!    field-less tombstone for 60 s so that a retried *finish* is recognised.
//!
//! Every `update` that writes to a session clears `__moving`, so a write to
//! the old id between steps 1 and 3 is never lost: step 3 sees the token
//! gone, the copy is discarded and the move starts over with the newer data.
//! The first attempt lets such writes go on; the later ones (at most 3
//! attempts in all, then [`StoreError::Contention`]) also set
//! `__frozen = now + 1 s`, and an `update` of the old id waits (briefly
//! polling, within the store's timeout) until the move is done — then it
//! reports `false`, exactly as after the single-server `RENAME` — or until
//! the 1 s lease runs out, so a mover that died blocks writers for at most
//! a second. A concurrent `delete` of the old id wins: step 3 finds `from`
//! gone, the copy is discarded and the move returns `false`.
//!
//! What is *not* atomic: between steps 2 and 3 both ids answer loads (the
//! old one with the data being moved). A failure between the steps never
//! loses the session: `from` is deleted only after `to` holds a complete
//! copy; at worst `to` stays behind, unused and unknown to any client, until
//! its expiry. Steps the cluster client retries after a lost reply are
//! idempotent. If both keys are in one slot (a prefix with a hash tag like
//! `{sessions}:`, which also puts every session on one node), the atomic
//! single-server script is used. Moving a session within the cluster
//! transfers it twice (out and in); sessions are small.
//!
//! # Limits
//!
//! A value is limited by Redis' `proto-max-bulk-len` (512 MB by default);
//! keep sessions small. Expiry times have millisecond precision. A session
//! key whose expiry was removed from outside the store (`PERSIST`) is
//! reported as expiring in the far future.
//!
//! # Failures
//!
//! Connection and server errors become [`StoreError::Backend`], answers the
//! store cannot read (a marker that is not a number, a key that is not a
//! hash) become [`StoreError::Malformed`], logged at warn; nothing panics.
//! Every call is bounded by the store's timeout ([`RedisStore::with_timeout`],
//! 3 s by default; then [`StoreError::Timeout`]) besides the connection's own
//! connect and response timeouts. The connection re-establishes itself after
//! the server (or a cluster node) restarts; calls made while it is down fail
//! quickly, and a call or two right after it comes back may still fail while
//! the connection is rebuilt. A call that fails or times out after the
//! command was sent may or may not have been applied. Server-side scripts
//! are cached by Redis; after a restart the store reloads them by itself.
//! Requires Redis 5 or newer (tested with 7.0).

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{RedisError, Script, ScriptInvocation, Value};

use super::{FieldWrite, LoadedFields, SessionStore, StoreError, from_unix_millis, unix_millis};
use crate::id::SessionId;

/// The default key prefix.
const DEFAULT_PREFIX: &str = "session:";
/// The default bound on one store call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
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

/// The hash field with which a cluster move holds off writes (a lease end,
/// server Unix milliseconds); never copied to the new key.
const FROZEN: &str = "__frozen";

/// The hash field that marks a session and holds its creation time. Stored
/// field names always contain a dot, this one does not.
const MARKER: &str = "__created";

/// Reads the marker, the requested fields and the absolute expiry (server
/// time plus PTTL, so it equals the `PEXPIREAT` that was written).
static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local created = redis.call('HGET', KEYS[1], '__created')
if not created then return false end
local expires = -1
local pttl = redis.call('PTTL', KEYS[1])
if pttl >= 0 then
  local now = redis.call('TIME')
  expires = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + pttl
end
local values = {}
local n = #ARGV
local i = 1
while i <= n do
  local j = math.min(i + 999, n)
  local part = redis.call('HMGET', KEYS[1], unpack(ARGV, i, j))
  for k = 1, #part do values[#values + 1] = part[k] end
  i = j + 1
end
return {created, expires, values}
",
    )
});

/// ARGV: creation time, expiry, then field/value pairs.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], '__created', ARGV[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
",
    )
});

/// ARGV: expiry, the number n of fields to set, n field/value pairs, then the
/// fields to remove. A write clears `__moving`; while `__frozen` holds a
/// time in the future the session is busy (2) and nothing is written (see
/// the module docs).
static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], '__created') == 0 then return 0 end
local frozen = redis.call('HGET', KEYS[1], '__frozen')
if frozen then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) < (tonumber(frozen) or 0) then
    return 2
  end
  redis.call('HDEL', KEYS[1], '__frozen')
end
local last = 2 + 2 * tonumber(ARGV[2])
for i = 3, last, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = last + 1, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
if #ARGV > 2 then redis.call('HDEL', KEYS[1], '__moving') end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
",
    )
});

/// ARGV: expiry.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], '__created') == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
",
    )
});

/// KEYS: from, to (one slot). ARGV: expiry. 1 moved, 0 `from` missing,
/// -1 `to` exists.
static RENAME: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], '__created') == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIREAT', KEYS[2], ARGV[1])
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
/// copy, which carries the token). 1 created (or already created by this
/// move), 0 `to` exists.
static COPY_IN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], '__moving') == ARGV[1] then return 1 end
  return 0
end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Cluster move, step 3 on `from`. ARGV: token. 1 done (now, or by an
/// earlier attempt of this step), 0 written meanwhile, -1 gone.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], '__moving') == ARGV[1] then
  if redis.call('HEXISTS', KEYS[1], '__created') == 1 then
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], '__moving', ARGV[1])
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
/// field, every write one atomic script. Works on a single server and on
/// Redis Cluster.
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
    timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("connection", &self.connection)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
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
    /// [`ClusterConnection`]), with the default prefix `session:` and timeout.
    pub fn new(connection: impl Into<RedisConnection>) -> Self {
        Self {
            connection: connection.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Connects to one Redis server, e.g. `redis://127.0.0.1:6379/`
    /// (`rediss://` is not enabled in this build).
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
            DEFAULT_TIMEOUT,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| StoreError::Timeout(DEFAULT_TIMEOUT))?
        .map_err(StoreError::backend)?;
        Ok(Self::new(manager))
    }

    /// Connects to a Redis Cluster through any of its nodes, e.g.
    /// `["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"]`.
    ///
    /// The cluster connection follows slot moves and reconnects to nodes by
    /// itself; connecting to a node times out after 1 s, a request (with its
    /// retries) after 2 s.
    pub async fn connect_cluster(urls: &[&str]) -> Result<Self, StoreError> {
        let client = ClusterClientBuilder::new(urls.iter().copied())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()
            .map_err(StoreError::backend)?;
        let connection = tokio::time::timeout(DEFAULT_TIMEOUT, client.get_async_connection())
            .await
            .map_err(|_| StoreError::Timeout(DEFAULT_TIMEOUT))?
            .map_err(StoreError::backend)?;
        Ok(Self::new(connection))
    }

    /// Sets the key prefix (default `session:`); a session lives at
    /// `{prefix}{id}`. On a cluster, a prefix with a hash tag (`{...}`) puts
    /// every session in one slot, on one node.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the bound on each store call (default 3 s); a call that takes
    /// longer fails with [`StoreError::Timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
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

    /// Runs `future` under the store's timeout.
    async fn timed<T>(
        &self,
        future: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, future)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.timeout)))
    }

    /// Runs one script (`EVALSHA`, loading it when the server lacks it).
    async fn invoke(&self, invocation: &ScriptInvocation<'_>) -> Result<Value, StoreError> {
        let result = match &self.connection {
            RedisConnection::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            RedisConnection::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        };
        result.map_err(backend)
    }

    /// Runs a script that answers with an integer.
    async fn invoke_int(&self, invocation: &ScriptInvocation<'_>) -> Result<i64, StoreError> {
        match self.invoke(invocation).await? {
            Value::Int(n) => Ok(n),
            other => Err(unexpected("an integer", &other)),
        }
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
            let result = self.copy_in_and_finish(from_key, to_key, token, expires_at, &fields);
            let step = match result.await {
                Ok(step) => step,
                Err(error) => {
                    if lease.is_some() {
                        // Best effort; the lease runs out by itself anyway.
                        let _ = self.invoke_int(THAW.key(from_key).arg(token)).await;
                    }
                    return Err(error);
                }
            };
            match step {
                Step::Done => return Ok(true),
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

    /// Cluster move, steps 2 and 3.
    async fn copy_in_and_finish(
        &self,
        from_key: &str,
        to_key: &str,
        token: &str,
        expires_at: u64,
        fields: &[Value],
    ) -> Result<Step, StoreError> {
        if !self.copy_in(to_key, token, expires_at, fields).await? {
            return Err(StoreError::IdExists);
        }
        self.finish(from_key, token).await
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
        let mut invocation = COPY_OUT.key(from_key);
        invocation.arg(token).arg(lease_ms);
        match self.invoke(&invocation).await? {
            Value::Nil => Ok(None),
            Value::Array(items) if items.len() % 2 == 0 => Ok(Some(items)),
            other => Err(unexpected("the session's fields", &other)),
        }
    }

    /// Cluster move, step 2: creates `to` from the copy, unless it exists.
    async fn copy_in(
        &self,
        to_key: &str,
        token: &str,
        expires_at: u64,
        fields: &[Value],
    ) -> Result<bool, StoreError> {
        let mut invocation = COPY_IN.key(to_key);
        invocation.arg(token).arg(expires_at);
        for pair in fields.chunks_exact(2) {
            let (Value::BulkString(name), Value::BulkString(value)) = (&pair[0], &pair[1]) else {
                return Err(StoreError::Malformed(
                    "a session hash field that is not a string".into(),
                ));
            };
            if name != FROZEN.as_bytes() {
                invocation.arg(name.as_slice()).arg(value.as_slice());
            }
        }
        Ok(self.invoke_int(&invocation).await? == 1)
    }

    /// Cluster move, step 3: deletes `from` if nothing wrote to it since
    /// step 1.
    async fn finish(&self, from_key: &str, token: &str) -> Result<Step, StoreError> {
        let mut invocation = FINISH.key(from_key);
        invocation.arg(token);
        Ok(match self.invoke_int(&invocation).await? {
            1 => Step::Done,
            0 => Step::Retry,
            _ => Step::Gone,
        })
    }

    /// Deletes the copy a cluster move made, if it is still that copy.
    async fn discard(&self, to_key: &str, token: &str) -> Result<(), StoreError> {
        let mut invocation = DISCARD.key(to_key);
        invocation.arg(token);
        self.invoke_int(&invocation).await.map(drop)
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

/// The hash field of one session field.
fn hash_field(namespace: &str, field: &str) -> String {
    format!("{namespace}.{field}")
}

/// The writes with the last one per field winning, split into values to set
/// and fields to remove.
fn split_writes<'a>(writes: &[FieldWrite<'a>]) -> (Vec<(String, &'a [u8])>, Vec<String>) {
    let mut last: Vec<(String, Option<&'a [u8]>)> = Vec::with_capacity(writes.len());
    for write in writes {
        let name = hash_field(write.key.namespace, write.key.field);
        match last.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = write.value,
            None => last.push((name, write.value)),
        }
    }
    let mut sets = Vec::new();
    let mut removals = Vec::new();
    for (name, value) in last {
        match value {
            Some(bytes) => sets.push((name, bytes)),
            None => removals.push(name),
        }
    }
    (sets, removals)
}

/// Milliseconds for `PEXPIREAT`, within what Redis accepts.
fn expiry_millis(time: SystemTime) -> u64 {
    // Far beyond any useful expiry, and far from overflowing Redis' i64.
    const MAX: u64 = 1 << 52;
    unix_millis(time).min(MAX)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        let key = self.key(id);
        let mut invocation = LOAD.key(&key);
        for field in fields {
            invocation.arg(hash_field(namespace, field));
        }
        let reply = self.timed(self.invoke(&invocation)).await?;
        let items = match reply {
            Value::Nil => return Ok(None),
            Value::Array(items) => items,
            other => return Err(unexpected("the session", &other)),
        };
        let [created, expires, values] = <[Value; 3]>::try_from(items)
            .map_err(|_| StoreError::Malformed("a load reply of the wrong length".into()))?;
        let created_at = match &created {
            Value::BulkString(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .map(from_unix_millis),
            _ => None,
        };
        let Some(created_at) = created_at else {
            tracing::warn!(
                session = %id.log_tag(),
                "session marker `{MARKER}` does not hold a creation time"
            );
            return Err(StoreError::Malformed(format!(
                "session marker `{MARKER}` does not hold a creation time in milliseconds"
            )));
        };
        let expires_at = match expires {
            Value::Int(ms) if ms >= 0 => from_unix_millis(ms.unsigned_abs()),
            // No expiry on the key: something outside the store removed it.
            Value::Int(_) => from_unix_millis(i64::MAX.unsigned_abs()),
            other => return Err(unexpected("the expiry", &other)),
        };
        let values = match values {
            Value::Array(values) => values,
            other => return Err(unexpected("the field values", &other)),
        };
        if values.len() != fields.len() {
            return Err(StoreError::Malformed(format!(
                "asked Redis for {} fields, got {}",
                fields.len(),
                values.len()
            )));
        }
        let values = values
            .into_iter()
            .map(|value| match value {
                Value::Nil => Ok(None),
                Value::BulkString(bytes) => Ok(Some(bytes)),
                other => Err(unexpected("a field value", &other)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(LoadedFields {
            created_at,
            expires_at,
            values,
        }))
    }

    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let key = self.key(id);
        let (sets, _removals) = split_writes(writes);
        let mut invocation = CREATE.key(&key);
        invocation
            .arg(unix_millis(created_at))
            .arg(expiry_millis(expires_at));
        for (name, value) in &sets {
            invocation.arg(name).arg(*value);
        }
        match self.timed(self.invoke_int(&invocation)).await? {
            1 => Ok(()),
            _ => Err(StoreError::IdExists),
        }
    }

    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let key = self.key(id);
        let (sets, removals) = split_writes(writes);
        let mut invocation = UPDATE.key(&key);
        invocation.arg(expiry_millis(expires_at)).arg(sets.len());
        for (name, value) in &sets {
            invocation.arg(name).arg(*value);
        }
        for name in &removals {
            invocation.arg(name);
        }
        let run = async {
            let mut pause = BUSY_PAUSE_FIRST;
            loop {
                match self.invoke_int(&invocation).await? {
                    1 => return Ok(true),
                    // A cluster move is finishing: wait for it (it ends,
                    // or its lease does, within MOVE_LEASE).
                    2 => {
                        tracing::debug!(session = %id.log_tag(), "session busy moving; waiting");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(BUSY_PAUSE_MAX);
                    }
                    _ => return Ok(false),
                }
            }
        };
        self.timed(run).await
    }

    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        let key = self.key(id);
        let mut invocation = TOUCH.key(&key);
        invocation.arg(expiry_millis(expires_at));
        Ok(self.timed(self.invoke_int(&invocation)).await? == 1)
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key(id));
        let run = async {
            let result: Result<Value, RedisError> = match &self.connection {
                RedisConnection::Single(c) => command.query_async(&mut c.clone()).await,
                RedisConnection::Cluster(c) => command.query_async(&mut c.clone()).await,
            };
            result.map(drop).map_err(backend)
        };
        self.timed(run).await
    }

    async fn move_to(
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
                .timed(self.move_across_slots(&from_key, &to_key, from, to, expires_at))
                .await;
        }
        let mut invocation = RENAME.key(&from_key);
        invocation.key(&to_key).arg(expires_at);
        match self.timed(self.invoke_int(&invocation)).await? {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(StoreError::IdExists),
        }
    }
}

/// The steps of a cross-slot cluster move, interleaved with other calls in
/// the orders a real race can produce. Needs the Redis Cluster of the test
/// servers (`REDIS_CLUSTER_URLS`, default 127.0.0.1:7000-7002).
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::FieldKey;

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
        loaded.values.into_iter().next()
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
                .copy_in(&to_key, "t1", expiry(), &fields)
                .await
                .unwrap()
        );
        assert!(
            store
                .update(&from, &[set("b", b"late")], in_a_minute())
                .await
                .unwrap()
        );
        assert_eq!(store.finish(&from_key, "t1").await.unwrap(), Step::Retry);
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
                .copy_in(&to_key, "t1", expiry(), &fields)
                .await
                .unwrap()
        );
        store.delete(&from).await.unwrap();
        assert_eq!(store.finish(&from_key, "t1").await.unwrap(), Step::Gone);
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
                .copy_in(&to_key, "t1", expiry(), &fields)
                .await
                .unwrap()
        );
        assert!(
            store
                .copy_in(&to_key, "t1", expiry(), &fields)
                .await
                .unwrap()
        );
        assert!(
            !store
                .copy_in(&to_key, "t2", expiry(), &fields)
                .await
                .unwrap()
        );
        assert_eq!(store.finish(&from_key, "t1").await.unwrap(), Step::Done);
        assert_eq!(store.finish(&from_key, "t1").await.unwrap(), Step::Done);
        assert_eq!(value(&store, &to, "a").await, Some(Some(b"1".to_vec())));
        assert_eq!(value(&store, &from, "a").await, None);
        // Another move's token does not match the tombstone.
        assert_eq!(store.finish(&from_key, "t2").await.unwrap(), Step::Gone);
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
                    .update(&from, &[set("b", b"late")], in_a_minute())
                    .await
            })
        };
        // The writer is held off: it does not complete while the move runs.
        tokio::task::yield_now().await;
        assert!(!writer.is_finished());
        assert!(
            store
                .copy_in(&to_key, "t1", expiry(), &fields)
                .await
                .unwrap()
        );
        assert_eq!(store.finish(&from_key, "t1").await.unwrap(), Step::Done);
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
                .update(&to, &[set("b", b"new")], in_a_minute())
                .await
                .unwrap()
        );
    }

    /// A mover that died holding writes off blocks them only until its
    /// lease ends; the write then lands and the stale mark is gone.
    #[tokio::test]
    async fn lease_of_a_dead_mover_runs_out() {
        let store = cluster().await;
        let (from, _to, from_key, _to_key) = session(&store).await;
        store
            .copy_out(&from_key, "t1", Some(Duration::from_millis(300)))
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .update(&from, &[set("b", b"after")], in_a_minute())
                .await
                .unwrap()
        );
        assert_eq!(
            value(&store, &from, "b").await,
            Some(Some(b"after".to_vec()))
        );
        assert_eq!(store.finish(&from_key, "t1").await.unwrap(), Step::Retry);
    }
}
