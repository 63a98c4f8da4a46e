//! Shared code of the fuzz targets: the representative types, one tokio
//! runtime per process, the in-process apps the HTTP-level targets drive,
//! and the checks each target makes. Each file in `fuzz_targets/` is a thin
//! `fuzz_target!` over one function here.
//!
//! Every target drives the crate through its public API (`SessionId::parse`,
//! `typed_sessions::codec`, a `SessionLayer` in an axum `Router` called with
//! `tower::ServiceExt::oneshot`), except the Memcached record format, whose
//! parser is crate-private: its source file is compiled into this crate
//! (see [`memcache_record`]).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderValue, Request, StatusCode, header};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use typed_sessions::__private::{decode_value, encode_value};
use typed_sessions::codec::Codec;
use typed_sessions::{
    FieldWrite, Key, LoadedFields, LoadedNamespace, MemoryStore, SessionId, SessionLayer,
    SessionState, SessionStore, StoreError, TypedSession,
};

/// The process's runtime: single-threaded, so a target's execution is one
/// sequential call.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime")
    })
}

// ---------------------------------------------------------------------------
// Representative stored values.

/// A line of a shopping cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Item {
    pub sku: String,
    pub quantity: u32,
    pub price_cents: i64,
    pub note: Option<String>,
}

/// An enum with unit, tuple and struct variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Kind {
    #[default]
    Guest,
    Member(u64),
    Staff {
        name: String,
        roles: Vec<u8>,
    },
}

/// A struct with the shapes session fields usually have: integers of each
/// width and sign, floats, text, bytes, options, sequences, maps, tuples,
/// enums and nesting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Representative {
    pub user_id: Option<u64>,
    pub visits: u32,
    pub balance: i64,
    pub small: (u8, i16, char),
    pub ratio: f64,
    pub name: String,
    pub flag: bool,
    pub token: Vec<u8>,
    pub items: Vec<Item>,
    pub tags: BTreeMap<String, u16>,
    pub kind: Kind,
    pub wide: u128,
}

/// Decodes `data`, stored under `codec`'s tag, as a [`Representative`]
/// with `codec`; when that works,
/// the value must re-encode, and re-encoding is stable: decoding the
/// re-encoded bytes and encoding again gives the same bytes (bytes are
/// compared, not values, so a NaN cannot fail the check).
pub fn codec_round_trip<C: Codec>(codec: &C, data: &[u8]) {
    let mut tagged = Vec::with_capacity(data.len() + 1);
    tagged.push(codec.tag());
    tagged.extend_from_slice(data);
    let bytes = tagged.as_slice();
    let Ok(value) = decode_value::<Representative>(codec, bytes) else {
        return;
    };
    let first = encode_value(codec, &value).expect("a decoded value re-encodes");
    let again: Representative =
        decode_value(codec, &first).expect("a re-encoded value decodes again");
    let second = encode_value(codec, &again).expect("and re-encodes again");
    assert_eq!(first, second, "re-encoding is not stable");
    // The other shapes a field can have, on the same bytes.
    let _ = decode_value::<Vec<Item>>(codec, bytes);
    let _ = decode_value::<Option<String>>(codec, bytes);
    let _ = decode_value::<Kind>(codec, bytes);
    let _ = decode_value::<BTreeMap<u64, Vec<u8>>>(codec, bytes);
}

/// A recursive type, as a user's session field may have (a tree of
/// categories, a linked history): its nesting is only bounded by the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Tree {
    pub label: Option<String>,
    pub children: Vec<Tree>,
}

/// The nesting target: the first byte picks the codec (bit 0: JSON, else
/// MessagePack); the rest is decoded as a [`Tree`] and as an
/// `Option<Box<..>>` chain.
/// However deep the input nests, decoding must return (an error is fine);
/// it must not overflow the stack.
pub fn codec_nested(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let codec: &dyn Codec = if selector & 1 == 0 {
        &typed_sessions::MessagePack
    } else {
        &typed_sessions::codec::Json
    };
    let mut tagged = vec![codec.tag()];
    tagged.extend_from_slice(bytes);
    let _ = decode_value::<Tree>(codec, &tagged);
    let _ = decode_value::<Chain>(codec, &tagged);
}

