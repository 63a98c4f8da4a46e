// Misuse of `#[session(index)]`.
use typed_sessions::SessionState;

#[derive(SessionState)]
struct TwoIndexes {
    #[session(index)]
    user: Option<String>,
    #[session(index)]
    tenant: Option<String>,
    #[session(index)]
    team: Option<String>,
}

#[derive(SessionState)]
struct SkippedIndex {
    #[session(skip, index)]
    user: Option<String>,
}

#[derive(SessionState)]
struct MalformedIndex {
    #[session(index = "user")]
    user: Option<String>,
    #[session(index, index)]
    twice: u64,
}

#[derive(SessionState)]
#[session(index)]
struct IndexOnStruct {
    user: Option<String>,
}

fn main() {}
