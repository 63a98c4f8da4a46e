//! The field-level storage contract, and the stores that ship with the crate.
//!
//! A session is a set of fields, each addressed by a namespace (one per
//! [`SessionState`](crate::SessionState) type) and a field name, each holding
//! the bytes the configured [`Codec`](crate::Codec) produced. Besides its
//! fields, a stored session has a creation time and an expiry time.
//!
//! # Writing a store
//!
//! Implement [`SessionStore`] and run the conformance suite
//! (`typed_sessions::conformance`, feature `conformance`) against it. The
//! rules every store keeps:
//!
//! - **Expired is gone.** A session whose expiry time has passed is never
//!   returned by [`load`](SessionStore::load) or
//!   [`load_namespace`](SessionStore::load_namespace) and never updated, even when the
//!   backend has not yet cleaned it up.
//! - **No resurrection.** [`update`](SessionStore::update),
//!   [`touch`](SessionStore::touch) and [`move_to`](SessionStore::move_to)
//!   only act on a session that still exists and report `false` when it does
//!   not. Only [`create`](SessionStore::create) makes a new session, and it
//!   never overwrites one.
//! - **Field level.** An update changes exactly the fields it names; every
//!   other stored field, including fields of other namespaces and fields the
//!   current program does not know, keeps its bytes.
//! - **The remembered expiry.** The layer keeps the expiry a session chose
//!   with `TypedSession::set_expiry` in the reserved field [`EXPIRY_FIELD`]
//!   (namespace `__`, field `expiry`; the derive refuses namespaces starting with
//!   `__`). A store writes, removes and moves it like any other field, and
//!   [`load`](SessionStore::load) returns its bytes in
//!   [`LoadedFields::expiry`] with the requested fields, in the same round
//!   trip. A session stored without it follows the layer's configured
//!   expiry.
//! - **Forwards.** [`move_to`](SessionStore::move_to) leaves a forward from
//!   the old id to the new one for [`FORWARD_WINDOW`], atomically with the
//!   move where the backend allows (at the latest before `move_to`
//!   returns), and [`forwarded`](SessionStore::forwarded) reads it. A forward
//!   is not a session: `load`, `update`, `touch` and `move_to` of the old id
//!   find nothing, so the old id never reads the new session. The layer
//!   uses it only after an [`update`](SessionStore::update) of the old id
//!   reported `false`: it then applies the same writes to the new id with
//!   an ordinary `update` (which, as always, never re-creates a deleted
//!   session). So a write of a request that loaded the session just before
//!   a concurrent login cycled its id is kept, not answered 200 and lost.
//!   The writes of a request that cycles the id are never forwarded: the
//!   layer calls `move_to` first and then `update`s the new id, and when
//!   `move_to` reports `false` (the session ended, or another request moved
//!   it first) it [`create`](SessionStore::create)s a new session from them
//!   instead.
//!   [`delete`](SessionStore::delete) leaves no forward, and deleting an id
//!   also deletes a forward from it. A store without forwards (the default
//!   `forwarded`, returning `None`) still keeps every other rule; such racing
//!   writes are then dropped and logged.
//! - **The session index.** A field marked `#[session(index)]` (say, the
//!   logged-in user) makes the layer write, beside it, an *index entry*: the
//!   field of namespace [`INDEX_NAMESPACE`] named after the indexed
//!   namespace, holding the index key (the field's value in a fixed encoding,
//!   whatever the codec; removed when the value is the default). To a store
//!   it is a field like any other (written, removed, moved and deleted with
//!   the session), and a store that supports the index also answers
//!   [`list_index`](SessionStore::list_index) and
//!   [`end_index`](SessionStore::end_index) from it: exactly the live
//!   sessions whose entry for that namespace holds that key. A deleted,
//!   moved-away or expired session is never listed; after
//!   [`move_to`](SessionStore::move_to) the new id is. Whatever "key → ids"
//!   structure a store keeps is updated in the same atomic step as the entry
//!   where the backend allows it, and does not grow with ended sessions
//!   (entries of expired sessions are pruned on write or on listing). A write
//!   without an index entry costs no index work. A store that keeps no index
//!   refuses writes of index entries and both calls with
//!   [`StoreError::Unsupported`] (the defaults of the two calls).
//!
//! # An example store
//!
//! A complete store over a `Mutex<HashMap>`, to start yours from: every
//! required method, forwards and the session index, keeping every rule
//! above; it passes both conformance suites
//! (`typed_sessions::store_conformance_tests!` and
//! `typed_sessions::store_index_conformance_tests!`, feature `conformance`).
//! One lock makes each call atomic. A backend without one gets the same
//! guarantees from conditional writes (a script, a compare-and-swap, a
//! filtered update), as the stores of this crate do; their module docs say
//! how, backend by backend.
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Mutex, MutexGuard, PoisonError};
//! use std::time::SystemTime;
//!
//! use async_trait::async_trait;
//! use typed_sessions::SessionId;
//! use typed_sessions::store::{
//!     Bytes, EXPIRY_FIELD, FORWARD_WINDOW, FieldWrite, INDEX_NAMESPACE, IndexKey,
//!     IndexedSession, LoadedFields, LoadedNamespace, SessionStore, StoreError,
//! };
//!
//! /// One stored session.
//! struct Stored {
//!     created_at: SystemTime,
//!     expires_at: SystemTime,
//!     /// (namespace, field) -> the codec's bytes, opaque to the store.
//!     fields: HashMap<(String, String), Bytes>,
//! }
//!
//! impl Stored {
//!     fn get(&self, namespace: &str, field: &str) -> Option<Bytes> {
//!         self.fields.get(&(namespace.to_owned(), field.to_owned())).cloned()
//!     }
//!
//!     /// Field level: exactly the named fields change, the others keep
//!     /// their bytes.
//!     fn apply(&mut self, writes: &[FieldWrite<'_>]) {
//!         for write in writes {
//!             let key = (write.key.namespace.to_owned(), write.key.field.to_owned());
//!             match write.value {
//!                 Some(value) => self.fields.insert(key, Bytes::copy_from_slice(value)),
//!                 None => self.fields.remove(&key),
//!             };
//!         }
//!     }
//! }
//!
//! #[derive(Default)]
//! struct Sessions {
//!     live: HashMap<SessionId, Stored>,
//!     /// Old id -> (new id, end of the window), left by `move_to`.
//!     forwards: HashMap<SessionId, (SessionId, SystemTime)>,
//! }
//!
//! impl Sessions {
//!     /// The session under `id` if it has not expired. Expired is gone: an
//!     /// expired session is dropped here, so no call returns, updates or
//!     /// moves it.
//!     fn live(&mut self, id: &SessionId, now: SystemTime) -> Option<&mut Stored> {
//!         if self.live.get(id).is_some_and(|s| s.expires_at <= now) {
//!             self.live.remove(id);
//!         }
//!         self.live.get_mut(id)
//!     }
//!
//!     /// Drops every expired session and forward. A full scan, so it runs
//!     /// on `create` only; a real store sweeps incrementally or lets its
//!     /// backend expire keys.
//!     fn sweep(&mut self, now: SystemTime) {
//!         self.live.retain(|_, s| s.expires_at > now);
//!         self.forwards.retain(|_, (_, until)| *until > now);
//!     }
//!
//!     /// The live sessions whose index entry for `index.namespace` holds
//!     /// `index.key`. A scan; a real store keeps "key -> ids" beside the
//!     /// sessions, updated in the same atomic step as the entry.
//!     fn indexed<'a>(
//!         &'a self,
//!         index: IndexKey<'a>,
//!         now: SystemTime,
//!     ) -> impl Iterator<Item = (&'a SessionId, &'a Stored)> + 'a {
//!         self.live.iter().filter(move |(_, s)| {
//!             s.expires_at > now
//!                 && s.get(INDEX_NAMESPACE, index.namespace).as_deref() == Some(index.key)
//!         })
//!     }
//! }
//!
//! /// Sessions in a `HashMap` behind one lock.
//! #[derive(Default)]
//! pub struct HashMapStore {
//!     sessions: Mutex<Sessions>,
//! }
//!
//! impl HashMapStore {
//!     fn lock(&self) -> MutexGuard<'_, Sessions> {
//!         // Every call leaves the maps consistent, so a panic elsewhere
//!         // while holding the lock does not make them unusable.
//!         self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
//!     }
//! }
//!
//! #[async_trait]
//! impl SessionStore for HashMapStore {
//!     async fn load(
//!         &self,
//!         id: &SessionId,
//!         namespace: &str,
//!         fields: &[&str],
//!     ) -> Result<Option<LoadedFields>, StoreError> {
//!         let mut sessions = self.lock();
//!         let Some(s) = sessions.live(id, SystemTime::now()) else {
//!             return Ok(None);
//!         };
//!         Ok(Some(LoadedFields {
//!             created_at: s.created_at,
//!             expires_at: s.expires_at,
//!             values: fields.iter().map(|field| s.get(namespace, field)).collect(),
//!             // The remembered expiry comes with every load.
//!             expiry: s.get(EXPIRY_FIELD.namespace, EXPIRY_FIELD.field),
//!         }))
//!     }
//!
//!     async fn load_namespace(
//!         &self,
//!         id: &SessionId,
//!         namespace: &str,
//!     ) -> Result<Option<LoadedNamespace>, StoreError> {
//!         let mut sessions = self.lock();
//!         let Some(s) = sessions.live(id, SystemTime::now()) else {
//!             return Ok(None);
//!         };
//!         Ok(Some(LoadedNamespace {
//!             created_at: s.created_at,
//!             expires_at: s.expires_at,
//!             fields: s
//!                 .fields
//!                 .iter()
//!                 .filter(|((ns, _), _)| ns == namespace)
//!                 .map(|((_, field), value)| (field.clone(), value.clone()))
//!                 .collect(),
//!             expiry: s.get(EXPIRY_FIELD.namespace, EXPIRY_FIELD.field),
//!         }))
//!     }
//!
//!     async fn create(
//!         &self,
//!         id: &SessionId,
//!         writes: &[FieldWrite<'_>],
//!         created_at: SystemTime,
//!         expires_at: SystemTime,
//!     ) -> Result<(), StoreError> {
//!         let now = SystemTime::now();
//!         let mut sessions = self.lock();
//!         sessions.sweep(now);
//!         // Never overwrite a live session.
//!         if sessions.live(id, now).is_some() {
//!             return Err(StoreError::IdExists);
//!         }
//!         let mut stored = Stored {
//!             created_at,
//!             expires_at,
//!             fields: HashMap::new(),
//!         };
//!         stored.apply(writes); // a removal of a field not there is a no-op
//!         sessions.live.insert(id.clone(), stored);
//!         Ok(())
//!     }
//!
//!     async fn update(
//!         &self,
//!         id: &SessionId,
//!         writes: &[FieldWrite<'_>],
//!         expires_at: Option<SystemTime>,
//!     ) -> Result<bool, StoreError> {
//!         let mut sessions = self.lock();
//!         // No resurrection: a deleted, moved or expired session is not
//!         // written, and nothing is created.
//!         let Some(s) = sessions.live(id, SystemTime::now()) else {
//!             return Ok(false);
//!         };
//!         s.apply(writes);
//!         if let Some(expires_at) = expires_at {
//!             s.expires_at = expires_at;
//!         }
//!         Ok(true)
//!     }
//!
//!     async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
//!         let mut sessions = self.lock();
//!         let Some(s) = sessions.live(id, SystemTime::now()) else {
//!             return Ok(false);
//!         };
//!         s.expires_at = expires_at;
//!         Ok(true)
//!     }
//!
//!     async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
//!         let mut sessions = self.lock();
//!         sessions.live.remove(id);
//!         // A logout wins over writes racing it: no forward survives.
//!         sessions.forwards.remove(id);
//!         Ok(())
//!     }
//!
//!     async fn move_to(
//!         &self,
//!         from: &SessionId,
//!         to: &SessionId,
//!         expires_at: SystemTime,
//!     ) -> Result<bool, StoreError> {
//!         let now = SystemTime::now();
//!         let mut sessions = self.lock();
//!         if sessions.live(from, now).is_none() {
//!             return Ok(false);
//!         }
//!         if sessions.live(to, now).is_some() {
//!             return Err(StoreError::IdExists);
//!         }
//!         let Some(mut stored) = sessions.live.remove(from) else {
//!             return Ok(false);
//!         };
//!         // Fields (the index entry among them) and creation time move; the
//!         // old id is no session any more, only a forward.
//!         stored.expires_at = expires_at;
//!         sessions.live.insert(to.clone(), stored);
//!         let until = now + FORWARD_WINDOW;
//!         sessions.forwards.insert(from.clone(), (to.clone(), until));
//!         Ok(true)
//!     }
//!
//!     async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
//!         let sessions = self.lock();
//!         Ok(sessions
//!             .forwards
//!             .get(id)
//!             .filter(|(_, until)| *until > SystemTime::now())
//!             .map(|(to, _)| to.clone()))
//!     }
//!
//!     async fn list_index(&self, index: IndexKey<'_>) -> Result<Vec<IndexedSession>, StoreError> {
//!         let sessions = self.lock();
//!         Ok(sessions
//!             .indexed(index, SystemTime::now())
//!             .map(|(id, s)| IndexedSession {
//!                 id: id.clone(),
//!                 created_at: s.created_at,
//!                 expires_at: s.expires_at,
//!             })
//!             .collect())
//!     }
//!
//!     async fn end_index(
//!         &self,
//!         index: IndexKey<'_>,
//!         except: Option<&SessionId>,
//!     ) -> Result<usize, StoreError> {
//!         let mut sessions = self.lock();
//!         let ended: Vec<SessionId> = sessions
//!             .indexed(index, SystemTime::now())
//!             .map(|(id, _)| id.clone())
//!             .filter(|id| Some(id) != except)
//!             .collect();
//!         // Under the one lock, so every session holding the key when the
//!         // call starts is gone when it returns, ended as `delete` ends it.
//!         for id in &ended {
//!             sessions.live.remove(id);
//!             sessions.forwards.remove(id);
//!         }
//!         Ok(ended.len())
//!     }
//! }
//!
//! // Plugged in like any store:
//! let layer = typed_sessions::SessionLayer::new(HashMapStore::default());
//! # let _ = layer;
//! ```

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
/// The bytes of a loaded field (re-exported from the `bytes` crate).
pub use bytes::Bytes;

