//! Fault injection at the store boundary, and resource bounds.
//!
//! A [`Chaos`] wrapper around a `MemoryStore` fails, hangs (before the call,
//! or after the inner store did the work, so the answer is lost), or answers
//! with garbage on the operation a test chooses: load, create, update,
//! touch, delete and move. For each, the layer must answer 500 within its
//! store timeout, log the cause, report no partial write as a success, and
//! serve the next request cleanly. Garbage a layer cannot tell from a real
//! answer (a store that claims a write it did not make) is pinned down too,
//! so its consequences are documented rather than guessed
//! (docs/hostile-input.md).
//!
//! Requests go through the router in process (`tower::ServiceExt::oneshot`)
//! on a current-thread runtime, so a thread-local tracing subscriber sees
//! every event of the request.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use typed_sessions::__private::{decode_value, encode_value};
use typed_sessions::MessagePack;
use typed_sessions::codec::MAX_MESSAGE;
use typed_sessions::{
    Expiry, FieldKey, FieldWrite, MemoryStore, SessionId, SessionLayer, SessionState, SessionStore,
    TypedSession,
};
use typed_sessions_tests::chaos::{Behavior, Chaos, Controls, Plan};
use typed_sessions_tests::inproc::{Answer, Client, CookieChange};

/// The layer's store timeout in these tests.
const TIMEOUT: Duration = Duration::from_millis(250);
/// No faulty request may take longer than this (it makes at most three
/// store calls, each limited to `TIMEOUT`).
const BOUND: Duration = Duration::from_secs(10);
/// The layer's inactivity limit; seeded sessions expire sooner, so a read
/// refreshes them (a touch).
const INACTIVITY: Duration = Duration::from_secs(3600);

#[derive(SessionState, Debug)]
#[session(namespace = "f")]
pub struct F {
    pub visits: u64,
    pub note: String,
}

async fn bump(mut s: TypedSession<F>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn read(s: TypedSession<F>) -> String {
    format!("{} {}", s.visits(), TypedSession::is_new(&s))
}

async fn read_note(s: TypedSession<F>) -> String {
    format!("{} {:?}", s.visits(), s.note())
}

async fn logout(mut s: TypedSession<F>) -> &'static str {
    TypedSession::destroy(&mut s);
    "bye"
}

async fn cycle_only(mut s: TypedSession<F>) -> &'static str {
    TypedSession::cycle_id(&mut s);
    "cycled"
}

async fn bump_and_cycle(mut s: TypedSession<F>) -> String {
    *s.visits_mut() += 1;
    TypedSession::cycle_id(&mut s);
    s.visits().to_string()
}

/// Captured log output.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock())).into_owned()
    }
}

/// A layer over a chaotic memory store, a client, and the captured logs.
struct Rig {
    client: Client,
    controls: Controls,
    store: Arc<MemoryStore>,
    logs: Logs,
    _guard: tracing::subscriber::DefaultGuard,
}

fn rig() -> Rig {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let store = Arc::new(MemoryStore::default());
    let (chaos, controls) = Chaos::new(store.clone());
    let router = Router::new()
        .route("/bump", get(bump))
        .route("/read", get(read))
        .route("/note", get(read_note))
        .route("/logout", get(logout))
        .route("/cycle", get(cycle_only))
        .route("/bump-cycle", get(bump_and_cycle))
        .layer(
            SessionLayer::new(chaos)
                .with_store_timeout(TIMEOUT)
                .with_expiry(Expiry::OnInactivity(INACTIVITY)),
        );
    Rig {
        client: Client::new(router),
        controls,
        store,
        logs,
        _guard: guard,
    }
}

impl Rig {
    /// Stores a session holding `visits`, expiring in ten minutes (so a
    /// read refreshes it), and makes it the client's.
    async fn seed(&mut self, visits: u64) -> SessionId {
        let id = SessionId::generate().unwrap();
        let bytes = encode_value(&MessagePack, &visits).unwrap();
        let now = SystemTime::now();
        self.store
            .create(
                &id,
                &[FieldWrite {
                    key: FieldKey {
                        namespace: "f",
                        field: "visits",
                    },
                    value: Some(&bytes),
                }],
                now,
                now + Duration::from_secs(600),
            )
            .await
            .unwrap();
        self.client.cookie = Some(id.as_str().to_owned());
        id
    }

