//! The HTTP cases of the dict-like [`Session`]: each takes the store under
//! test; see [`http_suite!`](crate::http_suite).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::Barrier;
use typed_sessions::{
    DICT_NAMESPACE, FieldKey, FieldWrite, InsertError, MAX_KEY_LEN, Session, SessionId,
    SessionLayer, SessionStore, TypedSession,
};

use crate::app::{Counter, Gate, Server, routes, serve_router};
use crate::browser::Browser;
use crate::chaos::{Behavior, Chaos};
use crate::stores::{Call, Recording};

type Store = Arc<dyn SessionStore>;
type Params = Query<HashMap<String, String>>;

/// Writers that [`barrier_set`] holds until all of them have loaded.
const WRITERS: usize = 12;

/// What the dict routes share.
struct DictState {
    gate: Arc<Gate>,
    barrier: Barrier,
}

fn param<'a>(params: &'a Params, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

/// sanic_session's example: `foo += 1`.
async fn incr(mut session: Session) -> Result<String, InsertError> {
    let count = session.get::<u64>("foo").unwrap_or(0) + 1;
    session.insert("foo", count)?;
    Ok(count.to_string())
}

async fn get_text(params: Params, session: Session) -> String {
    format!("{:?}", session.get::<String>(param(&params, "key")))
}

async fn get_number(params: Params, session: Session) -> String {
    format!("{:?}", session.get::<u64>(param(&params, "key")))
}

/// Inserts `value` (text) under `key`; a refused key answers 400 with the
/// kind of error.
async fn set(params: Params, mut session: Session) -> (StatusCode, String) {
    match session.insert(param(&params, "key"), param(&params, "value")) {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(error) => {
            let kind = match error {
                InsertError::EmptyKey => "empty",
                InsertError::KeyTooLong(_) => "too long",
                InsertError::ReservedKey(_) => "reserved",
                _ => "other",
            };
            (StatusCode::BAD_REQUEST, kind.to_owned())
        }
    }
}

async fn remove(params: Params, mut session: Session) -> String {
    let key = param(&params, "key");
    let removed = session.remove::<String>(key);
    format!("{removed:?} {}", session.contains_key(key))
}

async fn keys(session: Session) -> String {
    format!("{} {:?}", session.len(), session.keys().collect::<Vec<_>>())
}

async fn clear(mut session: Session) -> String {
    session.clear();
    format!("{} {}", session.is_empty(), session.len())
}

/// Inserts `k0` .. `k{n-1}` with the values 0 .. n-1.
async fn fill(params: Params, mut session: Session) -> Result<&'static str, InsertError> {
    let n: u64 = param(&params, "n").parse().unwrap_or(0);
    for i in 0..n {
        session.insert(&format!("k{i}"), i)?;
    }
    Ok("ok")
}

/// Loads, waits until [`WRITERS`] requests have loaded, then sets `key`.
async fn barrier_set(
    State(state): State<Arc<DictState>>,
    params: Params,
    mut session: Session,
) -> Result<&'static str, InsertError> {
    state.barrier.wait().await;
    session.insert(param(&params, "key"), param(&params, "value"))?;
    Ok("ok")
}

/// A typed namespace and the dict in one handler.
async fn both(mut counter: TypedSession<Counter>, mut session: Session) -> String {
    *counter.visits_mut() += 1;
    let count = session.get::<u64>("foo").unwrap_or(0) + 10;
    session.insert("foo", count).unwrap();
    format!("{} {count}", counter.visits())
}

/// Loads, waits for the test's signal, then writes `foo`.
async fn slow(State(state): State<Arc<DictState>>, mut session: Session) -> String {
    state.gate.loaded.notify_one();
    state.gate.release.notified().await;
    session.insert("foo", 100u64).unwrap();
    "slow".to_owned()
}

async fn logout(mut session: Session) -> &'static str {
    session.destroy();
    "bye"
}

async fn cycle(mut session: Session) -> String {
    session.cycle_id();
    session.set_expiry(typed_sessions::Expiry::OnInactivity(Duration::from_secs(
        600,
    )));
    format!("{:?}", session.get::<u64>("foo"))
}

