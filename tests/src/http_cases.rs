//! HTTP cases of issue 15: an `AtDateTime` that passes, refused cookies,
//! `Expires`, 5xx responses, stacked layers and cookie headers with
//! non-ASCII neighbours. Each takes the store under test; see
//! [`http_suite!`](crate::http_suite).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use parking_lot::Mutex;
use reqwest::header::HeaderValue;
use typed_sessions::{Expiry, Key, SessionId, SessionLayer, SessionStore, TypedSession};

use crate::app::{Counter, Gate, routes, serve_router};
use crate::browser::{Browser, Reply};
use crate::inproc::{Client, CookieChange};
use crate::stores::{Call, Fault, Faulty, Recording};

type Store = Arc<dyn SessionStore>;

async fn fail_write(mut s: TypedSession<Counter>) -> (StatusCode, &'static str) {
    *s.visits_mut() += 1;
    (StatusCode::INTERNAL_SERVER_ERROR, "failed after a write")
}

async fn fail_cycle(mut s: TypedSession<Counter>) -> (StatusCode, &'static str) {
    TypedSession::cycle_id(&mut s);
    (StatusCode::BAD_GATEWAY, "failed after cycle_id")
}

async fn fail_destroy(mut s: TypedSession<Counter>) -> (StatusCode, &'static str) {
    TypedSession::destroy(&mut s);
    (StatusCode::SERVICE_UNAVAILABLE, "failed after destroy")
}

async fn client_error(mut s: TypedSession<Counter>) -> (StatusCode, &'static str) {
    *s.visits_mut() += 1;
    (StatusCode::NOT_FOUND, "a 4xx still saves")
}

/// Writes, with an expiry date `offset_ms` from now (negative: past).
async fn expire_at(
    axum::extract::Path(offset_ms): axum::extract::Path<i64>,
    mut s: TypedSession<Counter>,
) -> String {
    let now = SystemTime::now();
    let offset = Duration::from_millis(offset_ms.unsigned_abs());
    let at = if offset_ms < 0 {
        now - offset
    } else {
        now + offset
    };
    TypedSession::set_expiry(&mut s, Expiry::AtDateTime(at));
    *s.visits_mut() += 1;
    s.visits().to_string()
}

/// The suite's routes plus this file's.
fn router(layer: SessionLayer) -> Router {
    routes(Arc::new(Gate::default()))
        .route("/fail/write", get(fail_write))
        .route("/fail/cycle", get(fail_cycle))
        .route("/fail/destroy", get(fail_destroy))
        .route("/client-error", get(client_error))
        .route("/expire/{offset_ms}", get(expire_at))
        .layer(layer)
}

async fn serve(layer: SessionLayer) -> crate::app::Server {
    serve_router(router(layer), Arc::new(Gate::default())).await
}

/// Asserts that `set` is the removal of the cookie `name` with the layer's
/// attributes.
fn assert_removal(set: &str, name: &str) {
    for part in [
        &format!("{name}=;") as &str,
        "Max-Age=0",
        "Expires=",
        "Path=/",
        "HttpOnly",
        "Secure",
    ] {
        assert!(set.contains(part), "{set} is not a removal: lacks {part}");
    }
}

fn attribute<'a>(set: &'a str, name: &str) -> Option<&'a str> {
    set.split(';')
        .map(str::trim)
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

/// The `Max-Age` and `Expires` of an issued cookie; `Expires` must be the
/// issue time plus `Max-Age`, to the second.
fn max_age_and_expires(set: &str, issued_between: (SystemTime, SystemTime)) -> (u64, SystemTime) {
    let max_age: u64 = attribute(set, "Max-Age")
        .unwrap_or_else(|| panic!("{set} lacks Max-Age"))
        .parse()
        .unwrap();
    let expires = httpdate::parse_http_date(
        attribute(set, "Expires").unwrap_or_else(|| panic!("{set} lacks Expires")),
    )
    .unwrap();
    let (before, after) = issued_between;
    let earliest = before + Duration::from_secs(max_age) - Duration::from_secs(1);
    let latest = after + Duration::from_secs(max_age);
    assert!(
        earliest <= expires && expires <= latest,
        "{set}: Expires is not issue time + Max-Age"
    );
    (max_age, expires)
}

