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
//! | [`load_namespace`](SessionStore::load_namespace) of a reserved namespace (`__…`, the dict-like `Session`'s) | `HSCAN 0 MATCH __*`: the marker fields and that namespace's fields in one command; the load drops the other reserved fields (move and index bookkeeping) | 1 |
//! | [`load_namespace`](SessionStore::load_namespace) of another namespace | pipelined, no Lua: `HSCAN 0 MATCH {namespace}.*` (escaped), then `HMGET` of the marker, `__expires` and the remembered expiry; not atomic, but each change that could tear the pair removes the marker first, so the load answers no session (see [`namespace`]) | 2 |
//! | either, on a hash one scan call does not cover | a script instead (`HKEYS`, one `HMGET` per 1000 names), a second round trip (a `PTTL` as for `load` without `__expires`). Redis walks every field name of the session in each case; what leaves the hash is the namespace's fields, and for a reserved namespace the other reserved fields too (index entries among them) | 3+ |
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

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisError, Script, Value};

use super::{
    EXPIRY_FIELD, FieldWrite, IndexKey, IndexedSession, LoadedFields, LoadedNamespace,
    SessionStore, StoreError,
};
// Named only by the links of the module docs.
#[allow(unused_imports)]
use super::FORWARD_WINDOW;
use crate::id::SessionId;

pub mod cache;
use cache::{CacheStats, LocalCache, Origin};
mod cluster;
pub mod index;
pub mod namespace;
mod ops;
mod scripts;
use scripts::{
    COPY_IN, COPY_OUT, CREATE, CREATE_LUA, DISCARD, FINISH, RENAME, THAW, TOUCH, UPDATE, UPDATE_LUA,
};
mod wire;
use wire::{
    HashField, SessionKey, backend, effective, evalsha, expiry_millis, field_value, forward_until,
    parse_millis, unexpected,
};

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
mod tests;
