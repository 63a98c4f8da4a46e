//! The session cookie: finding a well-formed (and, with keys, authentic) id
//! in a request, and the `Set-Cookie` values of responses.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use cookie::{Cookie, CookieJar};
use http::{HeaderMap, HeaderValue, header};

use crate::config::Config;
use crate::id::{ID_LEN, SessionId};

/// Cookie values longer than this are not even looked at: an id is 32
/// characters, a signed one 76.
const MAX_VALUE_LEN: usize = 128;
/// `Cookie` headers longer than this are ignored as a whole: not read, so
/// neither used nor answered with a removal cookie.
const MAX_HEADER_LEN: usize = 16 * 1024;

/// What a request's cookies say about its session.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Presented {
    /// No cookie of ours.
    Nothing,
    /// One or more cookies of ours, none (or several different) well-formed
    /// ids: the request runs as if it had no cookie.
    Rejected,
    /// One well-formed, authentic id.
    Id(SessionId),
    /// One well-formed id, signed with a key other than the first (the
    /// current one): the response re-signs it.
    OldKey(SessionId),
}

impl Presented {
    pub(crate) fn id(&self) -> Option<&SessionId> {
        match self {
            Self::Id(id) | Self::OldKey(id) => Some(id),
            _ => None,
        }
    }
}

/// Finds the session id among the request's cookies.
///
/// Several cookies of our name can arrive (set for different paths or
/// domains, or planted by a sibling subdomain). Exactly one distinct valid id
/// is accepted; otherwise the request is treated as having none, since the
/// server cannot tell which one it issued.
///
/// The header is read as bytes: other cookies on the same domain (another
/// application's, an analytics or language cookie) may hold any bytes,
/// UTF-8 or not, and must not hide ours. Only our own value must be text.
pub(crate) fn presented_id(headers: &HeaderMap, config: &Config) -> Presented {
    let name = config.cookie_name.as_bytes();
    let mut found: Option<(SessionId, bool)> = None;
    let mut ours = false;
    let mut ambiguous = false;
    for header in headers.get_all(header::COOKIE) {
        if header.len() > MAX_HEADER_LEN {
            tracing::info!(bytes = header.len(), "oversized Cookie header ignored");
            continue;
        }
        for (pair_name, value) in pairs(header.as_bytes()) {
            if pair_name != name {
                continue;
            }
            ours = true;
            let Some((id, current_key)) = std::str::from_utf8(value)
                .ok()
                .and_then(|value| verify(value, config))
            else {
                continue;
            };
            match &found {
                Some((existing, _)) if *existing != id => ambiguous = true,
                Some((_, true)) => {}
                _ => found = Some((id, current_key)),
            }
        }
    }
    match found {
        Some(_) if ambiguous => {
            tracing::warn!(cookie = %config.cookie_name, "several different session ids presented; ignoring them all");
            Presented::Rejected
        }
        Some((id, true)) => Presented::Id(id),
        Some((id, false)) => Presented::OldKey(id),
        None if ours => {
            tracing::info!(cookie = %config.cookie_name, "malformed or unauthentic session cookie ignored");
            Presented::Rejected
        }
        None => Presented::Nothing,
    }
}

/// The `name=value` pairs of one `Cookie` header, as bytes, with the
/// whitespace around names and values trimmed. A pair without `=` is
/// skipped, as the `cookie` crate does.
fn pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&byte| byte == b';').filter_map(|pair| {
        let equals = pair.iter().position(|&byte| byte == b'=')?;
        let (name, value) = pair.split_at(equals);
        Some((name.trim_ascii(), value.get(1..)?.trim_ascii()))
    })
}

/// The id in a cookie value, and whether it is signed with the current key
/// (or needs none).
fn verify(value: &str, config: &Config) -> Option<(SessionId, bool)> {
    if value.len() > MAX_VALUE_LEN {
        return None;
    }
    if config.keys.is_empty() {
        return SessionId::parse(value).map(|id| (id, true));
    }
    if value.len() <= ID_LEN {
        return None;
    }
    let jar = CookieJar::new();
    config.keys.iter().enumerate().find_map(|(index, key)| {
        let cookie = Cookie::new(config.cookie_name.clone(), value.to_owned());
        jar.signed(key)
            .verify(cookie)
            .and_then(|verified| SessionId::parse(verified.value()))
            .map(|id| (id, index == 0))
    })
}

/// Writes the cookie value for `id` to `out`: the id itself, or signed with
/// the first key.
fn push_value(out: &mut String, id: &SessionId, config: &Config) {
    match config.keys.first() {
        None => out.push_str(id.as_str()),
        Some(key) => {
            let mut jar = CookieJar::new();
            jar.signed_mut(key).add(Cookie::new(
                config.cookie_name.clone(),
                id.as_str().to_owned(),
            ));
            if let Some(cookie) = jar.get(&config.cookie_name) {
                out.push_str(cookie.value());
            }
        }
    }
}

