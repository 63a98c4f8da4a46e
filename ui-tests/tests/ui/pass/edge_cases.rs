// Unusual but valid inputs.
#![deny(warnings)]

use serde::{Deserialize, Serialize};
use typed_sessions::__private::{Companion, Loaded};
use typed_sessions::{SessionState, TypedSession};

// Fields named like the companion's trait methods, a raw keyword, doc
// comments and foreign attributes on fields, `Self` in a field type.
#[derive(SessionState, Serialize, Deserialize)]
struct Odd {
    /// Documented field: its doc is repeated on the reader.
    deref: u8,
    tracked: u8,
    into_tracked: u8,
    get: u8,
    loaded: u8,
    reset: u8,
    encode_field: u8,
    r#fn: u8,
    #[serde(rename = "ignored_by_the_derive")]
    #[allow(dead_code)]
    plain: u8,
    #[cfg(any())]
    compiled_out: NotEvenAType,
    next: Option<Box<Self>>,
}

// Only skipped fields, and no fields at all.
#[derive(SessionState)]
struct OnlySkipped {
    #[session(skip)]
    computed: u8,
}

#[derive(SessionState)]
struct NoFields {}

// A module that shadows the names the expansion could use: it names
// everything by absolute path. (`#![no_implicit_prelude]` is not supported:
// rustc does not resolve `#[diagnostic::on_unimplemented]` there.)
#[allow(non_camel_case_types, dead_code)]
mod shadowing {
    use ::typed_sessions::SessionState;

    struct Vec;
    struct Result;
    struct Option;
    struct Default;
    struct Send;
    struct Sync;
    struct u8;
    struct usize;
    struct str;
    struct Tracked;
    struct Lazy;
    struct Loaded;
    mod core {}
    mod typed_sessions {}

    #[derive(SessionState)]
    #[session(crate = "::typed_sessions")]
    pub struct Bare {
        pub count: u64,
        #[session(default = "self::start")]
        pub start: u64,
    }

    fn start() -> u64 {
        1
    }
}

async fn odd(mut session: TypedSession<Odd>) -> u8 {
    session.set_deref(1);
    *session.tracked_mut() += 1;
    let _ = session.take_into_tracked();
    session.set_fn(2);
    let _ = session.r#fn();
    session.set_next(None);
    session.set_loaded(3);
    *session.reset_mut() += 1;
    TypedSession::reset(&mut session);
    let _ = session.take_encode_field();
    *session.get() + *session.plain() + *session.loaded()
}

async fn bare(mut session: TypedSession<shadowing::Bare>) -> u64 {
    *session.count_mut() += 1;
    session.count() + session.start()
}

fn main() {
    // A state type declared inside a function.
    #[derive(SessionState)]
    #[session(namespace = "local")]
    struct Local {
        hits: u32,
    }

    async fn local(mut session: TypedSession<Local>) -> u32 {
        *session.hits_mut() += 1;
        *session.hits()
    }

    assert_eq!(
        Odd::FIELDS,
        [
            "deref",
            "tracked",
            "into_tracked",
            "get",
            "loaded",
            "reset",
            "encode_field",
            "fn",
            "plain",
            "next"
        ]
    );
    assert!(OnlySkipped::FIELDS.is_empty());
    assert!(NoFields::FIELDS.is_empty());
    let bare = <shadowing::Bare as SessionState>::Session::from_loaded(
        Loaded::empty::<shadowing::Bare>(),
    );
    assert_eq!(*bare.start(), 1);
    assert_eq!(Local::NAMESPACE, "local");
    let _ = (odd, bare, local);
}
