//! The servers under test: the same endpoints on a bare axum router, on
//! typed-sessions and on tower-sessions, over the memory store or Redis.
//!
//! Each runs in its own child process (`typed-sessions-bench serve ...`),
//! so every cell starts from a fresh process and the server can be profiled
//! on its own. The child prints `READY <port>` once it listens and exits when
//! its stdin closes (the parent ended or dropped it).

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use typed_sessions::store::redis::RedisStore;
use typed_sessions::{InsertError, MemoryStore, Session, SessionLayer, SessionState, TypedSession};

use crate::big::{BigValue, Cart, Octets};
use crate::{Scenario, ServerKind, StoreKind};

/// The size of the big field of the `big-incr` scenario.
pub const BLOB_LEN: usize = 16 * 1024;

/// The session expiry both session crates are configured with by default:
/// sliding, 30 days (typed-sessions' default).
pub const INACTIVITY: Duration = Duration::from_secs(30 * 24 * 3600);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The big field's content: 16 KB of printable text.
pub fn blob() -> String {
    (0..BLOB_LEN)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// Runs one server until stdin closes.
pub fn main(
    server: ServerKind,
    store: StoreKind,
    redis_url: &str,
    threads: usize,
    inactivity: Duration,
) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("server")
        .enable_all()
        .build()?;
    runtime.block_on(serve(server, store, redis_url, inactivity))
}

async fn serve(
    server: ServerKind,
    store: StoreKind,
    redis_url: &str,
    inactivity: Duration,
) -> Result<(), BoxError> {
    let app = match server {
        ServerKind::Bare => bare(),
        ServerKind::Typed => typed(store, redis_url, inactivity).await?,
        ServerKind::Tower => tower(store, redis_url, inactivity).await?,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let listener = listener.tap_io(|tcp| {
        // Same for every server; a failure only costs latency.
        let _ = tcp.set_nodelay(true);
    });
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("READY {port}\n").as_bytes())
        .await?;
    stdout.flush().await?;
    tokio::select! {
        served = async { axum::serve(listener, app).await } => served?,
        () = stdin_closed() => {}
    }
    Ok(())
}

/// Resolves when the parent closes our stdin (or dies).
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

// ---- bare: the same routes, no session ----

fn bare() -> Router {
    async fn one() -> &'static str {
        "1"
    }
    Scenario::all_paths()
        .into_iter()
        .fold(Router::new(), |router, path| router.route(path, get(one)))
}

// ---- typed-sessions ----

#[derive(SessionState)]
#[session(namespace = "c")]
struct Counter {
    visits: u64,
}

#[derive(SessionState)]
#[session(namespace = "b")]
struct Big {
    visits: u64,
    blob: String,
}

/// A session state holding `visits` and one big field that the measured
/// route never touches: the routes `/NAME-init`, `/NAME-incr` and
/// `/NAME-check` of [`typed_big_routes`] serve it. Adding a big-field cell
/// is a state struct, this impl, a line in `typed` and one in `tower`.
trait BigState: typed_sessions::SessionState {
    /// The big value, stored once by `/NAME-init`.
    type Value: BigValue;
    fn visits_mut(session: &mut TypedSession<Self>) -> &mut u64;
    fn set_big(session: &mut TypedSession<Self>, value: Self::Value);
    fn big(session: &TypedSession<Self>) -> &Self::Value;
}

#[derive(SessionState)]
#[session(namespace = "cart")]
struct CartState {
    visits: u64,
    cart: Cart,
}

impl BigState for CartState {
    type Value = Cart;
    fn visits_mut(session: &mut TypedSession<Self>) -> &mut u64 {
        session.visits_mut()
    }
    fn set_big(session: &mut TypedSession<Self>, value: Cart) {
        session.set_cart(value);
    }
    fn big(session: &TypedSession<Self>) -> &Cart {
        session.cart()
    }
}

#[derive(SessionState)]
#[session(namespace = "bytes")]
struct BytesState {
    visits: u64,
    data: Octets,
}

impl BigState for BytesState {
    type Value = Octets;
    fn visits_mut(session: &mut TypedSession<Self>) -> &mut u64 {
        session.visits_mut()
    }
    fn set_big(session: &mut TypedSession<Self>, value: Octets) {
        session.set_data(value);
    }
    fn big(session: &TypedSession<Self>) -> &Octets {
        session.data()
    }
}

/// The routes of one [`BigState`] under `/NAME-...`.
fn typed_big_routes<S: BigState>(router: Router, name: &str) -> Router {
    async fn init<S: BigState>(mut session: TypedSession<S>) -> &'static str {
        S::set_big(&mut session, S::Value::make());
        *S::visits_mut(&mut session) = 0;
        "0"
    }
    async fn incr<S: BigState>(mut session: TypedSession<S>) -> String {
        let visits = S::visits_mut(&mut session);
        *visits += 1;
        visits.to_string()
    }
    async fn check<S: BigState>(session: TypedSession<S>) -> &'static str {
        if S::big(&session).is_intact() {
            "ok"
        } else {
            "changed"
        }
    }
    router
        .route(&format!("/{name}-init"), get(init::<S>))
        .route(&format!("/{name}-incr"), get(incr::<S>))
        .route(&format!("/{name}-check"), get(check::<S>))
}

/// The near-cache's budget in the `redis-cache` cells: far more than the
/// sessions of a run take.
const CACHE_BYTES: usize = 64 << 20;

