//! [`MemcacheStore`]: sessions in Memcached (feature `memcache`).
//!
//! Built on the tokio client of the [`memcache`] crate's experimental
//! meta-protocol module (`memcache::exp`, pinned at 0.21): every use of it
//! is in this module. [`AsyncMetaClient`] and [`MetaClientBuilder`] are
//! re-exported here for [`MemcacheStore::new`].
//!
//! # Layout
//!
//! A session is one item at `{prefix}{id}` (default prefix `session:`),
//! holding a small versioned binary record: format version, creation time,
//! expiry time (both in Unix milliseconds) and every field of every
//! namespace as (namespace, field name, value bytes), each length-prefixed.
//! Values are the codec's bytes, stored as they came. The exact format is
//! documented below under *Record format*.
//!
//! Several servers are supported: `connect` takes a comma-separated list
//! (`memcache://10.0.0.1:11211,10.0.0.2:11211`) and the client picks each
//! session's server by rendezvous hashing of its key, so adding or removing
//! a server only moves that server's sessions. Memcached does not replicate:
//! a server that restarts or is removed loses its sessions (their users get
//! new, empty sessions).
//!
//! # Operations and atomicity
//!
//! - [`load`](SessionStore::load): one `get`. The record's expiry time is
//!   checked against the clock, so a session past its expiry is never
//!   returned even while Memcached still holds the item.
//! - [`load_namespace`](SessionStore::load_namespace): the same one `get`,
//!   keeping the fields of the one namespace.
//! - [`create`](SessionStore::create): an `add`, which never overwrites:
//!   atomic. If the key holds an item that is expired or unreadable, it is
//!   replaced with a compare-and-swap, so only a dead item is ever replaced.
//! - [`update`](SessionStore::update): `gets` (value and CAS token), merge
//!   the written and removed fields into the stored record, `cas` it back
//!   with the new expiry. Atomic: on a CAS conflict (another writer came
//!   first) it reads again and merges again, up to `MAX_ATTEMPTS` (32) times
//!   with a random backoff (starting near the time one attempt takes,
//!   doubling, at most 100 ms), then fails with
//!   [`StoreError::Contention`]. So concurrent writers of different fields
//!   of one session never lose each other's writes; for one field the last
//!   writer wins. Within one process (one store and its clones), writers
//!   of one session take turns in a per-session queue before their
//!   `gets`, so they do not spend round trips racing each other; between
//!   processes the CAS token decides. Fields the update does not name keep their stored bytes,
//!   never re-encoded. A session that is gone (a `gets` miss, an expired
//!   record, or a `cas` that finds no item) is never re-created: the update
//!   returns `false`.
//! - [`touch`](SessionStore::touch): the expiry time lives inside the
//!   record (memcached's own expiry is only accurate to a second or two),
//!   so a touch is a `gets` and a `cas` of the item with a new header and
//!   the field bytes copied verbatim; memcached's TTL is set in the same
//!   write. It never rewrites a field's value, but it does send the whole
//!   item back. Atomic, with the same queue and retries as an update.
//! - [`delete`](SessionStore::delete): one `delete`. Atomic.
//! - [`move_to`](SessionStore::move_to): **not atomic**. It reads the old
//!   item (`gets`), `add`s the new one (same fields and creation time, new
//!   expiry), then deletes the old one only if it is unchanged (delete with
//!   the CAS token). If a concurrent write changed the old item in between,
//!   the new item is deleted and the move starts over, so that write is
//!   not lost; if the old item vanished in between (a concurrent delete),
//!   the new item is deleted and the move returns `false`. A failure part
//!   way never loses the session: the old id keeps it until the final
//!   delete succeeds; a failure after the `add` may leave a copy under the
//!   new id, which nobody was told about and which expires with its TTL.
//!   The final step does not delete the old item but replaces it (with
//!   the CAS token) by a *forward*: a record that expired at the epoch, so
//!   nothing reads it as a session, holding `__forward.to` (the new id) and
//!   `__forward.until` (the end of [`FORWARD_WINDOW`], Unix milliseconds,
//!   big-endian), with a memcached TTL to match.
//!   After the move, a slower writer of the old id finds no live session
//!   (its `gets` finds the forward, or its `cas` fails) and gets `false`;
//!   [`forwarded`](SessionStore::forwarded) is one `get`.
//!
//! # Expiry
//!
//! The record's expiry time is authoritative. Memcached's TTL is set on
//! every write to one second past it (rounded up to whole seconds), so
//! Memcached never drops a live session and frees a dead one soon after.
//! Memcached reads a relative TTL above 30 days as an absolute Unix time;
//! the store sends a relative TTL up to 30 days and an absolute Unix time
//! beyond (the default 30-day inactivity expiry is just beyond), so long
//! expiries work. Absolute TTLs assume the application's and Memcached's
//! clocks roughly agree. Memcached may still evict a session early under
//! memory pressure (LRU): size the cache for the sessions it must hold.
//!
//! # Limits
//!
//! Memcached refuses items over its item size limit (`-I`, 1 MiB by
//! default). A write whose record would exceed
//! [`with_max_item_size`](MemcacheStore::with_max_item_size) (default
//! [`DEFAULT_MAX_ITEM_SIZE`], 1 MiB minus 512 bytes) is not sent and fails
//! with [`StoreError::TooLarge`], naming the size and the limit; the stored
//! session is left as it was. Keep the limit at or below the server's:
//! if the server refuses an item anyway (its `-I` is smaller than the
//! configured limit), that is a `TooLarge` too, logged at error level, but
//! Memcached itself then drops the item stored under that key (it does so
//! on every refused store, so stale data cannot outlive a failed write)
//! and the session is lost. Nothing is ever truncated. Namespace and field names
//! are limited to 65535 bytes, the key (`{prefix}{id}`) to 250 bytes.
//!
//! # Session index
//!
//! Memcached cannot enumerate its keys, so this store keeps no session
//! index: a `#[session(index)]` field ("log out everywhere") needs
//! `RedisStore`, `MongoStore` or [`MemoryStore`](super::memory::MemoryStore).
//! A [`create`](SessionStore::create) or [`update`](SessionStore::update)
//! that writes or removes an index entry (a field of
//! [`INDEX_NAMESPACE`](super::INDEX_NAMESPACE)) fails with
//! [`StoreError::Unsupported`], saying so, before anything is sent: the
//! session stays as it was, and the misconfiguration shows on the first
//! write of the indexed field. [`list_index`](SessionStore::list_index)
//! and [`end_index`](SessionStore::end_index) fail the same way. A record
//! kept per index key and maintained with compare-and-swap was the
//! alternative; it was left out because Memcached may evict it at any time
//! (LRU), and an index that silently forgets sessions would let "log out
//! everywhere" miss some.
//!
//! # Failures
//!
//! A network or server failure is [`StoreError::Backend`]; each exchange
//! has the client's deadline (1 second by default, see
//! [`MetaClientBuilder::io_timeout`]) and a dead server fails calls at
//! once (connection refused). A write whose outcome is unknown (the
//! connection broke after the request was sent) is reported as an error,
//! not retried blindly. An item whose record cannot be read (corrupt, or a
//! format version this build does not know) is logged at warn level and
//! treated as absent: `load` returns `None` (the layer starts a fresh
//! session under a new id), `update`, `touch` and `move_to` return `false`,
//! and `create` may replace it. The unreadable item itself is left alone
//! until it expires.
//!
//! # Record format
//!
//! Version 1; integers are unsigned big-endian.
//!
//! ```text
//! offset  size  content
//! 0       1     format version: 1
//! 1       8     created_at: Unix time in milliseconds
//! 9       8     expires_at: Unix time in milliseconds
//! 17      4     n: the number of fields
//! 21      ...   n fields, each:
//!                 2   a: length of the namespace
//!                 a   the namespace (UTF-8)
//!                 2   b: length of the field name
//!                 b   the field name (UTF-8)
//!                 4   c: length of the value
//!                 c   the value (the codec's bytes)
//! ```
//!
//! Nothing follows the last field and each (namespace, field name) pair
//! appears once. Parsing is total: any byte string parses or is
//! [`StoreError::Malformed`], never a panic, and the parser never
//! allocates more than the input's length justifies.
//!
//! # Tests
//!
//! `tests/memcache_conformance.rs` runs the store conformance suite;
//! `tests/memcache_store.rs` checks concurrent writers (12 × 20 rounds on one
//! session, through one store and through twelve clients), 29- to 60-day
//! expiries against memcached's own TTL, the size limit, the stored bytes
//! against the record format above, unreadable items and moves racing
//! writes; `tests/memcache_own_servers.rs` starts memcached servers of its
//! own to kill, freeze (SIGSTOP) and restart them while calls run, and to
//! share sessions between two servers. They use `MEMCACHE_URL` (default
//! `memcache://127.0.0.1:11211`) and fail when it is unreachable.

