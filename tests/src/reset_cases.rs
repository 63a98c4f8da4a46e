//! The HTTP cases of stored data the layer cannot use: a session the store
//! holds corrupt or over the load limit is reset (logged, deleted, and the
//! request runs without it), never a 500 that locks its user out; writes
//! that would make a session unloadable are refused; `set_expiry` values
//! are clamped; rejections name no type. Each takes the store under test;
//! see [`http_suite!`](crate::http_suite). [`corrupt_record_is_reset`] takes
//! a store-specific corruption too, done through the store's own server.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use typed_sessions::{
    Expiry, InsertError, MAX_EXPIRY, Session, SessionId, SessionLayer, SessionState, SessionStore,
    TypedSession,
};

use crate::app::{Counter, Gate, Server, serve_router};
use crate::browser::{Browser, Reply};
use crate::chaos::{Behavior, Chaos, NAMESPACE_LIMIT};

type Store = Arc<dyn SessionStore>;

/// A namespace that can grow past the load limit.
#[derive(SessionState)]
#[session(namespace = "reset_big")]
struct Big {
    text: String,
}

/// Two state types with one namespace: a clash, named only in the log.
#[derive(SessionState)]
#[session(namespace = "reset_clash")]
struct ClashA {
    a: u8,
}

#[derive(SessionState)]
#[session(namespace = "reset_clash")]
struct ClashB {
    b: u8,
}

async fn count(mut s: TypedSession<Counter>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn read(s: TypedSession<Counter>) -> String {
    s.visits().to_string()
}

async fn dict_incr(mut s: Session) -> Result<String, InsertError> {
    let n = s.get::<u64>("n").unwrap_or(0) + 1;
    s.insert("n", n)?;
    Ok(n.to_string())
}

async fn dict_read(s: Session) -> String {
    s.get::<u64>("n").unwrap_or(0).to_string()
}

/// Grows `Big` one byte past the limit, then bumps the counter: the save
/// refuses the whole request's writes.
async fn typed_too_big(mut big: TypedSession<Big>, mut counter: TypedSession<Counter>) -> String {
    big.set_text("x".repeat(NAMESPACE_LIMIT + 1));
    *counter.visits_mut() += 1;
    "handler ran".to_owned()
}

/// Inserts values that together pass the limit: the second insert is
/// refused, the first kept.
async fn dict_too_big(mut s: Session) -> String {
    let half = "x".repeat(NAMESPACE_LIMIT / 2);
    let first = s.insert("half", &half).is_ok();
    let second = match s.insert("other half", &half) {
        Err(InsertError::TooLarge { key, bytes }) => format!("{key} {}", bytes > NAMESPACE_LIMIT),
        other => format!("{other:?}"),
    };
    let answer = format!("{first} {second} {}", s.len());
    // Not stored: some stores take no value this large.
    s.clear();
    answer
}

async fn expiry(
    axum::extract::Path(which): axum::extract::Path<String>,
    mut s: TypedSession<Counter>,
) -> String {
    *s.visits_mut() += 1;
    let expiry = match which.as_str() {
        "zero" => Expiry::OnInactivity(Duration::ZERO),
        "max" => Expiry::OnInactivity(Duration::MAX),
        _ => Expiry::AtDateTime(std::time::SystemTime::now() + MAX_EXPIRY * 10),
    };
    TypedSession::set_expiry(&mut s, expiry);
    s.visits().to_string()
}

async fn dict_expiry(mut s: Session) -> Result<String, InsertError> {
    s.insert("n", 1u64)?;
    s.set_expiry(Expiry::OnInactivity(Duration::MAX));
    Ok("1".to_owned())
}

async fn clash(_a: TypedSession<ClashA>, _b: TypedSession<ClashB>) -> &'static str {
    "unreachable"
}

async fn twice(_a: TypedSession<Counter>, _b: TypedSession<Counter>) -> &'static str {
    "unreachable"
}

fn routes() -> Router {
    Router::new()
        .route("/count", get(count))
        .route("/read", get(read))
        .route("/dict/incr", get(dict_incr))
        .route("/dict/read", get(dict_read))
        .route("/typed_too_big", get(typed_too_big))
        .route("/dict_too_big", get(dict_too_big))
        .route("/expiry/{which}", get(expiry))
        .route("/dict_expiry", get(dict_expiry))
        .route("/clash", get(clash))
        .route("/twice", get(twice))
}

