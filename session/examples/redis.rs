//! The counter app with its sessions in Redis: each visit increments a
//! counter kept in the session and prints it; `/login` rotates the session
//! id (as an application does on login) and keeps the count. Sessions
//! survive restarts of the app and are shared by every instance of the app
//! that points at the same Redis.
//!
//! ```sh
//! redis-server --port 6379 &               # or: bash scripts/test-servers.sh
//! cargo run --example redis --features redis
//! curl -b jar -c jar http://127.0.0.1:8000/        # 1, then 2, then 3
//! curl -b jar -c jar http://127.0.0.1:8000/login   # new id, same count
//! redis-cli --scan --pattern 'counter:session:*'   # one hash per session
//! redis-cli hgetall counter:session:<id>           # __created, Counter.visits
//! ```
//!
//! `REDIS_URL` picks the server (default `redis://127.0.0.1:6379/`). With
//! `REDIS_CLUSTER_URLS` set (comma-separated node URLs, e.g.
//! `redis://127.0.0.1:7000/,redis://127.0.0.1:7001/`) it uses Redis Cluster
//! instead.
//!
//! It serves plain HTTP, so it turns the cookie's `Secure` attribute off.
//! On `localhost` and `127.0.0.1` Chromium and curl would send a `Secure`
//! cookie back over plain HTTP anyway, but Python's `http.cookiejar` (and
//! `requests`) would not, nor would any browser on a non-loopback `http://`
//! host (a LAN address, a container name). Keep the default (`Secure`)
//! behind HTTPS.

use axum::{Router, routing::get};
use typed_sessions::store::redis::RedisStore;
use typed_sessions::{SessionLayer, SessionState, TypedSession};

#[derive(SessionState)]
struct Counter {
    visits: u64,
}

async fn index(mut session: TypedSession<Counter>) -> String {
    *session.visits_mut() += 1;
    format!("{}\n", session.visits())
}

async fn login(mut session: TypedSession<Counter>) -> String {
    // After the handler: the session moves to a new id, the old id dies.
    TypedSession::cycle_id(&mut session);
    format!("new session id, {} visits kept\n", session.visits())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let store = match std::env::var("REDIS_CLUSTER_URLS") {
        Ok(urls) => {
            let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
            RedisStore::connect_cluster(&urls).await?
        }
        Err(_) => {
            let url =
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
            RedisStore::connect(&url).await?
        }
    }
    .with_prefix("counter:session:");
    let app = Router::new()
        .route("/", get(index))
        .route("/login", get(login))
        // Plain HTTP on localhost: see the module docs.
        .layer(SessionLayer::new(store).with_secure(false));
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!(
        "redis counter listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
