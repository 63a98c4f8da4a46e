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
//!     // Cookies are `Secure` by default; this example serves plain HTTP.
//!     .layer(SessionLayer::new(MemoryStore::default()).with_secure(false));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! # Contents
//!
//! - [Typed and dict sessions](#typed-and-dict-sessions)
//! - [What a request does](#what-a-request-does)
//! - [Expiry](#expiry)
//! - [Signed cookies](#signed-cookies)
//! - [Concurrent requests](#concurrent-requests)
//! - [Log out everywhere](#log-out-everywhere)
//! - [Stores](#stores)
//! - [Cargo features](#cargo-features)
//!
//! # Typed and dict sessions
//!
//! A session holds *namespaces*, each a set of stored fields. Every type
//! that derives [`SessionState`] is one namespace (by default named after
//! the struct), and `TypedSession<T>` is that namespace in a handler, with
//! generated accessors for each field: `f()`, `set_f(value)`, `f_mut()` and
//! `take_f()`. Names and types are checked at compile time; the derive's
//! documentation lists its attributes (`namespace`, `crate`, `rename`,
//! `default`, `skip`, `index`). Session controls are associated functions
//! ([`TypedSession::cycle_id`], [`TypedSession::destroy`],
//! [`TypedSession::reset`], [`TypedSession::set_expiry`]), so they never
//! shadow an accessor.
//!
//! For keys chosen at run time (a draft per form, a flag per feature, a
//! value a library keeps without a struct in your crate), take the
//! dict-like [`Session`]: `get::<T>(key)`, `insert(key, value)`,
//! `remove::<T>(key)`, `contains_key`, `keys`, `clear`, and the session
//! controls as plain methods. Its keys live in their own namespace
//! ([`DICT_NAMESPACE`]), one stored field per key, with the same lazy load
//! and changed-keys-only writes. A key is any UTF-8 of 1 to
//! [`MAX_KEY_LEN`] bytes not starting with [`RESERVED_KEY_PREFIX`];
//! [`Session::insert`] returns an [`InsertError`] for others.
//!
//! Both shapes can be taken side by side in one handler:
//!
//! ```
//! use typed_sessions::{InsertError, Session, SessionState, TypedSession};
//!
//! #[derive(SessionState)]
//! struct Cart {
//!     items: Vec<u64>,
//! }
//!
//! async fn add(mut cart: TypedSession<Cart>, mut session: Session) -> Result<String, InsertError> {
//!     cart.items_mut().push(42);
//!     let drafts = session.get::<u32>("drafts").unwrap_or(0) + 1;
//!     session.insert("drafts", drafts)?;
//!     Ok(format!("{} items, {drafts} drafts", cart.items().len()))
//! }
//! ```
//!
//! A stored value that does not decode as its type asks (the type changed,
//! the data is corrupt) reads as the default (`None` for [`Session::get`])
//! with a warning, and is overwritten on its next write: a session never
//! fails a request because of what is stored in it. Values are encoded with
//! the layer's [`Codec`] ([`MessagePack`] by default); each stored value
//! carries its codec's tag, so switching codecs keeps sessions readable (see
//! [`codec`]).
//!
//! # What a request does
//!
//! 1. **Nothing, until a handler asks.** The layer reads the session cookie
//!    (a value that is not a well-formed id, or not correctly signed, is
//!    ignored and its cookie removed) but touches no store. A handler that
//!    takes no session costs no store call. The `Cookie` header is read as
//!    bytes, so another application's cookie on the same domain, whatever
//!    it holds (UTF-8 like `city=Zürich`, or not UTF-8 at all), never hides
//!    the session cookie; a `Cookie` header over 16 KB is not read.
//! 2. **One round trip per namespace taken.** Taking `TypedSession<T>` loads
//!    `T`'s fields (and the session's remembered expiry) in one store call;
//!    [`Session`] loads its own namespace's keys, nothing else. Fields are
//!    decoded the first time the handler reads them, so an untouched 20 KB
//!    cart beside a counter is never decoded. An id the store does not know
//!    (expired, destroyed, forged) is never adopted: the request gets a new,
//!    empty session.
//! 3. **One round trip to save.** After the handler, the changed fields are
//!    encoded, those whose bytes equal what was loaded are dropped, and the
//!    rest are written (or removed, after `reset`/`take`) in one store call
//!    that names only them: a one-byte counter change in a session holding a
//!    200 KB cart sends a few bytes. A request that changed nothing writes
//!    nothing (at most a TTL-only touch, see [Expiry](#expiry)). A
//!    [`cycle_id`](TypedSession::cycle_id) with writes takes two: the
//!    session is moved to its new id first, then written there, so the
//!    writes of a login never land on the old id, even when the second call
//!    fails (the user is then logged out, with a 500).
//! 4. **A cookie only when needed.** `Set-Cookie` is sent when a session is
//!    created, when its id changes ([`cycle_id`](TypedSession::cycle_id)),
//!    when its expiry moves (a sliding refresh, [`set_expiry`](TypedSession::set_expiry)),
//!    when it was signed with an older key, and (as a removal) on
//!    [`destroy`](TypedSession::destroy) or when the presented cookie was
//!    refused. A new session with nothing written stores nothing and sets
//!    no cookie. A response that sets the cookie carries
//!    `Cache-Control: no-store` unless the handler set its own; one whose
//!    handler used a session carries `Vary: Cookie`.
//!
//! A 5xx response saves nothing (no write, no cycle, no destroy, no cookie).
//! A failing store, or a store call slower than
//! [`with_store_timeout`](SessionLayer::with_store_timeout) (5 s by
//! default), is a 500 and is logged: nothing is dropped silently. The
//! response body is generic; the details are in the log. A session the
//! store holds corrupt, or with a namespace over 64 MiB, is not a 500 (that
//! would repeat on every request until it expired): it is logged at warn,
//! deleted, and the request goes on as one without a session (a fresh one,
//! under a new id, if the handler writes). A write that would grow a
//! namespace past that limit is refused instead
//! ([`InsertError::TooLarge`] for [`Session::insert`]; a 500 for a
//! `TypedSession`, saving nothing).
//! [`SessionLayer`] documents the responses in detail (removal cookies,
//! `Expires` beside `Max-Age`, a passed `Expiry::AtDateTime`) and why two
//! stacked layers are refused.
//!
//! Ids are 192 bits from the operating system's CSPRNG; logs carry a short
//! keyed hash of an id ([`LogTag`]), never the id. Cookies are `Secure`,
//! `HttpOnly`, `SameSite=Lax` and `Path=/` by default; each is a builder
//! method of [`SessionLayer`]. Contradictory settings (a `__Host-` name with
//! a `Domain`, `SameSite=None` without `Secure`, a zero or over-400-day
//! expiry) are refused by [`SessionLayer::validate`] and make applying the
//! layer panic, at start-up.
//!
//! # Expiry
//!
//! [`SessionLayer::with_expiry`] sets the policy, an [`Expiry`]:
//!
//! - [`Expiry::OnInactivity`] (the default, 30 days): the session ends after
//!   that long without a request that uses it. The store's expiry and the
//!   cookie's `Max-Age` move together, at most once a minute (or a tenth of
//!   the limit, if shorter): a request within that interval sends no
//!   `Set-Cookie`, and a read-only request due for a refresh makes one
//!   TTL-only store call instead of rewriting fields.
//! - [`Expiry::AtDateTime`]: at a fixed time.
//! - [`Expiry::OnSessionEnd`]: a cookie without `Max-Age`, dropped when the
//!   browser closes; the store still ends the session after
//!   [`DEFAULT_INACTIVITY`] without use.
//!
//! [`with_absolute_timeout`](SessionLayer::with_absolute_timeout) ends every
//! session that long after its creation, whatever its activity; the
//! creation time is kept across `cycle_id`.
//!
//! [`TypedSession::set_expiry`] (and [`Session::set_expiry`]) chooses the
//! expiry of one session, "remember me". The choice is stored with the
//! session (the reserved field [`store::EXPIRY_FIELD`], loaded in the same
//! round trip as any namespace), so every later request on every server
//! follows it, across `cycle_id`, capped by the absolute timeout. A session
//! that never chose follows the layer's policy, whatever it is configured to
//! at the time.
//!
//! An expired session is gone: every store refuses to return, update or
//! touch it, even before its backend has reclaimed the space.
//!
//! # Signed cookies
//!
//! Without a key, the cookie holds the bare id: 192 random bits cannot be
//! guessed, and an unknown id costs one store lookup. With
//! [`with_signing_key`](SessionLayer::with_signing_key), the cookie carries
//! an HMAC of the id, so a forged or altered cookie is refused without
//! touching the store. To rotate keys, give
//! [`with_signing_keys`](SessionLayer::with_signing_keys) the new key first
//! and the old ones after it: new cookies are signed with the first, cookies
//! signed with any of them are accepted, and a cookie signed with an older
//! key is re-signed with the current one on its next response. Drop an old
//! key once the cookies it signed have expired.
//!
//! ```
//! use typed_sessions::{Key, MemoryStore, SessionLayer};
//!
//! # let (new_secret, old_secret) = ([1u8; 64], [2u8; 64]);
//! // Keys are 64 bytes; load them from your secret store.
//! let layer = SessionLayer::new(MemoryStore::default()).with_signing_keys(vec![
//!     Key::from(&new_secret), // signs
//!     Key::from(&old_secret), // still accepted
//! ]);
//! assert!(layer.validate().is_ok());
//! ```
//!
//! # Concurrent requests
//!
//! Browsers send requests of one session in parallel (tabs, `fetch`es, a
//! form post beside an image). Every store keeps three rules, so that the
//! outcome is the one a user would expect:
//!
//! - **Field-level merges.** A save names only the fields it changed, and
//!   the store applies it atomically without touching the others. Two
//!   requests that change different fields (one adds to the cart while
//!   another records a visit) both survive, whichever app servers they
//!   reach; for one field, the last writer wins.
//! - **No resurrection.** A write applies only to a session that still
//!   exists. After a logout (`destroy`), or once the session expired, a
//!   slower request's write changes nothing and creates nothing.
//! - **Writes racing a login are forwarded.** `cycle_id` moves the session
//!   to a new id and leaves a forward from the old id for
//!   [`store::FORWARD_WINDOW`] (10 s). A request that loaded the session
//!   under the old id and saves after the login (another tab adding to the
//!   cart) has its changes applied to the session under the new id, with the
//!   same no-resurrection rule; it sets no cookie, so the login's stands. The
//!   old id never reads the new session.
//! - **A login's writes follow only its own cookie.** The writes of a
//!   request that calls `cycle_id` are never forwarded: if the session ended
//!   before its move, or another request cycled the same id first (an
//!   attacker holding a planted id, say), they start a new session whose
//!   cookie that request's response issues, so they are never found under
//!   an id another response handed out.
//!
//! The [`store`] module states these rules for store authors, and the
//! conformance suite (feature `conformance`) checks them.
//!
//! # Log out everywhere
//!
//! Mark one field of a state type `#[session(index)]`, typically the
//! logged-in user, and the store keeps "value → live sessions" current as
//! the field is written. Then [`TypedSession::sessions`] lists the sessions
//! of the current user ("your devices"), [`TypedSession::end_other_sessions`]
//! ends all but the current one (after a password change), and a
//! [`SessionIndex`] (from [`SessionLayer::index`]) lists or ends the sessions
//! of any user outside a request (an admin revoking access). A destroyed,
//! cycled-away or expired session is never listed, and ending is immediate.
//!
//! The cost: only requests that write the indexed field (a login, a logout
//! that clears it) do index work, in the same store call as the write;
//! every other request costs exactly what it did. Listing or ending is one
//! store call. The memory store, Redis (single server and Cluster) and
//! MongoDB keep the index; Memcached cannot enumerate sessions, so a
//! `MemcacheStore` refuses to store an index entry (a 500, with
//! [`StoreError::Unsupported`] logged). The [`SessionIndex`] docs have the
//! details.
//!
//! # Stores
//!
//! | store | feature | atomic writes by | session index |
//! |---|---|---|---|
//! | [`MemoryStore`] | always | a lock per shard; one process only | yes |
//! | [`RedisStore`] | `redis` | one Lua script per write; single server and Redis Cluster | yes |
//! | [`MemcacheStore`] | `memcache` | `gets`/`cas` with retries | no |
//! | [`MongoStore`] | `mongodb` | single-document updates; transactions for `cycle_id` where available | yes |
//!
//! Each store module documents its layout, the commands each operation
//! sends, what is atomic, its limits and its failure behaviour. To write a
//! store of your own, implement [`SessionStore`]: the [`store`] module has
//! the rules and a complete example.
//!
//! # Cargo features
//!
//! None is on by default; the memory store and the MessagePack codec are
//! always there.
//!
//! | feature | adds |
//! |---|---|
//! | `redis` | [`RedisStore`] (single server and Redis Cluster) |
//! | `redis-rustls` | `rediss://` URLs (Redis over TLS) with rustls; implies `redis` |
//! | `memcache` | [`MemcacheStore`] |
//! | `mongodb` | [`MongoStore`] |
//! | `json` | the [`Json`] codec: human-readable stored values |
//! | `bincode` | the [`Bincode`] codec: compact, but not self-describing (a changed type can decode to wrong values) and unmaintained (RUSTSEC-2025-0141); only for field types that never change |
//! | `conformance` | [`conformance`]: the store conformance suite, to test any [`SessionStore`] |
//!
//! [`RedisStore`]: store/redis/struct.RedisStore.html
//! [`MemcacheStore`]: store/memcache/struct.MemcacheStore.html
//! [`MongoStore`]: store/mongodb/struct.MongoStore.html
//! [`Json`]: codec/struct.Json.html
//! [`Bincode`]: codec/struct.Bincode.html
//! [`conformance`]: conformance/index.html

// The links above are plain relative links, not intra-doc ones: the items
// they name exist only with their features, and docs of any feature set
// must build without broken-link warnings (docs.rs builds all features).
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod codec;
mod config;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
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
#[cfg_attr(docsrs, doc(cfg(feature = "bincode")))]
pub use codec::Bincode;
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
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
#[cfg_attr(docsrs, doc(cfg(feature = "memcache")))]
pub use store::memcache::MemcacheStore;
pub use store::memory::MemoryStore;
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub use store::mongodb::MongoStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::redis::{RedisConnection, RedisStore};
pub use store::{FieldKey, FieldWrite, LoadedFields, LoadedNamespace, SessionStore, StoreError};
pub use typed_sessions_derive::SessionState;

pub(crate) use __private as private;
