// Field types must be serde-compatible and have a default; the errors name
// the field and the missing trait, and do not list the types that implement
// serde's traits. A borrowed type (`&'static str`) gets rustc's own
// "not general enough" error, at the field: it is a lifetime error, which
// `#[diagnostic::on_unimplemented]` does not reword. A field that is not
// `Send + Sync` is reported once, by its field, skipped or not.
use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use typed_sessions::SessionState;

#[derive(Default)]
struct NotSerde;

#[derive(Default, Serialize)]
struct SerializeOnly;

#[derive(Serialize, Deserialize)]
struct NoDefault;

#[derive(SessionState)]
struct Types {
    plain: NotSerde,
    half: SerializeOnly,
    borrowed: &'static str,
    no_default: NoDefault,
    #[session(default = "no_default")]
    with_default: NoDefault,
    #[session(default = "wrong_type")]
    wrong_default: u64,
    #[session(default = "missing")]
    missing_default: u64,
    #[session(skip)]
    skipped_no_default: NoDefault,
    not_sync: RefCell<u32>,
    #[session(skip)]
    not_send: Rc<u32>,
}

fn no_default() -> NoDefault {
    NoDefault
}

fn wrong_type() -> &'static str {
    "zero"
}

fn main() {}
