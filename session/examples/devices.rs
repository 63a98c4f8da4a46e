//! Log out everywhere: a "your devices" page on the session index.
//!
//! The logged-in user is a `#[session(index)]` field, so the store keeps
//! "user → live sessions" and the app can list them and end them.
//!
//! ```sh
//! cargo run --example devices                                    # memory store
//! STORE=redis cargo run --example devices --features redis       # Redis at REDIS_URL (default redis://127.0.0.1:6379/)
//!
//! curl -b phone -c phone 'http://127.0.0.1:8000/login?user=ada'    # welcome ada
//! curl -b laptop -c laptop 'http://127.0.0.1:8000/login?user=ada'  # welcome ada
//! curl -b laptop -c laptop http://127.0.0.1:8000/devices           # two lines, the laptop's marked *
//! curl -b laptop -c laptop http://127.0.0.1:8000/logout-others     # 1
//! curl -b phone -c phone http://127.0.0.1:8000/                    # anonymous
//! curl http://127.0.0.1:8000/logout-everywhere?user=ada            # 1
//! ```
//!
//! Routes (all `text/plain`): `GET /login?user=NAME`, `GET /` (`user NAME` or
//! `anonymous`), `GET /devices` (one line per live session of the current
//! user, the current one starting with `*`), `GET /logout-others` and
//! `GET /logout-everywhere?user=NAME` (the number of sessions ended), and
//! `GET /logout`. `/logout-everywhere` stands for an admin action: a real
//! app checks that the caller may do it.
//!
//! It serves plain HTTP on localhost, so it turns the cookie's `Secure`
//! attribute off: browsers and curl do not send Secure cookies over plain
//! HTTP. Keep the default (`Secure`) behind HTTPS.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::extract::Query;
use axum::http::StatusCode;
use axum::{Router, routing::get};
use typed_sessions::{IndexError, MemoryStore, SessionLayer, SessionState, TypedSession};

#[derive(SessionState)]
struct Auth {
    /// Who is logged in: the index, so the sessions of a user can be found.
    #[session(index)]
    user: Option<String>,
}

type Params = Query<HashMap<String, String>>;

fn user_param(params: &Params) -> Result<String, (StatusCode, &'static str)> {
    params
        .get("user")
        .filter(|user| !user.is_empty())
        .cloned()
        .ok_or((StatusCode::BAD_REQUEST, "give ?user=NAME\n"))
}

async fn login(
    mut auth: TypedSession<Auth>,
    params: Params,
) -> Result<String, (StatusCode, &'static str)> {
    let user = user_param(&params)?;
    auth.set_user(Some(user.clone()));
    // A login changes privileges: the session moves to a new id.
    TypedSession::cycle_id(&mut auth);
    Ok(format!("welcome {user}\n"))
}

async fn whoami(auth: TypedSession<Auth>) -> String {
    match auth.user() {
        Some(user) => format!("user {user}\n"),
        None => "anonymous\n".to_owned(),
    }
}

async fn devices(auth: TypedSession<Auth>) -> Result<String, IndexError> {
    let now = SystemTime::now();
    let seconds = |from: SystemTime, to: SystemTime| {
        to.duration_since(from)
            .map_or(0, |elapsed| elapsed.as_secs())
    };
    let mut page = String::new();
    for session in TypedSession::sessions(&auth).await? {
        let mark = if session.current { '*' } else { ' ' };
        page.push_str(&format!(
            "{mark} {} logged in {}s ago, expires in {}s\n",
            session.tag,
            seconds(session.created_at, now),
            seconds(now, session.expires_at),
        ));
    }
    Ok(page)
}

async fn logout_others(auth: TypedSession<Auth>) -> Result<String, IndexError> {
    let ended = TypedSession::end_other_sessions(&auth).await?;
    Ok(format!("{ended}\n"))
}

async fn logout_everywhere(
    auth: TypedSession<Auth>,
    params: Params,
) -> Result<String, axum::response::Response> {
    use axum::response::IntoResponse;
    let user = user_param(&params).map_err(IntoResponse::into_response)?;
    let ended = TypedSession::index(&auth)
        .end_all(&user)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(format!("{ended}\n"))
}

async fn logout(mut auth: TypedSession<Auth>) -> &'static str {
    TypedSession::destroy(&mut auth);
    "bye\n"
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(whoami))
        .route("/login", get(login))
        .route("/devices", get(devices))
        .route("/logout-others", get(logout_others))
        .route("/logout-everywhere", get(logout_everywhere))
        .route("/logout", get(logout))
        // Plain HTTP on localhost: see the module docs.
        .layer(layer.with_secure(false))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let layer = match std::env::var("STORE").as_deref() {
        Ok("redis") => redis_layer().await?,
        Ok("memory") | Err(_) => SessionLayer::new(MemoryStore::default()),
        Ok(other) => return Err(format!("STORE={other}: use memory or redis").into()),
    };
    let port = std::env::var("PORT").unwrap_or_else(|_| "8000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("devices listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(layer)).await?;
    Ok(())
}

#[cfg(feature = "redis")]
async fn redis_layer() -> Result<SessionLayer, Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let store = typed_sessions::RedisStore::connect(&url)
        .await?
        .with_prefix("devices:session:");
    Ok(SessionLayer::new(store))
}

// The memory store needs no feature, so the example builds without one; only
// the Redis path asks for it.
#[cfg(not(feature = "redis"))]
async fn redis_layer() -> Result<SessionLayer, Box<dyn std::error::Error>> {
    Err("STORE=redis needs the `redis` feature: \
         STORE=redis cargo run --example devices --features redis"
        .into())
}