use crate::id::SessionId;

#[cfg(feature = "memcache")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcache")))]
pub mod memcache;
pub mod memory;
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub mod mongodb;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

/// The address of one stored field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldKey<'a> {
    /// The namespace: one per `SessionState` type. Never holds a `.`, so
    /// stores may join it and the field with one (Redis does): the derive
    /// accepts ASCII letters, digits, `_` and `-`, and the crate's own
    /// namespaces start with `__`.
    pub namespace: &'a str,
    /// The stored name of the field within its namespace.
    pub field: &'a str,
}

/// The reserved field that holds the expiry a session chose with
/// `TypedSession::set_expiry` (see the [module docs](self)). Its bytes are
/// the layer's, opaque to a store. The names are short because a load asks
/// for the field on every request (Redis: `__.expiry` in each `HMGET`).
pub const EXPIRY_FIELD: FieldKey<'static> = FieldKey {
    namespace: "__",
    field: "expiry",
};

/// How long the forward that [`SessionStore::move_to`] leaves behind lasts:
/// for this long after a login cycled the id, writes of requests that still
/// hold the old id are applied to the session under its new id; after it,
/// they are dropped (and logged), as after a `destroy`.
pub const FORWARD_WINDOW: Duration = Duration::from_secs(10);

/// The reserved namespace of index entries (see the [module docs](self)):
/// field `ns` of this namespace holds the index key of namespace `ns`'s
/// `#[session(index)]` field.
pub const INDEX_NAMESPACE: &str = "__index";

