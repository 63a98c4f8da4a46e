//! A minimal cookie-keeping HTTP client over reqwest: it keeps the session
//! cookie exactly as a browser would for one origin, and exposes the raw
//! `Set-Cookie` headers so tests can check attributes.

use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};

/// One simulated browser.
#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
    base: String,
    cookie_name: String,
    /// The session cookie's value, as the client would send it.
    pub cookie: Option<String>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The one `Set-Cookie` header, if any.
    pub fn set_cookie(&self) -> Option<String> {
        let all = self.set_cookies();
        assert!(all.len() <= 1, "several Set-Cookie headers: {all:?}");
        all.into_iter().next()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self::named(base, "session")
    }

    pub fn named(base: &str, cookie_name: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie_name: cookie_name.to_owned(),
            cookie: None,
        }
    }

    /// GET `path`, sending the kept cookie and keeping what the response sets.
    pub async fn get(&mut self, path: &str) -> Reply {
        let header = self
            .cookie
            .as_ref()
            .map(|c| format!("{}={c}", self.cookie_name));
        let reply = self.get_raw(path, header.as_deref()).await;
        for set in reply.set_cookies() {
            let (pair, attributes) = set.split_once(';').unwrap_or((&set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if name != self.cookie_name {
                continue;
            }
            if attributes.contains("Max-Age=0") {
                self.cookie = None;
            } else {
                self.cookie = Some(value.to_owned());
            }
        }
        reply
    }

    /// GET `path` with exactly this `Cookie` header (or none), keeping nothing.
    pub async fn get_raw(&self, path: &str, cookie_header: Option<&str>) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(header) = cookie_header {
            request = request.header(COOKIE, header);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }
}