async fn info(session: Session) -> String {
    format!("{} {}", session.is_new(), session.id().is_some())
}

/// A middleware that takes the dict, adds 10 to `foo`, and drops it before
/// the handler runs.
async fn bump_first(mut session: Session, request: Request, next: Next) -> Response {
    let count = session.get::<u64>("foo").unwrap_or(0) + 10;
    session.insert("foo", count).unwrap();
    drop(session);
    next.run(request).await
}

async fn twice(_a: Session, _b: Session) -> &'static str {
    "unreachable"
}

/// The shared routes plus the dict routes, behind `layer`.
async fn serve(layer: SessionLayer) -> Server {
    let gate = Arc::new(Gate::default());
    let state = Arc::new(DictState {
        gate: gate.clone(),
        barrier: Barrier::new(WRITERS),
    });
    let dict = Router::new()
        .route("/dict/incr", get(incr))
        .route("/dict/get", get(get_text))
        .route("/dict/get_u64", get(get_number))
        .route("/dict/set", get(set))
        .route("/dict/remove", get(remove))
        .route("/dict/keys", get(keys))
        .route("/dict/clear", get(clear))
        .route("/dict/fill", get(fill))
        .route("/dict/barrier", get(barrier_set))
        .route("/dict/both", get(both))
        .route("/dict/slow", get(slow))
        .route("/dict/logout", get(logout))
        .route("/dict/cycle", get(cycle))
        .route("/dict/info", get(info))
        .route("/dict/twice", get(twice))
        .route(
            "/dict/bumped",
            get(incr).layer(middleware::from_fn(bump_first)),
        )
        .with_state(state);
    serve_router(routes(gate.clone()).merge(dict).layer(layer), gate).await
}

/// `text` percent-encoded for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn set_path(key: &str, value: &str) -> String {
    format!("/dict/set?key={}&value={}", encode(key), encode(value))
}

fn key_path(route: &str, key: &str) -> String {
    format!("/dict/{route}?key={}", encode(key))
}

fn id_of(browser: &Browser) -> SessionId {
    let cookie = browser.cookie.as_deref().expect("a session cookie");
    SessionId::parse(&cookie[cookie.len() - 32..]).expect("cookie holds an id")
}

/// The stored dict fields' names, sorted; `None` without a session.
async fn stored_names(store: &Store, id: &SessionId) -> Option<Vec<String>> {
    let loaded = store.load_namespace(id, DICT_NAMESPACE).await.unwrap()?;
    let mut names: Vec<String> = loaded.fields.into_iter().map(|(name, _)| name).collect();
    names.sort();
    Some(names)
}

