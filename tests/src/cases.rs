//! The cases of the HTTP suite. Each takes the store under test; see
//! [`http_suite!`](crate::http_suite).

use std::sync::Arc;
use std::time::Duration;

use typed_sessions::store::Bytes;
use typed_sessions::{Expiry, Key, SameSite, SessionId, SessionLayer, SessionStore};

use crate::app::{BLOB_LEN, serve};
use crate::browser::Browser;
use crate::stores::{Call, Fault, Faulty, Recording};

type Store = Arc<dyn SessionStore>;

/// The id inside a cookie value (signed values end with the id).
fn id_of(cookie: &str) -> SessionId {
    SessionId::parse(&cookie[cookie.len() - 32..]).expect("cookie holds an id")
}

async fn stored_visits(store: &Store, cookie: &str) -> Option<Option<Bytes>> {
    store
        .load(&id_of(cookie), "Counter", &["visits"])
        .await
        .unwrap()
        .map(|loaded| loaded.values.into_iter().next().unwrap())
}

pub async fn counter_round_trip(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    for expected in ["1", "2", "3"] {
        let reply = browser.get("/count").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, expected);
    }
    let cookie = browser.cookie.clone().unwrap();
    assert_eq!(cookie.len(), 32);
    assert!(stored_visits(&store, &cookie).await.unwrap().is_some());
    // Another browser has its own session.
    assert_eq!(Browser::new(&server.base).get("/count").await.body, "1");
}

pub async fn default_cookie_attributes_and_headers(store: Store) {
    let server = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    let reply = browser.get("/count").await;
    let set = reply.set_cookie().expect("cookie set");
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=2592000",
    ] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(!set.contains("Domain"), "{set}");
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(reply.header("vary").as_deref(), Some("Cookie"));
    // A read-only request of an existing session: Vary, but no cookie.
    let reply = browser.get("/read").await;
    assert_eq!(reply.body, "1");
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(reply.header("vary").as_deref(), Some("Cookie"));
    assert_eq!(reply.header("cache-control"), None);
    // A handler's own Cache-Control is kept (a new session sets the cookie).
    let reply = Browser::new(&server.base).get("/cache").await;
    assert!(reply.set_cookie().is_some());
    assert_eq!(
        reply.header("cache-control").as_deref(),
        Some("private, max-age=5")
    );
    // No session touched: no Vary.
    assert_eq!(browser.get("/none").await.header("vary"), None);
}

pub async fn builder_options_reach_the_cookie(store: Store) {
    let layer = SessionLayer::new(store.clone())
        .with_cookie_name("sid")
        .with_secure(false)
        .with_http_only(false)
        .with_same_site(SameSite::Strict)
        .with_path("/")
        .with_domain("localhost")
        .with_expiry(Expiry::OnInactivity(Duration::from_secs(3600)));
    let server = serve(layer).await;
    let mut browser = Browser::named(&server.base, "sid");
    let set = browser.get("/count").await.set_cookie().unwrap();
    assert!(set.starts_with("sid="), "{set}");
    for attribute in [
        "SameSite=Strict",
        "Path=/",
        "Domain=localhost",
        "Max-Age=3600",
    ] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(
        !set.contains("HttpOnly") && !set.contains("Secure"),
        "{set}"
    );
    assert_eq!(browser.get("/count").await.body, "2");

    let server = serve(SessionLayer::new(store).with_expiry(Expiry::OnSessionEnd)).await;
    let set = Browser::new(&server.base)
        .get("/count")
        .await
        .set_cookie()
        .unwrap();
    assert!(
        !set.contains("Max-Age") && !set.contains("Expires"),
        "{set}"
    );
}

pub async fn no_store_io_and_no_cookie_for_untouched_or_read_only_new_sessions(store: Store) {
    let (recording, calls) = Recording::new(store);
    let server = serve(SessionLayer::new(recording)).await;
    let browser = Browser::new(&server.base);
    let reply = browser.get_raw("/none", None).await;
    assert_eq!(reply.set_cookie(), None);
    let reply = browser.get_raw("/read", None).await;
    assert_eq!(reply.body, "0");
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(
        *calls.lock(),
        vec![],
        "a new session that only reads needs no store call"
    );
    // With a cookie, a route without a session still does no store I/O.
    let unknown = SessionId::generate().unwrap();
    let header = format!("session={}", unknown.as_str());
    assert_eq!(
        browser.get_raw("/none", Some(&header)).await.set_cookie(),
        None
    );
    assert_eq!(*calls.lock(), vec![]);
    // Reading with an unknown id: one load, nothing written, and the
    // refused cookie removed.
    let reply = browser.get_raw("/read", Some(&header)).await;
    assert!(reply.set_cookie().unwrap().contains("Max-Age=0"));
    assert_eq!(
        *calls.lock(),
        vec![Call::Load {
            namespace: "Counter".into()
        }]
    );
}

