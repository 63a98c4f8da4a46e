//! Server-backed, typed HTTP sessions for axum and tower.
//!
//! Derive [`SessionState`] on a plain struct, take [`TypedSession<T>`] in a
//! handler, and add a [`SessionLayer`] with a store. The layer loads a
//! namespace only when a handler asks for it, and after the handler writes
//! back only the fields that changed, in one round trip.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use typed_sessions::{MemoryStore, SessionLayer, SessionState, TypedSession};
//!
//! #[derive(SessionState)]
//! struct Counter {
//!     visits: u64,
//! }
//!
//! async fn index(mut session: TypedSession<Counter>) -> String {
//!     *session.visits_mut() += 1;
//!     session.visits().to_string()
//! }
//!
//! # async fn run() {
//! let app: Router = Router::new()
//!     .route("/", get(index))
//!     .layer(SessionLayer::new(MemoryStore::default()).with_secure(false));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! For keys chosen at run time, take the dict-like [`Session`] instead, or
//! beside typed namespaces in the same handler: `session.get::<u64>("foo")`,
//! `session.insert("foo", 1)`, with the same lazy loads and changed-keys-only
//! writes.

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod codec;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod cookies;
mod dict;
mod extract;
mod id;
mod index;
mod layer;
mod remembered;
mod request;
mod state;
pub mod store;

#[cfg(feature = "bincode")]
pub use codec::Bincode;
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Codec, MessagePack};
pub use config::{ConfigError, DEFAULT_INACTIVITY, DEFAULT_STORE_TIMEOUT, Expiry, MAX_EXPIRY};
pub use cookie::{Key, SameSite};
pub use dict::{DICT_NAMESPACE, InsertError, MAX_KEY_LEN, RESERVED_KEY_PREFIX, Session};
pub use extract::{SessionRejection, TypedSession};
pub use id::{LogTag, RandomnessError, SessionId};
pub use index::{IndexError, SessionIndex, SessionInfo};
pub use layer::{SessionLayer, SessionService};
pub use state::{IndexedState, SessionState};
#[cfg(feature = "memcache")]
pub use store::memcache::MemcacheStore;
pub use store::memory::MemoryStore;
#[cfg(feature = "mongodb")]
pub use store::mongodb::MongoStore;
#[cfg(feature = "redis")]
pub use store::redis::{RedisConnection, RedisStore};
pub use store::{FieldKey, FieldWrite, LoadedFields, LoadedNamespace, SessionStore, StoreError};
pub use typed_sessions_derive::SessionState;

pub(crate) use __private as private;
