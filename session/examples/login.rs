//! An auth flow with two namespaces: `Auth` (who is logged in) and `Cart`
//! (kept across login). Login cycles the session id, so an id planted
//! before login is useless after it; logout destroys the whole session.
//!
//! ```sh
//! cargo run --example login
//! curl -b jar -c jar http://127.0.0.1:8000/cart/add/book
//! curl -b jar -c jar 'http://127.0.0.1:8000/login?user=ada'
//! curl -b jar -c jar http://127.0.0.1:8000/       # ada, cart [book]
//! curl -b jar -c jar http://127.0.0.1:8000/logout
//! ```

use axum::extract::{Path, Query};
use axum::{Router, routing::get};
use serde::Deserialize;
use typed_sessions::{MemoryStore, SessionLayer, SessionState, TypedSession};

#[derive(SessionState)]
#[session(namespace = "auth")]
struct Auth {
    user: Option<String>,
    logins: u32,
}

#[derive(SessionState)]
#[session(namespace = "cart")]
struct Cart {
    items: Vec<String>,
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn index(auth: TypedSession<Auth>, cart: TypedSession<Cart>) -> String {
    match auth.user() {
        Some(user) => format!(
            "logged in as {user} ({} logins), cart {:?}\n",
            auth.logins(),
            cart.items()
        ),
        None => format!("anonymous, cart {:?}\n", cart.items()),
    }
}

async fn add(Path(item): Path<String>, mut cart: TypedSession<Cart>) -> String {
    cart.items_mut().push(item);
    format!("cart {:?}\n", cart.items())
}

async fn login(Query(login): Query<Login>, mut auth: TypedSession<Auth>) -> String {
    auth.set_user(Some(login.user.clone()));
    *auth.logins_mut() += 1;
    // New privileges, new id: the old id stops working after this response.
    TypedSession::cycle_id(&mut auth);
    format!("welcome, {}\n", login.user)
}

async fn logout(mut auth: TypedSession<Auth>) -> &'static str {
    // Deletes every namespace (the cart too) and expires the cookie.
    TypedSession::destroy(&mut auth);
    "bye\n"
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
        .route("/cart/add/{item}", get(add))
        .route("/login", get(login))
        .route("/logout", get(logout))
        // Plain HTTP on localhost, so no Secure attribute; keep it on behind HTTPS.
        .layer(SessionLayer::new(MemoryStore::default()).with_secure(false));
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!(
        "login example listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
