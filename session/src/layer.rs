//! [`SessionLayer`] and its service: the per-request flow around a handler.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cookie::{Key, SameSite};
use http::{HeaderValue, Request, Response, StatusCode, header};
use tower_layer::Layer;
use tower_service::Service;

use crate::codec::{Codec, CodecChoice};
use crate::config::{Config, ConfigError, Expiry};
use crate::cookies;
use crate::request::{RequestSession, Shared};
use crate::state::IndexedState;
use crate::store::SessionStore;

/// The tower layer that gives handlers their sessions.
///
/// ```
/// use std::time::Duration;
/// use typed_sessions::{Expiry, MemoryStore, SessionLayer};
///
/// let layer = SessionLayer::new(MemoryStore::default())
///     .with_cookie_name("__Host-session")
///     .with_expiry(Expiry::OnInactivity(Duration::from_secs(3600)))
///     .with_absolute_timeout(Duration::from_secs(12 * 3600));
/// assert!(layer.validate().is_ok());
/// ```
///
/// Defaults: cookie `session`, `Expiry::OnInactivity(30 days)`, `Secure`,
/// `HttpOnly`, `SameSite=Lax`, `Path=/`, no domain, unsigned ids, no
/// absolute timeout, the MessagePack codec, and a 5 second limit on each store
/// call.
///
/// The configuration is checked, and the cookie attributes formatted, when
/// a builder method is called; applying the layer (which axum does per
/// connection, or per request for a router called as a service) only shares
/// that work.
///
/// # Responses
///
/// - A cookie the layer refuses is removed: one that is malformed or badly
///   signed on every response (even of a handler that takes no session),
///   one whose id the store does not know (expired, destroyed, forged) once
///   a handler loaded it. A response that creates a session replaces it
///   with the new cookie instead.
/// - A server error (any 5xx status, the handler's own or an extraction
///   failure) saves nothing: no field is written, no id is cycled, no
///   session is destroyed, and no cookie is set or removed, so a half-done
///   change is not kept. A store error during the save of any other
///   response turns it into a 500.
/// - Issued cookies carry `Max-Age` and the matching `Expires` (for clients
///   that only know `Expires`), rounded down so that a cookie never
///   outlives its session; `Expiry::OnSessionEnd` cookies carry neither.
///   Once an `Expiry::AtDateTime` date has passed (or `set_expiry` names a
///   date less than a second away), no session is created, and a session a
///   handler takes is ended and its cookie removed.
///
/// # One layer per request
///
/// Every `TypedSession` of a request binds to the one `SessionLayer` around
/// it. Two stacked layers (say, an app session and an admin session under
/// different cookie names) are not supported: the inner one answers every
/// request with a `500` and logs an error naming the problem, instead of
/// silently serving sessions from one store only. Keep one layer and give
/// the two parts of the session their own state types: namespaces are
/// independent within a session.
#[derive(Clone)]
pub struct SessionLayer {
    /// The configuration with its precomputed cookie values, shared by every
    /// service this layer makes.
    shared: Arc<Shared>,
    /// What [`Config::check`] said when the configuration last changed.
    error: Option<ConfigError>,
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie_name", &self.shared.config.cookie_name)
            .field("expiry", &self.shared.config.expiry())
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// A layer over `store` with the default configuration.
    #[must_use]
    pub fn new(store: impl SessionStore) -> Self {
        Self::build(Config::default(), Arc::new(store))
    }

    fn build(config: Config, store: Arc<dyn SessionStore>) -> Self {
        Self {
            error: config.check().err(),
            shared: Arc::new(Shared::new(config, store)),
        }
    }

    /// The index of `T`'s `#[session(index)]` field, to list or end the
    /// sessions of a value from anywhere: a background task, an admin
    /// endpoint (see [`SessionIndex`](crate::SessionIndex)). It uses this
    /// layer's store and store timeout.
    pub fn index<T: IndexedState>(&self) -> crate::SessionIndex<T> {
        crate::SessionIndex::new(self.shared.clone())
    }

    /// Changes the configuration and redoes, once, the checks and the
    /// formatting that depend on it.
    fn change(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.shared.config.clone();
        change(&mut config);
        Self::build(config, self.shared.store.clone())
    }