/// The `memcache` crate this module's public API uses, so callers need not
/// depend on a matching version of it themselves.
pub use ::memcache;

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
pub use memcache::exp::{AsyncMetaClient, MetaClientBuilder};
use memcache::exp::{Delete, Get, GetStatus, Meta, MutationStatus, Set, Ttl};

use super::{
    EXPIRY_FIELD, FORWARD_WINDOW, FieldWrite, IndexKey, LoadedFields, LoadedNamespace,
    SessionStore, StoreError, unix_millis,
};
use crate::id::SessionId;

mod items;
mod local;
mod record;
mod wire;

use items::Written;
use wire::*;

use record::{EncodeError, Record};

/// The key prefix unless [`MemcacheStore::with_prefix`] sets another.
pub const DEFAULT_PREFIX: &str = "session:";

/// The default largest session item: memcached's default item size limit
/// (`-I 1m`, 1 MiB) minus room for memcached's own item header and the key.
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024 - 512;

/// How many times a write retries after losing a compare-and-swap race
/// before it gives up with [`StoreError::Contention`].
pub(crate) const MAX_ATTEMPTS: u32 = 32;

/// Memcached reads a TTL above this many seconds as an absolute Unix time.
const MAX_RELATIVE_TTL: u64 = 30 * 24 * 60 * 60;