pub async fn well_formed_unknown_id_is_not_adopted(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    let planted = SessionId::generate().unwrap();
    browser.cookie = Some(planted.as_str().to_owned());
    let reply = browser.get("/count").await;
    assert_eq!(reply.body, "1");
    let issued = browser.cookie.clone().unwrap();
    assert_ne!(issued, planted.as_str());
    assert_eq!(stored_visits(&store, planted.as_str()).await, None);
    assert!(stored_visits(&store, &issued).await.is_some());
}

pub async fn malformed_cookies_are_ignored(store: Store) {
    let server = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let good = browser.cookie.clone().unwrap();
    let long = format!("session={}", "A".repeat(5 * 1024));
    let other = SessionId::generate().unwrap();
    let several = format!("session={good}; session={}", other.as_str());
    let cases = [
        "session=".to_owned(),
        "session=short".to_owned(),
        long,
        "session=!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!".to_owned(),
        format!("session={}\t", &good[..31]),
        "session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
        format!("session=\"{good}\""),
        several,
    ];
    for header in &cases {
        let reply = browser.get_raw("/count", Some(header)).await;
        assert_eq!(reply.status, 200, "{header}");
        assert_eq!(reply.body, "1", "{header} was not ignored");
        let set = reply.set_cookie().unwrap();
        assert!(!set.contains(&good), "{header}: old id reissued");
    }
    // Non-UTF-8 bytes in the header are ignored too.
    let client = reqwest::Client::new();
    let reply = client
        .get(format!("{}/count", server.base))
        .header(
            "cookie",
            reqwest::header::HeaderValue::from_bytes(b"session=\xff\xfe; x=\xc3").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await.unwrap(), "1");
    // The good session is untouched by all of it.
    assert_eq!(browser.get("/count").await.body, "2");
}

pub async fn destroy_deletes_the_record_and_expires_the_cookie(store: Store) {
    let layer = SessionLayer::new(store.clone())
        .with_domain("localhost")
        .with_path("/");
    let server = serve(layer).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    browser.get("/login").await;
    let cookie = browser.cookie.clone().unwrap();
    let reply = browser.get("/logout").await;
    let set = reply.set_cookie().expect("removal cookie");
    for attribute in [
        "session=;",
        "Max-Age=0",
        "Expires=",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Domain=localhost",
    ] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert_eq!(browser.cookie, None);
    assert_eq!(
        stored_visits(&store, &cookie).await,
        None,
        "record still there"
    );
    assert_eq!(
        store
            .load(&id_of(&cookie), "auth", &["user"])
            .await
            .unwrap(),
        None
    );
    // The old cookie no longer works.
    let reply = browser
        .get_raw("/count", Some(&format!("session={cookie}")))
        .await;
    assert_eq!(reply.body, "1");
}

pub async fn cycle_id_keeps_data_and_kills_the_old_id(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    browser.get("/count").await;
    let old = browser.cookie.clone().unwrap();
    let reply = browser.get("/cycle").await;
    assert_eq!(reply.body, "2");
    let new = browser.cookie.clone().unwrap();
    assert_ne!(new, old);
    assert_eq!(browser.get("/count").await.body, "3");
    assert_eq!(
        stored_visits(&store, &old).await,
        None,
        "old id still answers"
    );
    let reply = browser
        .get_raw("/count", Some(&format!("session={old}")))
        .await;
    assert_eq!(reply.body, "1");
    // Login: two namespaces written and the id cycled in one request.
    let reply = browser.get("/login").await;
    assert_eq!(reply.body, "1 empty");
    assert_ne!(browser.cookie.clone().unwrap(), new);
    assert_eq!(
        browser.get("/whoami").await.body,
        "Some(\"ada\") [\"book\"] empty"
    );
    assert_eq!(browser.get("/read").await.body, "3");
}

pub async fn twelve_concurrent_field_writers_all_survive(store: Store) {
    let server = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let requests = (0..12).map(|i| {
        let browser = browser.clone();
        async move {
            browser
                .get_raw(
                    &format!("/wide/{i}"),
                    browser
                        .cookie
                        .as_ref()
                        .map(|c| format!("session={c}"))
                        .as_deref(),
                )
                .await
        }
    });
    for reply in futures_util::future::join_all(requests).await {
        assert_eq!(reply.status, 200);
    }
    assert_eq!(
        browser.get("/wide").await.body,
        "1,2,3,4,5,6,7,8,9,10,11,12"
    );
}