    /// The stored visits and expiry of `id`, read directly from the store.
    async fn stored(&self, id: &SessionId) -> Option<(u64, SystemTime)> {
        let loaded = self.store.load(id, "f", &["visits"]).await.unwrap()?;
        let bytes = loaded.values[0].as_ref().unwrap();
        Some((
            decode_value(&MessagePack, bytes).unwrap(),
            loaded.expires_at,
        ))
    }

    fn plan(&self, change: impl FnOnce(&mut Plan)) {
        self.controls.heal();
        change(&mut self.controls.plan.lock());
    }

    /// Sends `path` and expects a 500, within the bound, with no cookie
    /// change and the cause in the logs.
    async fn expect_500(&mut self, path: &str, what: &str, cause: &str) {
        self.logs.take();
        let (answer, change) =
            tokio::time::timeout(BOUND, self.client.send(path, http::Extensions::new()))
                .await
                .unwrap_or_else(|_| panic!("{what}: no answer within {BOUND:?}"));
        assert_eq!(answer.status, 500, "{what}: {}", answer.body);
        assert_eq!(
            change,
            CookieChange::None,
            "{what}: a 500 changed the cookie"
        );
        let logs = self.logs.take();
        assert!(
            logs.contains("ERROR") && logs.contains(cause),
            "{what}: the log lacks an error with {cause:?}:\n{logs}"
        );
    }

    async fn get(&mut self, path: &str) -> (Answer, CookieChange) {
        tokio::time::timeout(BOUND, self.client.send(path, http::Extensions::new()))
            .await
            .expect("an answer within the bound")
    }
}

/// The cause each failing behavior logs.
fn cause(behavior: Behavior) -> &'static str {
    match behavior {
        Behavior::Hang | Behavior::HangAfter => "timed out",
        _ => "injected failure",
    }
}

const FAILURES: [Behavior; 4] = [
    Behavior::Fail,
    Behavior::Hang,
    Behavior::FailAfter,
    Behavior::HangAfter,
];

#[tokio::test]
async fn load_failures_are_500s_and_the_session_survives() {
    let mut rig = rig();
    let id = rig.seed(5).await;
    for behavior in FAILURES {
        rig.plan(|p| p.load = behavior);
        rig.expect_500("/bump", &format!("load {behavior:?}"), cause(behavior))
            .await;
        rig.controls.heal();
        assert_eq!(rig.stored(&id).await.unwrap().0, 5, "load {behavior:?}");
    }
    let (answer, _) = rig.get("/bump").await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "6"));
}

#[tokio::test]
async fn create_failures_are_500s_and_retries_are_bounded() {
    let mut rig = rig();
    for behavior in FAILURES {
        rig.plan(|p| p.create = behavior);
        let sessions = rig.store.len();
        rig.expect_500("/bump", &format!("create {behavior:?}"), cause(behavior))
            .await;
        assert_eq!(rig.client.cookie, None);
        // Failing before the call stores nothing; failing after it leaves
        // a session whose id no client ever received (it expires unused).
        let orphans = usize::from(matches!(
            behavior,
            Behavior::FailAfter | Behavior::HangAfter
        ));
        assert_eq!(rig.store.len(), sessions + orphans, "create {behavior:?}");
    }
    // A store that always says the id exists: three attempts, then 500.
    rig.plan(|p| p.create = Behavior::Deny);
    let before = rig.controls.counts().create;
    rig.expect_500("/bump", "create Deny", "already exists")
        .await;
    assert_eq!(rig.controls.counts().create - before, 3, "bounded retries");
    // Clean again.
    rig.controls.heal();
    let (answer, change) = rig.get("/bump").await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "1"));
    assert!(matches!(change, CookieChange::Set(_)));
    assert_eq!(rig.get("/read").await.0.body, "1 false");
}

