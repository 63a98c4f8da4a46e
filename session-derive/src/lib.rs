//! Derive macro for `typed-sessions`. Use it through the `typed-sessions`
//! crate, which re-exports it: `use typed_sessions::SessionState;`.
//!
//! The crate is laid out like `serde_derive`: `attr` parses the
//! `#[session(...)]` attributes, `model` builds and checks a small model of
//! the input, `expand` generates the code; `ctxt` holds the error
//! collector they share. Errors carry the span of the
//! offending token, are all collected before anything is emitted, and come
//! with an impl that still compiles, so that code using the state type sees
//! no follow-on errors.

mod attr;
mod ctxt;
mod expand;
mod model;

use proc_macro::TokenStream;

/// Derives `typed_sessions::SessionState` for a struct with named fields:
/// its fields are stored, one by one, in one namespace of the session, and
/// `TypedSession<State>` gives tracked access to them.
///
/// ```ignore
/// use serde::{Deserialize, Serialize};
/// use typed_sessions::{SessionState, TypedSession};
///
/// #[derive(Serialize, Deserialize)]
/// struct Item { sku: String }
///
/// #[derive(SessionState)]
/// #[session(namespace = "cart")]
/// struct Cart {
///     items: Vec<Item>,
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
/// async fn add(mut cart: TypedSession<Cart>) -> String {
///     cart.items_mut().push(Item { sku: "apple".to_owned() });
///     format!("{} items, theme {}", cart.items.len(), cart.theme())
/// }
/// ```
///
/// # What it generates
///
/// `impl SessionState for State`, and a hidden companion type that
/// `TypedSession<State>` dereferences to. The companion dereferences,
/// read-only, to `State` (`session.items.len()` works), and has four
/// accessors for each stored field `f: F`, with the visibility of the field:
///
/// | accessor | effect |
/// |---|---|
/// | `f(&self) -> &F` | reads the field |
/// | `set_f(&mut self, F)` | writes the field and marks it changed |
/// | `f_mut(&mut self) -> &mut F` | in-place edit; marks the field changed |
/// | `take_f(&mut self) -> F` | returns the value, leaves the default, marks the field changed (flash messages) |
///
/// There is no mutable access to `State` itself: every write goes through an
/// accessor, so that only the changed fields are written back. A field whose
/// name is a raw identifier keeps it where needed: `r#type` gets `r#type()`,
/// `set_type()`, `type_mut()` and `take_type()`, and is stored as `type`.
///
/// The items generated live in an anonymous `const _: () = { ... };` block,
/// so nothing else of the expansion can be named or collide with your items.
///
/// # Attributes
///
/// On the struct, `#[session(...)]` takes:
///
/// - `namespace = "name"`: the namespace the fields are stored under.
///   Default: the struct's name as written (`Cart` for `struct Cart`). Give
///   one explicitly if the struct may be renamed: a new namespace does not
///   see the sessions stored under the old one. Two state types with the
///   same namespace share the stored fields of the same name.
/// - `crate = "path"`: where to find the runtime, for code that re-exports
///   `typed-sessions` under another name. Default: `::typed_sessions`.
///
/// On a field, `#[session(...)]` takes:
///
/// - `rename = "name"`: the name the field is stored under. Default: the
///   field's name (without `r#`). The accessors keep the Rust name. Use it
///   to rename a Rust field while keeping the sessions already stored.
/// - `default = "path"`: a function `fn() -> F`, written as a string holding
///   its path (`"default_theme"`, `"Theme::light"`, `"crate::defaults::theme"`),
///   used instead of `Default::default()` wherever the field's default is
///   needed: a field missing from the store or that fails to decode,
///   `take_f()`, `TypedSession::reset`, and every request for a skipped field.
/// - `skip`: the field is never stored and has no accessors; on every
///   request it starts at its default (`Default::default()`, or its
///   `default = "..."` function: `skip` and `default` may be combined).
///   `skip` and `rename` together are an error.
/// - `index`: the field (say, the logged-in user) is indexed: the store keeps
///   "value → live sessions", so the sessions of a value can be listed and
///   ended (log out everywhere; see `typed_sessions::SessionIndex`). At most
///   one per struct, on a stored field. The derive then implements
///   `IndexedState`, looked up by `K` for a field of type `Option<K>` and by
///   the field's type otherwise; the default value is not indexed.
///
/// Keys can be combined in one attribute or spread over several:
/// `#[session(rename = "uid", default = "no_user")]`.
///
/// # Names
///
/// Stores build their keys as `namespace.field`, so a namespace and a stored
/// name (a field's name, or its `rename`) may only hold ASCII letters,
/// ASCII digits, `_` and `-`, must not be empty and are at most 64 bytes
/// long. Namespaces starting with `__` are reserved for typed-sessions' own
/// records. A Rust name outside that set (`größe`) needs a `rename`, or a
/// `namespace` on the struct.
///
/// # Field types
///
/// A stored field's type must implement `serde::Serialize` and
/// `serde::de::DeserializeOwned`, and be `Send + Sync + 'static`; a skipped
/// field's type must be `Send + Sync + 'static`. Every field's type needs
/// `Default`, unless the field has a `default = "..."` function. Each
/// unsatisfied requirement is reported on the field's type, with a message
/// that names the field and the missing trait. (A state type that is not
/// `Send + Sync` is reported once per field, at the field; code that uses it
/// as `TypedSession<State>` gets an error of its own.)
///
/// # Compile errors
///
/// Every error points at the offending token and says what to write
/// instead. All errors of one struct are reported in one compile, and the
/// derive still emits an impl that compiles, so that code using the state
/// type reports nothing more:
///
/// - the input is an enum, a union, a tuple struct or a unit struct;
/// - the struct has lifetime, type or const parameters;
/// - an attribute that is not a list (`#[session]`), an unknown key (with a
///   suggestion when a known key is close), a field key on the struct or a
///   struct key on a field, a key given twice;
/// - a value of the wrong kind: `rename = 3`, `namespace = cart` (unquoted),
///   `default = "not a path"`, `default = "f()"`, `skip = "yes"`,
///   `index = "user"`, a key
///   without its value (`default`);
/// - `skip` together with `rename` or `index`; `index` on two fields;
/// - a namespace or stored name outside the allowed set (above), empty,
///   longer than 64 bytes, or a namespace starting with `__`;
/// - two fields stored under the same name (after `rename`);
/// - accessors that collide: a field `x` next to a field `set_x`, `x_mut`
///   or `take_x` (`rename` does not help: the accessors keep the Rust
///   names);
/// - a field type that does not meet the requirements above; a `default`
///   function that does not exist or returns another type.
#[proc_macro_derive(SessionState, attributes(session))]
pub fn derive_session_state(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