    /// The cookie's name \[`session`\]. A `__Host-` prefix requires Secure,
    /// no domain and path `/`; `__Secure-` requires Secure.
    #[must_use]
    pub fn with_cookie_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.change(|config| config.cookie_name = name)
    }

    /// When sessions expire \[`Expiry::OnInactivity(30 days)`\]. An
    /// `AtDateTime` already past now is a configuration error; once a date
    /// that was valid here passes, the layer creates no session and removes
    /// presented cookies, and keeps serving requests.
    #[must_use]
    pub fn with_expiry(self, expiry: Expiry) -> Self {
        self.change(|config| config.set_expiry(expiry))
    }

    /// The cookie's `Secure` attribute \[true\]. Turn it off only to serve
    /// plain HTTP during development: on `localhost` and `127.0.0.1`
    /// Chromium and curl send a `Secure` cookie back over plain HTTP anyway,
    /// but Python's `http.cookiejar` (and `requests`) and every browser on a
    /// non-loopback `http://` host do not, so sessions would not stick there.
    #[must_use]
    pub fn with_secure(self, secure: bool) -> Self {
        self.change(|config| config.secure = secure)
    }

    /// The cookie's `HttpOnly` attribute \[true\].
    #[must_use]
    pub fn with_http_only(self, http_only: bool) -> Self {
        self.change(|config| config.http_only = http_only)
    }

    /// The cookie's `SameSite` attribute \[`Lax`\].
    #[must_use]
    pub fn with_same_site(self, same_site: SameSite) -> Self {
        self.change(|config| config.same_site = same_site)
    }

    /// The cookie's `Path` \[`/`\].
    ///
    /// Changing it on a live site: also change the cookie's name
    /// ([`with_cookie_name`](Self::with_cookie_name)). Browsers keep the
    /// old cookie beside the new one, and a request presenting two
    /// different session ids is treated as having none (the layer cannot
    /// tell which it issued, and a sibling subdomain could have planted
    /// one), until the old cookie expires. Under a new name the old
    /// cookie is simply ignored.
    #[must_use]
    pub fn with_path(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.change(|config| config.path = path)
    }

    /// The cookie's `Domain` \[none: the host that set it\].
    ///
    /// As for [`with_path`](Self::with_path): change the cookie's name too
    /// when changing this on a live site.
    #[must_use]
    pub fn with_domain(self, domain: impl Into<String>) -> Self {
        let domain = domain.into();
        self.change(|config| config.domain = Some(domain))
    }

    /// Signs ids with an HMAC key, so forged ids are refused without a store
    /// lookup.
    #[must_use]
    pub fn with_signing_key(self, key: Key) -> Self {
        self.with_signing_keys([key])
    }

    /// Signs with the first key and accepts ids signed with any of them, so
    /// keys can be rotated: put the new key first and keep the old ones until
    /// their cookies have expired.
    #[must_use]
    pub fn with_signing_keys(self, keys: impl IntoIterator<Item = Key>) -> Self {
        let keys: Vec<Key> = keys.into_iter().collect();
        self.change(|config| {
            // Remembered so `validate` can report it.
            config.keys_missing = keys.is_empty();
            config.keys = keys;
        })
    }

    /// Ends every session this long after its creation, whatever its
    /// activity \[none\]. Kept across `cycle_id`.
    #[must_use]
    pub fn with_absolute_timeout(self, timeout: Duration) -> Self {
        self.change(|config| config.absolute_timeout = Some(timeout))
    }

    /// The codec new values are written with \[[`MessagePack`](crate::MessagePack)\].
    /// Stored values are read by the codec that wrote them (each carries its
    /// codec's tag), so switching keeps existing sessions readable; each
    /// field is rewritten in the new codec on its next write. See the
    /// [`codec`](crate::codec) module for the stored format.
    #[must_use]
    pub fn with_codec(self, codec: impl Codec) -> Self {
        let codec = CodecChoice::of(codec);
        self.change(|config| config.codec = codec)
    }

    /// The time limit of each store call \[5 s\]; a call that takes longer
    /// fails the request with a 500.
    #[must_use]
    pub fn with_store_timeout(self, timeout: Duration) -> Self {
        self.change(|config| config.store_timeout = timeout)
    }

    /// Checks the configuration for contradictions. The answer does not
    /// change with time: it was computed when the configuration was built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.error.clone().map_or(Ok(()), Err)
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    /// # Panics
    ///
    /// When the configuration is contradictory (see
    /// [`validate`](Self::validate)): a misconfigured layer stops the
    /// application at start-up rather than serving insecure cookies. Whether
    /// it panics never depends on the time it is called at.
    fn layer(&self, inner: S) -> Self::Service {
        if let Some(error) = &self.error {
            panic!("invalid SessionLayer configuration: {error}");
        }
        SessionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around the inner service.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was driven to readiness handles this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let presented = cookies::presented_id(request.headers(), &self.shared.config);
        let session = Arc::new(RequestSession::new(self.shared.clone(), presented));
        if request.extensions_mut().insert(session.clone()).is_some() {
            return Box::pin(async { Ok(stacked_layers()) });
        }
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            // A server error keeps nothing of what the handler did.
            if response.status().is_server_error() {
                return Ok(response);
            }
            let set_cookie = if session.was_used() {
                match session.save().await {
                    Ok(set_cookie) => {
                        append_vary_cookie(response.headers_mut());
                        set_cookie
                    }
                    Err(error) => {
                        tracing::error!(%error, "saving the session failed; answering 500");
                        return Ok(status(StatusCode::INTERNAL_SERVER_ERROR));
                    }
                }
            } else {
                session.malformed_cookie_removal()
            };
            if let Some(value) = set_cookie {
                let headers = response.headers_mut();
                headers.append(header::SET_COOKIE, value);
                if !headers.contains_key(header::CACHE_CONTROL) {
                    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                }
            }
            Ok(response)
        })
    }
}

fn status<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

/// The answer of the inner of two stacked layers: every `TypedSession`
/// would bind to it alone, and the outer store would silently never be
/// used, so the request fails, loudly, before any handler runs.
#[cold]
fn stacked_layers<B: Default>() -> Response<B> {
    tracing::error!(
        "two SessionLayers wrap this request; typed-sessions supports one per request \
         (TypedSession cannot tell them apart): remove one, and keep the two parts of the \
         session in separate state types under one layer; answering 500"
    );
    status(StatusCode::INTERNAL_SERVER_ERROR)
}

fn append_vary_cookie(headers: &mut http::HeaderMap) {
    let varies = headers.get_all(header::VARY).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',').any(|part| {
                matches!(part.trim(), "*") || part.trim().eq_ignore_ascii_case("cookie")
            })
        })
    });
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("Cookie"));
    }
}
