//! The derive's output, checked at run time: `NAMESPACE`, `FIELDS` and the
//! defaults. Built with clippy's pedantic lints on, so the generated code is
//! checked by clippy too.
#![warn(clippy::pedantic)]

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use typed_sessions::__private::{Companion, Loaded};
use typed_sessions::SessionState;

/// An item in the cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Product code.
    pub sku: String,
}

/// The cart of the design document.
#[derive(SessionState)]
#[session(namespace = "cart")]
pub struct Cart {
    /// What is in the cart.
    pub items: Vec<Item>,
    /// The logged-in user.
    #[session(rename = "uid")]
    pub user_id: Option<u64>,
    #[session(default = "default_theme")]
    theme: String,
    #[session(skip)]
    scratch: u32,
    #[session(skip, default = "answer")]
    computed: u32,
}

fn default_theme() -> String {
    "light".to_owned()
}

fn answer() -> u32 {
    42
}

#[derive(SessionState)]
struct Counter {
    visits: u64,
    r#type: Option<Vec<HashMap<String, u64>>>,
}

#[derive(SessionState)]
#[session(namespace = "empty")]
struct Empty {}

#[test]
fn namespace_and_fields() {
    assert_eq!(Cart::NAMESPACE, "cart");
    assert_eq!(Cart::FIELDS, ["items", "uid", "theme"]);
    assert_eq!(Counter::NAMESPACE, "Counter");
    assert_eq!(Counter::FIELDS, ["visits", "type"]);
    assert_eq!(Empty::NAMESPACE, "empty");
    assert!(Empty::FIELDS.is_empty());
}

#[test]
fn defaults() {
    let cart = <Cart as SessionState>::Session::from_loaded(Loaded::empty::<Cart>());
    assert!(cart.items().is_empty());
    assert_eq!(*cart.user_id(), None);
    assert_eq!(cart.theme(), "light");
    let counter = <Counter as SessionState>::Session::from_loaded(Loaded::empty::<Counter>());
    assert_eq!(*counter.visits(), 0);
    assert_eq!(*counter.r#type(), None);
    let _ = <Empty as SessionState>::Session::from_loaded(Loaded::empty::<Empty>());
    // The skipped fields stay in the struct, outside the session.
    let plain = Cart {
        items: Vec::new(),
        user_id: None,
        theme: default_theme(),
        scratch: 0,
        computed: answer(),
    };
    assert_eq!(plain.scratch + plain.computed, 42);
}

/// Compiles only if the companion has every accessor with the right types;
/// never called (a companion can only be made by the runtime).
#[allow(dead_code)]
fn accessors(
    cart: &mut <Cart as SessionState>::Session,
    counter: &mut <Counter as SessionState>::Session,
) {
    let items: &Vec<Item> = cart.items();
    let _ = items.len();
    cart.set_items(Vec::new());
    cart.items_mut().push(Item {
        sku: "a".to_owned(),
    });
    let _: Vec<Item> = cart.take_items();
    let _: Option<u64> = *cart.user_id();
    cart.set_user_id(Some(1));
    let _: &mut String = cart.theme_mut();
    let _: String = cart.take_theme();
    let _ = cart.loaded();
    *counter.visits_mut() += 1;
    let _ = counter.r#type();
    counter.set_type(None);
    let _ = counter.type_mut();
    let _ = counter.take_type();
}