async fn serve(layer: SessionLayer) -> Server {
    serve_router(routes().layer(layer), Arc::new(Gate::default())).await
}

fn id_of(browser: &Browser) -> SessionId {
    SessionId::parse(browser.cookie.as_deref().expect("a session cookie")).unwrap()
}

/// The reply expires the session cookie.
fn removes_cookie(reply: &Reply) -> bool {
    reply
        .set_cookie()
        .is_some_and(|cookie| cookie.starts_with("session=;") && cookie.contains("Max-Age=0"))
}

/// The store holds no session under `id`: deleted (or, for a store that
/// reads unreadable records as absent, such as memcached's, no longer
/// readable as one).
async fn gone(store: &Store, id: &SessionId) -> bool {
    matches!(store.load(id, "Counter", &["visits"]).await, Ok(None))
}

/// Checks one session made unusable by `spoil` (which gets its id; `heal`
/// undoes what is not in the store after the request that finds it): a
/// read-only request gets 200 with an empty session and the cookie
/// removed, a writing one 200 and a new id; the bad record is deleted and
/// the next requests work.
async fn expect_reset<F, Fut>(
    store: &Store,
    base: &str,
    (read, write): (&str, &str),
    spoil: F,
    heal: &dyn Fn(),
) where
    F: Fn(SessionId) -> Fut,
    Fut: Future<Output = ()>,
{
    // A request that only reads.
    let mut browser = Browser::new(base);
    assert_eq!(browser.get(write).await.body, "1");
    assert_eq!(browser.get(write).await.body, "2");
    let bad = id_of(&browser);
    spoil(bad.clone()).await;
    let reply = browser.get(read).await;
    heal();
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"), "{read}");
    assert!(removes_cookie(&reply), "{read}: {:?}", reply.set_cookie());
    assert!(gone(store, &bad).await, "{read}: the bad record lingers");
    assert_eq!(browser.get(write).await.body, "1");
    assert_ne!(id_of(&browser), bad);
    assert_eq!(browser.get(read).await.body, "1");

    // A request that writes: a fresh session under a new id.
    let mut browser = Browser::new(base);
    assert_eq!(browser.get(write).await.body, "1");
    assert_eq!(browser.get(write).await.body, "2");
    let bad = id_of(&browser);
    spoil(bad.clone()).await;
    let reply = browser.get(write).await;
    heal();
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{write}");
    let fresh = id_of(&browser);
    assert_ne!(fresh, bad, "{write}: the bad id was reused");
    assert!(gone(store, &bad).await, "{write}: the bad record lingers");
    assert_eq!(browser.get(write).await.body, "2");
    assert_eq!(id_of(&browser), fresh);
    // The old cookie names nothing now.
    let reply = Browser::new(base)
        .get_raw(read, Some(&format!("session={}", bad.as_str())))
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
}

/// A store that answers a load with garbage (too few or too many values:
/// `Malformed`) or with more than the load limit (`TooLarge`): the session
/// is reset, not a 500, for the typed and the dict-like extractor alike.
pub async fn unusable_loads_reset_the_session(store: Store) {
    let (chaos, controls) = Chaos::new(store.clone());
    let server = serve(SessionLayer::new(chaos)).await;
    let typed = [
        Behavior::ExtraValue,
        Behavior::MissingValue,
        Behavior::NoValues,
        Behavior::Huge,
        Behavior::HugeTotal,
    ];
    // (`ExtraValue` and the like are no error for a namespace of any keys.)
    let dict = [Behavior::Huge, Behavior::HugeTotal];
    let cases = typed
        .iter()
        .map(|b| (*b, "/read", "/count"))
        .chain(dict.iter().map(|b| (*b, "/dict/read", "/dict/incr")));
    for (behavior, read, write) in cases {
        let deletes = controls.counts().delete;
        let spoil = |_| {
            controls.plan.lock().load = behavior;
            std::future::ready(())
        };
        expect_reset(&store, &server.base, (read, write), spoil, &|| {
            controls.heal()
        })
        .await;
        // One delete per reset, of the bad id, by the layer.
        assert_eq!(controls.counts().delete, deletes + 2, "{behavior:?}");
    }
}