/// A singly linked chain.
#[derive(Debug, Serialize, Deserialize)]
pub struct Chain {
    pub next: Option<Box<Chain>>,
}

// ---------------------------------------------------------------------------
// Cookie header parsing and id decoding, through the layer.

/// The state the cookie target's handler reads.
#[derive(SessionState)]
#[session(namespace = "probe")]
pub struct Probe {
    pub n: u32,
}

/// The value the seeded session holds.
const SEEDED_N: u32 = 42;

async fn probe(session: TypedSession<Probe>) -> String {
    format!("{} {}", TypedSession::is_new(&session), session.n())
}

async fn seed(mut session: TypedSession<Probe>) -> &'static str {
    session.set_n(SEEDED_N);
    "seeded"
}

/// One configuration of the layer, with the cookie value of a session it
/// issued.
pub struct CookieApp {
    router: Router,
    /// The value of the `session` cookie the layer set for the seeded
    /// session (signed when the layer signs).
    pub valid: String,
}

/// The two layers the cookie target runs: unsigned ids, and ids signed
/// with the first of two keys (a value signed with the second key, as
/// after a rotation, is valid too).
pub struct CookieApps {
    pub plain: CookieApp,
    pub signed: CookieApp,
    /// A value the signed layer accepts, signed with its second key.
    pub rotated: String,
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(probe))
        .route("/seed", get(seed))
        .layer(layer)
}

async fn call(router: &Router, headers: &[HeaderValue], path: &str) -> http::Response<Body> {
    let mut request = Request::builder().uri(path);
    for value in headers {
        request = request.header(header::COOKIE, value.clone());
    }
    let request = request.body(Body::empty()).expect("request");
    match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn cookie_value(response: &http::Response<Body>) -> String {
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .expect("the seed request sets a cookie")
        .to_str()
        .expect("ascii cookie");
    let pair = set.split(';').next().expect("a pair");
    pair.strip_prefix("session=")
        .expect("the session cookie")
        .to_owned()
}

async fn seeded(layer: SessionLayer) -> CookieApp {
    let router = app(layer);
    let response = call(&router, &[], "/seed").await;
    assert_eq!(response.status(), StatusCode::OK);
    let valid = cookie_value(&response);
    CookieApp { router, valid }
}

fn key(byte: u8) -> Key {
    Key::from(&[byte; 64])
}

/// The apps, built (and their sessions seeded) once per process.
pub fn cookie_apps() -> &'static CookieApps {
    static APPS: OnceLock<CookieApps> = OnceLock::new();
    APPS.get_or_init(|| {
        runtime().block_on(async {
            let plain = seeded(SessionLayer::new(MemoryStore::default())).await;
            let store = Arc::new(MemoryStore::default());
            let signed =
                seeded(SessionLayer::new(store.clone()).with_signing_keys(vec![key(1), key(2)]))
                    .await;
            // A session issued while key 2 was the signing key, in the same
            // store: the signed layer still accepts it.
            let rotated = seeded(SessionLayer::new(store).with_signing_key(key(2)))
                .await
                .valid;
            CookieApps {
                plain,
                signed,
                rotated,
            }
        })
    })
}

/// Checks that hold for any text offered as an id.
pub fn check_id_text(text: &str) {
    if let Some(id) = SessionId::parse(text) {
        assert_eq!(id.as_str(), text, "a parsed id keeps its text");
        assert_eq!(text.len(), 32);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text:?} parsed"
        );
        assert!(!format!("{id:?}").contains(text), "Debug reveals the id");
    }
}

