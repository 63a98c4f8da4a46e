//! Driving a router in process, with no sockets: each request goes through
//! `tower::ServiceExt::oneshot` on a clone of the router, and the client
//! keeps the session cookie itself, as a browser would. Property and fault
//! tests use it to run thousands of requests quickly.

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use tower::ServiceExt;

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub extensions: http::Extensions,
    pub body: String,
}

impl Answer {
    /// The `Set-Cookie` header values.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The response extension of type `T` a handler returned (with
    /// `axum::Extension`).
    pub fn extension<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.extensions.get::<T>().cloned()
    }
}

/// What a `Set-Cookie` of the session cookie told the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieChange {
    /// No `Set-Cookie` for the session cookie.
    None,
    /// A new value.
    Set(String),
    /// Removed (`Max-Age=0`).
    Removed,
}

/// One client of one router, keeping the session cookie.
#[derive(Clone)]
pub struct Client {
    router: Router,
    cookie_name: String,
    /// The session cookie's value, as the client would send it.
    pub cookie: Option<String>,
}

impl Client {
    /// A client with no cookie, for a router whose cookie is `session`.
    pub fn new(router: Router) -> Self {
        Self::named(router, "session")
    }

    /// A client for a router whose session cookie is named `cookie_name`.
    pub fn named(router: Router, cookie_name: &str) -> Self {
        Self {
            router,
            cookie_name: cookie_name.to_owned(),
            cookie: None,
        }
    }

    /// Another client of the same router, with no cookie.
    pub fn fresh(&self) -> Self {
        Self {
            cookie: None,
            ..self.clone()
        }
    }

    /// GET `path`, sending the kept cookie and keeping what the response sets.
    pub async fn get(&mut self, path: &str) -> Answer {
        self.send(path, http::Extensions::new()).await.0
    }

    /// GET `path` with `extensions` on the request (handlers read them with
    /// `axum::Extension`), sending the kept cookie and keeping what the
    /// response sets. Also says what happened to the cookie.
    pub async fn send(
        &mut self,
        path: &str,
        extensions: http::Extensions,
    ) -> (Answer, CookieChange) {
        let header = self
            .cookie
            .as_ref()
            .map(|c| format!("{}={c}", self.cookie_name));
        let answer = self
            .raw(path, header.as_deref().into_iter().collect(), extensions)
            .await;
        let mut change = CookieChange::None;
        for set in answer.set_cookies() {
            let (pair, attributes) = set.split_once(';').unwrap_or((&set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if name != self.cookie_name {
                continue;
            }
            assert_eq!(
                change,
                CookieChange::None,
                "two Set-Cookie headers for the session cookie"
            );
            if attributes.contains("Max-Age=0") {
                self.cookie = None;
                change = CookieChange::Removed;
            } else {
                self.cookie = Some(value.to_owned());
                change = CookieChange::Set(value.to_owned());
            }
        }
        (answer, change)
    }

    /// GET `path` with exactly these `Cookie` headers, keeping nothing.
    pub async fn raw(
        &self,
        path: &str,
        cookie_headers: Vec<&str>,
        extensions: http::Extensions,
    ) -> Answer {
        let mut request = Request::builder().uri(path);
        for value in cookie_headers {
            request = request.header(header::COOKIE, HeaderValue::from_str(value).unwrap());
        }
        let mut request = request.body(Body::empty()).unwrap();
        request.extensions_mut().extend(extensions);
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, 64 * 1024 * 1024).await.unwrap();
        Answer {
            status: parts.status,
            headers: parts.headers,
            extensions: parts.extensions,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}
