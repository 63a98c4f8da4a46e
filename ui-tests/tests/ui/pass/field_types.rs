// Field types: nested std containers, a user enum and struct, a raw
// identifier, `Self`.
#![deny(warnings)]

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use typed_sessions::{SessionState, TypedSession};

#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Theme {
    #[default]
    Light,
    Dark,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Address {
    city: String,
}

#[derive(SessionState, Default, Serialize, Deserialize)]
struct Prefs {
    nested: Option<Vec<HashMap<String, u64>>>,
    theme: Theme,
    address: Address,
    tree: BTreeMap<u32, (String, [u8; 4])>,
    r#type: String,
    r#match: bool,
    boxed: Box<str>,
    previous: Option<Box<Self>>,
    unit: (),
}

async fn handler(mut session: TypedSession<Prefs>) -> String {
    session.set_theme(Theme::Dark);
    session
        .nested_mut()
        .get_or_insert_with(Vec::new)
        .push(HashMap::new());
    session.set_type("admin".to_owned());
    *session.type_mut() += "!";
    let kind: String = session.take_type();
    let _: &String = session.r#type();
    session.set_match(true);
    let _ = session.r#match();
    session.set_previous(None);
    session.address_mut().city = "Lyon".to_owned();
    session.set_unit(());
    format!("{kind} {:?} {}", session.theme(), session.boxed())
}

fn main() {
    assert_eq!(
        Prefs::FIELDS,
        [
            "nested", "theme", "address", "tree", "type", "match", "boxed", "previous", "unit"
        ]
    );
    let _ = handler;
}