pub async fn two_namespaces_in_one_handler(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/whoami").await.body, "None [] empty");
    browser.get("/count").await;
    browser.get("/login").await;
    assert_eq!(
        browser.get("/whoami").await.body,
        "Some(\"ada\") [\"book\"] empty"
    );
    assert_eq!(browser.get("/read").await.body, "1", "other namespace lost");
    let cookie = browser.cookie.clone().unwrap();
    let auth = store
        .load(&id_of(&cookie), "auth", &["user"])
        .await
        .unwrap()
        .unwrap();
    assert!(auth.values[0].is_some());
}

pub async fn old_sessions_survive_fields_added_and_removed(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/evolve/v1").await;
    assert_eq!(browser.get("/evolve/v2").await.body, "7 []");
    assert_eq!(browser.get("/evolve/v2").await.body, "7 [1]");
    // The field V2 no longer knows is still stored, untouched.
    let cookie = browser.cookie.clone().unwrap();
    let loaded = store
        .load(&id_of(&cookie), "evolve", &["dropped"])
        .await
        .unwrap()
        .unwrap();
    assert!(loaded.values[0].is_some());
}

pub async fn logout_is_not_undone_by_a_slower_request(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let cookie = browser.cookie.clone().unwrap();
    let slow = {
        let browser = browser.clone();
        let header = format!("session={cookie}");
        tokio::spawn(async move { browser.get_raw("/slow", Some(&header)).await })
    };
    server.gate.loaded.notified().await;
    let reply = browser.get("/logout").await;
    assert!(reply.set_cookie().unwrap().contains("Max-Age=0"));
    server.gate.release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 200);
    assert_eq!(slow.body, "101");
    assert_eq!(
        slow.set_cookie(),
        None,
        "the slow request reissued the cookie"
    );
    assert_eq!(stored_visits(&store, &cookie).await, None, "logout undone");
}

pub async fn large_field_is_not_rewritten_by_small_writes(store: Store) {
    let (recording, calls) = Recording::new(store.clone());
    let server = serve(SessionLayer::new(recording)).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/big/init").await;
    let cookie = browser.cookie.clone().unwrap();
    let before = store
        .load(&id_of(&cookie), "big", &["blob"])
        .await
        .unwrap()
        .unwrap();
    calls.lock().clear();
    assert_eq!(
        browser.get("/big/small").await.body,
        format!("1 {BLOB_LEN}")
    );
    assert_eq!(
        browser.get("/big/small").await.body,
        format!("2 {BLOB_LEN}")
    );
    let calls = calls.lock().clone();
    let writes: Vec<&Call> = calls
        .iter()
        .filter(|c| !matches!(c, Call::Load { .. }))
        .collect();
    assert_eq!(writes.len(), 2, "{calls:?}");
    for call in writes {
        let Call::Update { fields, bytes } = call else {
            panic!("unexpected {call:?}");
        };
        assert_eq!(fields, &vec!["big.small".to_owned()]);
        assert!(*bytes < 16, "{bytes} bytes written");
    }
    let after = store
        .load(&id_of(&cookie), "big", &["blob"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.values, after.values);
    assert!(after.values[0].as_ref().unwrap().len() >= BLOB_LEN);
}

pub async fn inactivity_expiry_is_enforced(store: Store) {
    let layer =
        SessionLayer::new(store.clone()).with_expiry(Expiry::OnInactivity(Duration::from_secs(1)));
    let server = serve(layer).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/count").await.body, "1");
    let cookie = browser.cookie.clone().unwrap();
    // Waiting for the expiry to pass is the point of this test (stores may
    // count whole seconds).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        browser.get("/count").await.body,
        "1",
        "expired session still used"
    );
    assert_ne!(browser.cookie.clone().unwrap(), cookie);
    assert_eq!(stored_visits(&store, &cookie).await, None);
}

pub async fn absolute_timeout_is_enforced(store: Store) {
    let layer = SessionLayer::new(store)
        .with_expiry(Expiry::OnInactivity(Duration::from_secs(60)))
        .with_absolute_timeout(Duration::from_secs(2));
    let server = serve(layer).await;
    let mut browser = Browser::new(&server.base);
    let set = browser.get("/count").await.set_cookie().unwrap();
    assert!(
        set.contains("Max-Age=1") || set.contains("Max-Age=2"),
        "{set}"
    );
    browser.get("/cycle").await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(
        browser.get("/count").await.body,
        "1",
        "session outlived its absolute timeout"
    );
}

