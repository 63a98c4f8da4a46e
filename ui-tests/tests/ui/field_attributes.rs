// Malformed `#[session(...)]` on fields.
use typed_sessions::SessionState;

#[derive(SessionState)]
struct Fields {
    #[session(renam = "x")]
    unknown: u32,
    #[session(flatten)]
    unknown_flag: u32,
    #[session(rename = "a", rename = "b")]
    rename_twice: u32,
    #[session(skip)]
    #[session(skip)]
    skip_twice: u32,
    #[session(rename = 3)]
    rename_not_a_string: u32,
    #[session(default = "not a path")]
    default_not_a_path: u32,
    #[session(default = "zero()")]
    default_with_parens: u32,
    #[session(default = zero)]
    default_unquoted: u32,
    #[session(default)]
    default_without_value: u32,
    #[session(skip = "yes")]
    skip_with_value: u32,
    #[session(namespace = "n")]
    struct_key_on_field: u32,
    #[session(skip, rename = "stored")]
    skip_and_rename: u32,
}

fn zero() -> u32 {
    0
}

fn main() {}