#[tokio::test]
async fn create_that_lies_gives_a_cookie_the_store_does_not_know() {
    // Undetectable by the layer: the client gets a cookie, and its next
    // request starts over as a new session (the id is never adopted).
    let mut rig = rig();
    rig.plan(|p| p.create = Behavior::Lie);
    let (answer, change) = rig.get("/bump").await;
    assert_eq!(answer.status, 200);
    assert!(matches!(change, CookieChange::Set(_)));
    assert!(rig.store.is_empty());
    rig.controls.heal();
    assert_eq!(rig.get("/read").await.0.body, "0 true");
}

#[tokio::test]
async fn update_failures_are_500s_and_nothing_is_reported_saved() {
    let mut rig = rig();
    let id = rig.seed(5).await;
    let mut expected = 5;
    for behavior in FAILURES {
        rig.plan(|p| p.update = behavior);
        rig.expect_500("/bump", &format!("update {behavior:?}"), cause(behavior))
            .await;
        rig.controls.heal();
        // Before the call: nothing written. After it: the write landed but
        // the client was told 500 (the outcome is unknown to the layer).
        if matches!(behavior, Behavior::FailAfter | Behavior::HangAfter) {
            expected += 1;
        }
        assert_eq!(
            rig.stored(&id).await.unwrap().0,
            expected,
            "update {behavior:?}"
        );
        // The next request is clean and sees what the store holds.
        assert_eq!(rig.get("/read").await.0.body, format!("{expected} false"));
    }
}

#[tokio::test]
async fn update_denied_or_lied_about() {
    let mut rig = rig();
    let id = rig.seed(5).await;
    // Denied: the layer takes it for a session ended by a concurrent
    // logout or cycle, drops the changes (logged) and sets no cookie.
    rig.plan(|p| p.update = Behavior::Deny);
    rig.logs.take();
    let (answer, change) = rig.get("/bump").await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "6"));
    assert_eq!(change, CookieChange::None);
    assert!(rig.logs.take().contains("changes are dropped"));
    assert_eq!(rig.stored(&id).await.unwrap().0, 5);
    // Lied about: indistinguishable from a success.
    rig.plan(|p| p.update = Behavior::Lie);
    let (answer, change) = rig.get("/bump").await;
    assert_eq!(answer.status, 200);
    assert_eq!(change, CookieChange::Set(id.as_str().to_owned()));
    assert_eq!(rig.stored(&id).await.unwrap().0, 5);
}

#[tokio::test]
async fn touch_failures_are_500s_and_the_expiry_is_kept() {
    let mut rig = rig();
    for behavior in FAILURES {
        let id = rig.seed(5).await;
        let (_, expiry) = rig.stored(&id).await.unwrap();
        rig.plan(|p| p.touch = behavior);
        rig.expect_500("/read", &format!("touch {behavior:?}"), cause(behavior))
            .await;
        rig.controls.heal();
        let (visits, after) = rig.stored(&id).await.unwrap();
        assert_eq!(visits, 5);
        if matches!(behavior, Behavior::FailAfter | Behavior::HangAfter) {
            assert!(after > expiry, "touch {behavior:?}: the refresh landed");
        } else {
            assert_eq!(after, expiry, "touch {behavior:?}: nothing changed");
            // The next read refreshes it.
            let (answer, change) = rig.get("/read").await;
            assert_eq!(answer.body, "5 false");
            assert_eq!(change, CookieChange::Set(id.as_str().to_owned()));
            assert!(rig.stored(&id).await.unwrap().1 > expiry);
        }
        assert_eq!(rig.get("/read").await.0.body, "5 false");
    }
    // Denied: the session counts as ended; no cookie, no error.
    let id = rig.seed(5).await;
    rig.plan(|p| p.touch = Behavior::Deny);
    let (answer, change) = rig.get("/read").await;
    assert_eq!((answer.status.as_u16(), change), (200, CookieChange::None));
    assert_eq!(rig.stored(&id).await.unwrap().0, 5);
}

