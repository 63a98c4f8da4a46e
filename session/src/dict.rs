//! [`Session`]: the dict-like extractor, for keys chosen at run time.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;

use crate::codec::CodecError;
use crate::config::Expiry;
use crate::extract::SessionRejection;
use crate::id::SessionId;
use crate::request::{Action, MAX_NAMESPACE_BYTES, RequestSession};

/// The namespace [`Session`]'s keys are stored in: one of the crate's own
/// (`#[derive(SessionState)]` refuses namespaces starting with `__`), so no
/// typed namespace can ever share it. On Redis, a reserved namespace loads
/// in one command with the session's marker fields.
pub const DICT_NAMESPACE: &str = "__session";

/// The longest key [`Session`] accepts, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 256;

/// Keys starting with this are reserved for the crate's own use.
pub const RESERVED_KEY_PREFIX: &str = "__";

/// The session as a map from string keys to values of any serde type: the
/// shape of sanic_session's `request['session']`, tower-sessions'
/// `Session`, and the like, for keys chosen at run time (a draft per form, a
/// flag per feature, a value a library keeps without defining a struct in
/// your crate). Prefer [`TypedSession`](crate::TypedSession) where the
/// fields are known: it checks names and types at compile time.
///
/// ```no_run
/// use typed_sessions::Session;
///
/// async fn index(mut session: Session) -> Result<String, typed_sessions::InsertError> {
///     let count = session.get::<u64>("foo").unwrap_or(0) + 1;
///     session.insert("foo", count)?;
///     Ok(count.to_string())
/// }
/// ```
///
/// Every key is one stored field of the namespace [`DICT_NAMESPACE`],
/// holding its value encoded with the layer's codec, beside the typed
/// namespaces and with the same guarantees:
///
/// - nothing is read from the store unless a handler takes a `Session`;
///   taking it loads every key of this namespace, and nothing of the typed
///   namespaces, in one store call
///   ([`SessionStore::load_namespace`](crate::SessionStore::load_namespace));
/// - after the handler, only keys whose encoded value changed are written,
///   in one store call with the typed namespaces' changes, so requests that
///   change different keys of one session at the same time all keep their
///   changes, and a session destroyed or cycled meanwhile is not brought
///   back;
/// - a stored value that does not decode as the type asked for reads as
///   `None`, with a warning in the log; inserting the key again replaces it.
///
/// Values are decoded on each [`get`](Self::get), as the type the call asks
/// for. A key is stored as the field name `key` with `%`, `.`, `$` and NUL
/// written as `%25`, `%2E`, `%24` and `%00` (so MongoDB paths stay intact);
/// in Redis, `foo` is the hash field `__session.foo`. Keys are any UTF-8 string of 1 to [`MAX_KEY_LEN`] bytes not
/// starting with [`RESERVED_KEY_PREFIX`]; [`insert`](Self::insert) refuses
/// other keys with an [`InsertError`], and reads treat them as absent.
///
/// Taking `Session` twice at once in one request is rejected; taking it
/// again after the first was dropped (a middleware, then the handler) sees
/// the first one's changes.
pub struct Session {
    dict: Dict,
    request: Arc<RequestSession>,
}

