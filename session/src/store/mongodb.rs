//! [`MongoStore`]: one MongoDB document per session. Feature `mongodb`.
//!
//! # Layout
//!
//! Every session is one document of the store's collection:
//!
//! ```text
//! {
//!   _id:        "<session id, 32 characters>",
//!   data:       { <namespace>: { <field>: Binary, ... }, ... },
//!   created_at: Date,   // kept across move_to (cycle_id)
//!   expires_at: Date,   // the TTL index below removes the document after this
//!   moving:     { to: "<new id>", until: Date }   // only during a move_to without transactions
//! }
//! ```
//!
//! The remembered expiry ([`EXPIRY_FIELD`]) is the field
//! `data.__.expiry`; `load` projects it with the namespace. An index entry
//! (see [the session index](#the-session-index)) is the field
//! `data.__index.<namespace>`. A moved
//! session's old document becomes, in the step that retires it (inside the
//! transaction, or step 3 below), the forward
//! `{_id, forward: {to: "<new id>", until: Date}, expires_at: until}` for
//! [`FORWARD_WINDOW`](super::FORWARD_WINDOW): it has no `created_at`, so no
//! filter takes it for a session, and the TTL index removes it.
//! [`forwarded`](SessionStore::forwarded) reads it with one `find_one`; if the
//! session is still marked by a move without transactions (whose mark
//! refuses writes), it waits, polling, for that move to end.
//!
//! Values are the codec's bytes as BSON `Binary` (generic subtype); times are
//! BSON dates (millisecond precision).
//!
//! # The TTL index
//!
//! The store creates the index `{expires_at: 1}` with `expireAfterSeconds: 0`
//! (named `expires_at_1`, MongoDB's default name) on its collection, so the
//! server deletes a document once its `expires_at` has passed.
//! [`MongoStore::connect`] creates it before returning;
//! [`MongoStore::new`] is synchronous and creates it on the store's first
//! call (or when you call [`MongoStore::ensure_index`]). Creating it is
//! idempotent (an identical index already there is fine) and happens once per
//! `MongoStore` value and its clones; if it fails, the call fails with the
//! error and the next call tries again. An index on `expires_at_1` with
//! *different* options already in the collection is a conflict the server
//! reports (code 85/86): drop it or use another collection.
//!
//! # The session index
//!
//! A session's index entry for namespace `ns` (the key of its
//! `#[session(index)]` field, see the [store contract](super#writing-a-store))
//! is stored as any other field, `data.__index.ns: Binary(key)` (generic
//! subtype, so any bytes), in the session's own document. So writes, removals,
//! `move_to`, `delete` and expiry keep the index exact with no extra step:
//! there is no separate "key → ids" structure to update, prune or leave behind.
//!
//! The database index is a **sparse single-field index** `{"data.__index.ns": 1}`
//! per indexed namespace (MongoDB's default name, `data.__index.ns_1`). The
//! store creates it (`createIndexes`, idempotent) before the first write that
//! sets an entry of `ns`, and before the first `list_index`/`end_index` of
//! `ns`, once per `MongoStore` value and its clones. Sparse, because only
//! sessions that hold an entry belong in it: creating, updating, touching and
//! deleting a session without one does no index work on the server. A write
//! without an entry costs nothing extra on the client either (a scan of its
//! few writes, no lock, no round trip); removing an entry needs no index.
//!
//! - `list_index` is one `find` of `{data.__index.ns: key, expires_at > now,
//!   created_at is a date}` projecting `_id`, `created_at`, `expires_at`,
//!   hinted to the entry index: the server reads the index entries of that key
//!   and fetches only those documents (expired ones not yet removed by the TTL
//!   monitor are among them, and filtered out).
//! - `end_index` is one `delete` (multi) with the same filter, plus `_id ≠
//!   except`, and the same hint; it returns the server's count. Whatever
//!   matches when the server runs it is deleted, as `delete` would, leaving no
//!   forward. A session that a non-transactional `move_to` is moving at that
//!   moment is deleted under its old id; the move then sees the delete, drops
//!   its copy and returns `false` (as with a concurrent `destroy`).
//! - During such a move, `list_index` may list the session under both ids for
//!   the few milliseconds both documents exist; with transactions it never does.
//!
//! A hint naming a missing index is an error, so when the server refuses
//! one (the index or its collection was dropped while the store ran), the
//! store creates the index again and retries the call once.
//!
//! The hint is there because SecantusDB's planner scans the collection for a
//! filter with more clauses than the index covers unless told otherwise
//! (measured: with the hint it examines exactly the key's documents); real
//! MongoDB picks the index either way. SecantusDB also creates and uses
//! indexes on dotted paths, sparse and compound indexes, but ignores partial
//! indexes and multikey `$elemMatch` without a hint, so neither of those
//! layouts would have gained anything. Each indexed namespace costs one index
//! of MongoDB's 64 per collection; an application has one per
//! `#[session(index)]` field.
//!
//! # Expired sessions
//!
//! MongoDB's TTL monitor runs only about once a minute, so an expired document
//! can still be there: every operation filters on `expires_at > now` (the
//! application server's clock), and an expired session is never returned,
//! updated, touched or moved.
//!
//! # Operations and atomicity
//!
//! | operation | what it sends | atomic |
//! |---|---|---|
//! | `load`, `load_namespace` | one `find_one` by `_id`, filtered on `expires_at > now`, projecting `data.<namespace>`, `created_at`, `expires_at` | yes |
//! | `update` | one `update_one` filtered on `_id`, `expires_at > now` and not being moved: `$set` of `data.<ns>.<field>` for written fields and of `expires_at` when it moves, `$unset` of removed fields; never an upsert (with nothing to change, one `find_one` of `_id` under the same filter) | yes (single document) |
//! | `touch` | one `update_one` (`$set` of `expires_at`), same filter | yes |
//! | `create` | one `insert_one`; on a duplicate key, see below | yes for the insert |
//! | `delete` | one `delete_one` by `_id` | yes |
//! | `move_to` | a transaction when the deployment supports one; otherwise mark-and-read, insert, conditional delete (see below) | with a transaction; otherwise three atomic steps that never lose the session |
//! | `list_index` | one `find` hinted to the entry index ([above](#the-session-index)) | a query (not a snapshot across documents) |
//! | `end_index` | one multi-document `delete`, same filter and hint | each document's delete is |
//!
//! A `create` or `update` that sets an entry of a namespace this store has
//! not yet indexed sends `createIndexes` first, once.
//!
//! Concurrent writers of different fields of one session never lose each
//! other's writes: each `update_one` changes only the paths it names, and
//! MongoDB applies single-document updates atomically. When one update both
//! writes and removes the same field (which the layer never does), the last
//! write in the list wins.
//!
//! **`create`** inserts the document. A duplicate key (E11000) means a
//! document with that id is there: if it is live, the result is
//! [`StoreError::IdExists`] and nothing is overwritten; if it is expired but
//! not yet removed by the TTL monitor, it is deleted (only if still not live)
//! and the insert is retried once.
//!
//! **`move_to`** (the layer's `cycle_id`):
//! - on a replica set or sharded cluster (transactions supported, detected once
//!   with `hello`), one transaction takes `from` (`find_one_and_replace` by
//!   the forward, its
//!   first operation, so concurrent updates of `from` wait for it and then
//!   find no session) and inserts `to`. The driver's retrying transaction
//!   API runs it: a transient transaction error (a conflict) runs it again,
//!   at most 5 attempts in all, then [`StoreError::Contention`]; a commit
//!   whose result is unknown (say, a connection lost during the commit) is
//!   committed again, for up to the driver's 120 s (the layer's bound on the
//!   call ends it sooner). Any other failure aborts it, leaving `from` as it
//!   was;
//! - on a standalone server (no transactions; this includes the test server),
//!   it takes three steps, each atomic:
//!   1. one `find_one_and_update` reads `from` (live) and marks it
//!      `moving: {to: <new id>, until: <now + MOVE_LEASE>}` ([`MOVE_LEASE`]). While
//!      the mark holds, `update` and `touch` of `from` find no session and
//!      return `false` (as they would a moment later), so no write to `from`
//!      is acknowledged and then lost; `load` still reads it. A second,
//!      concurrent `move_to` of the same session returns `false`;
//!   2. `insert_one` of `to` with `from`'s `data` and `created_at`;
//!   3. `replace_one` of `from` by the forward if it still carries this move's mark and the
//!      `data` that was copied. If `from` was deleted meanwhile (a concurrent
//!      `destroy`), the delete wins: `to` is deleted again and the result is
//!      `false`. If its `data` changed after all (possible only on a server
//!      whose `findAndModify` is not atomic, such as the test server), `to`
//!      is brought up to date and the delete retried, at most 4 times, then
//!      [`StoreError::Contention`].
//!
//!   `to` is written before `from` is deleted, so a failure (error, timeout,
//!   crash) never loses the session: it stays under `from`, read-only until
//!   the mark lapses (at most [`MOVE_LEASE`]; an error in step 2 clears
//!   the mark at once), and a copy under `to` that nobody holds a cookie for
//!   may remain until it expires.
//!
//! # Durability
//!
//! Every write (create, update, touch, delete, `end_index`, each step of a
//! move, the commit of a move's transaction, index creation) carries the
//! store's write concern, by default
//! [`{w: "majority", j: true}`](MongoStore::default_write_concern): the server
//! acknowledges a write once a majority of the replica set (a standalone
//! server: the server itself) has it in its on-disk journal. A URI that
//! states a write concern (`w`, `journal`, `wtimeoutMS`), or a collection
//! given to [`MongoStore::new`] that has one, keeps it;
//! [`MongoStore::with_write_concern`] chooses another.
//!
//! Why this default: a session store's writes are logins (`cycle_id`: the new
//! id must exist when its cookie reaches the browser), logouts and "log out
//! everywhere" (a lost delete brings a revoked session back), and the data a
//! user just saw saved. With MongoDB's own default on a standalone server
//! (`w: 1`, journal written every 100 ms), a crash loses what was
//! acknowledged since the last journal commit: against SecantusDB, `kill -9`
//! while 6 writers ran lost 5, 13 and 25 of about 150 acknowledged writes in
//! three runs (and 3 and 7 in earlier runs); journaled, none, in every run
//! (`acknowledged_writes_survive_a_killed_server` in
//! `tests/mongo_fault.rs`). On a replica set, MongoDB 5.0 and later already
//! default to `w: "majority"`, which with `writeConcernMajorityJournalDefault`
//! (on by default) implies the journal, so there the default changes little.
//!
//! The cost is latency on writes only (loads are untouched, and the layer
//! writes only when a field changed, or once per refresh interval to slide
//! the expiry): each write waits for a journal flush, and on a replica set for
//! a majority to have it. Measured against a disk-backed SecantusDB on a
//! shared two-core machine, one writer: about 1.6 ms per update with `w: 1`,
//! 10 to 12 ms journaled; 16 concurrent writers: about 1,750 updates/s with
//! `w: 1`, 770 to 1,000 journaled (journal flushes are shared by concurrent
//! writes). An application that prefers speed to these guarantees can choose
//! `with_write_concern(WriteConcern::nodes(1))`.
//!
//! # Limits
//!
//! - A session document is at most 16 MiB (MongoDB's BSON limit); a write
//!   that would exceed it fails with [`StoreError::TooLarge`].
//! - Namespace and field names become parts of a dotted path. The derive only
//!   allows ASCII letters, digits, `_` and `-`; a hand-written caller passing
//!   an empty name, a name containing `.` or NUL, or a name starting with `$`
//!   gets an error ([`InvalidName`] inside [`StoreError::Backend`]) instead of
//!   a write to a wrong path.
//!
//! # Failures
//!
//! - One timeout policy: the layer bounds each store call
//!   ([`SessionLayer::with_store_timeout`](crate::SessionLayer::with_store_timeout))
//!   and the store sets only connection timeouts. [`MongoStore::connect`]
//!   sets `serverSelectionTimeoutMS` and `connectTimeoutMS` to
//!   [`DEFAULT_CONNECT_TIMEOUT`] (5 s) unless the URI sets them, so a dead
//!   server gives an error instead of waiting for the driver's 30 s default;
//!   a collection passed to [`MongoStore::new`] keeps its client's settings.
//!   The Rust driver has no socket timeout (it ignores `socketTimeoutMS`), so
//!   a server that accepts connections but never answers holds a call until
//!   the caller's bound drops it; a dropped call leaves the store working
//!   (the driver closes that call's connection), and a dropped non-transactional
//!   `move_to` leaves at most its mark, for [`MOVE_LEASE`]. Bound the calls you
//!   make outside a layer (say, an admin task's `end_index`) with
//!   `tokio::time::timeout`.
//! - Driver and server errors become [`StoreError::Backend`] (the layer answers
//!   500 and logs the cause); the same `MongoStore` works again as soon as the
//!   server is back.
//! - Corrupt stored data never panics and never fails a load: a field value
//!   that is not `Binary` reads as missing, a `data.<namespace>` that is not a
//!   document reads as an empty namespace; both are logged at `warn`. The next
//!   write of such a namespace resets it (or a `data` that is not a document)
//!   to an empty document first, logged at `warn`, then applies the write.
//! - A document whose `expires_at` or `created_at` is missing or not a date is
//!   treated as expired: never returned, updated, touched or moved. The TTL
//!   monitor ignores such documents, so they stay until deleted; `create` of
//!   the same id replaces them.
//!
//! Tested against SecantusDB 0.7.0b3, a MongoDB-wire-compatible server
//! (standalone and single-node replica set), not against a real `mongod`.