/// Sleeps until the wall clock is past `at` (waiting for a date to pass is
/// what the caller tests).
async fn wait_until_past(at: SystemTime) {
    if let Ok(left) = at.duration_since(SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_millis(300)).await;
    }
}

fn creates(calls: &Mutex<Vec<Call>>) -> usize {
    calls
        .lock()
        .iter()
        .filter(|call| matches!(call, Call::Create { .. }))
        .count()
}

/// Point 1 over `axum::serve` (which applies the layers per connection):
/// once an `AtDateTime` passes, new connections are served, no session is
/// created, and a presented cookie is removed.
pub async fn expiry_date_passing_over_axum_serve(store: Store) {
    let (recording, calls) = Recording::new(store);
    let date = SystemTime::now() + Duration::from_secs(3);
    let server = serve(SessionLayer::new(recording).with_expiry(Expiry::AtDateTime(date))).await;
    let mut browser = Browser::new(&server.base);
    let before = SystemTime::now();
    let reply = browser.get("/count").await;
    let after = SystemTime::now();
    assert_eq!(reply.body, "1");
    let set = reply.set_cookie().unwrap();
    let (max_age, expires) = max_age_and_expires(&set, (before, after));
    assert!(max_age <= 3, "{set}: the cookie outlives the date");
    assert!(expires <= date, "{set}: the cookie outlives the date");
    let old = browser.cookie.clone().unwrap();

    wait_until_past(date).await;
    let creates_before = creates(&calls);
    // Every request on a new connection (a new client each time).
    for _ in 0..3 {
        let stale = format!("session={old}");
        let reply = Browser::new(&server.base)
            .get_raw("/count", Some(&stale))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body, "1", "the expired session was used");
        assert_removal(&reply.set_cookie().expect("a removal cookie"), "session");
        let reply = Browser::new(&server.base)
            .get_raw("/read", Some(&stale))
            .await;
        assert_eq!(reply.status, 200);
        assert_removal(&reply.set_cookie().expect("a removal cookie"), "session");
        let reply = Browser::new(&server.base).get_raw("/count", None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.set_cookie(), None, "a dead session was issued");
        let reply = Browser::new(&server.base).get_raw("/none", None).await;
        assert_eq!(reply.status, 200);
    }
    assert_eq!(
        creates(&calls),
        creates_before,
        "a session was created after the date"
    );
}

/// Point 1 with the router called per request (`oneshot`, which applies the
/// layer on every call).
pub async fn expiry_date_passing_in_process(store: Store) {
    let (recording, calls) = Recording::new(store);
    let date = SystemTime::now() + Duration::from_secs(3);
    let mut client = Client::new(router(
        SessionLayer::new(recording).with_expiry(Expiry::AtDateTime(date)),
    ));
    let (answer, change) = client.send("/count", http::Extensions::new()).await;
    assert_eq!(answer.body, "1");
    assert!(matches!(change, CookieChange::Set(_)), "{change:?}");
    let set = answer.set_cookies().remove(0);
    assert!(attribute(&set, "Expires").is_some(), "{set}");
    assert_eq!(client.get("/count").await.body, "2");

    wait_until_past(date).await;
    let creates_before = creates(&calls);
    let mut fresh = client.fresh();
    for _ in 0..3 {
        let (answer, change) = fresh.send("/count", http::Extensions::new()).await;
        assert_eq!((answer.status.as_u16(), change), (200, CookieChange::None));
    }
    let (answer, change) = client.send("/count", http::Extensions::new()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "1", "the expired session was used");
    assert_eq!(change, CookieChange::Removed);
    assert_eq!(
        creates(&calls),
        creates_before,
        "a session was created after the date"
    );
}

