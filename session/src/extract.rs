//! [`TypedSession<T>`]: the extractor handlers take.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::config::Expiry;
use crate::id::SessionId;
use crate::index::{IndexError, SessionIndex, SessionInfo};
use crate::private::Companion;
use crate::request::{Action, RequestSession};
use crate::state::{IndexedState, SessionState};

/// One namespace of the request's session, typed.
///
/// It dereferences to the companion type `#[derive(SessionState)]`
/// generates, so the accessors `f()`, `set_f()`, `f_mut()` and `take_f()`
/// are called on it directly (`session.items().len()`). A field is decoded
/// the first time it is read, so a handler pays only for the fields it
/// touches; `set_f()` replaces a value without decoding the old one. Every
/// write goes through the tracked accessors; after the handler, the layer
/// writes back the changed fields whose bytes differ from what was loaded.
///
/// Session controls are associated functions (`TypedSession::id(&s)`), so
/// they never shadow a generated accessor.
///
/// Taking the same `TypedSession<T>` twice at once in one request is
/// rejected; taking it again after the first was dropped (say, in a
/// middleware, then in the handler) sees the first one's changes.
///
/// ```
/// use axum::extract::{Path, Query};
/// use axum::{Router, routing::get};
/// use serde::Deserialize;
/// use typed_sessions::{MemoryStore, SessionLayer, SessionState, TypedSession};
///
/// #[derive(SessionState)]
/// struct Auth {
///     user: Option<String>,
///     logins: u32,
/// }
///
/// #[derive(SessionState)]
/// struct Cart {
///     items: Vec<String>,
/// }
///
/// // Reads only: nothing is written back.
/// async fn index(auth: TypedSession<Auth>, cart: TypedSession<Cart>) -> String {
///     let who = auth.user().as_deref().unwrap_or("anonymous");
///     format!("{who}, {} items", cart.items().len())
/// }
///
/// // Writes one field of `Cart`; only that field is sent to the store.
/// async fn add(Path(item): Path<String>, mut cart: TypedSession<Cart>) -> String {
///     cart.items_mut().push(item);
///     cart.items().len().to_string()
/// }
///
/// #[derive(Deserialize)]
/// struct Login {
///     user: String,
/// }
///
/// async fn login(Query(login): Query<Login>, mut auth: TypedSession<Auth>) -> String {
///     // (Check the credentials first.)
///     auth.set_user(Some(login.user.clone()));
///     *auth.logins_mut() += 1;
///     // New privileges, new id: the session (the cart too) moves to a fresh
///     // id after the handler, and an id planted before the login is useless.
///     TypedSession::cycle_id(&mut auth);
///     format!("welcome {}", login.user)
/// }
///
/// async fn logout(mut auth: TypedSession<Auth>) -> &'static str {
///     // Every namespace is deleted and the cookie expired.
///     TypedSession::destroy(&mut auth);
///     "bye"
/// }
///
/// let app: Router = Router::new()
///     .route("/", get(index))
///     .route("/cart/{item}", get(add))
///     .route("/login", get(login))
///     .route("/logout", get(logout))
///     .layer(SessionLayer::new(MemoryStore::default()));
/// # let _ = app;
/// ```
pub struct TypedSession<T: SessionState> {
    session: Option<T::Session>,
    request: Arc<RequestSession>,
}

impl<T: SessionState> TypedSession<T> {
    fn companion(&self) -> &T::Session {
        match &self.session {
            Some(session) => session,
            // `session` is only `None` inside `drop`.
            None => unreachable!("TypedSession used after drop"),
        }
    }

    /// The session's id; `None` for a session not yet stored.
    pub fn id(this: &Self) -> Option<SessionId> {
        this.request.id()
    }

    /// Whether no stored session came with the request.
    pub fn is_new(this: &Self) -> bool {
        this.request.is_new()
    }

    /// After the handler, moves the session to a new id, keeping its data and
    /// retiring the old id. Call it when privileges change (login).
    pub fn cycle_id(this: &mut Self) {
        this.request.set_action(Action::CycleId);
    }