#[tokio::test]
async fn delete_failures_are_500s_and_the_cookie_is_kept() {
    let mut rig = rig();
    for behavior in FAILURES {
        let id = rig.seed(5).await;
        rig.plan(|p| p.delete = behavior);
        rig.expect_500("/logout", &format!("delete {behavior:?}"), cause(behavior))
            .await;
        rig.controls.heal();
        assert_eq!(rig.client.cookie.as_deref(), Some(id.as_str()));
        if matches!(behavior, Behavior::FailAfter | Behavior::HangAfter) {
            // Deleted after all: the next request is a new session.
            assert_eq!(rig.stored(&id).await, None);
            assert_eq!(rig.get("/read").await.0.body, "0 true");
        } else {
            // Not logged out, and told so (500): the session is intact.
            assert_eq!(rig.stored(&id).await.unwrap().0, 5);
            assert_eq!(rig.get("/read").await.0.body, "5 false");
        }
    }
    // Lied about: the client is logged out, the stored session lives on
    // until it expires (a layer cannot tell).
    let id = rig.seed(5).await;
    rig.plan(|p| p.delete = Behavior::Lie);
    let (answer, change) = rig.get("/logout").await;
    assert_eq!(
        (answer.status.as_u16(), change),
        (200, CookieChange::Removed)
    );
    assert_eq!(rig.stored(&id).await.unwrap().0, 5);
}

#[tokio::test]
async fn move_failures_are_500s_and_the_old_id_is_kept() {
    let mut rig = rig();
    for behavior in FAILURES {
        let id = rig.seed(5).await;
        let sessions = rig.store.len();
        rig.plan(|p| p.moves = behavior);
        rig.expect_500("/cycle", &format!("move {behavior:?}"), cause(behavior))
            .await;
        rig.controls.heal();
        assert_eq!(rig.client.cookie.as_deref(), Some(id.as_str()));
        assert_eq!(
            rig.store.len(),
            sessions,
            "move {behavior:?}: a copy was left"
        );
        if matches!(behavior, Behavior::FailAfter | Behavior::HangAfter) {
            // Moved to an id the client never received: its old id is dead,
            // so it starts over (never a resurrection of the old id).
            assert_eq!(rig.stored(&id).await, None);
            assert_eq!(rig.get("/read").await.0.body, "0 true");
        } else {
            assert_eq!(rig.stored(&id).await.unwrap().0, 5);
            assert_eq!(rig.get("/read").await.0.body, "5 false");
        }
    }
}

#[tokio::test]
async fn cycle_with_writes_fails_whole_and_bounded() {
    let mut rig = rig();
    let id = rig.seed(5).await;
    // The move fails: no write is attempted, the old id keeps its data.
    rig.plan(|p| p.moves = Behavior::Fail);
    let updates = rig.controls.counts().update;
    rig.expect_500("/bump-cycle", "move before update", "injected failure")
        .await;
    assert_eq!(rig.controls.counts().update, updates);
    assert_eq!(rig.stored(&id).await.unwrap().0, 5);
    assert_eq!(rig.get("/read").await.0.body, "5 false");
    // The move lands, the write after it fails: 500, and the write is
    // nowhere. The old id is only a forward now, so a failed login leaves
    // the client logged out, never its writes on the id it came with.
    rig.plan(|p| p.update = Behavior::Hang);
    rig.expect_500("/bump-cycle", "update after move", "timed out")
        .await;
    rig.controls.heal();
    assert_eq!(rig.stored(&id).await, None);
    let moved = rig.store.forwarded(&id).await.unwrap().unwrap();
    assert_eq!(rig.stored(&moved).await.unwrap().0, 5);
    assert_eq!(rig.get("/read").await.0.body, "0 true");
    // Clean: the cycle goes through.
    let id = rig.seed(5).await;
    let (answer, change) = rig.get("/bump-cycle").await;
    assert_eq!(answer.body, "6");
    let CookieChange::Set(new) = change else {
        panic!("the cycle set no cookie: {change:?}");
    };
    assert_ne!(new, id.as_str());
    assert_eq!(rig.stored(&id).await, None);
    let new = SessionId::parse(&new).unwrap();
    assert_eq!(rig.stored(&new).await.unwrap().0, 6);
}

