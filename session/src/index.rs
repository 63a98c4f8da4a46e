//! Log out everywhere: the session index of a `#[session(index)]` field.
//!
//! Mark one field of a state type `#[session(index)]`, typically the
//! logged-in user:
//!
//! ```
//! use typed_sessions::SessionState;
//!
//! #[derive(SessionState)]
//! struct Auth {
//!     #[session(index)]
//!     user: Option<String>,
//! }
//! ```
//!
//! Whenever a request writes that field, the layer also writes the session's
//! *index entry* (the field's value in MessagePack, whatever the layer's
//! codec, so changing codecs keeps the index), and the store keeps "value →
//! live sessions" current with it. The default value (`None` here) is not
//! indexed. Then:
//!
//! - inside a handler, [`TypedSession::sessions`](crate::TypedSession::sessions) lists the sessions of the
//!   current value ("your devices", the current one marked) and
//!   [`TypedSession::end_other_sessions`](crate::TypedSession::end_other_sessions) ends all but the current one (after
//!   a password change);
//! - anywhere, [`SessionIndex`] (from [`SessionLayer::index`](crate::SessionLayer::index) or
//!   [`TypedSession::index`](crate::TypedSession::index)) lists and ends the sessions of any value (an
//!   admin revoking a user).
//!
//! A destroyed, cycled-away or expired session is never listed; after
//! [`TypedSession::cycle_id`](crate::TypedSession::cycle_id) its new id is. Ending is immediate: the next
//! request of an ended session finds nothing, gets a fresh session and its
//! cookie removed.
//!
//! # Cost
//!
//! Only requests that write the index field (a login, a logout that clears
//! it) do index work, in the same store round trip as the write: no extra
//! round trip, and nothing at all for the requests that do not write it.
//! Listing and ending cost one call each (one query for MongoDB; on Redis
//! one script, plus a check of each member on Redis Cluster).
//!
//! # Stores
//!
//! The memory store, Redis (single server and Cluster) and MongoDB keep the
//! index; see each store's documentation for how. Memcached cannot enumerate
//! keys: a `MemcacheStore` refuses to store an index entry, so a request
//! writing an indexed field fails with a 500 and the error
//! [`StoreError::Unsupported`](crate::StoreError::Unsupported) is logged. A
//! store of your own keeps no index unless it implements
//! [`SessionStore::list_index`](crate::SessionStore::list_index) and
//! [`SessionStore::end_index`](crate::SessionStore::end_index).
//!
//! Sessions stored before the field was marked `index` join the index the
//! next time the field is written.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::codec::CodecError;
use crate::id::{LogTag, SessionId};
use crate::request::Shared;
use crate::state::IndexedState;
use crate::store::{IndexKey, StoreError};

/// The index key of a value: its MessagePack encoding, the same whatever
/// the layer's codec. `Some(x)` encodes as `x`, so an `Option<K>` field is
/// found by a `K`.
pub(crate) fn key_bytes<K: Serialize + ?Sized>(value: &K) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec(value).map_err(CodecError::new)
}

/// One live session of an indexed value, as [`SessionIndex::list`] and
/// [`TypedSession::sessions`](crate::TypedSession::sessions) return it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// A short tag of the session's id, to tell sessions apart on a "your
    /// devices" page without showing the id itself (a bearer secret). It is
    /// the id's [`log_tag`](SessionId::log_tag): stable within a process.
    pub tag: LogTag,
    /// When the session was created (its login, for a session created by
    /// it), kept across id changes.
    pub created_at: SystemTime,
    /// When it expires unless used again.
    pub expires_at: SystemTime,
    /// Whether it is the session of the request that asked.
    pub current: bool,
}

