// Every attribute, through `TypedSession` in an axum handler.
#![deny(warnings)]

use axum::Router;
use axum::routing::get;
use typed_sessions::{MemoryStore, SessionLayer, SessionState, TypedSession};

#[derive(SessionState)]
#[session(namespace = "cart", crate = "::typed_sessions")]
struct Cart {
    items: Vec<String>,
    #[session(rename = "uid")]
    user_id: Option<u64>,
    #[session(default = "default_theme")]
    theme: String,
    #[session(default = "Cart::default_page", rename = "page-size")]
    page_size: u32,
    #[session(skip)]
    scratch: u32,
    #[session(skip, default = "default_theme")]
    fallback_theme: String,
    #[session()]
    flash: Option<String>,
}

fn default_theme() -> String {
    "light".to_owned()
}

impl Cart {
    fn default_page() -> u32 {
        20
    }
}

async fn handler(mut session: TypedSession<Cart>) -> String {
    session.items_mut().push("apple".to_owned());
    session.set_user_id(Some(7));
    if session.theme() == "light" {
        session.set_theme("dark".to_owned());
    }
    *session.page_size_mut() += 1;
    let flash = session.take_flash();
    let _: Vec<String> = session.take_items();
    format!(
        "{} {:?} {:?} {}",
        session.items().len(),
        session.user_id(),
        flash,
        TypedSession::is_new(&session),
    )
}

fn main() {
    assert_eq!(Cart::NAMESPACE, "cart");
    assert_eq!(
        Cart::FIELDS,
        ["items", "uid", "theme", "page-size", "flash"]
    );
    let _: Router = Router::new()
        .route("/", get(handler))
        .layer(SessionLayer::new(MemoryStore::default()));
}