/// One index: the sessions whose index entry for `namespace` holds `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexKey<'a> {
    /// The indexed namespace (the field of [`INDEX_NAMESPACE`]).
    pub namespace: &'a str,
    /// The index key: the bytes of the index entry.
    pub key: &'a [u8],
}

impl<'a> IndexKey<'a> {
    /// The index entry a write sets (`Some(key)`) or removes (`None`), if the
    /// write is one: what a store checks each write of `create` and `update`
    /// with.
    pub fn of_write(write: &FieldWrite<'a>) -> Option<(&'a str, Option<&'a [u8]>)> {
        (write.key.namespace == INDEX_NAMESPACE).then_some((write.key.field, write.value))
    }
}

/// A live session found through an index, as
/// [`SessionStore::list_index`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedSession {
    /// The session's id.
    pub id: SessionId,
    /// When the session was created.
    pub created_at: SystemTime,
    /// When the session expires unless it is written or touched again.
    pub expires_at: SystemTime,
}

/// One change to one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldWrite<'a> {
    /// Which field.
    pub key: FieldKey<'a>,
    /// The new encoded value, or `None` to remove the field.
    pub value: Option<&'a [u8]>,
}

/// What [`SessionStore::load`] returns for a session that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedFields {
    /// When the session was created; kept across [`SessionStore::move_to`].
    pub created_at: SystemTime,
    /// When the session expires unless it is written or touched again.
    pub expires_at: SystemTime,
    /// The stored bytes of each requested field, in the order requested;
    /// `None` for a field that is not stored. `Bytes` lets a store hand out
    /// what it holds without copying it.
    pub values: Vec<Option<Bytes>>,
    /// The stored bytes of [`EXPIRY_FIELD`], whatever the namespace loaded;
    /// `None` when the session has none.
    pub expiry: Option<Bytes>,
}