/// Failures and timeouts are no reason to reset: still a 500 that keeps
/// the session (the store may be fine on the next request).
pub async fn store_failures_still_fail_and_keep_the_session(store: Store) {
    let (chaos, controls) = Chaos::new(store.clone());
    let layer = SessionLayer::new(chaos).with_store_timeout(Duration::from_millis(300));
    let server = serve(layer).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/count").await.body, "1");
    for behavior in [Behavior::Fail, Behavior::Hang] {
        controls.plan.lock().load = behavior;
        for path in ["/count", "/dict/incr"] {
            let reply = browser.get(path).await;
            assert_eq!(reply.status, 500, "{behavior:?} {path}");
            assert_eq!(reply.set_cookie(), None, "{behavior:?} {path}");
        }
        controls.heal();
    }
    assert_eq!(controls.counts().delete, 0);
    assert_eq!(browser.get("/count").await.body, "2");
}

/// A handler that grows a typed namespace past the load limit gets a 500,
/// and the session keeps what it had (it would never load again); a dict
/// `insert` past the limit is refused with `InsertError::TooLarge`, and
/// the values inserted before it are kept.
pub async fn writes_past_the_load_limit_are_refused(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/count").await.body, "1");
    let id = id_of(&browser);
    let reply = browser.get("/typed_too_big").await;
    assert_eq!((reply.status, reply.body.as_str()), (500, ""));
    assert_eq!(reply.set_cookie(), None);
    // Nothing of that request was saved, the counter's bump neither.
    assert_eq!(browser.get("/read").await.body, "1");
    assert_eq!(id_of(&browser), id);
    let stored = store.load(&id, "reset_big", &["text"]).await.unwrap();
    assert_eq!(stored.unwrap().values, vec![None]);

    // The dict's check needs no store: the values stay in the handler.
    let mut browser = Browser::new(&server.base);
    assert_eq!(
        browser.get("/dict_too_big").await.body,
        "true other half true 1"
    );
}

/// `set_expiry` values the layer would refuse are clamped: a zero limit
/// keeps the session one second (its cookie is issued, not removed: the
/// save did not delete it), an overflowing one
/// or a date past `MAX_EXPIRY` keeps it `MAX_EXPIRY`, and later requests
/// follow the kept value.
pub async fn set_expiry_values_are_clamped(store: Store) {
    let server = serve(SessionLayer::new(store)).await;
    let max_age = |reply: &Reply| {
        let cookie = reply.set_cookie().expect("a cookie");
        let at = cookie.find("Max-Age=").expect("a Max-Age") + "Max-Age=".len();
        cookie[at..]
            .split(';')
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let longest = MAX_EXPIRY.as_secs();
    for (path, expected) in [
        ("/expiry/zero", 1..=1),
        ("/expiry/max", longest - 5..=longest),
        ("/expiry/date", longest - 5..=longest),
    ] {
        let mut browser = Browser::new(&server.base);
        let reply = browser.get(path).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{path}");
        assert!(expected.contains(&max_age(&reply)), "{path}: {reply:?}");
        if path != "/expiry/zero" {
            // Stored, and read back by the next request (no warning, no
            // fallback to the layer's 30 days).
            let reply = browser.get("/count").await;
            assert_eq!(reply.body, "2", "{path}");
        }
    }
    // The dict-like `Session` clamps the same way.
    let mut browser = Browser::new(&server.base);
    let reply = browser.get("/dict_expiry").await;
    assert_eq!(reply.status, 200);
    assert!((longest - 5..=longest).contains(&max_age(&reply)));
    assert_eq!(browser.get("/dict/read").await.body, "1");
}

/// A `SessionRejection`'s body names no Rust type of the application.
pub async fn rejections_name_no_types(store: Store) {
    let server = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    for path in ["/clash", "/twice"] {
        let reply = browser.get(path).await;
        assert_eq!(reply.status, 500, "{path}");
        for leak in ["::", "reset_cases", "Clash", "Counter"] {
            assert!(!reply.body.contains(leak), "{path}: {}", reply.body);
        }
    }
}

/// A session corrupted through the store's own server by `corrupt` (in a
/// way the store reports as `Malformed` or `TooLarge`) is reset, for the
/// typed and the dict-like extractor.
pub async fn corrupt_record_is_reset<F, Fut>(store: Store, corrupt: F)
where
    F: Fn(SessionId) -> Fut,
    Fut: Future<Output = ()>,
{
    let server = serve(SessionLayer::new(store.clone())).await;
    for paths in [("/read", "/count"), ("/dict/read", "/dict/incr")] {
        expect_reset(&store, &server.base, paths, &corrupt, &|| {}).await;
    }
}
