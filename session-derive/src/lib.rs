//! Derive macro for `typed-sessions`. Use it through the `typed-sessions`
//! crate, which re-exports it.

mod attr;
mod expand;
mod model;

use proc_macro::TokenStream;

/// Derives `typed_sessions::SessionState`; see that trait's documentation.
#[proc_macro_derive(SessionState, attributes(session))]
pub fn derive_session_state(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
