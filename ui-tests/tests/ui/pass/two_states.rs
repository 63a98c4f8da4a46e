// Two state types in one module, taken by one handler.
#![deny(warnings)]

use typed_sessions::{SessionState, TypedSession};

#[derive(SessionState)]
struct Auth {
    user_id: Option<u64>,
}

#[derive(SessionState)]
struct Flash {
    message: Option<String>,
}

async fn handler(mut auth: TypedSession<Auth>, mut flash: TypedSession<Flash>) -> String {
    auth.set_user_id(Some(3));
    flash.set_message(Some("welcome".to_owned()));
    format!("{:?} {:?}", auth.user_id(), flash.take_message())
}

fn main() {
    assert_eq!(Auth::NAMESPACE, "Auth");
    assert_eq!(Flash::NAMESPACE, "Flash");
    let _ = handler;
}