fn base_cookie(value: String, config: &Config) -> Cookie<'static> {
    let mut cookie = Cookie::new(config.cookie_name.clone(), value);
    cookie.set_http_only(config.http_only);
    cookie.set_secure(config.secure);
    cookie.set_same_site(config.same_site);
    cookie.set_path(config.path.clone());
    if let Some(domain) = &config.domain {
        cookie.set_domain(domain.clone());
    }
    cookie
}

/// The `Set-Cookie` values of one layer.
///
/// Only the id, `Max-Age` and `Expires` change from response to response,
/// so the `cookie` crate formats the attributes (and the whole removal
/// cookie) once, when the layer is built, rather than on every response.
pub(crate) struct SetCookie {
    /// `; HttpOnly; SameSite=Lax; Secure; Path=/…` as the crate writes them.
    attributes: String,
    removal: Option<HeaderValue>,
}

impl SetCookie {
    pub(crate) fn new(config: &Config) -> Self {
        let cookie = base_cookie(String::new(), config);
        let name_value = cookie.stripped().to_string();
        let attributes = cookie
            .to_string()
            .get(name_value.len()..)
            .unwrap_or_default()
            .to_owned();
        let mut removal = cookie;
        removal.make_removal();
        Self {
            attributes,
            removal: HeaderValue::from_str(&removal.to_string()).ok(),
        }
    }

    /// The value that hands `id` to the client, issued `now`: with
    /// `Max-Age` and the `Expires` it implies when `max_age` (whole seconds)
    /// is given, as a browser-session cookie otherwise.
    pub(crate) fn issue(
        &self,
        id: &SessionId,
        max_age: Option<u64>,
        now: SystemTime,
        config: &Config,
    ) -> Option<HeaderValue> {
        let mut out = String::with_capacity(
            config.cookie_name.len() + MAX_VALUE_LEN + self.attributes.len() + 60,
        );
        out.push_str(&config.cookie_name);
        out.push('=');
        push_value(&mut out, id, config);
        out.push_str(&self.attributes);
        if let Some(seconds) = max_age {
            // Infallible: writing to a `String` does not fail.
            let _ = write!(out, "; Max-Age={seconds}");
            // Clients that only know `Expires` would otherwise keep the
            // cookie for the browser session. `HttpDate` cannot represent
            // times before 1970 (a clock that wrong gets `Max-Age` alone).
            if let Some(expires) = now.checked_add(Duration::from_secs(seconds))
                && expires.duration_since(SystemTime::UNIX_EPOCH).is_ok()
            {
                let _ = write!(out, "; Expires={}", httpdate::HttpDate::from(expires));
            }
        }
        HeaderValue::try_from(out).ok()
    }

