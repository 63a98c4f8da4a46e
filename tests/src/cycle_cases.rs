//! HTTP cases for the save of a login (`cycle_id` with writes) that loses
//! its session to another request or fails halfway: the login's writes
//! are found only under the id its own response issues, never under the id
//! it came with (which an attacker may have planted) nor under an id
//! another response issued. See [`http_suite!`](crate::http_suite).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use serde::Deserialize;
use typed_sessions::{
    Expiry, LoadedFields, SessionId, SessionLayer, SessionState, SessionStore, TypedSession,
};

use crate::app::{Gate, Server, serve_router};
use crate::browser::{Browser, Reply};
use crate::chaos::{Behavior, Chaos, Plan};

type Store = Arc<dyn SessionStore>;

/// The store timeout of the layer over a [`Chaos`] store: a hung call
/// becomes a 500 this fast.
const TIMEOUT: Duration = Duration::from_millis(250);

/// The expiry a session chooses with `set_expiry` (the layer's is 30 days).
const REMEMBERED: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// Who is logged in, and a counter beside it.
#[derive(SessionState)]
#[session(namespace = "cycle_auth")]
pub struct CycleAuth {
    user: Option<String>,
    visits: u64,
}

/// `?wait`: hold the handler after its load until the test releases it.
#[derive(Deserialize)]
struct Wait {
    wait: Option<u8>,
}

async fn hold(gate: &Gate, wait: &Wait) {
    if wait.wait.is_some() {
        gate.loaded.notify_one();
        gate.release.notified().await;
    }
}

/// "Remember me": a visit that chooses the session's own expiry.
async fn remember(mut auth: TypedSession<CycleAuth>) -> String {
    TypedSession::set_expiry(&mut auth, Expiry::OnInactivity(REMEMBERED));
    visit(auth).await
}

async fn visit(mut auth: TypedSession<CycleAuth>) -> String {
    *auth.visits_mut() += 1;
    auth.visits().to_string()
}

/// A login: sets the user and cycles the id.
async fn login(
    State(gate): State<Arc<Gate>>,
    Path(name): Path<String>,
    Query(wait): Query<Wait>,
    mut auth: TypedSession<CycleAuth>,
) -> String {
    auth.set_user(Some(name.clone()));
    TypedSession::cycle_id(&mut auth);
    hold(&gate, &wait).await;
    format!("welcome {name}")
}

/// Another request that cycles the id, with a write of its own (what an
/// attacker holding the same planted id can send).
async fn cycle(
    State(gate): State<Arc<Gate>>,
    Query(wait): Query<Wait>,
    mut auth: TypedSession<CycleAuth>,
) -> String {
    *auth.visits_mut() += 1;
    TypedSession::cycle_id(&mut auth);
    hold(&gate, &wait).await;
    auth.visits().to_string()
}

async fn whoami(auth: TypedSession<CycleAuth>) -> String {
    auth.user()
        .clone()
        .unwrap_or_else(|| "anonymous".to_owned())
}

async fn serve(layer: SessionLayer) -> Server {
    let gate = Arc::new(Gate::default());
    let router = Router::new()
        .route("/visit", get(visit))
        .route("/remember", get(remember))
        .route("/login/{name}", get(login))
        .route("/cycle", get(cycle))
        .route("/whoami", get(whoami))
        .with_state(gate.clone())
        .layer(layer);
    serve_router(router, gate).await
}

/// A browser holding the session cookie `cookie`.
fn holding(server: &Server, cookie: &str) -> Browser {
    let mut browser = Browser::new(&server.base);
    browser.cookie = Some(cookie.to_owned());
    browser
}

/// Sends `path` with `cookie` in the background; returns once its handler
/// holds (after its load, before its save).
async fn held(server: &Server, cookie: &str, path: &str) -> tokio::task::JoinHandle<Reply> {
    let mut browser = holding(server, cookie);
    let path = path.to_owned();
    let request = tokio::spawn(async move { browser.get(&path).await });
    server.gate.loaded.notified().await;
    request
}

/// The id a response issued (a new cookie, not a removal).
fn issued(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let set = reply.set_cookie().expect("a new cookie was issued");
    let (pair, _) = set.split_once(';').unwrap_or((&set, ""));
    let value = pair.strip_prefix("session=").expect("the session cookie");
    assert!(!set.contains("Max-Age=0"), "a removal: {set}");
    value.to_owned()
}

/// The user the session under `cookie` is logged in as, read over HTTP.
async fn user_of(server: &Server, cookie: &str) -> String {
    holding(server, cookie).get("/whoami").await.body
}