impl Session {
    /// The value stored under `key`, decoded as a `T`; `None` when the key
    /// is absent or its value is not a `T` (logged at warn).
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = self.dict.get(key)?;
        self.decode(key, bytes)
    }

    /// Stores `value` under `key`, encoded now; written after the handler
    /// unless it equals what is stored.
    ///
    /// Refused with [`InsertError::TooLarge`] (nothing changes) when the
    /// encoded values of all keys would pass 64 MiB, the most a load of
    /// the namespace accepts: a session grown past it would never load
    /// again.
    pub fn insert<T: serde::Serialize>(&mut self, key: &str, value: T) -> Result<(), InsertError> {
        check_key(key)?;
        let bytes = self
            .request
            .codec()
            .encode(&value)
            .map_err(|source| InsertError::Encode {
                key: key.to_owned(),
                source,
            })?;
        let bytes = Bytes::from(bytes);
        if let Some(total) = self.dict.too_large_with(key, &bytes) {
            return Err(InsertError::TooLarge {
                key: key.to_owned(),
                bytes: total,
            });
        }
        self.dict.set(key, Some(bytes));
        Ok(())
    }

    /// Removes `key`, returning its value decoded as a `T` (`None` when it
    /// was absent or is not a `T`); the stored field is removed after the
    /// handler.
    pub fn remove<T: serde::de::DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let bytes = self.dict.get(key)?.clone();
        self.dict.set(key, None);
        self.decode(key, &bytes)
    }

    /// Whether a value is stored under `key` (whatever its type).
    pub fn contains_key(&self, key: &str) -> bool {
        self.dict.get(key).is_some()
    }

    /// The keys, in lexicographic order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.dict.keys()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.dict.keys().count()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.dict.keys().next().is_none()
    }

    /// Removes every key; the typed namespaces are left alone (see
    /// [`destroy`](Self::destroy) to end the whole session).
    pub fn clear(&mut self) {
        self.dict.clear();
    }

    /// The session's id; `None` for a session not yet stored.
    pub fn id(&self) -> Option<SessionId> {
        self.request.id()
    }

    /// Whether no stored session came with the request.
    pub fn is_new(&self) -> bool {
        self.request.is_new()
    }

    /// After the handler, moves the session to a new id, keeping its data and
    /// retiring the old id. Call it when privileges change (login).
    pub fn cycle_id(&mut self) {
        self.request.set_action(Action::CycleId);
    }

    /// After the handler, deletes the whole session (every namespace, typed
    /// ones included) and expires the cookie (logout). Changes made in this
    /// request are dropped.
    pub fn destroy(&mut self) {
        self.request.set_action(Action::Destroy);
    }

    /// Sets this session's expiry, remembered with the session from now on:
    /// the same as [`TypedSession::set_expiry`](crate::TypedSession::set_expiry),
    /// clamped the same way (an inactivity limit to between one second and
    /// [`MAX_EXPIRY`](crate::MAX_EXPIRY), a date to at most `MAX_EXPIRY`
    /// ahead).
    pub fn set_expiry(&mut self, expiry: Expiry) {
        self.request.set_expiry(expiry);
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Option<T> {
        match self.request.codec().decode::<T>(bytes) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::warn!(
                    namespace = DICT_NAMESPACE,
                    key,
                    %error,
                    "stored session value could not be decoded as the type asked for; reading it as absent"
                );
                None
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.request.park_dict(std::mem::take(&mut self.dict));
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values stay out of logs: they are whatever the application keeps.
        f.debug_struct("Session")
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request = parts
            .extensions
            .get::<Arc<RequestSession>>()
            .cloned()
            .ok_or(SessionRejection::MissingLayer)?;
        let dict = request.take_dict().await?;
        Ok(Self { dict, request })
    }
}

/// Why [`Session::insert`] refused a key or a value. As a response, it is
/// `500 Internal Server Error` (the cause is logged, not sent).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    /// The key is the empty string.
    #[error("session keys must not be empty")]
    EmptyKey,
    /// The key is longer than [`MAX_KEY_LEN`] bytes.
    #[error("a session key of {0} bytes is longer than the limit of {MAX_KEY_LEN}")]
    KeyTooLong(usize),
    /// The key starts with [`RESERVED_KEY_PREFIX`].
    #[error("session key {0:?} starts with the reserved prefix {RESERVED_KEY_PREFIX:?}")]
    ReservedKey(String),
    /// The codec could not encode the value.
    #[error("the value for session key {key:?} could not be encoded: {source}")]
    Encode {
        /// The key.
        key: String,
        /// The codec's error.
        source: CodecError,
    },
    /// The values of all keys, this one's included, would pass the most a
    /// load of the namespace accepts (64 MiB of encoded values).
    #[error(
        "storing session key {key:?} would make the Session's values {bytes} bytes, more than \
         the {MAX_NAMESPACE_BYTES} a session load accepts"
    )]
    TooLarge {
        /// The key.
        key: String,
        /// The encoded values' total with this value.
        bytes: usize,
    },
}

impl IntoResponse for InsertError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "session insert failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "session value could not be stored",
        )
            .into_response()
    }
}

fn check_key(key: &str) -> Result<(), InsertError> {
    if key.is_empty() {
        Err(InsertError::EmptyKey)
    } else if key.len() > MAX_KEY_LEN {
        Err(InsertError::KeyTooLong(key.len()))
    } else if key.starts_with(RESERVED_KEY_PREFIX) {
        Err(InsertError::ReservedKey(key.to_owned()))
    } else {
        Ok(())
    }
}

/// The characters a store may not take in a field name as they are
/// (MongoDB: `.` splits paths, a leading `$` is an operator, NUL ends a
/// name), and `%`, which starts an escape.
const ESCAPED: [char; 4] = ['%', '.', '$', '\0'];

/// A key as a stored field name: the characters in [`ESCAPED`] as `%XX`
/// (hex of the byte), so every store takes any key; other keys unchanged.
fn field_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len());
    for c in key.chars() {
        if ESCAPED.contains(&c) {
            name.push_str(&format!("%{:02X}", c as u32));
        } else {
            name.push(c);
        }
    }
    name
}

