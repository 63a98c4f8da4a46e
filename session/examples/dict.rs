//! sanic_session's example, ported: the session used like a dict. Each
//! visit increments `foo` and prints it.
//!
//! ```python
//! if not request['session'].get('foo'):
//!     request['session']['foo'] = 0
//! request['session']['foo'] += 1
//! return text(request['session']['foo'])
//! ```
//!
//! ```sh
//! cargo run --example dict
//! curl -b jar -c jar http://127.0.0.1:8000/   # 1, then 2, then 3
//! ```
//!
//! Keys chosen at run time are what [`Session`] is for; where the fields are
//! known, `TypedSession` (see the `counter` example) checks them at compile
//! time. It serves plain HTTP on localhost, so it turns the cookie's `Secure`
//! attribute off: browsers and curl do not send Secure cookies over plain
//! HTTP. Keep the default (`Secure`) behind HTTPS.

use axum::{Router, routing::get};
use typed_sessions::{InsertError, MemoryStore, Session, SessionLayer};

async fn index(mut session: Session) -> Result<String, InsertError> {
    let count = session.get::<u64>("foo").unwrap_or(0) + 1;
    session.insert("foo", count)?;
    Ok(format!("{count}\n"))
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
    println!("dict listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
