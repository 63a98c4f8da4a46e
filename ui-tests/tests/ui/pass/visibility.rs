// A state type in a nested module, used from another module with no import
// beyond the state type; and a private state type next to it.
#![deny(warnings, missing_docs)]
//! Visibility of the companion type and its accessors.

mod state {
    pub mod user {
        use typed_sessions::SessionState;

        /// The logged-in user.
        #[derive(SessionState)]
        #[session(namespace = "user")]
        pub struct User {
            /// The user's id.
            pub id: Option<u64>,
            /// Roles.
            pub roles: Vec<String>,
            pub(crate) visits: u64,
        }
    }
}

mod handlers {
    use crate::state::user::User;
    use typed_sessions::TypedSession;

    pub async fn login(mut session: TypedSession<User>) -> String {
        session.set_id(Some(1));
        session.roles_mut().push("admin".to_owned());
        *session.visits_mut() += 1;
        let roles = session.take_roles();
        format!("{:?} {} {}", session.id(), roles.len(), session.visits())
    }
}

mod private_state {
    use typed_sessions::{SessionState, TypedSession};

    #[derive(SessionState)]
    struct Prefs {
        dark: bool,
    }

    async fn toggle(mut session: TypedSession<Prefs>) -> bool {
        let dark = !*session.dark();
        session.set_dark(dark);
        dark
    }

    pub fn handlers() {
        let _ = toggle;
    }
}

fn main() {
    let _ = handlers::login;
    private_state::handlers();
}