    /// After the handler, deletes the whole session (every namespace) and
    /// expires the cookie (logout). Changes made in this request are dropped.
    pub fn destroy(this: &mut Self) {
        this.request.set_action(Action::Destroy);
    }

    /// Puts this namespace back to its defaults; the stored fields are
    /// removed on save unless set again in this request.
    pub fn reset(this: &mut Self) {
        if let Some(session) = &mut this.session {
            session.reset();
        }
    }

    /// Sets this session's expiry from now on, in place of the layer's
    /// [`with_expiry`](crate::SessionLayer::with_expiry): "remember me".
    ///
    /// The choice is stored with the session (the reserved field
    /// [`EXPIRY_FIELD`](crate::store::EXPIRY_FIELD), loaded in the same
    /// round trip as the namespace), so every later request of the session,
    /// on any server sharing the store, follows it: sliding refreshes, the
    /// cookie's `Max-Age` (none for [`Expiry::OnSessionEnd`]) and the
    /// store's expiry. It survives [`cycle_id`](Self::cycle_id) (call both
    /// in a login handler) and is always capped by
    /// [`with_absolute_timeout`](crate::SessionLayer::with_absolute_timeout).
    /// The response that sets it sends the cookie. A session that never
    /// called it follows the layer's expiry, whatever that is configured to
    /// at the time.
    ///
    /// The value is clamped to what the layer accepts (logged at debug):
    /// an [`Expiry::OnInactivity`] to between one second and
    /// [`MAX_EXPIRY`](crate::MAX_EXPIRY), an [`Expiry::AtDateTime`] to at
    /// most `MAX_EXPIRY` from now. A date already past is kept, and ends
    /// the session after the handler.
    ///
    /// ```
    /// use typed_sessions::{Expiry, SessionState, TypedSession};
    ///
    /// #[derive(SessionState)]
    /// struct Auth {
    ///     user: Option<String>,
    /// }
    ///
    /// async fn login(mut auth: TypedSession<Auth>, remember_me: bool) {
    ///     auth.set_user(Some("ada".to_owned()));
    ///     let expiry = if remember_me {
    ///         Expiry::OnInactivity(std::time::Duration::from_secs(30 * 24 * 60 * 60))
    ///     } else {
    ///         Expiry::OnSessionEnd
    ///     };
    ///     TypedSession::set_expiry(&mut auth, expiry);
    ///     TypedSession::cycle_id(&mut auth);
    /// }
    /// ```
    pub fn set_expiry(this: &mut Self, expiry: Expiry) {
        this.request.set_expiry(expiry);
    }
}

/// Log out everywhere, for a state type with a `#[session(index)]` field
/// (see [`SessionIndex`]).
impl<T: IndexedState> TypedSession<T> {
    /// The live sessions whose index field holds the same value as this
    /// one's, oldest first, this one marked
    /// [`current`](SessionInfo::current): "your devices". Empty while the
    /// value is the default (not indexed). A session not stored yet (new in
    /// this request) is not among them.
    ///
    /// ```
    /// use typed_sessions::{IndexError, SessionState, TypedSession};
    ///
    /// #[derive(SessionState)]
    /// struct Auth {
    ///     #[session(index)]
    ///     user: Option<String>,
    /// }
    ///
    /// async fn devices(auth: TypedSession<Auth>) -> Result<String, IndexError> {
    ///     let mut page = String::new();
    ///     for session in TypedSession::sessions(&auth).await? {
    ///         let mark = if session.current { "*" } else { " " };
    ///         page.push_str(&format!("{mark} {}\n", session.tag));
    ///     }
    ///     Ok(page)
    /// }
    /// ```
    pub async fn sessions(this: &Self) -> Result<Vec<SessionInfo>, IndexError> {
        let Some(key) = this.companion().index_key()? else {
            return Ok(Vec::new());
        };
        let current = this.request.id();
        Self::index(this).list_key(&key, current.as_ref()).await
    }