/// `set_expiry` with a date that has passed, or is less than a second
/// away, ends a live session and creates no new one: no cookie outlives
/// its session.
pub async fn set_expiry_to_a_dead_date_issues_no_cookie(store: Store) {
    let (recording, calls) = Recording::new(store.clone());
    let server = serve(SessionLayer::new(recording)).await;
    for path in ["/expire/-1000", "/expire/500"] {
        let mut browser = Browser::new(&server.base);
        // No session yet: none is created.
        let reply = browser.get(path).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.set_cookie(),
            None,
            "{path}: a dead session was issued"
        );
        assert_eq!(creates(&calls), 0, "{path}");
        // A live session ends, and its cookie with it.
        browser.get("/count").await;
        let cookie = browser.cookie.clone().unwrap();
        calls.lock().clear();
        let reply = browser.get(path).await;
        assert_removal(&reply.set_cookie().expect("a removal"), "session");
        assert!(
            calls.lock().contains(&Call::Delete),
            "{path}: {:?}",
            calls.lock()
        );
        let id = SessionId::parse(&cookie).unwrap();
        assert!(
            store
                .load(&id, "Counter", &["visits"])
                .await
                .unwrap()
                .is_none()
        );
        calls.lock().clear();
    }
    // A date a few seconds away gets a cookie that ends with it.
    let mut browser = Browser::new(&server.base);
    let before = SystemTime::now();
    let reply = browser.get("/expire/5000").await;
    let set = reply.set_cookie().unwrap();
    let (max_age, expires) = max_age_and_expires(&set, (before, SystemTime::now()));
    assert!((3..=4).contains(&max_age), "{set}");
    assert!(expires <= before + Duration::from_secs(6), "{set}");
}

/// Point 2: a malformed or badly signed cookie is removed on any response,
/// an unknown id once a handler loaded it; a new session's cookie replaces
/// it (one `Set-Cookie`).
pub async fn refused_cookies_are_removed(store: Store) {
    let key = Key::generate();
    let server = serve(
        SessionLayer::new(store.clone())
            .with_signing_key(key)
            .with_domain("localhost"),
    )
    .await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let good = browser.cookie.clone().unwrap();
    let unknown_id = SessionId::generate().unwrap();
    let mut forged = good.clone();
    forged.replace_range(good.len() - 32.., unknown_id.as_str());
    let malformed = [
        "session=short".to_owned(),
        "session=!!!".to_owned(),
        format!("session={}", unknown_id.as_str()), // unsigned, keys are set
        format!("session={forged}"),                // bad signature
        format!("session={good}; session={forged}x"), // ours and junk: ours wins
    ];
    for (index, header) in malformed.iter().enumerate() {
        let ours_wins = index == malformed.len() - 1;
        // Known without the store: removed even where no session is taken.
        let reply = browser.get_raw("/none", Some(header)).await;
        assert_eq!(reply.status, 200);
        match reply.set_cookie() {
            Some(set) if !ours_wins => {
                assert_removal(&set, "session");
                assert!(set.contains("Domain=localhost"), "{set}");
                assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
            }
            None if ours_wins => {}
            other => panic!("{header}: {other:?}"),
        }
        // A new session's cookie alone replaces it.
        let reply = browser.get_raw("/count", Some(header)).await;
        let set = reply.set_cookie();
        if ours_wins {
            assert_eq!(set, None, "{header}");
        } else {
            let set = set.expect("a new cookie");
            assert!(!set.contains("Max-Age=0"), "{header}: {set}");
            assert_eq!(reply.body, "1");
        }
    }
    // Two different valid ids: the server cannot tell which it issued.
    let mut other = Browser::new(&server.base);
    other.get("/count").await;
    let two = format!("session={good}; session={}", other.cookie.unwrap());
    let reply = browser.get_raw("/none", Some(&two)).await;
    assert_removal(&reply.set_cookie().expect("a removal"), "session");

    // An unknown (well-formed, correctly signed) id: known only once loaded.
    let mut logged_out = browser.clone();
    logged_out.get("/logout").await;
    let stale = format!("session={good}");
    assert_eq!(
        browser.get_raw("/none", Some(&stale)).await.set_cookie(),
        None
    );
    let reply = browser.get_raw("/read", Some(&stale)).await;
    assert_eq!(reply.body, "0");
    assert_removal(&reply.set_cookie().expect("a removal"), "session");
    let reply = browser.get_raw("/count", Some(&stale)).await;
    let set = reply.set_cookie().expect("a new cookie");
    assert!(!set.contains("Max-Age=0") && !set.contains(&good), "{set}");
    // No cookie at all: nothing to remove.
    assert_eq!(browser.get_raw("/read", None).await.set_cookie(), None);
    assert_eq!(browser.get_raw("/none", None).await.set_cookie(), None);
}