/// What the store holds under `cookie`.
async fn stored(store: &Store, cookie: &str) -> Option<LoadedFields> {
    let id = SessionId::parse(cookie).unwrap();
    store.load(&id, "cycle_auth", &["user"]).await.unwrap()
}

async fn assert_gone(store: &Store, cookie: &str) {
    assert!(
        stored(store, cookie).await.is_none(),
        "the old id still holds a session"
    );
}

/// A login and another request cycle the same id at once, in either order.
/// The login's user is found only under the id the login's response
/// issued; the other request's id never carries it, and the old id holds
/// no session.
pub async fn a_login_racing_another_cycle_keeps_its_writes_to_itself(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;

    // The other request cycles first; the login saves after it. The
    // planted session chose its own expiry.
    let mut planted = Browser::new(&server.base);
    planted.get("/remember").await;
    let old = planted.cookie.clone().unwrap();
    let before = stored(&store, &old).await.unwrap();
    let victim = held(&server, &old, "/login/victim?wait=1").await;
    let attacker = issued(&holding(&server, &old).get("/cycle").await);
    server.gate.release.notify_one();
    let reply = victim.await.unwrap();
    let victim = issued(&reply);
    assert_ne!(victim, old);
    assert_ne!(victim, attacker);
    assert_eq!(user_of(&server, &victim).await, "victim");
    // The login's new session keeps what a cycle keeps: the creation time
    // (the absolute timeout still counts from it) and the chosen expiry,
    // which its cookie follows.
    let after = stored(&store, &victim).await.unwrap();
    assert_eq!(after.created_at, before.created_at);
    assert_eq!(after.expiry, before.expiry);
    assert!(before.expiry.is_some());
    let max_age = reply
        .set_cookie()
        .and_then(|set| {
            set.split(';')
                .find_map(|part| part.trim().strip_prefix("Max-Age=")?.parse::<u64>().ok())
        })
        .unwrap();
    assert!(
        (REMEMBERED.as_secs() - 5..=REMEMBERED.as_secs()).contains(&max_age),
        "{max_age}"
    );
    assert_eq!(user_of(&server, &attacker).await, "anonymous");
    assert_gone(&store, &old).await;

    // The login cycles first; the other request saves after it.
    let mut planted = Browser::new(&server.base);
    planted.get("/visit").await;
    let old = planted.cookie.clone().unwrap();
    let attacker = held(&server, &old, "/cycle?wait=1").await;
    let victim = issued(&holding(&server, &old).get("/login/victim").await);
    server.gate.release.notify_one();
    let attacker = issued(&attacker.await.unwrap());
    assert_ne!(attacker, old);
    assert_ne!(attacker, victim);
    assert_eq!(user_of(&server, &victim).await, "victim");
    assert_eq!(user_of(&server, &attacker).await, "anonymous");
    assert_gone(&store, &old).await;
}

/// A login whose save fails halfway (the move or the write after it fails,
/// hangs past the store timeout, or lands with its answer lost) is a 500,
/// and the id the client came with never carries the login's user: a
/// failed login leaves the client logged out.
pub async fn a_login_failing_halfway_leaves_the_old_id_logged_out(store: Store) {
    let (chaos, controls) = Chaos::new(store.clone());
    let server = serve(SessionLayer::new(chaos).with_store_timeout(TIMEOUT)).await;
    let faults = [Behavior::Fail, Behavior::FailAfter, Behavior::Hang];
    let plans = faults.into_iter().flat_map(|fault| {
        [
            Plan {
                moves: fault,
                ..Plan::default()
            },
            Plan {
                update: fault,
                ..Plan::default()
            },
        ]
    });
    for plan in plans {
        let what = format!("{plan:?}");
        controls.heal();
        let mut browser = Browser::new(&server.base);
        browser.get("/visit").await;
        let old = browser.cookie.clone().unwrap();
        *controls.plan.lock() = plan;
        let reply = browser.get("/login/victim").await;
        assert_eq!(reply.status, 500, "{what}: {}", reply.body);
        assert_eq!(reply.set_cookie(), None, "{what}");
        controls.heal();
        assert_eq!(browser.cookie.as_deref(), Some(old.as_str()), "{what}");
        assert_eq!(browser.get("/whoami").await.body, "anonymous", "{what}");
        let id = SessionId::parse(&old).unwrap();
        if let Some(loaded) = store.load(&id, "cycle_auth", &["user"]).await.unwrap() {
            assert_eq!(loaded.values, vec![None], "{what}: the old id holds a user");
        }
    }
}
