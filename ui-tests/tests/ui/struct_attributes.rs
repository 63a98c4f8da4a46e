// Malformed `#[session(...)]` on the struct.
use typed_sessions::SessionState;

#[derive(SessionState)]
#[session(namepsace = "cart")]
struct Typo {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace = "one", namespace = "two")]
struct Twice {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace = 3)]
struct NotAString {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace = cart)]
struct Unquoted {
    a: u32,
}

#[derive(SessionState)]
#[session(namespace)]
struct NoValue {
    a: u32,
}

#[derive(SessionState)]
#[session(rename = "other", skip)]
struct FieldKeysOnStruct {
    a: u32,
}

#[derive(SessionState)]
#[session]
struct BareAttribute {
    a: u32,
}

#[derive(SessionState)]
#[session(crate = "not a path")]
struct BadCrate {
    a: u32,
}

fn main() {}