pub async fn signed_cookies_reject_tampering_and_accept_rotated_keys(store: Store) {
    let old_key = Key::generate();
    let new_key = Key::generate();
    let server = serve(SessionLayer::new(store.clone()).with_signing_key(old_key.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let signed = browser.cookie.clone().unwrap();
    assert_eq!(signed.len(), 76);
    assert_eq!(browser.get("/count").await.body, "2");
    // Tampered signature or id: ignored.
    let mut tampered = signed.clone().into_bytes();
    tampered[75] = if tampered[75] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let reply = browser
        .get_raw("/count", Some(&format!("session={tampered}")))
        .await;
    assert_eq!(reply.body, "1");
    // The bare id, unsigned: ignored.
    let reply = browser
        .get_raw("/count", Some(&format!("session={}", &signed[44..])))
        .await;
    assert_eq!(reply.body, "1");
    // Rotation: new key first, old key still accepted; new cookies use the new key.
    let rotated =
        serve(SessionLayer::new(store.clone()).with_signing_keys(vec![new_key.clone(), old_key]))
            .await;
    let mut browser2 = Browser::new(&rotated.base);
    browser2.cookie = Some(signed.clone());
    assert_eq!(browser2.get("/count").await.body, "3");
    let resigned = browser2.cookie.clone().unwrap();
    assert_ne!(resigned, signed);
    assert_eq!(&resigned[44..], &signed[44..]);
    // A read re-signs an old cookie too; a current one is not re-sent.
    let reply = Browser::new(&rotated.base)
        .get_raw("/read", Some(&format!("session={signed}")))
        .await;
    assert_eq!(reply.body, "3");
    assert!(reply.set_cookie().unwrap().contains(&resigned));
    let reply = browser2.get("/read").await;
    assert_eq!(reply.body, "3");
    assert_eq!(reply.set_cookie(), None);
    // Once the old key is dropped, old signatures are refused.
    let only_new = serve(SessionLayer::new(store).with_signing_key(new_key)).await;
    let reply = Browser::new(&only_new.base)
        .get_raw("/read", Some(&format!("session={signed}")))
        .await;
    assert_eq!(reply.body, "0");
    let reply = Browser::new(&only_new.base)
        .get_raw("/read", Some(&format!("session={resigned}")))
        .await;
    assert_eq!(reply.body, "3");
}

pub async fn corrupt_field_is_reset_not_fatal(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    let id = id_of(&browser.cookie.clone().unwrap());
    let garbage: &[u8] = &[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];
    let write = typed_sessions::FieldWrite {
        key: typed_sessions::FieldKey {
            namespace: "Counter",
            field: "visits",
        },
        value: Some(garbage),
    };
    assert!(
        store
            .update(
                &id,
                &[write],
                Some(std::time::SystemTime::now() + Duration::from_secs(60))
            )
            .await
            .unwrap()
    );
    let reply = browser.get("/read").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
    assert_eq!(browser.get("/count").await.body, "1");
    assert_eq!(browser.get("/count").await.body, "2");
}

pub async fn same_state_twice_at_once_is_rejected_and_sequential_sees_changes(store: Store) {
    let server = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    let reply = browser.get("/twice").await;
    assert_eq!(reply.status, 500);
    assert!(reply.body.contains("already in use"), "{}", reply.body);
    // A middleware bumps the counter by 10 and drops it; the handler sees it.
    assert_eq!(browser.get("/bumped").await.body, "10");
    assert_eq!(browser.get("/bumped").await.body, "20");
    assert_eq!(browser.get("/count").await.body, "21");
}

pub async fn renamed_default_and_skipped_fields(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/prefs").await.body, "None light");
    assert_eq!(browser.get("/prefs").await.body, "Some(7) dark");
    let id = id_of(&browser.cookie.clone().unwrap());
    let stored = store
        .load(&id, "prefs", &["uid", "user_id", "theme", "scratch"])
        .await
        .unwrap()
        .unwrap();
    let present: Vec<bool> = stored.values.iter().map(Option::is_some).collect();
    assert_eq!(
        present,
        vec![true, false, true, false],
        "stored under the renamed key, skip not stored"
    );
}

pub async fn reset_and_take_restore_defaults(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/login").await;
    assert_eq!(browser.get("/take").await.body, "[\"book\"]");
    assert_eq!(browser.get("/take").await.body, "[]");
    browser.get("/login").await;
    assert_eq!(browser.get("/reset").await.body, "[] empty");
    assert_eq!(browser.get("/whoami").await.body, "Some(\"ada\") [] empty");
    let id = id_of(&browser.cookie.clone().unwrap());
    let cart = store
        .load(&id, "cart", &["items", "note"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cart.values,
        vec![None, None],
        "reset leaves no stored fields"
    );
    assert_eq!(browser.get("/id").await.body, "false true");
    assert_eq!(
        Browser::new(&server.base).get("/id").await.body,
        "true false"
    );
}

pub async fn read_only_requests_refresh_expiry_without_writing(store: Store) {
    let (recording, calls) = Recording::new(store);
    // Refresh interval: a tenth of 10 s.
    let layer =
        SessionLayer::new(recording).with_expiry(Expiry::OnInactivity(Duration::from_secs(10)));
    let server = serve(layer).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/count").await;
    calls.lock().clear();
    // Right after a write nothing is due.
    assert_eq!(browser.get("/read").await.set_cookie(), None);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let reply = browser.get("/read").await;
    assert!(reply.set_cookie().unwrap().contains("Max-Age=10"));
    assert_eq!(browser.get("/read").await.set_cookie(), None);
    let calls = calls.lock().clone();
    let writes: Vec<&Call> = calls
        .iter()
        .filter(|c| !matches!(c, Call::Load { .. }))
        .collect();
    assert_eq!(writes, vec![&Call::Touch], "{calls:?}");
}

pub async fn writes_refresh_the_cookie_once_per_interval(store: Store) {
    // Refresh interval: a tenth of 30 s.
    let layer =
        SessionLayer::new(store.clone()).with_expiry(Expiry::OnInactivity(Duration::from_secs(30)));
    let server = serve(layer).await;
    let mut browser = Browser::new(&server.base);
    assert!(browser.get("/count").await.set_cookie().is_some());
    let cookie = browser.cookie.clone().unwrap();
    let expiry = || async {
        let loaded = store.load(&id_of(&cookie), "Counter", &["visits"]).await;
        loaded.unwrap().unwrap().expires_at
    };
    let created = expiry().await;
    // Writes within the interval keep the expiry, so the cookie the browser
    // holds stays right and none is sent.
    let reply = browser.get("/count").await;
    assert_eq!(reply.body, "2");
    assert_eq!(reply.set_cookie(), None);
    assert_eq!(reply.header("cache-control"), None);
    assert_eq!(expiry().await, created);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    // Past the interval, the write moves both.
    let reply = browser.get("/count").await;
    assert_eq!(reply.body, "3");
    assert!(reply.set_cookie().unwrap().contains("Max-Age=30"));
    let moved = expiry().await;
    assert!(
        moved >= created + Duration::from_secs(3),
        "{moved:?} {created:?}"
    );
    assert_eq!(browser.get("/count").await.set_cookie(), None);
    assert_eq!(expiry().await, moved);
}

pub async fn streaming_responses_pass_through(store: Store) {
    let server = serve(SessionLayer::new(store)).await;
    let mut browser = Browser::new(&server.base);
    let reply = browser.get("/stream").await;
    assert_eq!(reply.status, 200);
    let expected: String = (0..50).map(|i| format!("chunk{i};")).collect();
    assert_eq!(reply.body, expected);
    assert!(reply.set_cookie().is_some());
    assert_eq!(browser.get("/read").await.body, "1");
}

/// Store failures and hangs: 500 within the timeout, nothing reported as
/// success, the next request clean. Runs on any store.
pub async fn store_failures_become_500s(store: Store) {
    let (faulty, faults) = Faulty::new(store);
    let layer = SessionLayer::new(faulty).with_store_timeout(Duration::from_millis(300));
    let server = serve(layer).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/count").await.body, "1");
    for fault in [Fault::Fail, Fault::Hang] {
        faults.lock().load = fault;
        assert_eq!(browser.get("/count").await.status, 500, "load {fault:?}");
        faults.lock().load = Fault::None;
        faults.lock().update = fault;
        let reply = browser.get("/count").await;
        assert_eq!(reply.status, 500, "update {fault:?}");
        assert_eq!(reply.set_cookie(), None);
        faults.lock().update = Fault::None;
        faults.lock().delete = fault;
        assert_eq!(browser.get("/logout").await.status, 500, "delete {fault:?}");
        faults.lock().delete = Fault::None;
        faults.lock().moves = fault;
        assert_eq!(browser.get("/cycle").await.status, 500, "move {fault:?}");
        faults.lock().moves = Fault::None;
        faults.lock().create = fault;
        let reply = Browser::new(&server.base).get("/count").await;
        assert_eq!(reply.status, 500, "create {fault:?}");
        assert_eq!(reply.set_cookie(), None);
        faults.lock().create = Fault::None;
        // Clean again, nothing lost.
        assert_eq!(browser.get("/read").await.body, "1");
    }
}