/// The MongoDB driver this store is built on, re-exported: its types appear
/// in [`MongoStore`]'s API ([`Collection`],
/// [`WriteConcern`](mongodb::options::WriteConcern), the
/// [`mongodb::error::Error`] inside [`StoreError::Backend`]), and naming them
/// through this path keeps an application on the driver version the store
/// was built with.
pub use ::mongodb;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, IndexModel};
use tokio::sync::OnceCell;

use super::{
    EXPIRY_FIELD, FieldWrite, IndexKey, IndexedSession, LoadedFields, LoadedNamespace,
    SessionStore, StoreError,
};
use crate::id::SessionId;

mod document;
mod error;
mod index;
mod lease;
mod transaction;
mod write;
mod write_concern;

use document::{
    bson_time, live_filter, namespace_fields, stored_expiry, system_time, warn_not_binary,
    writable_filter,
};
pub use error::InvalidName;
use error::{backend, check_name};

/// `serverSelectionTimeoutMS` and `connectTimeoutMS` that
/// [`MongoStore::connect`] uses when the URI does not set them; also the
/// bound on the rest of `connect` (resolving the URI, creating the TTL
/// index).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a `move_to` without transactions holds its mark on the session
/// it moves (see the [module docs](self)): far longer than a move takes,
/// and the longest a move interrupted after step 1 keeps the session
/// read-only.
pub const MOVE_LEASE: Duration = Duration::from_secs(10);
/// MongoDB's maximum document size (16 MiB).
pub const MAX_DOCUMENT_SIZE: usize = 16 * 1024 * 1024;