#[tokio::test]
async fn a_slow_store_within_the_timeout_is_fine() {
    let mut rig = rig();
    let id = rig.seed(5).await;
    rig.plan(|p| {
        p.load = Behavior::DelayMs(50);
        p.update = Behavior::DelayMs(50);
    });
    let (answer, change) = rig.get("/bump").await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "6"));
    assert_eq!(change, CookieChange::Set(id.as_str().to_owned()));
    assert_eq!(rig.stored(&id).await.unwrap().0, 6);
}

/// A load answered with garbage is not decoded: the session is reset
/// (logged at warn, deleted) and the request runs without it, a new id for
/// its writes; never a 500 that would repeat on every request.
#[tokio::test]
async fn garbage_loads_are_refused_not_decoded() {
    let mut rig = rig();
    for (behavior, cause) in [
        (Behavior::ExtraValue, "malformed"),
        (Behavior::MissingValue, "malformed"),
        (Behavior::NoValues, "malformed"),
        (Behavior::Huge, "too large"),
        (Behavior::HugeTotal, "too large"),
    ] {
        let id = rig.seed(5).await;
        rig.plan(|p| p.load = behavior);
        rig.logs.take();
        let (answer, change) = rig.get("/bump").await;
        rig.controls.heal();
        assert_eq!(
            (answer.status.as_u16(), answer.body.as_str()),
            (200, "1"),
            "load {behavior:?}"
        );
        assert!(
            matches!(&change, CookieChange::Set(new) if new != id.as_str()),
            "load {behavior:?}: {change:?}"
        );
        let logs = rig.logs.take();
        assert!(
            logs.contains("WARN") && logs.contains(cause) && !logs.contains(id.as_str()),
            "load {behavior:?}:\n{logs}"
        );
        assert_eq!(rig.stored(&id).await, None, "load {behavior:?}");
        assert_eq!(rig.get("/read").await.0.body, "1 false");
    }
}

#[tokio::test]
async fn undecodable_fields_read_as_defaults_and_are_overwritten() {
    let mut rig = rig();
    let id = rig.seed(5).await;
    rig.plan(|p| p.load = Behavior::Undecodable);
    rig.logs.take();
    let (answer, _) = rig.get("/bump").await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "1"));
    let logs = rig.logs.take();
    assert!(
        logs.contains("WARN") && logs.contains("could not be decoded"),
        "{logs}"
    );
    rig.controls.heal();
    assert_eq!(rig.stored(&id).await.unwrap().0, 1, "overwritten");
    assert_eq!(rig.get("/read").await.0.body, "1 false");
}

#[tokio::test]
async fn absurd_length_prefixes_are_refused_not_allocated() {
    // `visits` is stored as u64::MAX, and `note` (a String) with a length
    // prefix of 4 GiB, which the codec refuses without allocating.
    let mut rig = rig();
    rig.seed(5).await;
    rig.plan(|p| p.load = Behavior::HugePrefix);
    rig.logs.take();
    let (answer, _) = rig.get("/note").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, format!("{} \"\"", u64::MAX));
    let logs = rig.logs.take();
    assert!(
        logs.contains("WARN") && logs.contains("field=\"note\""),
        "{logs}"
    );
}

#[tokio::test]
async fn odd_timestamps_do_not_break_requests() {
    let mut rig = rig();
    for behavior in [Behavior::Expired, Behavior::FarFuture] {
        rig.seed(5).await;
        rig.plan(|p| p.load = behavior);
        let (answer, _) = rig.get("/read").await;
        assert_eq!(answer.status, 200, "{behavior:?}");
        rig.controls.heal();
        assert_eq!(rig.get("/read").await.0.status, 200);
    }
}

// ---------------------------------------------------------------------------
// Resource bounds.

