// Only a struct with named fields can be session state.
use typed_sessions::SessionState;

#[derive(SessionState)]
enum Choice {
    A,
    B,
}

#[derive(SessionState)]
struct Pair(u32, String);

#[derive(SessionState)]
struct Marker;

#[derive(SessionState)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