/// An expired session's cookie is removed when a handler reads it.
pub async fn expired_session_cookie_is_removed(store: Store) {
    let layer = SessionLayer::new(store).with_expiry(Expiry::OnInactivity(Duration::from_secs(1)));
    let server = serve(layer).await;
    let mut browser = Browser::new(&server.base);
    let before = SystemTime::now();
    let set = browser.get("/count").await.set_cookie().unwrap();
    let (max_age, expires) = max_age_and_expires(&set, (before, SystemTime::now()));
    assert_eq!(max_age, 1, "{set}");
    wait_until_past(expires + Duration::from_secs(1)).await;
    let reply = browser.get("/read").await;
    assert_eq!(reply.body, "0");
    assert_removal(&reply.set_cookie().expect("a removal"), "session");
    assert_eq!(browser.cookie, None);
}

/// Point 3: `Expires` beside every `Max-Age`, neither for `OnSessionEnd`.
pub async fn issued_cookies_carry_expires(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    let before = SystemTime::now();
    let set = browser.get("/count").await.set_cookie().unwrap();
    let (max_age, _) = max_age_and_expires(&set, (before, SystemTime::now()));
    assert_eq!(max_age, 30 * 24 * 3600, "{set}");
    // A cycled id too.
    let before = SystemTime::now();
    let set = browser.get("/cycle").await.set_cookie().unwrap();
    max_age_and_expires(&set, (before, SystemTime::now()));

    let server = serve(SessionLayer::new(store).with_expiry(Expiry::OnSessionEnd)).await;
    let mut browser = Browser::new(&server.base);
    for path in ["/count", "/cycle"] {
        let set = browser.get(path).await.set_cookie().unwrap();
        assert!(
            !set.contains("Max-Age") && !set.contains("Expires"),
            "{set}"
        );
    }
}

/// Point 4: a 5xx response writes nothing, cycles nothing, destroys
/// nothing and sets no cookie; a 4xx still saves.
pub async fn server_errors_save_nothing(store: Store) {
    let (recording, calls) = Recording::new(store);
    let server = serve(SessionLayer::new(recording)).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/count").await.body, "1");
    let cookie = browser.cookie.clone().unwrap();
    let loads_only = |calls: &Mutex<Vec<Call>>, what: &str| {
        let calls = std::mem::take(&mut *calls.lock());
        assert!(
            calls.iter().all(|call| matches!(call, Call::Load { .. })),
            "{what}: {calls:?}"
        );
    };
    calls.lock().clear();
    for (path, status) in [
        ("/fail/write", 500),
        ("/fail/cycle", 502),
        ("/fail/destroy", 503),
    ] {
        let reply = browser.get(path).await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.set_cookie(), None, "{path}");
        loads_only(&calls, path);
        assert_eq!(browser.cookie.as_deref(), Some(cookie.as_str()), "{path}");
        assert_eq!(browser.get("/read").await.body, "1", "{path} kept a change");
        calls.lock().clear();
    }
    // A new session is not created.
    let reply = Browser::new(&server.base).get("/fail/write").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.set_cookie(), None);
    loads_only(&calls, "a new session");
    // A refused cookie is not removed either: a 5xx sets no cookie at all.
    for header in [
        "session=junk".to_owned(),
        format!("session={}", SessionId::generate().unwrap().as_str()),
    ] {
        let reply = browser.get_raw("/fail/write", Some(&header)).await;
        assert_eq!(reply.status, 500);
        assert_eq!(reply.set_cookie(), None, "{header}");
    }
    loads_only(&calls, "refused cookies");
    // A client error is not a server error: the change is kept.
    let reply = browser.get("/client-error").await;
    assert_eq!(reply.status, 404);
    assert_eq!(browser.get("/read").await.body, "2");
}

