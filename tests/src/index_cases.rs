//! The HTTP cases of the session index (`#[session(index)]`, log out
//! everywhere), for the stores that keep one; see
//! [`http_index_suite!`](crate::http_index_suite).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use typed_sessions::{
    Expiry, IndexError, SessionLayer, SessionState, SessionStore, StoreError, TypedSession,
};

use crate::app::{Gate, Server, serve_router};
use crate::browser::Browser;
use crate::stores::{Call, Recording};

type Store = Arc<dyn SessionStore>;
type Params = Query<HashMap<String, String>>;

/// Who is logged in, indexed; and a counter beside it in the same namespace.
#[derive(SessionState)]
#[session(namespace = "indexed_auth")]
pub struct IndexedAuth {
    #[session(index)]
    user: Option<String>,
    visits: u64,
}

fn user(params: &Params) -> String {
    params.get("user").cloned().unwrap_or_default()
}

async fn login(mut auth: TypedSession<IndexedAuth>, params: Params) -> String {
    let name = user(&params);
    auth.set_user(Some(name.clone()));
    TypedSession::cycle_id(&mut auth);
    format!("welcome {name}")
}

/// Sets the user without cycling the id (a profile switch).
async fn switch(mut auth: TypedSession<IndexedAuth>, params: Params) -> &'static str {
    let name = user(&params);
    auth.set_user((!name.is_empty()).then_some(name));
    "ok"
}

async fn whoami(auth: TypedSession<IndexedAuth>) -> String {
    match auth.user() {
        Some(name) => format!("user {name}"),
        None => "anonymous".to_owned(),
    }
}

async fn visit(mut auth: TypedSession<IndexedAuth>) -> String {
    *auth.visits_mut() += 1;
    auth.visits().to_string()
}

/// One line per session of the current user: `*` or ` `, then the tag.
async fn devices(auth: TypedSession<IndexedAuth>) -> Result<String, IndexError> {
    Ok(TypedSession::sessions(&auth)
        .await?
        .iter()
        .map(|session| {
            format!(
                "{} {}\n",
                if session.current { '*' } else { ' ' },
                session.tag
            )
        })
        .collect())
}

async fn logout_others(auth: TypedSession<IndexedAuth>) -> Result<String, IndexError> {
    Ok(TypedSession::end_other_sessions(&auth).await?.to_string())
}

async fn logout_everywhere(
    auth: TypedSession<IndexedAuth>,
    params: Params,
) -> Result<String, IndexError> {
    let ended = TypedSession::index(&auth).end_all(&user(&params)).await?;
    Ok(ended.to_string())
}

async fn logout(mut auth: TypedSession<IndexedAuth>) -> &'static str {
    TypedSession::destroy(&mut auth);
    "bye"
}

fn router() -> Router {
    Router::new()
        .route("/", get(whoami))
        .route("/login", get(login))
        .route("/switch", get(switch))
        .route("/visit", get(visit))
        .route("/devices", get(devices))
        .route("/logout-others", get(logout_others))
        .route("/logout-everywhere", get(logout_everywhere))
        .route("/logout", get(logout))
}

async fn serve(layer: SessionLayer) -> Server {
    serve_router(router().layer(layer), Arc::new(Gate::default())).await
}

/// A user name no other test (or run) uses: stores are shared.
fn unique(name: &str) -> String {
    format!(
        "{name}-{}",
        typed_sessions::SessionId::generate().unwrap().log_tag()
    )
}