/// What [`SessionStore::load_namespace`] returns for a session that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedNamespace {
    /// When the session was created; kept across [`SessionStore::move_to`].
    pub created_at: SystemTime,
    /// When the session expires unless it is written or touched again.
    pub expires_at: SystemTime,
    /// Every stored field of the namespace, name and bytes, in no
    /// particular order; empty when the session holds none.
    pub fields: Vec<(String, Bytes)>,
    /// The stored bytes of [`EXPIRY_FIELD`], as in [`LoadedFields::expiry`].
    pub expiry: Option<Bytes>,
}

/// Errors a store reports. The layer turns every one of them into a
/// `500 Internal Server Error` and logs it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// [`SessionStore::create`] found a session with that id already.
    #[error("a session with this id already exists")]
    IdExists,
    /// The backend could not be reached or failed.
    #[error("session store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The backend answered with something the store cannot read.
    #[error("session store returned malformed data: {0}")]
    Malformed(String),
    /// The session would exceed a limit of the backend or of the store.
    #[error("session too large: {0}")]
    TooLarge(String),
    /// Optimistic concurrency gave up after its bounded number of retries.
    #[error("session store gave up after {0} conflicting concurrent writes")]
    Contention(u32),
    /// The store call did not finish within the layer's timeout.
    #[error("session store call timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The store does not offer what was asked (for example, a session
    /// index on a backend that cannot enumerate sessions).
    #[error("{0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// Wraps any backend error.
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(error))
    }
}

