//! HTTP cases for a remembered `set_expiry` ("remember me") and for writes
//! that race a login's `cycle_id`. See [`http_suite!`](crate::http_suite).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use tokio::sync::{Semaphore, watch};
use typed_sessions::store::FORWARD_WINDOW;
use typed_sessions::{Expiry, SessionId, SessionLayer, SessionStore, TypedSession};

use crate::app::{Auth, Counter, Gate, Server, Wide, serve_router};
use crate::browser::{Browser, Reply};

type Store = Arc<dyn SessionStore>;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const LONG: Duration = Duration::from_secs(30 * 24 * 60 * 60);
const SHORT: Duration = Duration::from_secs(20);

/// Holds the slow writers between their load and their save.
struct Race {
    /// One permit per writer that has loaded its session.
    loaded: Semaphore,
    release: watch::Sender<bool>,
}

/// The login of a "remember me" form: the mode picks the expiry.
async fn login(Path(mode): Path<String>, mut auth: TypedSession<Auth>) -> &'static str {
    auth.set_user(Some("ada".to_owned()));
    let expiry = match mode.as_str() {
        "session" => Some(Expiry::OnSessionEnd),
        "short" => Some(Expiry::OnInactivity(SHORT)),
        "long" => Some(Expiry::OnInactivity(LONG)),
        _ => None,
    };
    if let Some(expiry) = expiry {
        TypedSession::set_expiry(&mut auth, expiry);
    }
    TypedSession::cycle_id(&mut auth);
    "welcome"
}

async fn count(mut s: TypedSession<Counter>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn cycle(mut s: TypedSession<Counter>) -> String {
    TypedSession::cycle_id(&mut s);
    s.visits().to_string()
}

async fn logout(mut s: TypedSession<Counter>) -> &'static str {
    TypedSession::destroy(&mut s);
    "bye"
}

async fn whoami(auth: TypedSession<Auth>) -> String {
    format!("{:?}", auth.user())
}

fn wide_values(s: &TypedSession<Wide>) -> String {
    [
        s.f0(),
        s.f1(),
        s.f2(),
        s.f3(),
        s.f4(),
        s.f5(),
        s.f6(),
        s.f7(),
        s.f8(),
        s.f9(),
        s.f10(),
        s.f11(),
    ]
    .map(|v| v.to_string())
    .join(",")
}

async fn wide(s: TypedSession<Wide>) -> String {
    wide_values(&s)
}

/// Another tab: loads the session, waits for the test, then writes field
/// `i` (value `i + 1`).
async fn slow_wide(
    State(race): State<Arc<Race>>,
    Path(i): Path<u32>,
    mut s: TypedSession<Wide>,
) -> &'static str {
    let mut release = race.release.subscribe();
    race.loaded.add_permits(1);
    let _ = release.wait_for(|go| *go).await;
    crate::app::set_wide(&mut s, i);
    "ok"
}

async fn serve(layer: SessionLayer) -> (Server, Arc<Race>) {
    let race = Arc::new(Race {
        loaded: Semaphore::new(0),
        release: watch::channel(false).0,
    });
    let router = Router::new()
        .route("/login/{mode}", get(login))
        .route("/count", get(count))
        .route("/cycle", get(cycle))
        .route("/logout", get(logout))
        .route("/whoami", get(whoami))
        .route("/wide", get(wide))
        .route("/wide/{i}/slow", get(slow_wide))
        .with_state(race.clone())
        .layer(layer);
    (serve_router(router, Arc::new(Gate::default())).await, race)
}

fn id_of(cookie: &str) -> SessionId {
    SessionId::parse(&cookie[cookie.len() - 32..]).expect("cookie holds an id")
}

/// The stored expiry of the browser's session.
async fn stored_expiry(store: &Store, browser: &Browser) -> SystemTime {
    let cookie = browser.cookie.as_deref().expect("a session cookie");
    store
        .load(&id_of(cookie), "Counter", &[])
        .await
        .unwrap()
        .expect("the session exists")
        .expires_at
}

fn max_age(set_cookie: &str) -> Option<u64> {
    set_cookie
        .split(';')
        .find_map(|attribute| attribute.trim().strip_prefix("Max-Age="))
        .map(|seconds| seconds.parse().unwrap())
}

/// The session cookie the reply sets; fails when it sets none.
fn issued(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.set_cookie().expect("a Set-Cookie")
}

/// A browser-session cookie: neither `Max-Age` nor `Expires`.
fn assert_browser_session(set_cookie: &str) {
    assert_eq!(max_age(set_cookie), None, "{set_cookie}");
    assert!(!set_cookie.contains("Expires"), "{set_cookie}");
}