async fn logged_in(server: &Server, name: &str) -> Browser {
    let mut browser = Browser::new(&server.base);
    let reply = browser.get(&format!("/login?user={name}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, format!("welcome {name}"));
    browser
}

/// The lines of `/devices`: how many, and how many marked current.
async fn devices_of(browser: &mut Browser) -> (usize, usize) {
    let reply = browser.get("/devices").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let lines: Vec<&str> = reply.body.lines().collect();
    let current = lines.iter().filter(|line| line.starts_with('*')).count();
    (lines.len(), current)
}

/// Each browser sees every session of its user, itself marked; other users
/// are apart.
pub async fn index_lists_the_devices_of_the_current_user(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let ada = unique("ada");
    let mut phone = logged_in(&server, &ada).await;
    let mut laptop = logged_in(&server, &ada).await;
    let mut bobs = logged_in(&server, &unique("bob")).await;

    assert_eq!(devices_of(&mut phone).await, (2, 1));
    assert_eq!(devices_of(&mut laptop).await, (2, 1));
    assert_eq!(devices_of(&mut bobs).await, (1, 1));
    let phone_page = phone.get("/devices").await.body;
    let laptop_page = laptop.get("/devices").await.body;
    assert_ne!(phone_page, laptop_page, "each marks itself");

    let mut anonymous = Browser::new(&server.base);
    assert_eq!(devices_of(&mut anonymous).await, (0, 0));
}

/// "Log out my other devices": the others' next request is anonymous and
/// their cookie is removed; this one stays logged in.
pub async fn index_logout_others_keeps_only_the_current(store: Store) {
    let server = serve(SessionLayer::new(store.clone())).await;
    let ada = unique("ada");
    let mut phone = logged_in(&server, &ada).await;
    let mut tablet = logged_in(&server, &ada).await;
    let mut laptop = logged_in(&server, &ada).await;

    assert_eq!(laptop.get("/logout-others").await.body, "2");
    for other in [&mut phone, &mut tablet] {
        let reply = other.get("/").await;
        assert_eq!(reply.body, "anonymous");
        assert!(
            reply
                .set_cookie()
                .is_some_and(|cookie| cookie.contains("Max-Age=0")),
            "the ended session's cookie is removed"
        );
    }
    assert_eq!(laptop.get("/").await.body, format!("user {ada}"));
    assert_eq!(devices_of(&mut laptop).await, (1, 1));
    assert_eq!(laptop.get("/logout-others").await.body, "0");
}

/// An admin ends every session of a user, from a handler or from outside
/// any request, through the layer.
pub async fn index_logout_everywhere_inside_and_outside_requests(store: Store) {
    let layer = SessionLayer::new(store.clone());
    let server = serve(layer.clone()).await;
    let ada = unique("ada");
    let bob = unique("bob");
    let mut phone = logged_in(&server, &ada).await;
    let mut laptop = logged_in(&server, &ada).await;
    let mut bobs = logged_in(&server, &bob).await;

    // Outside a request: a background job.
    let index = layer.index::<IndexedAuth>();
    assert_eq!(index.list(&ada).await.unwrap().len(), 2);
    assert!(index.list(&ada).await.unwrap().iter().all(|s| !s.current));
    assert_eq!(index.end_all(&ada).await.unwrap(), 2);
    assert!(index.list(&ada).await.unwrap().is_empty());
    assert_eq!(phone.get("/").await.body, "anonymous");
    assert_eq!(laptop.get("/").await.body, "anonymous");
    assert_eq!(bobs.get("/").await.body, format!("user {bob}"));

    // From a handler, by a session that is not one of them.
    let mut admin = Browser::new(&server.base);
    let mut bobs_laptop = logged_in(&server, &bob).await;
    assert_eq!(
        admin
            .get(&format!("/logout-everywhere?user={bob}"))
            .await
            .body,
        "2"
    );
    assert_eq!(bobs.get("/").await.body, "anonymous");
    assert_eq!(bobs_laptop.get("/").await.body, "anonymous");
    // Ending one's own user ends one's own session too.
    let mut carol = logged_in(&server, &unique("carol")).await;
    let name = carol.get("/").await.body.replace("user ", "");
    let reply = carol.get(&format!("/logout-everywhere?user={name}")).await;
    assert_eq!(reply.body, "1");
    assert_eq!(carol.get("/").await.body, "anonymous");
}

/// The index follows the field: switching users, clearing it (the default
/// is not indexed), logging out and cycling the id.
pub async fn index_follows_switches_clears_logouts_and_cycles(store: Store) {
    let layer = SessionLayer::new(store.clone());
    let index = layer.index::<IndexedAuth>();
    let server = serve(layer.clone()).await;
    let ada = unique("ada");
    let bob = unique("bob");
    let mut browser = logged_in(&server, &ada).await;
    assert_eq!(index.list(&ada).await.unwrap().len(), 1);

    assert_eq!(browser.get(&format!("/switch?user={bob}")).await.body, "ok");
    assert!(index.list(&ada).await.unwrap().is_empty());
    assert_eq!(index.list(&bob).await.unwrap().len(), 1);

    assert_eq!(browser.get("/switch?user=").await.body, "ok");
    assert!(index.list(&bob).await.unwrap().is_empty());
    assert_eq!(
        devices_of(&mut browser).await,
        (0, 0),
        "None is not indexed"
    );

    // A second login cycles the id: the new id is listed, not the old.
    let mut again = logged_in(&server, &ada).await;
    let before = index.list(&ada).await.unwrap();
    assert_eq!(again.get(&format!("/login?user={ada}")).await.status, 200);
    let after = index.list(&ada).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_ne!(after[0].tag, before[0].tag, "the new id is listed");
    assert_eq!(after[0].created_at, before[0].created_at);
    assert_eq!(devices_of(&mut again).await, (1, 1));

    assert_eq!(again.get("/logout").await.body, "bye");
    assert!(index.list(&ada).await.unwrap().is_empty());
}

/// Only writes of the index field carry an index entry, in the same store
/// call; other writes and read-only requests do no index work.
pub async fn index_work_only_on_writes_of_the_index_field(store: Store) {
    let (recording, calls) = Recording::new(store.clone());
    let server = serve(SessionLayer::new(recording)).await;
    let ada = unique("ada");
    let mut browser = logged_in(&server, &ada).await;
    let entry = "__index.indexed_auth".to_owned();
    {
        let calls = calls.lock();
        let writes: Vec<&Call> = calls
            .iter()
            .filter(|call| matches!(call, Call::Create { .. } | Call::Update { .. }))
            .collect();
        assert_eq!(writes.len(), 1, "{calls:?}");
        let (Call::Create { fields, .. } | Call::Update { fields, .. }) = writes[0] else {
            unreachable!()
        };
        assert!(fields.contains(&entry), "{fields:?}");
        assert!(
            fields.contains(&"indexed_auth.user".to_owned()),
            "{fields:?}"
        );
    }
    calls.lock().clear();
    assert_eq!(browser.get("/visit").await.body, "1");
    assert_eq!(browser.get("/").await.body, format!("user {ada}"));
    // Setting the same user again changes no stored byte: nothing written.
    assert_eq!(browser.get(&format!("/switch?user={ada}")).await.body, "ok");
    let calls = calls.lock().clone();
    for call in &calls {
        match call {
            Call::Update { fields, .. } | Call::Create { fields, .. } => {
                assert_eq!(fields, &vec!["indexed_auth.visits".to_owned()], "{calls:?}");
            }
            Call::ListIndex | Call::EndIndex => panic!("index call: {calls:?}"),
            _ => {}
        }
    }
}

/// An expired session is not listed and not counted as ended.
pub async fn index_never_lists_expired_sessions(store: Store) {
    let layer =
        SessionLayer::new(store.clone()).with_expiry(Expiry::OnInactivity(Duration::from_secs(2)));
    let index = layer.index::<IndexedAuth>();
    let server = serve(layer).await;
    let ada = unique("ada");
    let _gone = logged_in(&server, &ada).await;
    assert_eq!(index.list(&ada).await.unwrap().len(), 1);
    // Expiry is about time passing: wait past it (stores may round to seconds).
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(index.list(&ada).await.unwrap().is_empty());
    assert_eq!(index.end_all(&ada).await.unwrap(), 0);
}

/// On a store that keeps no index (Memcached), writing an indexed field
/// fails loudly (a 500, nothing stored) and so do the index calls; states
/// without an index field work as always.
pub async fn index_on_a_store_without_one_fails_loudly(store: Store) {
    let layer = SessionLayer::new(store.clone());
    let server = serve(layer.clone()).await;
    let mut browser = Browser::new(&server.base);
    let reply = browser.get(&format!("/login?user={}", unique("ada"))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR.as_u16());
    assert_eq!(browser.get("/").await.body, "anonymous");
    assert_eq!(browser.get("/visit").await.body, "1");
    assert_eq!(
        browser.get("/visit").await.body,
        "2",
        "unindexed writes work"
    );
    assert_eq!(
        browser.get("/logout-others").await.body,
        "0",
        "nothing indexed"
    );
    let error = layer
        .index::<IndexedAuth>()
        .list(&"ada".to_owned())
        .await
        .unwrap_err();
    assert!(
        matches!(error, IndexError::Store(StoreError::Unsupported(_))),
        "{error}"
    );
    assert_eq!(
        browser.get("/logout-everywhere?user=ada").await.status,
        StatusCode::INTERNAL_SERVER_ERROR.as_u16()
    );
}
