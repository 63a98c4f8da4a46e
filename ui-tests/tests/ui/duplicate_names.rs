// Two fields may not share a stored name.
use typed_sessions::SessionState;

#[derive(SessionState)]
struct User {
    #[session(rename = "id")]
    user_id: u64,
    #[session(rename = "id")]
    account_id: u64,
    name: String,
    #[session(rename = "name")]
    display_name: String,
    // A skipped field has no stored name, so this one is fine.
    #[session(skip)]
    scratch: u32,
    #[session(rename = "scratch")]
    stored_scratch: u32,
}

fn main() {}