/// Point 4: a store error during the save still turns a response into a 500.
pub async fn store_error_during_save_is_a_500(store: Store) {
    let (faulty, faults) = Faulty::new(store);
    let server = serve(SessionLayer::new(faulty)).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    faults.lock().update = Fault::Fail;
    let reply: Reply = browser.get("/count").await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.set_cookie(), None);
    faults.lock().update = Fault::None;
    assert_eq!(browser.get("/count").await.body, "2");
}

/// Point 6: two stacked layers answer 500 before the handler runs and log
/// why, rather than silently using the inner store only.
pub async fn stacked_layers_fail_loudly(store: Store) {
    let (outer, outer_calls) = Recording::new(store.clone());
    let (inner, inner_calls) = Recording::new(store);
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || LogWriter(writer.clone()))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app =
        router(SessionLayer::new(inner).with_cookie_name("admin")).layer(SessionLayer::new(outer));
    let client = Client::new(app);
    for path in ["/count", "/none"] {
        let answer = client.raw(path, vec![], http::Extensions::new()).await;
        assert_eq!(answer.status, 500, "{path}");
        assert!(answer.set_cookies().is_empty(), "{path}");
    }
    assert_eq!(*outer_calls.lock(), vec![]);
    assert_eq!(*inner_calls.lock(), vec![]);
    let logs = String::from_utf8_lossy(&logs.lock()).into_owned();
    assert!(
        logs.contains("ERROR") && logs.contains("two SessionLayers"),
        "{logs}"
    );
}

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Point 8: cookies of other applications holding non-ASCII bytes (valid
/// UTF-8 or not), before or after ours, in our header or their own, do not
/// hide the session.
pub async fn non_ascii_neighbour_cookies_do_not_hide_ours(store: Store) {
    let server = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let ours = format!("session={}", browser.cookie.clone().unwrap());
    let neighbours: [&[u8]; 4] = [
        "city=Zürich".as_bytes(),
        "lang=日本語".as_bytes(),
        b"raw=\xff\xfe\x80",
        b"cut=\xc3",
    ];
    let client = reqwest::Client::new();
    let mut visits = 1;
    for neighbour in neighbours {
        let before = [neighbour, b"; ", ours.as_bytes()].concat();
        let after = [ours.as_bytes(), b"; ", neighbour].concat();
        let shapes: [Vec<&[u8]>; 4] = [
            vec![&before],
            vec![&after],
            vec![neighbour, ours.as_bytes()],
            vec![ours.as_bytes(), neighbour],
        ];
        for headers in shapes {
            let mut request = client.get(format!("{}/count", server.base));
            for header in &headers {
                request = request.header("cookie", HeaderValue::from_bytes(header).unwrap());
            }
            let reply = request.send().await.unwrap();
            assert_eq!(reply.status(), 200);
            let set_cookie = reply.headers().get("set-cookie").cloned();
            visits += 1;
            assert_eq!(
                reply.text().await.unwrap(),
                visits.to_string(),
                "{headers:?} hid the session"
            );
            assert_eq!(set_cookie, None, "{headers:?} replaced the cookie");
        }
    }
}
