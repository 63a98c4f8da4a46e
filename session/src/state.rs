//! The [`SessionState`] trait that `#[derive(SessionState)]` implements.

use crate::private::Companion;

/// A struct whose fields are stored as one namespace of a session.
///
/// Implement it with `#[derive(SessionState)]`, never by hand: the derive
/// also generates the companion type that
/// [`TypedSession<Self>`](crate::TypedSession) dereferences to, with the
/// tracked accessors `f()`, `set_f()`, `f_mut()` and `take_f()` for each
/// stored field `f`. A field is decoded from the stored bytes the first
/// time it is read; one the handler never reads is never decoded.
///
/// ```
/// use typed_sessions::SessionState;
///
/// #[derive(SessionState)]
/// #[session(namespace = "cart")]
/// struct Cart {
///     items: Vec<String>,
///     #[session(rename = "uid")]
///     user_id: Option<u64>,
///     #[session(default = "default_theme")]
///     theme: String,
///     #[session(skip)]
///     scratch: u32,
/// }
///
/// fn default_theme() -> String {
///     "light".to_owned()
/// }
///
/// assert_eq!(<Cart as SessionState>::NAMESPACE, "cart");
/// assert_eq!(<Cart as SessionState>::FIELDS, &["items", "uid", "theme"]);
/// ```
pub trait SessionState: Sized + Send + Sync + 'static {
    /// The companion type: the state plus per-field change tracking.
    #[doc(hidden)]
    type Session: Companion<State = Self>;

    /// The namespace the fields are stored under.
    const NAMESPACE: &'static str;

    /// The stored names of the stored fields, in declaration order. Field
    /// indices used by the other items refer to this list.
    const FIELDS: &'static [&'static str];
}

/// A [`SessionState`] with a `#[session(index)]` field: its sessions can be
/// listed and ended by that field's value (see [`SessionIndex`](crate::SessionIndex)).
/// The derive implements it; never implement it by hand.
pub trait IndexedState: SessionState {
    /// The type sessions are looked up by: the index field's type, or `K`
    /// for a field of type `Option<K>` (whose `None` is not indexed).
    type IndexKey: serde::Serialize;
}