/// Why listing or ending indexed sessions failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The store failed, timed out, or keeps no index
    /// ([`StoreError::Unsupported`]).
    #[error("session index: {0}")]
    Store(#[from] StoreError),
    /// The value looked up could not be encoded as an index key.
    #[error("session index: the value could not be encoded: {0}")]
    Encode(#[from] CodecError),
}

impl axum_core::response::IntoResponse for IndexError {
    fn into_response(self) -> axum_core::response::Response {
        tracing::error!(error = %self, "session index call failed");
        (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "session store unavailable",
        )
            .into_response()
    }
}

/// The sessions of the index of `T`'s `#[session(index)]` field: list or end
/// the sessions of any value, inside a request or outside one (an admin
/// task). Get one from [`SessionLayer::index`](crate::SessionLayer::index)
/// or [`TypedSession::index`](crate::TypedSession::index); it is cheap to
/// clone, and every call is bounded by the layer's store timeout.
///
/// ```
/// use typed_sessions::{MemoryStore, SessionLayer, SessionState};
///
/// #[derive(SessionState)]
/// struct Auth {
///     #[session(index)]
///     user: Option<String>,
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let layer = SessionLayer::new(MemoryStore::default());
/// let index = layer.index::<Auth>();
/// // A password reset: every session of "ada" ends.
/// let ended = index.end_all(&"ada".to_owned()).await?;
/// assert_eq!(ended, 0);
/// # Ok::<(), typed_sessions::IndexError>(())
/// # }).unwrap();
/// ```
pub struct SessionIndex<T> {
    shared: Arc<Shared>,
    state: PhantomData<fn() -> T>,
}

impl<T> Clone for SessionIndex<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            state: PhantomData,
        }
    }
}

impl<T: IndexedState> std::fmt::Debug for SessionIndex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionIndex")
            .field("namespace", &T::NAMESPACE)
            .finish_non_exhaustive()
    }
}

impl<T: IndexedState> SessionIndex<T> {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            state: PhantomData,
        }
    }

    /// The live sessions whose index field holds `value`, oldest first.
    /// None of them is marked current.
    pub async fn list(&self, value: &T::IndexKey) -> Result<Vec<SessionInfo>, IndexError> {
        self.list_key(&key_bytes(value)?, None).await
    }

    /// Ends every live session whose index field holds `value` (each as a
    /// `destroy` would: its next request finds nothing), and returns how
    /// many it ended. Every such session that exists when the call starts
    /// is gone when it returns.
    pub async fn end_all(&self, value: &T::IndexKey) -> Result<usize, IndexError> {
        self.end_key(&key_bytes(value)?, None).await
    }

    /// [`list`](Self::list) by an encoded key, marking `current`.
    pub(crate) async fn list_key(
        &self,
        key: &[u8],
        current: Option<&SessionId>,
    ) -> Result<Vec<SessionInfo>, IndexError> {
        let index = IndexKey {
            namespace: T::NAMESPACE,
            key,
        };
        let mut found = self
            .shared
            .call(self.shared.store.list_index(index))
            .await?;
        found.sort_by_key(|session| session.created_at);
        Ok(found
            .into_iter()
            .map(|session| SessionInfo {
                tag: session.id.log_tag(),
                created_at: session.created_at,
                expires_at: session.expires_at,
                current: current == Some(&session.id),
            })
            .collect())
    }

    /// [`end_all`](Self::end_all) by an encoded key, sparing `except`.
    pub(crate) async fn end_key(
        &self,
        key: &[u8],
        except: Option<&SessionId>,
    ) -> Result<usize, IndexError> {
        let index = IndexKey {
            namespace: T::NAMESPACE,
            key,
        };
        let ended = self
            .shared
            .call(self.shared.store.end_index(index, except))
            .await?;
        tracing::info!(namespace = T::NAMESPACE, ended, "indexed sessions ended");
        Ok(ended)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::key_bytes;

    #[test]
    fn an_option_field_is_found_by_its_inner_value() {
        assert_eq!(
            key_bytes(&Some("ada".to_owned())).unwrap(),
            key_bytes("ada").unwrap()
        );
        assert_eq!(key_bytes(&Some(7u64)).unwrap(), key_bytes(&7u64).unwrap());
        assert_ne!(key_bytes(&7u64).unwrap(), key_bytes("7").unwrap());
        assert_ne!(
            key_bytes(&None::<String>).unwrap(),
            key_bytes("").unwrap(),
            "None and the empty string are different keys"
        );
    }
}