/// A login's choice outlives the login response: later requests do not
/// move the store's expiry or the cookie back to the layer's default, and
/// a later `cycle_id` issues the chosen kind of cookie again. A session
/// that chose nothing follows the layer's default.
pub async fn remembered_expiry_survives_later_requests_and_cycles(store: Store) {
    let default = Duration::from_secs(2 * 60 * 60);
    let layer = || SessionLayer::new(store.clone()).with_expiry(Expiry::OnInactivity(default));
    let (server, _) = serve(layer()).await;

    // Not remembered: a browser-session cookie, the store's inactivity limit.
    let mut browser = Browser::new(&server.base);
    assert_eq!(max_age(&issued(&browser.get("/count").await)), Some(7200));
    assert_browser_session(&issued(&browser.get("/login/session").await));
    assert!(stored_expiry(&store, &browser).await > SystemTime::now() + DAY);
    // With the layer's 2 h these would move the expiry back (and send a
    // 2 h cookie): they keep it.
    for expected in ["2", "3"] {
        let reply = browser.get("/count").await;
        assert_eq!(reply.body, expected);
        if let Some(set_cookie) = reply.set_cookie() {
            assert_browser_session(&set_cookie);
        }
        assert!(stored_expiry(&store, &browser).await > SystemTime::now() + DAY);
    }
    let before = browser.cookie.clone();
    assert_browser_session(&issued(&browser.get("/cycle").await));
    assert_ne!(browser.cookie, before);
    assert_eq!(browser.get("/whoami").await.body, "Some(\"ada\")");
    assert!(stored_expiry(&store, &browser).await > SystemTime::now() + DAY);

    // Remembered for long, chosen on a brand-new session.
    let mut browser = Browser::new(&server.base);
    assert_eq!(
        max_age(&issued(&browser.get("/login/long").await)),
        Some(LONG.as_secs())
    );
    let reply = browser.get("/count").await;
    assert_eq!(reply.body, "1");
    if let Some(set_cookie) = reply.set_cookie() {
        assert_eq!(max_age(&set_cookie), Some(LONG.as_secs()), "{set_cookie}");
    }
    assert!(stored_expiry(&store, &browser).await > SystemTime::now() + DAY);
    assert_eq!(
        max_age(&issued(&browser.get("/cycle").await)),
        Some(LONG.as_secs())
    );
    // Another server of the same application (same configuration, same
    // store) follows the choice too: it lives in the store, not the process.
    let (other, _) = serve(layer()).await;
    let mut elsewhere = Browser::new(&other.base);
    elsewhere.cookie = browser.cookie.clone();
    assert_eq!(elsewhere.get("/count").await.body, "2");
    assert_eq!(
        max_age(&issued(&elsewhere.get("/cycle").await)),
        Some(LONG.as_secs())
    );

    // A login that chose nothing: the layer's default throughout.
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    assert_eq!(
        max_age(&issued(&browser.get("/login/none").await)),
        Some(7200)
    );
    assert_eq!(max_age(&issued(&browser.get("/cycle").await)), Some(7200));
    assert!(stored_expiry(&store, &browser).await < SystemTime::now() + default);
}

/// A remembered sliding expiry slides by its own limit (and refresh
/// interval), not the layer's.
pub async fn remembered_expiry_slides_with_its_own_limit(store: Store) {
    let (server, _) = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let login = issued(&browser.get("/login/short").await);
    assert!(max_age(&login).is_some_and(|s| (SHORT.as_secs() - 1..=SHORT.as_secs()).contains(&s)));
    let logged_in = SystemTime::now();
    // The refresh interval of a 20 s limit is 2 s; nothing signals it.
    tokio::time::sleep(SHORT / 10 + Duration::from_millis(200)).await;
    let refreshed = issued(&browser.get("/count").await);
    assert!(
        max_age(&refreshed).is_some_and(|s| (SHORT.as_secs() - 1..=SHORT.as_secs()).contains(&s)),
        "{refreshed}"
    );
    let expires = stored_expiry(&store, &browser).await;
    assert!(expires > logged_in + SHORT, "the expiry did not slide");
    assert!(
        expires <= SystemTime::now() + SHORT,
        "moved past its own limit"
    );
}

/// The absolute timeout caps a remembered expiry, on the login response and
/// on every later one.
pub async fn remembered_expiry_is_bounded_by_the_absolute_timeout(store: Store) {
    let hour = Duration::from_secs(3600);
    let (server, _) = serve(SessionLayer::new(store.clone()).with_absolute_timeout(hour)).await;
    let mut browser = Browser::new(&server.base);
    let login = issued(&browser.get("/login/long").await);
    assert!(max_age(&login).is_some_and(|s| s <= 3600), "{login}");
    browser.get("/count").await;
    let cycled = issued(&browser.get("/cycle").await);
    assert!(max_age(&cycled).is_some_and(|s| s <= 3600), "{cycled}");
    assert!(stored_expiry(&store, &browser).await <= SystemTime::now() + hour);
}