async fn typed(
    store: StoreKind,
    redis_url: &str,
    inactivity: Duration,
) -> Result<Router, BoxError> {
    let layer = match store {
        StoreKind::Memory => SessionLayer::new(MemoryStore::default()),
        StoreKind::Redis => SessionLayer::new(RedisStore::connect(redis_url).await?),
        StoreKind::RedisCache => SessionLayer::new(
            RedisStore::connect(redis_url)
                .await?
                .with_local_cache(CACHE_BYTES),
        ),
    }
    .with_secure(false)
    .with_expiry(typed_sessions::Expiry::OnInactivity(inactivity));
    let router = Router::new()
        .route("/incr", get(typed_incr))
        .route("/read", get(typed_read))
        .route("/big-init", get(typed_big_init))
        .route("/big-incr", get(typed_big_incr))
        .route("/dict-incr", get(dict_incr));
    let router = typed_big_routes::<CartState>(router, "cart");
    let router = typed_big_routes::<BytesState>(router, "bytes");
    Ok(router.layer(layer))
}

async fn typed_incr(mut session: TypedSession<Counter>) -> String {
    *session.visits_mut() += 1;
    session.visits().to_string()
}

async fn dict_incr(mut session: Session) -> Result<String, InsertError> {
    let visits = session.get::<u64>("visits").unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    Ok(visits.to_string())
}

async fn typed_read(session: TypedSession<Counter>) -> String {
    session.visits().to_string()
}

async fn typed_big_init(mut session: TypedSession<Big>) -> String {
    session.set_blob(blob());
    session.set_visits(0);
    "0".to_owned()
}

async fn typed_big_incr(mut session: TypedSession<Big>) -> Result<String, StatusCode> {
    if session.blob().len() != BLOB_LEN {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    *session.visits_mut() += 1;
    Ok(session.visits().to_string())
}

// ---- tower-sessions ----

async fn tower(
    store: StoreKind,
    redis_url: &str,
    inactivity: Duration,
) -> Result<Router, BoxError> {
    use tower_sessions::{Expiry, SessionManagerLayer};
    let expiry = Expiry::OnInactivity(time::Duration::seconds(inactivity.as_secs() as i64));
    let router = Router::new()
        .route("/incr", get(tower_incr))
        .route("/read", get(tower_read))
        .route("/big-init", get(tower_big_init))
        .route("/big-incr", get(tower_big_incr))
        .route("/dict-incr", get(tower_incr));
    let router = tower_big_routes::<Cart>(router, "cart");
    let router = tower_big_routes::<Octets>(router, "bytes");
    Ok(match store {
        StoreKind::Memory => router.layer(
            SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                .with_secure(false)
                .with_expiry(expiry),
        ),
        StoreKind::RedisCache => return Err("tower-sessions has no near-cache".into()),
        StoreKind::Redis => {
            use tower_sessions_redis_store::RedisStore;
            use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
            // One connection, as typed-sessions' RedisStore uses (one
            // multiplexed connection). tower-sessions-redis-store's example
            // uses a pool of 6, which measured about a third slower here at
            // 32 workers (less pipelining); BENCH_TOWER_POOL=6 runs that.
            let size = std::env::var("BENCH_TOWER_POOL")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let pool = Pool::new(Config::from_url(redis_url)?, None, None, None, size)?;
            // The connection tasks run until the process exits.
            let _connections = pool.init().await?;
            router.layer(
                SessionManagerLayer::new(RedisStore::new(pool))
                    .with_secure(false)
                    .with_expiry(expiry),
            )
        }
    })
}

fn internal(error: impl std::fmt::Display) -> StatusCode {
    eprintln!("tower-sessions error: {error}");
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn tower_incr(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let visits = session
        .get::<u64>("visits")
        .await
        .map_err(internal)?
        .unwrap_or(0)
        + 1;
    session.insert("visits", visits).await.map_err(internal)?;
    Ok(visits.to_string())
}

async fn tower_read(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let visits = session
        .get::<u64>("visits")
        .await
        .map_err(internal)?
        .unwrap_or(0);
    Ok(visits.to_string())
}

async fn tower_big_init(session: tower_sessions::Session) -> Result<String, StatusCode> {
    session.insert("blob", blob()).await.map_err(internal)?;
    session.insert("visits", 0u64).await.map_err(internal)?;
    Ok("0".to_owned())
}

async fn tower_big_incr(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let blob = session
        .get::<String>("blob")
        .await
        .map_err(internal)?
        .unwrap_or_default();
    if blob.len() != BLOB_LEN {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let visits = session
        .get::<u64>("visits")
        .await
        .map_err(internal)?
        .unwrap_or(0)
        + 1;
    session.insert("visits", visits).await.map_err(internal)?;
    Ok(visits.to_string())
}

/// The routes of one [`BigValue`] under `/NAME-...`: the value is stored
/// under the key `big`; the measured route is `tower_incr`, which touches
/// only `visits` (tower-sessions loads and, on a write, saves the whole
/// record all the same).
fn tower_big_routes<T: BigValue>(router: Router, name: &str) -> Router {
    async fn init<T: BigValue>(session: tower_sessions::Session) -> Result<String, StatusCode> {
        session.insert("big", T::make()).await.map_err(internal)?;
        session.insert("visits", 0u64).await.map_err(internal)?;
        Ok("0".to_owned())
    }
    async fn check<T: BigValue>(session: tower_sessions::Session) -> Result<String, StatusCode> {
        let intact = session
            .get::<T>("big")
            .await
            .map_err(internal)?
            .is_some_and(|value| value.is_intact());
        Ok(if intact { "ok" } else { "changed" }.to_owned())
    }
    router
        .route(&format!("/{name}-init"), get(init::<T>))
        .route(&format!("/{name}-incr"), get(tower_incr))
        .route(&format!("/{name}-check"), get(check::<T>))
}