/// What a write of an index entry fails with (see *Session index* in the
/// module docs).
const NO_INDEX: &str = "MemcacheStore keeps no session index: Memcached cannot enumerate \
     sessions, so a `#[session(index)]` field needs RedisStore, MongoStore or MemoryStore";

/// Sessions in Memcached: one item per session, holding all of its fields.
///
/// ```no_run
/// use typed_sessions::store::memcache::MemcacheStore;
///
/// # async fn run() -> Result<(), typed_sessions::StoreError> {
/// let store = MemcacheStore::connect("memcache://127.0.0.1:11211")
///     .await?
///     .with_prefix("myapp:session:");
/// # Ok(())
/// # }
/// ```
///
/// The [module docs](self) describe the layout, what each operation sends
/// and what is atomic, expiry, limits and failures.
#[derive(Clone)]
pub struct MemcacheStore {
    client: AsyncMetaClient,
    prefix: String,
    max_item_size: usize,
    queues: Arc<local::Queues>,
}

impl std::fmt::Debug for MemcacheStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcacheStore")
            .field("prefix", &self.prefix)
            .field("max_item_size", &self.max_item_size)
            .finish_non_exhaustive()
    }
}

impl MemcacheStore {
    /// Connects to the Memcached server(s) of a URL and checks that each
    /// answers.
    ///
    /// The URL is `memcache://host:port` (port 11211 if left out); several
    /// servers are separated by commas, each with or without the scheme:
    /// `memcache://10.0.0.1:11211,10.0.0.2:11211`. Sessions are spread over
    /// them by rendezvous hashing of their keys. The client has the
    /// `memcache` crate's defaults: a 1 second connect and exchange
    /// deadline, pooled connections; use [`MemcacheStore::new`] with a
    /// client from [`AsyncMetaClient::builder`] to change them.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let servers = parse_url(url)?;
        let client = AsyncMetaClient::builder()
            .connect_multiple_async(servers)
            .await
            .map_err(backend)?;
        client.noop().await.map_err(backend)?;
        Ok(Self::new(client))
    }

    /// A store on a configured client, with the default prefix and item
    /// size limit.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use typed_sessions::store::memcache::{AsyncMetaClient, MemcacheStore};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = AsyncMetaClient::builder()
    ///     .io_timeout(Some(Duration::from_millis(500)))
    ///     .connect_multiple_async(["10.0.0.1:11211", "10.0.0.2:11211"])
    ///     .await?;
    /// let store = MemcacheStore::new(client);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(client: AsyncMetaClient) -> Self {
        Self {
            client,
            prefix: DEFAULT_PREFIX.to_owned(),
            max_item_size: DEFAULT_MAX_ITEM_SIZE,
            queues: Arc::default(),
        }
    }

    /// Sets the key prefix (default `session:`): a session lives at
    /// `{prefix}{id}`. Keys are limited to 250 bytes and an id is 32, so
    /// keep the prefix short.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the largest session record, in bytes, this store writes
    /// (default [`DEFAULT_MAX_ITEM_SIZE`]). Set it somewhat below the
    /// server's `-I` item size limit; a session that would grow past it
    /// fails with [`StoreError::TooLarge`] instead.
    #[must_use]
    pub fn with_max_item_size(mut self, bytes: usize) -> Self {
        self.max_item_size = bytes;
        self
    }

    /// The client, for operations of its own.
    pub fn client(&self) -> &AsyncMetaClient {
        &self.client
    }

    /// The Memcached key of a session: `{prefix}{id}`.
    pub fn key(&self, id: &SessionId) -> String {
        format!("{}{}", self.prefix, id.as_str())
    }
}

