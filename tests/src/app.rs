//! The test application: state types, handlers, and a server on 127.0.0.1:0.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Notify;
use typed_sessions::{SessionLayer, SessionState, TypedSession};

#[derive(SessionState, Debug)]
pub struct Counter {
    pub visits: u64,
}

#[derive(SessionState)]
#[session(namespace = "wide")]
pub struct Wide {
    pub f0: u32,
    pub f1: u32,
    pub f2: u32,
    pub f3: u32,
    pub f4: u32,
    pub f5: u32,
    pub f6: u32,
    pub f7: u32,
    pub f8: u32,
    pub f9: u32,
    pub f10: u32,
    pub f11: u32,
}

#[derive(SessionState)]
#[session(namespace = "big")]
pub struct Big {
    pub blob: Vec<u8>,
    pub small: u64,
}

#[derive(SessionState)]
#[session(namespace = "auth")]
pub struct Auth {
    pub user: Option<String>,
}

#[derive(SessionState)]
#[session(namespace = "cart")]
pub struct Cart {
    pub items: Vec<String>,
    #[session(default = "default_note")]
    pub note: String,
}

pub fn default_note() -> String {
    "empty".to_owned()
}

/// Every field attribute at work.
#[derive(SessionState)]
#[session(namespace = "prefs")]
pub struct Prefs {
    #[session(rename = "uid")]
    pub user_id: Option<u64>,
    #[session(default = "default_theme")]
    pub theme: String,
    #[session(skip, default = "default_scratch")]
    pub scratch: u32,
}

pub fn default_theme() -> String {
    "light".to_owned()
}

pub fn default_scratch() -> u32 {
    42
}

/// Version 1 of an evolving struct...
#[derive(SessionState)]
#[session(namespace = "evolve")]
pub struct EvolveV1 {
    pub kept: u32,
    pub dropped: String,
}

/// ...and version 2: `dropped` removed, `added` added.
#[derive(SessionState)]
#[session(namespace = "evolve")]
pub struct EvolveV2 {
    pub kept: u32,
    pub added: Vec<u8>,
}

/// Lets a test hold a handler between its load and its save.
#[derive(Default)]
pub struct Gate {
    pub loaded: Notify,
    pub release: Notify,
}

/// The size of the big field.
pub const BLOB_LEN: usize = 200 * 1024;

async fn count(mut s: TypedSession<Counter>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn read(s: TypedSession<Counter>) -> String {
    s.visits().to_string()
}

async fn none() -> &'static str {
    "no session"
}

async fn wide_set(Path(i): Path<u32>, mut s: TypedSession<Wide>) -> &'static str {
    set_wide(&mut s, i);
    "ok"
}

/// Sets field `f{i}` of `Wide` (`f11` for any larger `i`) to `i + 1`.
pub fn set_wide(s: &mut TypedSession<Wide>, i: u32) {
    let v = i + 1;
    match i {
        0 => s.set_f0(v),
        1 => s.set_f1(v),
        2 => s.set_f2(v),
        3 => s.set_f3(v),
        4 => s.set_f4(v),
        5 => s.set_f5(v),
        6 => s.set_f6(v),
        7 => s.set_f7(v),
        8 => s.set_f8(v),
        9 => s.set_f9(v),
        10 => s.set_f10(v),
        _ => s.set_f11(v),
    }
}

async fn wide_get(s: TypedSession<Wide>) -> String {
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

async fn big_init(mut s: TypedSession<Big>) -> &'static str {
    s.set_blob((0..BLOB_LEN).map(|i| (i % 253) as u8).collect());
    "ok"
}

async fn big_small(mut s: TypedSession<Big>) -> String {
    *s.small_mut() += 1;
    format!("{} {}", s.small(), s.blob().len())
}

async fn login(mut auth: TypedSession<Auth>, mut cart: TypedSession<Cart>) -> String {
    auth.set_user(Some("ada".to_owned()));
    cart.items_mut().push("book".to_owned());
    TypedSession::cycle_id(&mut auth);
    format!("{} {}", cart.items().len(), cart.note())
}

