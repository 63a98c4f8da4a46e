//! The counter app with its sessions in Memcached: each visit increments a
//! counter kept in the session and prints it. Sessions survive restarts of
//! the app (not of memcached) and are shared by every instance of the app
//! that points at the same servers.
//!
//! ```sh
//! memcached -l 127.0.0.1 -p 11211 &        # or: bash scripts/test-servers.sh
//! cargo run --example memcache --features memcache
//! curl -b jar -c jar http://127.0.0.1:8000/   # 1, then 2, then 3
//! ```
//!
//! `MEMCACHE_URL` picks the server (default `memcache://127.0.0.1:11211`);
//! several servers are comma-separated and share the sessions by hashing:
//! `MEMCACHE_URL=memcache://10.0.0.1:11211,10.0.0.2:11211`.
//!
//! A session is one memcached item of at most 1 MiB (memcached's default
//! item size limit): a session that grows past it is refused with an error
//! (a 500), never truncated. It serves plain HTTP on localhost, so it turns
//! the cookie's `Secure` attribute off; keep the default behind HTTPS.

use axum::{Router, routing::get};
use typed_sessions::{MemcacheStore, SessionLayer, SessionState, TypedSession};

#[derive(SessionState)]
struct Counter {
    visits: u64,
}

async fn index(mut session: TypedSession<Counter>) -> String {
    *session.visits_mut() += 1;
    format!("{}\n", session.visits())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let url = std::env::var("MEMCACHE_URL").unwrap_or_else(|_| "memcache://127.0.0.1:11211".into());
    // Connects and checks that every server answers.
    let store = MemcacheStore::connect(&url)
        .await?
        .with_prefix("counter:session:");
    let app = Router::new()
        .route("/", get(index))
        // Plain HTTP on localhost: see the module docs.
        .layer(SessionLayer::new(store).with_secure(false));
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!(
        "memcache counter listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