#[tokio::test]
async fn oversized_cookies_are_ignored_without_store_io() {
    let mut rig = rig();
    let id = rig.seed(5).await;
    let cookie = format!("session={}", id.as_str());
    let loads = || rig.controls.counts().load;
    let start = loads();

    // A Cookie header far over the limit, holding the valid id, is ignored.
    let padding = "x=".to_owned() + &"y".repeat(64 * 1024);
    let header = format!("{padding}; {cookie}");
    let answer = rig
        .client
        .raw("/read", vec![&header], http::Extensions::new())
        .await;
    assert_eq!(answer.body, "0 true");
    assert_eq!(loads(), start, "an oversized header reached the store");

    // An overlong session cookie value is ignored.
    let long = format!("session={}", "A".repeat(4096));
    let answer = rig
        .client
        .raw("/read", vec![&long], http::Extensions::new())
        .await;
    assert_eq!(answer.body, "0 true");
    assert_eq!(loads(), start);

    // Within the limit, many other cookies do not hide the id, and an
    // oversized header next to a valid one does not either.
    let many: Vec<String> = (0..300).map(|i| format!("c{i}=v{i}")).collect();
    let header = format!("{}; {cookie}", many.join("; "));
    let answer = rig
        .client
        .raw("/read", vec![&header], http::Extensions::new())
        .await;
    assert_eq!(answer.body, "5 false");
    let padding = "x=".to_owned() + &"y".repeat(64 * 1024);
    let answer = rig
        .client
        .raw("/read", vec![&padding, &cookie], http::Extensions::new())
        .await;
    assert_eq!(answer.body, "5 false");
}

// ---------------------------------------------------------------------------
// Nesting: regressions for the fuzzer's findings (docs/hostile-input.md).

/// A field type that can nest without bound.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Node {
    pub children: Vec<Node>,
}

#[derive(SessionState)]
#[session(namespace = "tree")]
pub struct TreeState {
    pub root: Node,
}

async fn tree(s: TypedSession<TreeState>) -> String {
    s.root().children.len().to_string()
}

/// A stored MessagePack `Node` nested `depth` levels: each level is a map
/// whose `children` is a one-element array.
fn nested(depth: usize) -> Vec<u8> {
    let mut bytes = vec![typed_sessions::codec::TAG_MESSAGE_PACK];
    for level in 0..=depth {
        bytes.extend_from_slice(b"\x81\xa8children");
        bytes.push(if level == depth { 0x90 } else { 0x91 });
    }
    bytes
}

/// The body of the nesting regression, run in a child process (a stack
/// overflow aborts the whole process): a stored value nested 100 000 levels
/// deep must read as the default, in a request that succeeds.
#[tokio::test]
async fn nested_value_child() {
    if std::env::var_os("TS_FAULTS_NESTING_CHILD").is_none() {
        return;
    }
    let store = Arc::new(MemoryStore::default());
    let id = SessionId::generate().unwrap();
    let bytes = nested(100_000);
    let now = SystemTime::now();
    store
        .create(
            &id,
            &[FieldWrite {
                key: FieldKey {
                    namespace: "tree",
                    field: "root",
                },
                value: Some(&bytes),
            }],
            now,
            now + Duration::from_secs(60),
        )
        .await
        .unwrap();
    let router = Router::new()
        .route("/", get(tree))
        .layer(SessionLayer::new(store));
    let mut client = Client::new(router);
    client.cookie = Some(id.as_str().to_owned());
    let answer = client.get("/").await;
    assert_eq!((answer.status.as_u16(), answer.body.as_str()), (200, "0"));
}