    /// The value that removes the cookie: the same Domain, Path, Secure,
    /// SameSite and HttpOnly, `Max-Age=0` and an `Expires` in the past.
    pub(crate) fn removal(&self) -> Option<HeaderValue> {
        self.removal.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cookie::Key;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::COOKIE, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn finds_a_plain_id_among_other_cookies() {
        let config = Config::default();
        let id = SessionId::generate().unwrap();
        let cookie = format!("a=b; session={}; c=d", id.as_str());
        assert_eq!(
            presented_id(&headers(&[cookie.as_bytes()]), &config),
            Presented::Id(id)
        );
        assert_eq!(
            presented_id(&headers(&[b"a=b"]), &config),
            Presented::Nothing
        );
        assert_eq!(presented_id(&HeaderMap::new(), &config), Presented::Nothing);
    }

    #[test]
    fn malformed_values_are_rejected() {
        let config = Config::default();
        let long = format!("session={}", "A".repeat(5000));
        for value in [
            b"session=".as_slice(),
            b"session=short",
            long.as_bytes(),
            b"session=!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
            b"session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\tA",
            b"session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\xff",
        ] {
            assert!(
                presented_id(&headers(&[value]), &config).id().is_none(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn several_distinct_ids_are_ignored_duplicates_are_not() {
        let config = Config::default();
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        let two = format!("session={}; session={}", a.as_str(), b.as_str());
        assert_eq!(
            presented_id(&headers(&[two.as_bytes()]), &config),
            Presented::Rejected
        );
        let same = format!("session={}; session={}", a.as_str(), a.as_str());
        assert_eq!(
            presented_id(&headers(&[same.as_bytes()]), &config),
            Presented::Id(a.clone())
        );
        let with_garbage = format!("session=junk; session={}", a.as_str());
        assert_eq!(
            presented_id(&headers(&[with_garbage.as_bytes()]), &config),
            Presented::Id(a)
        );
    }

    #[test]
    fn signed_ids_verify_with_any_key_and_tampering_fails() {
        let old = Key::generate();
        let new = Key::generate();
        let id = SessionId::generate().unwrap();
        let mut config = Config {
            keys: vec![old.clone()],
            ..Config::default()
        };
        let mut signed = String::new();
        push_value(&mut signed, &id, &config);
        assert_eq!(signed.len(), 76);
        let header = format!("session={signed}");
        assert_eq!(
            presented_id(&headers(&[header.as_bytes()]), &config),
            Presented::Id(id.clone())
        );
        // Unsigned ids are refused once keys are set.
        let plain = format!("session={}", id.as_str());
        assert_eq!(
            presented_id(&headers(&[plain.as_bytes()]), &config),
            Presented::Rejected
        );
        // Tampered: flip the last character of the id part.
        let mut tampered = signed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let header_t = format!("session={tampered}");
        assert_eq!(
            presented_id(&headers(&[header_t.as_bytes()]), &config),
            Presented::Rejected
        );
        // Rotation: sign with the new key, still accept the old one.
        config.keys = vec![new.clone(), old];
        assert_eq!(
            presented_id(&headers(&[header.as_bytes()]), &config),
            Presented::OldKey(id.clone())
        );
        config.keys = vec![new];
        assert_eq!(
            presented_id(&headers(&[header.as_bytes()]), &config),
            Presented::Rejected
        );
    }

    #[test]
    fn removal_cookie_repeats_attributes() {
        let config = Config {
            domain: Some("example.com".into()),
            path: "/app".into(),
            ..Config::default()
        };
        let value = SetCookie::new(&config).removal().unwrap();
        let text = value.to_str().unwrap();
        for part in [
            "session=",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/app",
            "Domain=example.com",
            "Max-Age=0",
            "Expires=",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
    }

    #[test]
    fn issued_cookie_matches_the_cookie_crate() {
        let key = Key::generate();
        let id = SessionId::generate().unwrap();
        let configs = [
            Config::default(),
            Config {
                domain: Some("example.com".into()),
                path: "/app".into(),
                secure: false,
                http_only: false,
                same_site: cookie::SameSite::Strict,
                cookie_name: "__Host-sid".into(),
                keys: vec![key],
                ..Config::default()
            },
        ];
        let now = SystemTime::now();
        for config in configs {
            let format = SetCookie::new(&config);
            for max_age in [Some(3600), None] {
                let header = format.issue(&id, max_age, now, &config).unwrap();
                let issued = Cookie::parse(header.to_str().unwrap().to_owned()).unwrap();
                let mut value = String::new();
                push_value(&mut value, &id, &config);
                let mut expected = base_cookie(value, &config);
                if let Some(seconds) = max_age {
                    expected.set_max_age(cookie::time::Duration::seconds(seconds as i64));
                    let expires =
                        cookie::time::OffsetDateTime::from(now + Duration::from_secs(seconds));
                    // `Expires` has whole seconds.
                    expected.set_expires(expires.replace_nanosecond(0).unwrap());
                }
                assert_eq!(issued.to_string(), expected.to_string());
                let presented = format!("{}={}", issued.name(), issued.value());
                let headers = headers(&[presented.as_bytes()]);
                assert_eq!(presented_id(&headers, &config), Presented::Id(id.clone()));
            }
        }
    }

    #[test]
    fn neighbours_with_any_bytes_do_not_hide_ours() {
        let config = Config::default();
        let id = SessionId::generate().unwrap();
        let ours = format!("session={}", id.as_str());
        let neighbours: [&[u8]; 4] = [
            "city=Zürich".as_bytes(),
            "lang=日本語".as_bytes(),
            b"raw=\xff\xfe\xc3",
            b"flag",
        ];
        for neighbour in neighbours {
            let before = [neighbour, b"; ", ours.as_bytes()].concat();
            let after = [ours.as_bytes(), b"; ", neighbour].concat();
            for one_header in [&before, &after] {
                assert_eq!(
                    presented_id(&headers(&[one_header]), &config),
                    Presented::Id(id.clone()),
                    "{one_header:?}"
                );
            }
            for separate in [[neighbour, ours.as_bytes()], [ours.as_bytes(), neighbour]] {
                assert_eq!(
                    presented_id(&headers(&separate), &config),
                    Presented::Id(id.clone()),
                    "{separate:?}"
                );
            }
        }
        // Our own value must still be a well-formed id.
        let mangled = format!("session={}\u{e9}", &id.as_str()[..31]);
        assert_eq!(
            presented_id(&headers(&[mangled.as_bytes()]), &config),
            Presented::Rejected
        );
        // A name that merely contains ours is not ours.
        let longer = format!("xsession={}; session_old=x", id.as_str());
        assert_eq!(
            presented_id(&headers(&[longer.as_bytes()]), &config),
            Presented::Nothing
        );
    }
}