/// A session store: the field-level contract the layer drives.
///
/// See the [module docs](self) for the rules every implementation keeps. Each
/// method is one logical operation; a store documents which of them are
/// atomic on its backend. The layer wraps every call in its timeout, so a
/// store need not add its own (though it may).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Loads the listed fields of one namespace of a session.
    ///
    /// Returns `Ok(None)` when the session does not exist or has expired.
    /// `values` has one entry per name in `fields`, in the same order.
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError>;

    /// Loads every stored field of one namespace of a session, names and
    /// bytes, and nothing of the other namespaces: what the dict-like
    /// [`Session`](crate::Session) reads, whose field names are not known
    /// in advance. One round trip where the backend allows it.
    ///
    /// Returns `Ok(None)` when the session does not exist or has expired,
    /// exactly when [`load`](Self::load) would. A stored field name that is
    /// not UTF-8 (corrupt data) is left out, with a warning.
    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError>;

    /// Creates a brand-new session holding `writes` (removals are ignored).
    ///
    /// Fails with [`StoreError::IdExists`] if a live session has this id; it
    /// never overwrites one.
    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError>;

    /// Applies `writes` to an existing session and, with `Some`, sets its
    /// expiry; with `None` the stored expiry stays as it is (the layer moves
    /// expiries once per refresh interval, not on every write).
    ///
    /// Returns `Ok(false)`, changing nothing, when the session no longer
    /// exists (deleted, moved or expired): an update never creates one.
    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError>;

    /// Sets the expiry of an existing session without touching its fields.
    /// Returns `Ok(false)` when the session no longer exists.
    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError>;

    /// Deletes a session with all its namespaces. Deleting a session that
    /// does not exist is not an error.
    async fn delete(&self, id: &SessionId) -> Result<(), StoreError>;

    /// Moves a session, fields and creation time, to the unused id `to`, with
    /// the new expiry; afterwards `from` no longer exists, and a forward from
    /// `from` to `to` lasts for [`FORWARD_WINDOW`] (see
    /// [`forwarded`](Self::forwarded)).
    ///
    /// Returns `Ok(false)`, changing nothing, when `from` no longer exists.
    /// A failure must never lose the session: a store that cannot do this
    /// atomically creates `to` before deleting `from`.
    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError>;

    /// The id a session moved to from `id` within the last
    /// [`FORWARD_WINDOW`], if [`move_to`](Self::move_to) left a forward that
    /// neither ran out nor was deleted. It says nothing about whether that
    /// session still exists. The default, for a store without forwards, is
    /// `None`.
    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        let _ = id;
        Ok(None)
    }

    /// The live sessions whose index entry for `index.namespace` holds
    /// `index.key`, in no particular order (see the [module docs](self)).
    /// The default, for a store that keeps no index, is
    /// [`StoreError::Unsupported`].
    async fn list_index(&self, index: IndexKey<'_>) -> Result<Vec<IndexedSession>, StoreError> {
        let _ = index;
        Err(StoreError::Unsupported(NO_INDEX))
    }

    /// Deletes, as [`delete`](Self::delete) does, every session
    /// [`list_index`](Self::list_index) would list, except `except`, and
    /// returns how many it deleted. Every such session that exists when the
    /// call starts is gone when it returns. The default, for a store that
    /// keeps no index, is [`StoreError::Unsupported`].
    async fn end_index(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let _ = (index, except);
        Err(StoreError::Unsupported(NO_INDEX))
    }
}

/// What a store without an index answers.
const NO_INDEX: &str = "this session store keeps no session index (`#[session(index)]`)";

#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        (**self).load(id, namespace, fields).await
    }
    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        (**self).load_namespace(id, namespace).await
    }
    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        (**self).create(id, writes, created_at, expires_at).await
    }
    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        (**self).update(id, writes, expires_at).await
    }
    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        (**self).touch(id, expires_at).await
    }
    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        (**self).delete(id).await
    }
    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        (**self).move_to(from, to, expires_at).await
    }
    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        (**self).forwarded(id).await
    }
    async fn list_index(&self, index: IndexKey<'_>) -> Result<Vec<IndexedSession>, StoreError> {
        (**self).list_index(index).await
    }
    async fn end_index(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        (**self).end_index(index, except).await
    }
}

/// Milliseconds since the Unix epoch, saturating; the time format most
/// backends store. Times before the epoch become 0.
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`unix_millis`].
pub(crate) fn from_unix_millis(millis: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH
        .checked_add(std::time::Duration::from_millis(millis))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}
