//! The smallest typed-sessions app: each visit increments a counter kept in
//! the session and prints it.
//!
//! ```sh
//! cargo run --example counter
//! curl -b jar -c jar http://127.0.0.1:8000/   # 1, then 2, then 3
//! ```
//!
//! It serves plain HTTP, so it turns the cookie's `Secure` attribute off.
//! On `localhost` and `127.0.0.1` Chromium and curl would send a `Secure`
//! cookie back over plain HTTP anyway, but Python's `http.cookiejar` (and
//! `requests`) would not, nor would any browser on a non-loopback `http://`
//! host (a LAN address, a container name). Keep the default (`Secure`)
//! behind HTTPS.

use axum::{Router, routing::get};
use typed_sessions::{MemoryStore, SessionLayer, SessionState, TypedSession};

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
    let app = Router::new()
        .route("/", get(index))
        // Plain HTTP on localhost: see the module docs.
        .layer(SessionLayer::new(MemoryStore::default()).with_secure(false));
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("counter listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
