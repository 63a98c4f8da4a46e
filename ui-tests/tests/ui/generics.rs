// Generic parameters are rejected; code using the type gets no second error.
use typed_sessions::{SessionState, TypedSession};

#[derive(SessionState)]
struct Borrowed<'a> {
    name: &'a str,
}

#[derive(SessionState)]
struct Generic<T> {
    value: T,
}

#[derive(SessionState)]
struct Fixed<const N: usize> {
    values: [u8; N],
}

async fn handler(session: TypedSession<Generic<u64>>) -> String {
    format!("{:?}", TypedSession::id(&session))
}

fn main() {
    let _ = handler;
    let _ = <Borrowed<'static> as SessionState>::NAMESPACE;
    let _ = <Fixed<4> as SessionState>::FIELDS;
}