/// Sessions in a MongoDB collection, one document per session. See the
/// [module docs](self) for the layout, the TTL index, which operations are
/// atomic, limits, and what happens on failure.
///
/// Cloning is cheap and shares the client, the connection pool and the
/// once-only index creation.
///
/// ```no_run
/// use typed_sessions::store::mongodb::MongoStore;
///
/// # async fn run() -> Result<(), typed_sessions::StoreError> {
/// let store = MongoStore::connect("mongodb://127.0.0.1:27017/", "myapp", "sessions").await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MongoStore {
    collection: Collection<Document>,
    /// Set once the TTL index is known to exist.
    index: Arc<OnceCell<()>>,
    /// Whether the deployment supports transactions, asked once.
    transactions: Arc<OnceCell<bool>>,
    /// The session-index database indexes known to exist.
    entry_indexes: Arc<index::EntryIndexes>,
}

impl std::fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore")
            .field("collection", &self.collection.namespace().to_string())
            .field("write_concern", &self.collection.write_concern())
            .field("index_ensured", &self.index.initialized())
            .field("session_indexes_ensured", &self.entry_indexes.ensured())
            .finish_non_exhaustive()
    }
}

impl MongoStore {
    /// Connects to `uri`, uses collection `collection` of database `database`,
    /// and creates the TTL index (so an unreachable server or a conflicting
    /// index is reported here, not on the first request).
    ///
    /// Sets `serverSelectionTimeoutMS` and `connectTimeoutMS` to
    /// [`DEFAULT_CONNECT_TIMEOUT`] unless the URI sets them, and writes with
    /// [`default_write_concern`](Self::default_write_concern) unless the URI
    /// states a write concern (`w`, `journal`, `wtimeoutMS`). Resolving the
    /// URI and creating the index are each bounded by
    /// [`DEFAULT_CONNECT_TIMEOUT`] ([`StoreError::Timeout`]).
    pub async fn connect(uri: &str, database: &str, collection: &str) -> Result<Self, StoreError> {
        let mut options = tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, ClientOptions::parse(uri))
            .await
            .map_err(|_| StoreError::Timeout(DEFAULT_CONNECT_TIMEOUT))?
            .map_err(StoreError::backend)?;
        options
            .server_selection_timeout
            .get_or_insert(DEFAULT_CONNECT_TIMEOUT);
        options
            .connect_timeout
            .get_or_insert(DEFAULT_CONNECT_TIMEOUT);
        options
            .app_name
            .get_or_insert_with(|| "typed-sessions".to_owned());
        let client = Client::with_options(options).map_err(StoreError::backend)?;
        let store = Self::new(client.database(database).collection(collection));
        tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, store.ensure_index())
            .await
            .map_err(|_| StoreError::Timeout(DEFAULT_CONNECT_TIMEOUT))??;
        Ok(store)
    }

    /// A store on an existing collection, with its client's settings and
    /// its write concern, or [`default_write_concern`](Self::default_write_concern)
    /// when it has none.
    ///
    /// Does no I/O: the TTL index is created on the first call to the store,
    /// or when [`ensure_index`](Self::ensure_index) is awaited (do that at
    /// start-up to see a connection or index problem early).
    ///
    /// ```no_run
    /// use typed_sessions::store::mongodb::MongoStore;
    /// use typed_sessions::store::mongodb::mongodb::{Client, bson::Document};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::with_uri_str("mongodb://127.0.0.1:27017/").await?;
    /// let store = MongoStore::new(client.database("myapp").collection::<Document>("sessions"));
    /// store.ensure_index().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(collection: Collection<Document>) -> Self {
        let collection = match collection.write_concern() {
            Some(_) => collection,
            None => write_concern::concerned(&collection, Self::default_write_concern()),
        };
        Self {
            collection,
            index: Arc::new(OnceCell::new()),
            transactions: Arc::new(OnceCell::new()),
            entry_indexes: Arc::default(),
        }
    }

    /// The collection the sessions live in.
    pub fn collection(&self) -> &Collection<Document> {
        &self.collection
    }

    /// Creates the TTL index on `expires_at` unless this store already did.
    /// Idempotent.
    pub async fn ensure_index(&self) -> Result<(), StoreError> {
        self.index
            .get_or_try_init(|| async {
                let model = IndexModel::builder()
                    .keys(doc! { "expires_at": 1 })
                    .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
                    .build();
                match self.collection.create_index(model).await {
                    Ok(_) => {
                        tracing::debug!(
                            collection = %self.collection.namespace(),
                            "MongoStore: TTL index on expires_at is in place"
                        );
                        Ok(())
                    }
                    Err(error) => {
                        tracing::warn!(
                            collection = %self.collection.namespace(),
                            %error,
                            "MongoStore: could not create the TTL index on expires_at"
                        );
                        Err(backend(error))
                    }
                }
            })
            .await
            .map(|_| ())
    }

    /// Whether [`move_to`](SessionStore::move_to) runs in a transaction on
    /// this deployment (a replica set or sharded cluster). Asks the server
    /// once (`hello`) and remembers the answer; an error (server unreachable)
    /// is not remembered.
    pub async fn moves_in_transactions(&self) -> Result<bool, StoreError> {
        self.supports_transactions().await
    }

    /// The live session's creation and expiry times and its document,
    /// projected to `data.<namespace>` and the remembered expiry: one
    /// `find_one`.
    async fn find_live(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<(SystemTime, SystemTime, Document)>, StoreError> {
        let projection = doc! {
            "_id": 0,
            format!("data.{namespace}"): 1,
            format!("data.{}.{}", EXPIRY_FIELD.namespace, EXPIRY_FIELD.field): 1,
            "created_at": 1,
            "expires_at": 1,
        };
        let Some(doc) = self
            .collection
            .find_one(live_filter(id, DateTime::now()))
            .projection(projection)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let (Some(Bson::DateTime(created_at)), Some(Bson::DateTime(expires_at))) =
            (doc.get("created_at"), doc.get("expires_at"))
        else {
            // The filter only matches dates; a server that disagrees
            // gets the documented treatment: expired.
            tracing::warn!(
                session = %id.log_tag(),
                "MongoStore: session document without valid created_at/expires_at; treated as expired"
            );
            return Ok(None);
        };
        Ok(Some((
            system_time(*created_at),
            system_time(*expires_at),
            doc,
        )))
    }
}

