//! The counter app with its sessions in MongoDB: each visit increments a
//! counter kept in the session and prints it. Sessions survive restarts of
//! the app and are shared by every instance that points at the same
//! collection.
//!
//! ```sh
//! bash scripts/test-servers.sh     # or any MongoDB on 127.0.0.1:27017
//! cargo run --example mongodb --features mongodb
//! curl -b jar -c jar http://127.0.0.1:8000/   # 1, then 2, then 3
//! ```
//!
//! `MONGO_URL` picks the server (default `mongodb://127.0.0.1:27017/`); the
//! sessions live in database `counter_example`, collection `sessions`, one
//! document per session. `connect` creates the TTL index on `expires_at` and
//! fails at start-up if the server cannot be reached (within 5 s unless the
//! URL sets `serverSelectionTimeoutMS`).
//!
//! It serves plain HTTP on localhost, so it turns the cookie's `Secure`
//! attribute off; keep the default behind HTTPS.

use axum::{Router, routing::get};
use typed_sessions::{MongoStore, SessionLayer, SessionState, TypedSession};

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
    let url = std::env::var("MONGO_URL").unwrap_or_else(|_| "mongodb://127.0.0.1:27017/".into());
    // Connects, and creates the TTL index (idempotent).
    let store = MongoStore::connect(&url, "counter_example", "sessions").await?;
    let app = Router::new()
        .route("/", get(index))
        // Plain HTTP on localhost: see the module docs.
        .layer(SessionLayer::new(store).with_secure(false));
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!(
        "mongodb counter listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