/// The key a stored field name holds; the name back as the error when
/// [`field_name`] does not produce it from a valid key (written by
/// something else, or corrupt).
fn key_of(name: String) -> Result<String, String> {
    if !name.contains('%') {
        // Nothing escaped (most keys): the name is the key, no copy.
        return match check_key(&name) {
            Ok(()) => Ok(name),
            Err(_) => Err(name),
        };
    }
    unescape(&name).ok_or(name)
}

fn unescape(name: &str) -> Option<String> {
    let mut key = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('%') {
        key.push_str(&rest[..at]);
        let hex = rest.get(at + 1..at + 3)?;
        let c = char::from(u8::from_str_radix(hex, 16).ok()?);
        if !ESCAPED.contains(&c) || hex != format!("{:02X}", c as u32) {
            return None;
        }
        key.push(c);
        rest = &rest[at + 3..];
    }
    key.push_str(rest);
    check_key(&key).ok()?;
    Some(key)
}

/// One key's value as loaded and as the handler left it.
#[derive(Debug, Clone)]
struct Entry {
    loaded: Option<Bytes>,
    current: Option<Bytes>,
    /// Set by `insert`, `remove` and `clear`; only such entries can need a
    /// write, and only if `current` differs from `loaded`.
    touched: bool,
}

/// The dict's keys and values, from the store and as changed by handlers.
#[derive(Debug, Default)]
pub(crate) struct Dict {
    entries: BTreeMap<String, Entry>,
    /// The bytes of the current values: what the next load will measure.
    bytes: usize,
}

impl Dict {
    /// The dict as stored: `fields` as a store's
    /// [`load_namespace`](crate::SessionStore::load_namespace) returned them.
    pub(crate) fn loaded(fields: Vec<(String, Bytes)>, session: &SessionId) -> Self {
        let mut entries = BTreeMap::new();
        let mut bytes = 0;
        for (name, value) in fields {
            match key_of(name) {
                Ok(key) => {
                    bytes += value.len();
                    entries.insert(
                        key,
                        Entry {
                            loaded: Some(value.clone()),
                            current: Some(value),
                            touched: false,
                        },
                    );
                }
                Err(name) => tracing::warn!(
                    session = %session.log_tag(),
                    namespace = DICT_NAMESPACE,
                    field = name,
                    "stored session field is not a key Session writes; ignored"
                ),
            }
        }
        Self { entries, bytes }
    }

    /// The values' total, when setting `key` to `value` would put it over
    /// [`MAX_NAMESPACE_BYTES`].
    fn too_large_with(&self, key: &str, value: &Bytes) -> Option<usize> {
        let old = self.get(key).map_or(0, Bytes::len);
        let total = self.bytes.saturating_sub(old).saturating_add(value.len());
        (total > MAX_NAMESPACE_BYTES).then_some(total)
    }

