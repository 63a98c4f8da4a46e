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
#[derive(Clone)]
pub struct SessionLayer {
    config: Config,
    store: Arc<dyn SessionStore>,
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie_name", &self.config.cookie_name)
            .field("expiry", &self.config.expiry)
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// A layer over `store` with the default configuration.
    pub fn new(store: impl SessionStore) -> Self {
        Self {
            config: Config::default(),
            store: Arc::new(store),
        }
    }

    /// The cookie's name \[`session`\]. A `__Host-` prefix requires Secure,
    /// no domain and path `/`; `__Secure-` requires Secure.
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config.cookie_name = name.into();
        self
    }

    /// When sessions expire \[`Expiry::OnInactivity(30 days)`\].
    pub fn with_expiry(mut self, expiry: Expiry) -> Self {
        self.config.expiry = expiry;
        self
    }

    /// The cookie's `Secure` attribute \[true\]. Only turn it off to serve
    /// plain HTTP during development.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.config.secure = secure;
        self
    }

    /// The cookie's `HttpOnly` attribute \[true\].
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.config.http_only = http_only;
        self
    }

    /// The cookie's `SameSite` attribute \[`Lax`\].
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.config.same_site = same_site;
        self
    }

    /// The cookie's `Path` \[`/`\].
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.config.path = path.into();
        self
    }

    /// The cookie's `Domain` \[none: the host that set it\].
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.config.domain = Some(domain.into());
        self
    }

    /// Signs ids with an HMAC key, so forged ids are refused without a store
    /// lookup.
    pub fn with_signing_key(self, key: Key) -> Self {
        self.with_signing_keys(vec![key])
    }

    /// Signs with the first key and accepts ids signed with any of them, so
    /// keys can be rotated: put the new key first and keep the old ones until
    /// their cookies have expired.
    pub fn with_signing_keys(mut self, keys: Vec<Key>) -> Self {
        self.config.keys = keys;
        if self.config.keys.is_empty() {
            // Remembered so `validate` can report it.
            self.config.keys_missing = true;
        }
        self
    }

    /// Ends every session this long after its creation, whatever its
    /// activity \[none\]. Kept across `cycle_id`.
    pub fn with_absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config.absolute_timeout = Some(timeout);
        self
    }

    /// The codec new values are written with \[[`MessagePack`](crate::MessagePack)\].
    /// Stored values are read by the codec that wrote them (each carries its
    /// codec's tag), so switching keeps existing sessions readable; each
    /// field is rewritten in the new codec on its next write. See the
    /// [`codec`](crate::codec) module for the stored format.
    pub fn with_codec(mut self, codec: impl Codec) -> Self {
        self.config.codec = CodecChoice::of(codec);
        self
    }

    /// The time limit of each store call \[5 s\]; a call that takes longer
    /// fails the request with a 500.
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.config.store_timeout = timeout;
        self
    }

    /// Checks the configuration for contradictions.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.config.check()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    /// # Panics
    ///
    /// When the configuration is contradictory (see
    /// [`validate`](Self::validate)): a misconfigured layer stops the
    /// application at start-up rather than serving insecure cookies.
    fn layer(&self, inner: S) -> Self::Service {
        if let Err(error) = self.validate() {
            panic!("invalid SessionLayer configuration: {error}");
        }
        SessionService {
            inner,
            shared: Arc::new(Shared::new(self.config.clone(), self.store.clone())),
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
        request.extensions_mut().insert(session.clone());
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            if !session.was_used() {
                return Ok(response);
            }
            match session.save().await {
                Ok(set_cookie) => {
                    let headers = response.headers_mut();
                    append_vary_cookie(headers);
                    if let Some(value) = set_cookie {
                        headers.append(header::SET_COOKIE, value);
                        if !headers.contains_key(header::CACHE_CONTROL) {
                            headers.insert(
                                header::CACHE_CONTROL,
                                HeaderValue::from_static("no-store"),
                            );
                        }
                    }
                    Ok(response)
                }
                Err(error) => {
                    tracing::error!(%error, "saving the session failed; answering 500");
                    let mut failed = Response::new(ResBody::default());
                    *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    Ok(failed)
                }
            }
        })
    }
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