/// Regression (fixed by the codec's limits): a deeply nested stored
/// value overflowed the stack and aborted the process.
#[test]
fn deeply_nested_stored_value_is_refused_not_a_stack_overflow() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "nested_value_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TS_FAULTS_NESTING_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "decoding a deeply nested stored value killed the process ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A stored MessagePack chain of `Option<Box<Link>>` `depth` links long,
/// ending in the string "xyz" where a link belongs: an error `depth` levels
/// down.
fn broken_chain(depth: usize) -> Vec<u8> {
    let mut bytes = vec![typed_sessions::codec::TAG_MESSAGE_PACK];
    for _ in 0..depth {
        bytes.extend_from_slice(b"\x81\xa4next");
    }
    bytes.extend_from_slice(b"\xa3xyz");
    bytes
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Link {
    pub next: Option<Box<Link>>,
}

/// Regression (fixed by the codec's limits): the message of
/// an error 5 levels down was 512 KB; it grows eightfold with each level
/// (6: 4 MB, 8: 268 MB, 10: 17 GB), so a 12-byte stored value exhausts
/// memory (the fuzzer's 10-byte input ran for minutes).
#[test]
fn error_messages_stay_small_at_depth() {
    let error = decode_value::<Link>(&MessagePack, &broken_chain(5)).unwrap_err();
    let len = error.to_string().len();
    assert!(len <= 4 * MAX_MESSAGE, "a {len}-byte error message");
}

#[test]
fn decode_limits_bound_depth_and_errors_and_keep_ordinary_values() {
    // Deep nesting: refused with a short error, no overflow.
    let error = decode_value::<Node>(&MessagePack, &nested(100_000)).unwrap_err();
    assert!(error.to_string().contains("nested deeper than"), "{error}");
    assert!(error.to_string().len() <= MAX_MESSAGE + 3);
    // Within the limit, nesting works. Each struct and each sequence is a
    // level (as each `{` and `[` is for serde_json's limit of 128), so a
    // `Node` takes two per nesting.
    let value = decode_value::<Node>(&MessagePack, &nested(60)).unwrap();
    let mut depth = 0;
    let mut node = &value;
    while let Some(child) = node.children.first() {
        depth += 1;
        node = child;
    }
    assert_eq!(depth, 60);
    // Errors deep down stay small and keep their cause.
    for depth in [5, 12, 40, 1000] {
        let error = decode_value::<Link>(&MessagePack, &broken_chain(depth)).unwrap_err();
        let message = error.to_string();
        assert!(message.len() <= MAX_MESSAGE + 3, "depth {depth}: {message}");
        if depth < 60 {
            assert!(
                message.contains("xyz"),
                "depth {depth}: the cause is lost: {message}"
            );
        }
    }
    // Ordinary values decode exactly as before.
    type Sample = (
        u64,
        String,
        Option<Vec<(i32, char)>>,
        std::collections::BTreeMap<String, bool>,
    );
    let sample: Sample = (
        7,
        "hé".into(),
        Some(vec![(-1, 'x')]),
        [("k".to_owned(), true)].into(),
    );
    let bytes = encode_value(&MessagePack, &sample).unwrap();
    assert_eq!(
        decode_value::<Sample>(&MessagePack, &bytes).unwrap(),
        sample
    );
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum E {
        A,
        B(u8),
        C { x: Vec<u8> },
        D(u8, u8),
    }
    for value in [E::A, E::B(3), E::C { x: vec![1, 2] }, E::D(4, 5)] {
        let bytes = encode_value(&MessagePack, &value).unwrap();
        assert_eq!(decode_value::<E>(&MessagePack, &bytes).unwrap(), value);
    }
}

/// JSON is already bounded: serde_json stops at 128 levels, and its error
/// messages do not compound.
#[cfg(feature = "json")]
#[test]
fn json_nesting_is_already_bounded() {
    use typed_sessions::Json;
    let deep = "\u{3}".to_owned() + &"[".repeat(100_000);
    let error = decode_value::<Node>(&Json, deep.as_bytes()).unwrap_err();
    assert!(error.to_string().len() < 1024, "{error}");
    let chain = "\u{3}".to_owned() + &"{\"next\":".repeat(100) + "7" + &"}".repeat(100);
    let error = decode_value::<Link>(&Json, chain.as_bytes()).unwrap_err();
    assert!(
        error.to_string().len() < 4096,
        "{} bytes",
        error.to_string().len()
    );
}
