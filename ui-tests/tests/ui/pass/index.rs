// `#[session(index)]` on the shapes of field it is made for: `Option<K>` is
// looked up by `K`, any other type by itself.
use typed_sessions::{IndexedState, SessionIndex, SessionState};

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct UserId(u64);

#[derive(SessionState)]
struct Auth {
    #[session(index, rename = "uid")]
    user: Option<UserId>,
    visits: u64,
}

#[derive(SessionState)]
struct Tenant {
    #[session(index)]
    name: String,
}

#[derive(SessionState)]
struct Qualified {
    #[session(index)]
    user: std::option::Option<u64>,
}

fn key_of<T: IndexedState>(_: &T::IndexKey) {}

fn lists(auth: SessionIndex<Auth>, tenant: SessionIndex<Tenant>) {
    key_of::<Auth>(&UserId(1));
    key_of::<Tenant>(&"acme".to_owned());
    key_of::<Qualified>(&7u64);
    let _ = (auth, tenant);
}

fn main() {
    let _ = lists;
}
