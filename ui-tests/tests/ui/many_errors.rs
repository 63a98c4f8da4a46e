// Every error of one struct is reported in one compile, and code that uses
// the state type and its accessors gets no follow-on errors.
use typed_sessions::{SessionState, TypedSession};

#[derive(SessionState)]
#[session(namespace = "shop.cart", colour = "red")]
pub struct Cart {
    pub items: Vec<String>,
    #[session(rename = "items")]
    pub more_items: Vec<String>,
    #[session(rename = 7, skip = true)]
    pub user_id: Option<u64>,
    #[session(default = "not a path")]
    pub theme: String,
    pub set_items: bool,
}

async fn handler(mut session: TypedSession<Cart>) -> usize {
    session.set_theme("dark".to_owned());
    session.more_items_mut().push("x".to_owned());
    session.items().len()
}

fn main() {
    let _ = handler;
    let _ = <Cart as SessionState>::NAMESPACE;
}