/// The cookie target. The first byte picks the layer (bit 0: signed); the
/// rest, split at newlines, are the values of the request's `Cookie`
/// headers, in which `$ID` stands for the value the layer issued, `$RAW`
/// for the bare id and `$ROT` for the id signed with the rotated-out key.
/// The request must succeed; a session the layer adopts must be the seeded
/// one, and its value must be in the request; each piece of text is also
/// offered to `SessionId::parse` directly.
pub fn cookie_header(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let apps = cookie_apps();
    let signed = selector & 1 == 1;
    let app = if signed { &apps.signed } else { &apps.plain };
    let raw = &app.valid[app.valid.len() - 32..];
    let mut headers = Vec::new();
    for piece in rest.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(piece);
        check_id_text(&text);
        check_id_text(text.trim());
        let expanded = text
            .replace("$ID", &app.valid)
            .replace("$RAW", raw)
            .replace("$ROT", &apps.rotated);
        if let Ok(value) = HeaderValue::from_bytes(expanded.as_bytes()) {
            headers.push(value);
        } else if let Ok(value) = HeaderValue::from_bytes(piece) {
            // Not UTF-8, or expanded into something invalid: the raw bytes.
            headers.push(value);
        }
    }
    let response = runtime().block_on(call(&app.router, &headers, "/"));
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a cookie made the request fail"
    );
    let body = runtime().block_on(axum::body::to_bytes(response.into_body(), 1024));
    let body = body.expect("body");
    let body = std::str::from_utf8(&body).expect("utf-8 body");
    if body.starts_with("false") {
        assert_eq!(body, format!("false {SEEDED_N}"));
        let sent: Vec<&[u8]> = headers.iter().map(HeaderValue::as_bytes).collect();
        let accepted = [app.valid.as_str(), apps.rotated.as_str()];
        let contains = |needle: &str| {
            sent.iter()
                .any(|h| h.windows(needle.len()).any(|w| w == needle.as_bytes()))
        };
        assert!(
            accepted
                .iter()
                .any(|v| (signed || *v == app.valid) && contains(v)),
            "a session was adopted without its cookie value in the request: {headers:?}"
        );
    } else {
        assert_eq!(body, "true 0", "a new session has defaults");
    }
}

// ---------------------------------------------------------------------------
// Stored fields decoded through the derive, with each codec.

/// The state the stored-fields target decodes: the representative shapes
/// as separate fields, plus a renamed one, one with a default function
/// and one that is not stored.
#[derive(SessionState, Debug)]
#[session(namespace = "rep")]
pub struct Stored {
    pub whole: Representative,
    pub items: Vec<Item>,
    #[session(rename = "uid")]
    pub user_id: Option<u64>,
    #[session(default = "seven")]
    pub seven: u8,
    pub kind: Kind,
    pub text: String,
    #[session(skip)]
    pub scratch: u32,
}

pub fn seven() -> u8 {
    7
}

/// What the canned store answers and saw: set before each call.
#[derive(Default)]
pub struct Canned {
    pub values: Vec<Option<Vec<u8>>>,
    pub writes: Vec<(String, Option<Vec<u8>>)>,
}

/// A store that holds one session, answering a load with whatever
/// [`Canned::values`] holds and recording the writes.
#[derive(Default, Clone)]
pub struct CannedStore {
    pub canned: Arc<std::sync::Mutex<Canned>>,
}