/// Starts `n` slow writers of fields `0..n` with `cookie` and waits until
/// each has loaded the session.
async fn start_writers(
    server: &Server,
    race: &Race,
    cookie: &str,
    n: u32,
) -> Vec<tokio::task::JoinHandle<Reply>> {
    let writers = (0..n)
        .map(|i| {
            let browser = Browser::new(&server.base);
            let header = format!("session={cookie}");
            tokio::spawn(async move {
                browser
                    .get_raw(&format!("/wide/{i}/slow"), Some(&header))
                    .await
            })
        })
        .collect();
    race.loaded.acquire_many(n).await.unwrap().forget();
    writers
}

/// Twelve tabs change the session while another logs in (`cycle_id`): each
/// is answered 200, sets no cookie (the login's cookie stands), and every
/// change is in the session under its new id.
pub async fn writers_racing_a_login_lose_nothing(store: Store) {
    let (server, race) = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let old = browser.cookie.clone().unwrap();
    let writers = start_writers(&server, &race, &old, 12).await;
    issued(&browser.get("/login/long").await);
    assert_ne!(browser.cookie.as_deref(), Some(old.as_str()));
    race.release.send_replace(true);
    for writer in writers {
        let reply = writer.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.set_cookie(), None, "a racing write reissued a cookie");
    }
    assert_eq!(
        browser.get("/wide").await.body,
        "1,2,3,4,5,6,7,8,9,10,11,12"
    );
    assert_eq!(browser.get("/whoami").await.body, "Some(\"ada\")");
    assert_eq!(browser.get("/count").await.body, "2");
}

/// After a login, the old id reads nothing of the new session (though
/// writes that loaded before the login are carried over), and a write
/// through it starts an unrelated session.
pub async fn old_id_cannot_read_the_new_session(store: Store) {
    let (server, race) = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let old = browser.cookie.clone().unwrap();
    let writers = start_writers(&server, &race, &old, 1).await;
    issued(&browser.get("/login/none").await);
    race.release.send_replace(true);
    assert_eq!(
        writers.into_iter().next().unwrap().await.unwrap().status,
        200
    );
    assert_eq!(browser.get("/wide").await.body, "1,0,0,0,0,0,0,0,0,0,0,0");

    let mut stale = Browser::new(&server.base);
    stale.cookie = Some(old.clone());
    let reply = stale.get("/whoami").await;
    assert_eq!(reply.body, "None");
    // The old id is refused: its cookie is removed.
    assert!(
        reply
            .set_cookie()
            .is_some_and(|set| set.contains("Max-Age=0")),
        "{:?}",
        reply.set_cookie()
    );
    stale.cookie = Some(old.clone());
    assert_eq!(stale.get("/wide").await.body, "0,0,0,0,0,0,0,0,0,0,0,0");
    assert_eq!(stale.get("/count").await.body, "1");
    assert_ne!(stale.cookie.as_deref(), Some(old.as_str()));
    assert_ne!(stale.cookie, browser.cookie);
    assert_eq!(browser.get("/count").await.body, "2");
    assert_eq!(browser.get("/whoami").await.body, "Some(\"ada\")");
}

/// A logout right after the login still wins over tabs whose writes raced
/// the login: they are answered but not applied, and nothing comes back.
pub async fn logout_still_wins_over_writers_racing_a_login(store: Store) {
    let (server, race) = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let old = browser.cookie.clone().unwrap();
    let writers = start_writers(&server, &race, &old, 4).await;
    issued(&browser.get("/login/long").await);
    let new = browser.cookie.clone().unwrap();
    assert!(issued(&browser.get("/logout").await).contains("Max-Age=0"));
    race.release.send_replace(true);
    for writer in writers {
        let reply = writer.await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.set_cookie(), None);
    }
    for id in [&old, &new] {
        let loaded = store.load(&id_of(id), "wide", &["f0"]).await.unwrap();
        assert!(loaded.is_none(), "a session came back");
    }
}

/// A tab that loaded the session before a login but writes only after the
/// forward window is answered, but its change is dropped (and logged), as
/// after a logout: the old id is long dead by then.
pub async fn writes_after_the_forward_window_are_dropped(store: Store) {
    let (server, race) = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let old = browser.cookie.clone().unwrap();
    let writers = start_writers(&server, &race, &old, 1).await;
    issued(&browser.get("/login/none").await);
    // The window is a time limit: nothing signals its end.
    tokio::time::sleep(FORWARD_WINDOW + Duration::from_millis(1100)).await;
    race.release.send_replace(true);
    let reply = writers.into_iter().next().unwrap().await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(browser.get("/wide").await.body, "0,0,0,0,0,0,0,0,0,0,0,0");
    assert_eq!(browser.get("/whoami").await.body, "Some(\"ada\")");
}