pub async fn dict_round_trip(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/dict/info").await.body, "true false");
    for expected in ["1", "2", "3"] {
        let reply = browser.get("/dict/incr").await;
        assert_eq!((reply.status, reply.body.as_str()), (200, expected));
    }
    assert_eq!(browser.get("/dict/info").await.body, "false true");
    let id = id_of(&browser);
    assert_eq!(stored_names(&store, &id).await.unwrap(), ["foo"]);
    // Other value types, other keys; reads in later requests.
    assert_eq!(browser.get(&set_path("name", "ada")).await.body, "ok");
    assert_eq!(
        browser.get(&key_path("get", "name")).await.body,
        "Some(\"ada\")"
    );
    assert_eq!(browser.get(&key_path("get", "nope")).await.body, "None");
    assert_eq!(
        browser.get("/dict/keys").await.body,
        "2 [\"foo\", \"name\"]"
    );
    assert_eq!(
        browser.get(&key_path("remove", "name")).await.body,
        "Some(\"ada\") false"
    );
    assert_eq!(
        browser.get(&key_path("remove", "name")).await.body,
        "None false"
    );
    assert_eq!(browser.get("/dict/keys").await.body, "1 [\"foo\"]");
    assert_eq!(stored_names(&store, &id).await.unwrap(), ["foo"]);
    assert_eq!(browser.get("/dict/clear").await.body, "true 0");
    assert_eq!(browser.get("/dict/keys").await.body, "0 []");
    assert_eq!(
        stored_names(&store, &id).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(browser.get("/dict/incr").await.body, "1");
    // Another browser has its own session.
    assert_eq!(Browser::new(&server.base).get("/dict/incr").await.body, "1");
}

pub async fn dict_untouched_does_no_store_io_and_reads_one_namespace(store: Store) {
    let (recording, calls) = Recording::new(store);
    let server = serve(SessionLayer::new(recording)).await;
    let mut browser = Browser::new(&server.base);
    // A new session that only reads: no store call, no cookie.
    let reply = browser.get(&key_path("get", "foo")).await;
    assert_eq!(reply.body, "None");
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(calls.lock().clone(), vec![]);
    browser.get("/dict/incr").await;
    browser.get("/count").await;
    calls.lock().clear();
    // A handler without a session touches nothing; a typed one does not
    // load the dict; the dict loads its namespace only, in one call.
    browser.get("/none").await;
    browser.get("/read").await;
    browser.get(&key_path("get_u64", "foo")).await;
    assert_eq!(
        calls.lock().clone(),
        vec![
            Call::Load {
                namespace: "Counter".to_owned()
            },
            Call::LoadNamespace {
                namespace: DICT_NAMESPACE.to_owned()
            },
        ]
    );
}

pub async fn dict_writers_of_different_keys_all_survive(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/dict/incr").await;
    let header = format!("session={}", browser.cookie.as_deref().unwrap());
    // Every request loads the session before any of them writes: a store
    // that wrote whole sessions would keep one of the twelve.
    let requests = (0..WRITERS).map(|i| {
        let browser = browser.clone();
        let header = header.clone();
        async move {
            let path = format!("/dict/barrier?key=w{i}&value=v{i}");
            browser.get_raw(&path, Some(&header)).await
        }
    });
    for reply in futures_util::future::join_all(requests).await {
        assert_eq!(reply.status, 200);
    }
    for i in 0..WRITERS {
        assert_eq!(
            browser.get(&key_path("get", &format!("w{i}"))).await.body,
            format!("Some(\"v{i}\")"),
            "write of w{i} lost"
        );
    }
    assert_eq!(
        browser.get(&key_path("get_u64", "foo")).await.body,
        "Some(1)"
    );
}

pub async fn dict_one_key_changed_among_1000_writes_only_that_key(store: Store) {
    let (recording, recorded) = Recording::new(store.clone());
    let server = serve(SessionLayer::new(recording)).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/dict/fill?n=1000").await.body, "ok");
    let id = id_of(&browser);
    assert_eq!(stored_names(&store, &id).await.unwrap().len(), 1000);
    recorded.lock().clear();
    assert_eq!(browser.get(&set_path("k500", "changed")).await.body, "ok");
    let calls = std::mem::take(&mut *recorded.lock());
    assert_eq!(
        calls[0],
        Call::LoadNamespace {
            namespace: DICT_NAMESPACE.to_owned()
        }
    );
    match &calls[1..] {
        [Call::Update { fields, bytes }] => {
            assert_eq!(fields, &[format!("{DICT_NAMESPACE}.k500")]);
            assert!(*bytes < 32, "{bytes} bytes written for one short value");
        }
        other => panic!("expected one update, got {other:?}"),
    }
    assert_eq!(
        browser.get(&key_path("get", "k500")).await.body,
        "Some(\"changed\")"
    );
    assert_eq!(
        browser.get(&key_path("get_u64", "k999")).await.body,
        "Some(999)"
    );
    // Setting a key to the value it holds writes nothing.
    recorded.lock().clear();
    assert_eq!(browser.get(&set_path("k500", "changed")).await.body, "ok");
    assert_eq!(
        recorded.lock().clone(),
        vec![Call::LoadNamespace {
            namespace: DICT_NAMESPACE.to_owned()
        }]
    );
}

pub async fn dict_corrupt_value_reads_as_none_and_is_replaced(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/dict/incr").await;
    browser.get(&set_path("name", "ada")).await;
    let id = id_of(&browser);
    let garbage: &[u8] = &[0xff; 11];
    let writes = [
        FieldWrite {
            key: FieldKey {
                namespace: DICT_NAMESPACE,
                field: "foo",
            },
            value: Some(garbage),
        },
        // A stored name no key escapes to: ignored, not fatal.
        FieldWrite {
            key: FieldKey {
                namespace: DICT_NAMESPACE,
                field: "%zz",
            },
            value: Some(b"x"),
        },
    ];
    let later = SystemTime::now() + Duration::from_secs(60);
    assert!(store.update(&id, &writes, Some(later)).await.unwrap());
    let reply = browser.get(&key_path("get_u64", "foo")).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "None"));
    // The other key is intact; a value read as another type is None too.
    assert_eq!(
        browser.get(&key_path("get", "name")).await.body,
        "Some(\"ada\")"
    );
    assert_eq!(
        browser.get("/dict/keys").await.body,
        "2 [\"foo\", \"name\"]"
    );
    // The next write replaces the corrupt value.
    assert_eq!(browser.get("/dict/incr").await.body, "1");
    assert_eq!(browser.get("/dict/incr").await.body, "2");
}