#[async_trait]
impl SessionStore for CannedStore {
    async fn load(
        &self,
        _id: &SessionId,
        _namespace: &str,
        _fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        let values = self.canned.lock().expect("lock").values.clone();
        let now = SystemTime::now();
        Ok(Some(LoadedFields {
            created_at: now,
            expires_at: now + std::time::Duration::from_secs(3600),
            values: values.into_iter().map(|v| v.map(Into::into)).collect(),
            expiry: None,
        }))
    }
    async fn load_namespace(
        &self,
        _id: &SessionId,
        _namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        // The targets drive typed namespaces only.
        Ok(None)
    }
    async fn create(
        &self,
        _id: &SessionId,
        writes: &[FieldWrite<'_>],
        _created_at: SystemTime,
        _expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        self.record(writes);
        Ok(())
    }
    async fn update(
        &self,
        _id: &SessionId,
        writes: &[FieldWrite<'_>],
        _expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        self.record(writes);
        Ok(true)
    }
    async fn touch(&self, _id: &SessionId, _expires_at: SystemTime) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn delete(&self, _id: &SessionId) -> Result<(), StoreError> {
        Ok(())
    }
    async fn move_to(
        &self,
        _from: &SessionId,
        _to: &SessionId,
        _expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
}

impl CannedStore {
    fn record(&self, writes: &[FieldWrite<'_>]) {
        let mut canned = self.canned.lock().expect("lock");
        for write in writes {
            assert_eq!(write.key.namespace, "rep");
            canned
                .writes
                .push((write.key.field.to_owned(), write.value.map(<[u8]>::to_vec)));
        }
    }
}

/// The handler of the stored-fields target: reads every field, then
/// changes the one the request names (`/op/N`).
async fn stored(
    axum::extract::Path(op): axum::extract::Path<u8>,
    mut session: TypedSession<Stored>,
) -> String {
    let summary = format!(
        "{} {} {:?} {} {:?} {}",
        session.whole().items.len(),
        session.items().len(),
        session.user_id(),
        session.seven(),
        session.kind(),
        session.text().len(),
    );
    match op {
        1 => *session.user_id_mut() = Some(1),
        2 => {
            let _ = session.take_items();
        }
        3 => TypedSession::reset(&mut session),
        4 => session.whole_mut().visits += 1,
        _ => {}
    }
    summary
}

/// One app per codec over a shared canned store.
pub struct StoredApps {
    pub store: CannedStore,
    pub msgpack: Router,
    pub json: Router,
}

pub fn stored_apps() -> &'static StoredApps {
    static APPS: OnceLock<StoredApps> = OnceLock::new();
    APPS.get_or_init(|| {
        let store = CannedStore::default();
        let router =
            |layer: SessionLayer| Router::new().route("/op/{op}", get(stored)).layer(layer);
        StoredApps {
            msgpack: router(SessionLayer::new(store.clone())),
            json: router(SessionLayer::new(store.clone()).with_codec(typed_sessions::codec::Json)),
            store,
        }
    })
}

/// The stored-fields target. The first byte picks the codec (bit 0), the
/// operation (bits 1-3) and whether the store answers with one value too
/// many or too few (bits 4-5); the rest, split at `0xff 0x00`, are the
/// stored bytes of the fields in order (an empty piece is a missing field).
/// The request must succeed: a store answering a wrong number of values
/// holds the session corrupt, so it is reset (the handler sees a fresh
/// one); otherwise undecodable fields read as their defaults. Either way
/// the save writes only fields the handler changed.
pub fn stored_fields(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let apps = stored_apps();
    let fields = <Stored as SessionState>::FIELDS;
    let mut values: Vec<Option<Vec<u8>>> = split(rest, &[0xff, 0x00])
        .map(|piece| (!piece.is_empty()).then(|| piece.to_vec()))
        .collect();
    values.resize(fields.len(), None);
    let count_ok = match (selector >> 4) & 3 {
        1 => {
            values.push(None);
            false
        }
        2 => {
            values.pop();
            false
        }
        _ => true,
    };
    {
        let mut canned = apps.store.canned.lock().expect("lock");
        canned.values = values.clone();
        canned.writes.clear();
    }
    let op = (selector >> 1) & 7;
    let router = if selector & 1 == 0 {
        &apps.msgpack
    } else {
        &apps.json
    };
    let id = SessionId::generate().expect("randomness");
    let cookie = HeaderValue::from_str(&format!("session={}", id.as_str())).expect("header");
    let response = runtime().block_on(call(router, &[cookie], &format!("/op/{op}")));
    let changed: &[&str] = match op {
        1 => &["uid"],
        2 => &["items"],
        3 => fields,
        4 => &["whole"],
        _ => &[],
    };
    let writes = std::mem::take(&mut apps.store.canned.lock().expect("lock").writes);
    if !count_ok {
        // A wrong number of values is a corrupt session: not adopted, so
        // the handler runs on a fresh one and only what it set is written
        // (into a new session), never a stored value.
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "a corrupt session must be reset, not fail the request"
        );
        for (field, value) in &writes {
            assert!(
                changed.contains(&field.as_str()) && value.is_some(),
                "op {op} on a reset session wrote {field}: {value:?}"
            );
        }
        return;
    }
    assert_eq!(response.status(), StatusCode::OK);
    for (field, value) in &writes {
        assert!(
            changed.contains(&field.as_str()),
            "op {op} wrote field {field}, which it did not change"
        );
        let index = fields
            .iter()
            .position(|f| f == field)
            .expect("a known field");
        assert_ne!(
            values[index].as_deref(),
            value.as_deref(),
            "a write of bytes equal to the stored ones"
        );
        if op == 3 {
            assert!(value.is_none(), "reset removes, it does not write defaults");
        }
    }
}

/// Splits `bytes` at every occurrence of `separator`.
fn split<'a>(bytes: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = Some(bytes);
    std::iter::from_fn(move || {
        let current = rest?;
        match current
            .windows(separator.len())
            .position(|w| w == separator)
        {
            Some(at) => {
                rest = Some(&current[at + separator.len()..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

// ---------------------------------------------------------------------------
// The Memcached record format.

/// The names `record.rs` takes from its crate, provided by this one.
mod store {
    #[cfg(test)]
    pub use typed_sessions::FieldKey;
    pub use typed_sessions::{FieldWrite, StoreError};
}

/// The Memcached store's record module, compiled from its source file: its
/// parser is crate-private, and this fuzzes exactly that code.
#[allow(dead_code, unreachable_pub)]
#[path = "../../session/src/store/memcache/record.rs"]
mod record;

/// The record target: parsing never panics; whatever parses re-encodes to
/// exactly the same bytes, keeps its body under a new header, and merging
/// writes into it gives a record that parses back to the merged fields.
pub fn memcache_record(data: &[u8]) {
    let Ok(parsed) = record::parse(data) else {
        return;
    };
    let again = record::encode(
        parsed.created_at,
        parsed.expires_at,
        &parsed.fields,
        usize::MAX,
    )
    .expect("a parsed record re-encodes");
    assert_eq!(again, data, "parse then encode is not the identity");
    assert_eq!(
        record::with_header(parsed.created_at, parsed.expires_at, parsed.body),
        data
    );
    let moved = record::with_header(1, 2, parsed.body);
    let reparsed = record::parse(&moved).expect("a new header keeps a valid body");
    assert_eq!(reparsed.fields, parsed.fields);
    assert_eq!((reparsed.created_at, reparsed.expires_at), (1, 2));

    // Writes drawn from the record itself: remove every other text field,
    // overwrite the rest with their reversed names, add one new field.
    let texts: Vec<(&str, &str)> = parsed
        .fields
        .iter()
        .filter_map(|f| {
            Some((
                std::str::from_utf8(f.namespace).ok()?,
                std::str::from_utf8(f.name).ok()?,
            ))
        })
        .collect();
    let mut writes: Vec<FieldWrite<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, (namespace, field))| FieldWrite {
            key: typed_sessions::FieldKey { namespace, field },
            value: (i % 2 == 1).then_some(field.as_bytes()),
        })
        .collect();
    writes.push(FieldWrite {
        key: typed_sessions::FieldKey {
            namespace: "fuzz",
            field: "added",
        },
        value: Some(b"new"),
    });
    let merged = record::merge(&parsed.fields, &writes);
    for (index, write) in writes.iter().enumerate() {
        // A later write of the same field wins over this one.
        if writes[index + 1..]
            .iter()
            .any(|later| later.key == write.key)
        {
            continue;
        }
        let found = merged.iter().find(|f| {
            f.namespace == write.key.namespace.as_bytes() && f.name == write.key.field.as_bytes()
        });
        assert_eq!(found.map(|f| f.value), write.value, "merge lost a write");
    }
    for field in &parsed.fields {
        let written = writes.iter().any(|w| {
            w.key.namespace.as_bytes() == field.namespace && w.key.field.as_bytes() == field.name
        });
        if !written {
            assert!(merged.contains(field), "merge lost an unwritten field");
        }
    }
    let encoded = record::encode(5, 6, &merged, usize::MAX).expect("merged record encodes");
    let back = record::parse(&encoded).expect("merged record parses");
    assert_eq!(back.fields, merged);
}