async fn whoami(auth: TypedSession<Auth>, cart: TypedSession<Cart>) -> String {
    format!("{:?} {:?} {}", auth.user(), cart.items(), cart.note())
}

async fn cycle(mut s: TypedSession<Counter>) -> String {
    TypedSession::cycle_id(&mut s);
    s.visits().to_string()
}

async fn logout(mut s: TypedSession<Counter>) -> &'static str {
    TypedSession::destroy(&mut s);
    "bye"
}

async fn slow_count(State(gate): State<Arc<Gate>>, mut s: TypedSession<Counter>) -> String {
    gate.loaded.notify_one();
    gate.release.notified().await;
    *s.visits_mut() += 100;
    s.visits().to_string()
}

async fn prefs(mut s: TypedSession<Prefs>) -> String {
    let before = format!("{:?} {}", s.user_id(), s.theme());
    s.set_user_id(Some(7));
    s.set_theme("dark".to_owned());
    before
}

async fn evolve_v1(mut s: TypedSession<EvolveV1>) -> &'static str {
    s.set_kept(7);
    s.set_dropped("old".to_owned());
    "ok"
}

async fn evolve_v2(mut s: TypedSession<EvolveV2>) -> String {
    let answer = format!("{} {:?}", s.kept(), s.added());
    s.added_mut().push(1);
    answer
}

async fn twice(_a: TypedSession<Counter>, _b: TypedSession<Counter>) -> &'static str {
    "unreachable"
}

async fn reset(mut s: TypedSession<Cart>) -> String {
    TypedSession::reset(&mut s);
    format!("{:?} {}", s.items(), s.note())
}

async fn take(mut s: TypedSession<Cart>) -> String {
    let items = s.take_items();
    format!("{items:?}")
}

async fn id_info(s: TypedSession<Counter>) -> String {
    format!(
        "{} {}",
        TypedSession::is_new(&s),
        TypedSession::id(&s).is_some()
    )
}

async fn stream(mut s: TypedSession<Counter>) -> Response {
    *s.visits_mut() += 1;
    let chunks = (0..50).map(|i| Ok::<_, std::io::Error>(format!("chunk{i};")));
    Body::from_stream(futures_util::stream::iter(chunks)).into_response()
}

async fn own_cache_control(mut s: TypedSession<Counter>) -> impl IntoResponse {
    *s.visits_mut() += 1;
    ([("cache-control", "private, max-age=5")], "ok")
}

/// A middleware that takes the counter, bumps it, and drops it before the
/// handler runs.
async fn bump_first(
    mut s: TypedSession<Counter>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    *s.visits_mut() += 10;
    drop(s);
    next.run(request).await
}

/// The routes every case uses.
pub fn routes(gate: Arc<Gate>) -> Router {
    Router::new()
        .route("/count", get(count))
        .route("/read", get(read))
        .route("/none", get(none))
        .route("/wide", get(wide_get))
        .route("/wide/{i}", get(wide_set))
        .route("/big/init", get(big_init))
        .route("/big/small", get(big_small))
        .route("/login", get(login))
        .route("/whoami", get(whoami))
        .route("/cycle", get(cycle))
        .route("/logout", get(logout))
        .route("/slow", get(slow_count))
        .route("/prefs", get(prefs))
        .route("/evolve/v1", get(evolve_v1))
        .route("/evolve/v2", get(evolve_v2))
        .route("/twice", get(twice))
        .route("/reset", get(reset))
        .route("/take", get(take))
        .route("/id", get(id_info))
        .route("/stream", get(stream))
        .route("/cache", get(own_cache_control))
        .route("/bumped", get(read).layer(middleware::from_fn(bump_first)))
        .with_state(gate)
}

/// A running test server.
pub struct Server {
    pub base: String,
    pub gate: Arc<Gate>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `routes` behind `layer` on 127.0.0.1:0.
pub async fn serve(layer: SessionLayer) -> Server {
    let gate = Arc::new(Gate::default());
    serve_router(routes(gate.clone()).layer(layer), gate).await
}

/// Serves any router on 127.0.0.1:0.
pub async fn serve_router(router: Router, gate: Arc<Gate>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server { base, gate, task }
}