pub async fn dict_bad_key_names_are_errors_and_any_utf8_works(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    let too_long = "k".repeat(MAX_KEY_LEN + 1);
    for (key, kind) in [
        ("", "empty"),
        (too_long.as_str(), "too long"),
        ("__reserved", "reserved"),
    ] {
        let reply = browser.get(&set_path(key, "v")).await;
        assert_eq!((reply.status, reply.body.as_str()), (400, kind), "{key:?}");
        // Reads of such a key find nothing rather than failing.
        let reply = browser.get(&key_path("get", key)).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "None"));
    }
    // Nothing was stored.
    assert_eq!(browser.cookie, None);
    let longest = "é".repeat(MAX_KEY_LEN / 2);
    let odd = [
        "a.b",
        "$set",
        "100%",
        "%2E",
        "nul\0byte",
        "ключ 鍵 🎉",
        "_one_underscore",
        "a:b/c?d=e&f",
        longest.as_str(),
    ];
    for (i, key) in odd.iter().enumerate() {
        let reply = browser.get(&set_path(key, &format!("v{i}"))).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "ok"), "{key:?}");
    }
    for (i, key) in odd.iter().enumerate() {
        assert_eq!(
            browser.get(&key_path("get", key)).await.body,
            format!("Some(\"v{i}\")"),
            "{key:?}"
        );
    }
    let mut sorted = odd.map(str::to_owned).to_vec();
    sorted.sort();
    assert_eq!(
        browser.get("/dict/keys").await.body,
        format!("{} {sorted:?}", odd.len())
    );
}

pub async fn dict_and_typed_namespaces_together(store: Store) {
    let (recording, calls) = Recording::new(store.clone());
    let server = serve(SessionLayer::new(recording)).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/dict/both").await.body, "1 10");
    assert_eq!(browser.get("/dict/both").await.body, "2 20");
    assert_eq!(browser.get("/read").await.body, "2");
    assert_eq!(
        browser.get(&key_path("get_u64", "foo")).await.body,
        "Some(20)"
    );
    // One handler, both namespaces: one load each, one write of both.
    calls.lock().clear();
    assert_eq!(browser.get("/dict/both").await.body, "3 30");
    let calls = calls.lock().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.contains(&Call::Load {
        namespace: "Counter".to_owned()
    }));
    assert!(calls.contains(&Call::LoadNamespace {
        namespace: DICT_NAMESPACE.to_owned()
    }));
    match &calls[2] {
        Call::Update { fields, .. } => assert_eq!(
            fields,
            &["Counter.visits".to_owned(), format!("{DICT_NAMESPACE}.foo")]
        ),
        other => panic!("expected the update last, got {other:?}"),
    }
    // Typed writes leave the dict alone, and clearing the dict leaves the
    // typed namespace alone.
    browser.get("/count").await;
    assert_eq!(
        browser.get(&key_path("get_u64", "foo")).await.body,
        "Some(30)"
    );
    browser.get("/dict/clear").await;
    assert_eq!(browser.get("/read").await.body, "4");
    // Taking Session twice at once is rejected.
    assert_eq!(browser.get("/dict/twice").await.status, 500);
}