#[async_trait]
impl SessionStore for MongoStore {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        check_name("namespace", namespace)?;
        for field in fields {
            check_name("field", field)?;
        }
        self.ensure_index().await?;
        let Some((created_at, expires_at, doc)) = self.find_live(id, namespace).await? else {
            return Ok(None);
        };
        let expiry = stored_expiry(id, &doc);
        let stored = namespace_fields(id, namespace, &doc);
        let values = fields
            .iter()
            .map(|field| match stored.and_then(|s| s.get(*field)) {
                None => None,
                Some(Bson::Binary(value)) => Some(value.bytes.clone().into()),
                Some(other) => {
                    warn_not_binary(id, namespace, field, other);
                    None
                }
            })
            .collect();
        Ok(Some(LoadedFields {
            expiry,
            created_at,
            expires_at,
            values,
        }))
    }

    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        check_name("namespace", namespace)?;
        self.ensure_index().await?;
        let Some((created_at, expires_at, doc)) = self.find_live(id, namespace).await? else {
            return Ok(None);
        };
        let fields = namespace_fields(id, namespace, &doc)
            .map(|stored| {
                stored
                    .iter()
                    .filter_map(|(field, value)| match value {
                        Bson::Binary(value) => Some((field.clone(), value.bytes.clone().into())),
                        other => {
                            warn_not_binary(id, namespace, field, other);
                            None
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(LoadedNamespace {
            expiry: stored_expiry(id, &doc),
            created_at,
            expires_at,
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
        self.create_session(id, writes, created_at, expires_at)
            .await
    }

    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        self.update_session(id, writes, expires_at).await
    }

    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        self.ensure_index().await?;
        let result = self
            .collection
            .update_one(
                writable_filter(id, DateTime::now()),
                doc! { "$set": { "expires_at": bson_time(expires_at) } },
            )
            .await
            .map_err(backend)?;
        Ok(result.matched_count > 0)
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.ensure_index().await?;
        self.collection
            .delete_one(doc! { "_id": id.as_str() })
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        self.ensure_index().await?;
        if self.supports_transactions().await? {
            self.move_with_transaction(from, to, expires_at).await
        } else {
            self.move_without_transaction(from, to, expires_at).await
        }
    }

    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        self.find_forward(id).await
    }

    async fn list_index(&self, index: IndexKey<'_>) -> Result<Vec<IndexedSession>, StoreError> {
        self.list_entries(index).await
    }

    async fn end_index(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        self.end_entries(index, except).await
    }
}

#[cfg(test)]
mod tests;