    /// Ends every other live session whose index field holds the same value
    /// as this one's ("log out my other devices", say after a password
    /// change) and returns how many it ended. This session stays.
    pub async fn end_other_sessions(this: &Self) -> Result<usize, IndexError> {
        let Some(key) = this.companion().index_key()? else {
            return Ok(0);
        };
        let current = this.request.id();
        Self::index(this).end_key(&key, current.as_ref()).await
    }

    /// The index of this state type, to list or end the sessions of any
    /// value (an admin action), as [`SessionLayer::index`](crate::SessionLayer::index) gives.
    pub fn index(this: &Self) -> SessionIndex<T> {
        SessionIndex::new(this.request.shared().clone())
    }
}

impl<T: SessionState> Deref for TypedSession<T> {
    type Target = T::Session;

    fn deref(&self) -> &T::Session {
        self.companion()
    }
}

impl<T: SessionState> DerefMut for TypedSession<T> {
    fn deref_mut(&mut self) -> &mut T::Session {
        match &mut self.session {
            Some(session) => session,
            None => unreachable!("TypedSession used after drop"),
        }
    }
}

impl<T: SessionState> Drop for TypedSession<T> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            self.request.park::<T>(session);
        }
    }
}

impl<T: SessionState> std::fmt::Debug for TypedSession<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedSession")
            .field("namespace", &T::NAMESPACE)
            .finish_non_exhaustive()
    }
}

/// Why a [`TypedSession`] or a [`Session`](crate::Session) could not be
/// extracted. Every case answers `500 Internal Server Error`: each is a
/// server-side fault. The details (type names, the store's error) go to the
/// log at error level, not into the response body.
///
/// Stored data the layer cannot use is not among them: a session the store
/// holds corrupt, or larger than a load accepts, is logged at warn, deleted,
/// and the request goes on as one without a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The router has no [`SessionLayer`](crate::SessionLayer).
    #[error(
        "TypedSession and Session need a SessionLayer: add `.layer(SessionLayer::new(store))` to the router"
    )]
    MissingLayer,
    /// Loading from the store failed or timed out (the store could not be
    /// reached, or answered with an error).
    #[error("the session store failed: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The same `TypedSession<T>` was taken twice at once in one request
    /// (take it once, or drop the first before taking it again).
    #[error(
        "TypedSession<{state}> is already in use in this request; take it once, or drop the first before taking it again"
    )]
    InUse {
        /// The state type's name.
        state: &'static str,
    },
    /// Two state types use the same namespace.
    #[error(
        "two session types, {state} and another, use the namespace {namespace:?}; give one of them #[session(namespace = \"...\")]"
    )]
    NamespaceClash {
        /// The state type being taken.
        state: &'static str,
        /// The namespace both use.
        namespace: &'static str,
    },
    /// The dict-like [`Session`](crate::Session) was taken twice at once.
    #[error(
        "Session is already in use in this request; take it once, or drop the first before taking it again"
    )]
    DictInUse,
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match &self {
            Self::Store(error) => tracing::error!(%error, "session load failed"),
            _ => tracing::error!(error = %self, "session extraction failed"),
        }
        // Type names are the application's internals: the log has them.
        let body = match self {
            Self::Store(_) => "session store unavailable".to_owned(),
            Self::InUse { .. } | Self::DictInUse => {
                "session already in use in this request".to_owned()
            }
            Self::NamespaceClash { .. } => "two session types share a namespace".to_owned(),
            // Names no type of the application: the fix, for the developer.
            Self::MissingLayer => self.to_string(),
        };
        (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
    }
}

impl<S: Send + Sync, T: SessionState> FromRequestParts<S> for TypedSession<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request = parts
            .extensions
            .get::<Arc<RequestSession>>()
            .cloned()
            .ok_or(SessionRejection::MissingLayer)?;
        let session = request.take::<T>().await?;
        Ok(Self {
            session: Some(session),
            request,
        })
    }
}