pub async fn dict_controls_cycle_and_destroy_every_namespace(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/dict/both").await;
    let old = id_of(&browser);
    let reply = browser.get("/dict/cycle").await;
    assert_eq!(reply.body, "Some(10)");
    assert!(reply.set_cookie().unwrap().contains("Max-Age=600"));
    let new = id_of(&browser);
    assert_ne!(old, new);
    assert_eq!(
        stored_names(&store, &old).await,
        None,
        "old id still answers"
    );
    assert_eq!(browser.get("/read").await.body, "1");
    assert_eq!(
        browser.get(&key_path("get_u64", "foo")).await.body,
        "Some(10)"
    );
    let reply = browser.get("/dict/logout").await;
    assert!(reply.set_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(stored_names(&store, &new).await, None);
    assert_eq!(
        store.load(&new, "Counter", &["visits"]).await.unwrap(),
        None,
        "typed namespace survived destroy"
    );
}

pub async fn dict_logout_is_not_undone_by_a_slower_request(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/dict/incr").await;
    let id = id_of(&browser);
    let slow = {
        let browser = browser.clone();
        let header = format!("session={}", browser.cookie.as_deref().unwrap());
        tokio::spawn(async move { browser.get_raw("/dict/slow", Some(&header)).await })
    };
    server.gate.loaded.notified().await;
    assert!(
        browser
            .get("/dict/logout")
            .await
            .set_cookie()
            .unwrap()
            .contains("Max-Age=0")
    );
    server.gate.release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!((slow.status, slow.body.as_str()), (200, "slow"));
    assert_eq!(
        slow.set_cookie(),
        None,
        "the slow request reissued the cookie"
    );
    assert_eq!(stored_names(&store, &id).await, None, "logout undone");
}

pub async fn dict_store_faults_are_500s_and_garbage_is_not_fatal(store: Store) {
    let (chaos, controls) = Chaos::new(store);
    let layer = SessionLayer::new(chaos).with_store_timeout(Duration::from_millis(300));
    let server = serve(layer).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/dict/incr").await.body, "1");
    for behavior in [
        Behavior::Fail,
        Behavior::Hang,
        Behavior::FailAfter,
        Behavior::HangAfter,
    ] {
        controls.plan.lock().load = behavior;
        let reply = browser.get("/dict/incr").await;
        assert_eq!(reply.status, 500, "{behavior:?}");
        assert_eq!(reply.set_cookie(), None, "{behavior:?}");
        controls.heal();
        assert_eq!(
            browser.get(&key_path("get_u64", "foo")).await.body,
            "Some(1)",
            "{behavior:?}"
        );
    }
    // More than a load accepts (64 MiB): reset (see `reset_cases`), not a
    // 500, and the next request works.
    for behavior in [Behavior::Huge, Behavior::HugeTotal] {
        controls.plan.lock().load = behavior;
        let reply = browser.get("/dict/incr").await;
        controls.heal();
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "1"),
            "{behavior:?}"
        );
        assert_eq!(browser.get("/dict/incr").await.body, "2", "{behavior:?}");
    }
    // Values no codec reads: absent, and overwritten by the next write.
    controls.plan.lock().load = Behavior::Undecodable;
    assert_eq!(browser.get("/dict/incr").await.body, "1");
    controls.heal();
    assert_eq!(browser.get("/dict/incr").await.body, "2");
    // A session the store reports expired is not adopted.
    controls.plan.lock().load = Behavior::Expired;
    let reply = browser.get("/dict/incr").await;
    assert_eq!(reply.body, "1");
    assert!(reply.set_cookie().is_some(), "a new session gets a cookie");
}

pub async fn dict_taken_again_after_drop_sees_changes(store: Store) {
    let server = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    // The middleware's +10 and the handler's +1, both kept.
    assert_eq!(browser.get("/dict/bumped").await.body, "11");
    assert_eq!(browser.get("/dict/bumped").await.body, "22");
    assert_eq!(
        browser.get(&key_path("get_u64", "foo")).await.body,
        "Some(22)"
    );
}