#[async_trait]
impl SessionStore for MemcacheStore {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        let Some((bytes, _)) = self.read(&self.key(id), false).await? else {
            return Ok(None);
        };
        let Some(record) = self.live(id, &bytes, SystemTime::now()) else {
            return Ok(None);
        };
        let value = |namespace: &str, name: &str| {
            record
                .fields
                .iter()
                .find(|f| f.namespace == namespace.as_bytes() && f.name == name.as_bytes())
                .map(|f| bytes::Bytes::copy_from_slice(f.value))
        };
        let values = fields.iter().map(|name| value(namespace, name)).collect();
        Ok(Some(LoadedFields {
            expiry: value(EXPIRY_FIELD.namespace, EXPIRY_FIELD.field),
            created_at: super::from_unix_millis(record.created_at),
            expires_at: super::from_unix_millis(record.expires_at),
            values,
        }))
    }

    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        let Some((bytes, _)) = self.read(&self.key(id), false).await? else {
            return Ok(None);
        };
        let Some(record) = self.live(id, &bytes, SystemTime::now()) else {
            return Ok(None);
        };
        let fields = record
            .fields
            .iter()
            .filter(|f| f.namespace == namespace.as_bytes())
            .filter_map(|f| match std::str::from_utf8(f.name) {
                Ok(name) => Some((name.to_owned(), bytes::Bytes::copy_from_slice(f.value))),
                Err(_) => {
                    tracing::warn!(
                        session = %id.log_tag(),
                        namespace,
                        "memcached session field name is not UTF-8; left out"
                    );
                    None
                }
            })
            .collect();
        let expiry = record
            .fields
            .iter()
            .find(|f| {
                f.namespace == EXPIRY_FIELD.namespace.as_bytes()
                    && f.name == EXPIRY_FIELD.field.as_bytes()
            })
            .map(|f| bytes::Bytes::copy_from_slice(f.value));
        Ok(Some(LoadedNamespace {
            expiry,
            created_at: super::from_unix_millis(record.created_at),
            expires_at: super::from_unix_millis(record.expires_at),
            fields,
        }))
    }

    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        refuse_index_entries(writes)?;
        let fields = record::merge(&[], writes);
        let value = self.encode(id, unix_millis(created_at), expires_at, &fields)?;
        self.create_item(id, &self.key(id), &value, expires_at)
            .await
            .map(|_| ())
    }

    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        refuse_index_entries(writes)?;
        self.modify(id, expires_at, |stored, expires_at| {
            let fields = record::merge(&stored.fields, writes);
            self.encode(id, stored.created_at, expires_at, &fields)
        })
        .await
    }

    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        self.modify(id, Some(expires_at), |stored, expires_at| {
            Ok(record::with_header(
                stored.created_at,
                unix_millis(expires_at),
                stored.body,
            ))
        })
        .await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.delete_item(&self.key(id), None).await.map(|_| ())
    }

    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let from_key = self.key(from);
        let to_key = self.key(to);
        let _turn = self.queues.turn(&from_key).await;
        for attempt in 0..MAX_ATTEMPTS {
            let started = Instant::now();
            let Some((bytes, cas)) = self.read(&from_key, true).await? else {
                return Ok(false);
            };
            let Some(record) = self.live(from, &bytes, SystemTime::now()) else {
                return Ok(false);
            };
            let value =
                record::with_header(record.created_at, unix_millis(expires_at), record.body);
            let to_cas = self.create_item(to, &to_key, &value, expires_at).await?;
            // The old item becomes the forward, only if unchanged since read.
            let now = SystemTime::now();
            let until = now.checked_add(FORWARD_WINDOW).unwrap_or(now);
            let forward = forward_record(to, until);
            match self
                .write(from, &from_key, forward, until, Some(cas))
                .await?
            {
                Written::Stored(_) => return Ok(true),
                Written::Conflict => {
                    // A concurrent write changed the old session after it was
                    // read: drop the stale copy and move again.
                    self.delete_item(&to_key, Some(to_cas)).await?;
                    backoff(attempt, started).await;
                }
                Written::Gone => {
                    // Deleted or moved concurrently: the session is gone.
                    self.delete_item(&to_key, Some(to_cas)).await?;
                    return Ok(false);
                }
                Written::Exists => {
                    return Err(StoreError::Malformed(
                        "memcached answered a cas like an add".to_owned(),
                    ));
                }
            }
        }
        Err(StoreError::Contention(MAX_ATTEMPTS))
    }

    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        let Some((bytes, _)) = self.read(&self.key(id), false).await? else {
            return Ok(None);
        };
        // Anything else there (a session, garbage) is no forward.
        let Ok(record) = record::parse(&bytes) else {
            return Ok(None);
        };
        if record.expires_at != 0 {
            return Ok(None);
        }
        let field = |name: &[u8]| {
            record
                .fields
                .iter()
                .find(|f| f.namespace == FORWARD_NAMESPACE && f.name == name)
                .map(|f| f.value)
        };
        let until = field(b"until")
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(u64::from_be_bytes);
        if until.is_none_or(|until| until <= unix_millis(SystemTime::now())) {
            return Ok(None);
        }
        Ok(field(b"to")
            .and_then(|to| std::str::from_utf8(to).ok())
            .and_then(SessionId::parse))
    }
}

#[cfg(test)]
mod tests;