    fn get(&self, key: &str) -> Option<&Bytes> {
        self.entries.get(key)?.current.as_ref()
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, entry)| entry.current.is_some())
            .map(|(key, _)| key.as_str())
    }

    fn set(&mut self, key: &str, value: Option<Bytes>) {
        let old = self.get(key).map_or(0, Bytes::len);
        self.bytes =
            (self.bytes.saturating_sub(old)).saturating_add(value.as_ref().map_or(0, Bytes::len));
        match self.entries.get_mut(key) {
            Some(entry) => {
                entry.current = value;
                entry.touched = true;
            }
            None if value.is_some() => {
                self.entries.insert(
                    key.to_owned(),
                    Entry {
                        loaded: None,
                        current: value,
                        touched: true,
                    },
                );
            }
            None => {}
        }
    }

    fn clear(&mut self) {
        self.bytes = 0;
        for entry in self.entries.values_mut() {
            entry.current = None;
            entry.touched = true;
        }
    }

    /// The stored field names and new values (`None`: remove) of the keys
    /// whose value changed.
    pub(crate) fn writes(&self, out: &mut Vec<(String, Option<Bytes>)>) {
        for (key, entry) in &self.entries {
            if entry.touched && entry.current != entry.loaded {
                out.push((field_name(key), entry.current.clone()));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_field_names() {
        for key in [
            "foo",
            "a.b",
            "$set",
            "100%",
            "%2E",
            "nul\0byte",
            "ключ.鍵 🎉",
            "..",
            "_x",
            "a%",
        ] {
            let name = field_name(key);
            assert!(
                !name.contains(['.', '\0']) && !name.starts_with('$'),
                "{name:?}"
            );
            assert_eq!(key_of(name.clone()).as_deref(), Ok(key), "{name:?}");
        }
        assert_eq!(field_name("a.b$%"), "a%2Eb%24%25");
        assert_eq!(field_name("plain_key-1"), "plain_key-1");
    }

    #[test]
    fn names_no_key_produces_are_refused() {
        for name in [
            "", "%", "%2", "%2e", "%41", "%ZZ", "__x", "%5F_x", "a%2", "%C3%A9",
        ] {
            assert_eq!(key_of(name.to_owned()), Err(name.to_owned()));
        }
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(key_of(long.clone()), Err(long));
        assert_eq!(
            key_of("k".repeat(MAX_KEY_LEN)).map(|k| k.len()),
            Ok(MAX_KEY_LEN)
        );
    }

    #[test]
    fn bad_keys_are_errors() {
        assert!(matches!(check_key(""), Err(InsertError::EmptyKey)));
        assert!(matches!(
            check_key(&"é".repeat(129)),
            Err(InsertError::KeyTooLong(258))
        ));
        assert!(matches!(check_key("__x"), Err(InsertError::ReservedKey(_))));
        assert!(check_key("_x").is_ok());
        assert!(check_key(&"é".repeat(128)).is_ok());
    }

    /// `n` zero bytes; calloc'd, so the pages are never touched.
    fn zeros(n: usize) -> Bytes {
        Bytes::from(vec![0; n])
    }

    #[test]
    fn values_past_the_load_limit_are_refused() {
        let id = SessionId::generate().unwrap();
        let half = MAX_NAMESPACE_BYTES / 2;
        let mut dict = Dict::loaded(vec![("a".to_owned(), zeros(half))], &id);
        // Up to the limit exactly: fine.
        assert_eq!(dict.too_large_with("b", &zeros(half)), None);
        dict.set("b", Some(zeros(half)));
        assert_eq!(dict.too_large_with("c", &zeros(0)), None);
        assert_eq!(
            dict.too_large_with("c", &zeros(1)),
            Some(MAX_NAMESPACE_BYTES + 1)
        );
        // Replacing a value counts the new one, not both.
        assert_eq!(dict.too_large_with("a", &zeros(half)), None);
        assert_eq!(
            dict.too_large_with("a", &zeros(half + 1)),
            Some(MAX_NAMESPACE_BYTES + 1)
        );
        // Removing and clearing make room again.
        dict.set("a", None);
        assert_eq!(dict.too_large_with("c", &zeros(half)), None);
        dict.clear();
        assert_eq!(dict.too_large_with("c", &zeros(MAX_NAMESPACE_BYTES)), None);
        assert_eq!(
            dict.too_large_with("c", &zeros(MAX_NAMESPACE_BYTES + 1)),
            Some(MAX_NAMESPACE_BYTES + 1)
        );
    }

    #[test]
    fn only_changed_keys_are_written() {
        let id = SessionId::generate().unwrap();
        let mut dict = Dict::loaded(
            vec![
                ("a".to_owned(), Bytes::from_static(b"1")),
                ("b".to_owned(), Bytes::from_static(b"2")),
                ("c%2Ed".to_owned(), Bytes::from_static(b"3")),
                ("%zz".to_owned(), Bytes::from_static(b"bad")),
            ],
            &id,
        );
        assert_eq!(dict.keys().collect::<Vec<_>>(), ["a", "b", "c.d"]);
        let mut writes = Vec::new();
        dict.writes(&mut writes);
        assert!(writes.is_empty());
        // Same bytes again: no write. New bytes, a removal, a new key: written.
        dict.set("a", Some(Bytes::from_static(b"1")));
        dict.set("b", None);
        dict.set("c.d", Some(Bytes::from_static(b"4")));
        dict.set("new", Some(Bytes::from_static(b"5")));
        dict.set("never", None);
        dict.writes(&mut writes);
        assert_eq!(
            writes,
            vec![
                ("b".to_owned(), None),
                ("c%2Ed".to_owned(), Some(Bytes::from_static(b"4"))),
                ("new".to_owned(), Some(Bytes::from_static(b"5"))),
            ]
        );
        // Clearing removes what is stored; a key added and removed again
        // in one request writes nothing.
        dict.clear();
        writes.clear();
        dict.writes(&mut writes);
        assert_eq!(
            writes,
            vec![
                ("a".to_owned(), None),
                ("b".to_owned(), None),
                ("c%2Ed".to_owned(), None)
            ]
        );
        assert_eq!(dict.keys().count(), 0);
    }
}
