//! The store conformance suite: behavioural tests every [`SessionStore`]
//! must pass, including a user's own. Feature `conformance`.
//!
//! Each case is a public async function taking the store; the
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro expands
//! to one `#[tokio::test]` per case. Cases use fresh random ids, so they can
//! share one backend and run in parallel.
//!
//! ```no_run
//! // tests/memory_conformance.rs (needs tokio with the `macros` and `rt-multi-thread` features)
//! typed_sessions::store_conformance_tests!(async { typed_sessions::MemoryStore::default() });
//! ```
//!
//! The cases panic on failure, as tests do.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, SystemTime};

use crate::id::SessionId;
use crate::store::{Bytes, FieldKey, FieldWrite, LoadedFields, SessionStore, StoreError};

mod forwards;
mod index;
mod namespace;
pub use forwards::*;
pub use index::*;
// By name rather than `*`: the public API lists these cases where they
// were before they moved to a module of their own.
pub use namespace::{
    load_namespace_of_many_fields_with_any_names,
    load_namespace_of_missing_expired_deleted_or_moved_session_is_none,
    load_namespace_returns_exactly_that_namespace,
};

/// Expands to a module `conformance` with one `#[tokio::test]` per case of
/// the suite, each calling `$make.await` for its store. `$make` is an
/// expression of a future that yields the store, e.g. `async { MyStore::new() }`.
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            load_of_missing_session_is_none,
            create_then_load_returns_fields_in_order,
            create_never_overwrites,
            update_changes_only_named_fields,
            update_of_missing_session_creates_nothing,
            update_without_expiry_keeps_the_stored_one,
            expired_session_is_gone,
            touch_extends_without_changing_fields,
            delete_removes_every_namespace,
            move_keeps_data_and_retires_old_id,
            concurrent_writers_of_different_fields_all_survive,
            values_are_binary_safe_and_large,
            remembered_expiry_loads_with_any_namespace,
            move_leaves_a_forward_that_is_not_a_session,
            delete_leaves_no_forward,
            forward_ends_with_its_window,
            writes_racing_a_move_all_survive,
            load_namespace_returns_exactly_that_namespace,
            load_namespace_of_missing_expired_deleted_or_moved_session_is_none,
            load_namespace_of_many_fields_with_any_names,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store = $make.await;
                    $crate::conformance::$case(&store).await;
                }
            )*
        }
    };
}

const NS: &str = "conf";
const OTHER_NS: &str = "other";

fn new_id() -> SessionId {
    SessionId::generate().expect("randomness")
}

fn key(namespace: &'static str, field: &'static str) -> FieldKey<'static> {
    FieldKey { namespace, field }
}

fn set<'a>(namespace: &'static str, field: &'static str, value: &'a [u8]) -> FieldWrite<'a> {
    FieldWrite {
        key: key(namespace, field),
        value: Some(value),
    }
}

fn remove(namespace: &'static str, field: &'static str) -> FieldWrite<'static> {
    FieldWrite {
        key: key(namespace, field),
        value: None,
    }
}

fn in_a_minute() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

async fn load<S: SessionStore + ?Sized>(
    store: &S,
    id: &SessionId,
    namespace: &str,
    fields: &[&str],
) -> Option<LoadedFields> {
    store.load(id, namespace, fields).await.expect("load")
}

async fn values<S: SessionStore + ?Sized>(
    store: &S,
    id: &SessionId,
    namespace: &str,
    fields: &[&str],
) -> Vec<Option<Bytes>> {
    load(store, id, namespace, fields)
        .await
        .expect("session exists")
        .values
}

fn bytes(text: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(text.as_bytes()))
}

/// Times within a second of each other: stores may keep seconds only.
fn assert_close(actual: SystemTime, expected: SystemTime, what: &str) {
    let diff = actual
        .duration_since(expected)
        .unwrap_or_else(|e| e.duration());
    assert!(
        diff <= Duration::from_millis(1100),
        "{what} off by {diff:?}"
    );
}

pub async fn load_of_missing_session_is_none<S: SessionStore + ?Sized>(store: &S) {
    assert_eq!(load(store, &new_id(), NS, &["a"]).await, None);
}

pub async fn create_then_load_returns_fields_in_order<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    let created = SystemTime::now();
    let expires = in_a_minute();
    store
        .create(
            &id,
            &[
                set(NS, "a", b"1"),
                set(NS, "b", b"2"),
                set(OTHER_NS, "a", b"other"),
            ],
            created,
            expires,
        )
        .await
        .unwrap();
    let loaded = load(store, &id, NS, &["b", "missing", "a"]).await.unwrap();
    assert_eq!(loaded.values, vec![bytes("2"), None, bytes("1")]);
    assert_close(loaded.created_at, created, "created_at");
    assert_close(loaded.expires_at, expires, "expires_at");
    assert_eq!(
        values(store, &id, OTHER_NS, &["a"]).await,
        vec![bytes("other")]
    );
    // A namespace with nothing stored still belongs to an existing session.
    assert_eq!(values(store, &id, "empty", &["x"]).await, vec![None]);
    assert_eq!(
        values(store, &id, NS, &[]).await,
        Vec::<Option<Bytes>>::new()
    );
}

pub async fn create_never_overwrites<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    let now = SystemTime::now();
    store
        .create(&id, &[set(NS, "a", b"first")], now, in_a_minute())
        .await
        .unwrap();
    let second = store
        .create(&id, &[set(NS, "a", b"second")], now, in_a_minute())
        .await;
    assert!(matches!(second, Err(StoreError::IdExists)), "{second:?}");
    assert_eq!(values(store, &id, NS, &["a"]).await, vec![bytes("first")]);
}

pub async fn update_changes_only_named_fields<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    store
        .create(
            &id,
            &[
                set(NS, "a", b"1"),
                set(NS, "b", b"2"),
                set(NS, "c", b"3"),
                set(OTHER_NS, "a", b"o"),
            ],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let expires = SystemTime::now() + Duration::from_secs(120);
    assert!(
        store
            .update(
                &id,
                &[set(NS, "a", b"10"), remove(NS, "b"), set(NS, "d", b"4")],
                Some(expires)
            )
            .await
            .unwrap()
    );
    let loaded = load(store, &id, NS, &["a", "b", "c", "d"]).await.unwrap();
    assert_eq!(
        loaded.values,
        vec![bytes("10"), None, bytes("3"), bytes("4")]
    );
    assert_close(loaded.expires_at, expires, "expires_at after update");
    assert_eq!(values(store, &id, OTHER_NS, &["a"]).await, vec![bytes("o")]);
    // Removing a field that is not there, and an empty update, are fine.
    assert!(
        store
            .update(&id, &[remove(NS, "zzz")], Some(expires))
            .await
            .unwrap()
    );
    assert!(store.update(&id, &[], Some(expires)).await.unwrap());
    assert_eq!(values(store, &id, NS, &["c"]).await, vec![bytes("3")]);
}

pub async fn update_of_missing_session_creates_nothing<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    assert!(
        !store
            .update(&id, &[set(NS, "a", b"1")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert!(!store.touch(&id, in_a_minute()).await.unwrap());
    assert_eq!(load(store, &id, NS, &["a"]).await, None);
}

pub async fn update_without_expiry_keeps_the_stored_one<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    let expires = SystemTime::now() + Duration::from_secs(3600);
    store
        .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), expires)
        .await
        .unwrap();
    assert!(
        store
            .update(&id, &[set(NS, "a", b"2"), remove(NS, "b")], None)
            .await
            .unwrap()
    );
    let loaded = load(store, &id, NS, &["a"]).await.expect("session exists");
    assert_eq!(loaded.values, vec![bytes("2")]);
    assert_close(
        loaded.expires_at,
        expires,
        "expires_at after update without one",
    );
    // Nothing to write: only whether the session is there.
    assert!(store.update(&id, &[], None).await.unwrap());
    assert!(!store.update(&new_id(), &[], None).await.unwrap());
    let missing = new_id();
    assert!(
        !store
            .update(&missing, &[set(NS, "a", b"1")], None)
            .await
            .unwrap()
    );
    assert_eq!(load(store, &missing, NS, &["a"]).await, None);
}

pub async fn expired_session_is_gone<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    let expires = SystemTime::now() + Duration::from_millis(1500);
    store
        .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), expires)
        .await
        .unwrap();
    assert!(load(store, &id, NS, &["a"]).await.is_some());
    // Expiry is about time passing: wait past it (stores may round to seconds).
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        load(store, &id, NS, &["a"]).await,
        None,
        "expired session returned"
    );
    assert!(
        !store
            .update(&id, &[set(NS, "a", b"2")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert!(!store.touch(&id, in_a_minute()).await.unwrap());
    assert_eq!(
        load(store, &id, NS, &["a"]).await,
        None,
        "expired session resurrected"
    );
    // Its id may be used for a brand-new session.
    store
        .create(
            &id,
            &[set(NS, "a", b"new")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    assert_eq!(values(store, &id, NS, &["a"]).await, vec![bytes("new")]);
}

pub async fn touch_extends_without_changing_fields<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    store
        .create(
            &id,
            &[set(NS, "a", b"1")],
            SystemTime::now(),
            SystemTime::now() + Duration::from_millis(1500),
        )
        .await
        .unwrap();
    let extended = in_a_minute();
    assert!(store.touch(&id, extended).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let loaded = load(store, &id, NS, &["a"])
        .await
        .expect("touched session expired");
    assert_eq!(loaded.values, vec![bytes("1")]);
    assert_close(loaded.expires_at, extended, "expires_at after touch");
}

pub async fn delete_removes_every_namespace<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    store
        .create(
            &id,
            &[set(NS, "a", b"1"), set(OTHER_NS, "b", b"2")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    store.delete(&id).await.unwrap();
    assert_eq!(load(store, &id, NS, &["a"]).await, None);
    assert_eq!(load(store, &id, OTHER_NS, &["b"]).await, None);
    store.delete(&id).await.unwrap();
    store.delete(&new_id()).await.unwrap();
    // No resurrection: a slower request's write after the delete changes nothing.
    assert!(
        !store
            .update(&id, &[set(NS, "a", b"late")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert!(!store.touch(&id, in_a_minute()).await.unwrap());
    assert_eq!(load(store, &id, NS, &["a"]).await, None);
}

pub async fn move_keeps_data_and_retires_old_id<S: SessionStore + ?Sized>(store: &S) {
    let old = new_id();
    let created = SystemTime::now() - Duration::from_secs(30);
    store
        .create(
            &old,
            &[set(NS, "a", b"1"), set(OTHER_NS, "b", b"2")],
            created,
            in_a_minute(),
        )
        .await
        .unwrap();
    let new = new_id();
    let expires = SystemTime::now() + Duration::from_secs(90);
    assert!(store.move_to(&old, &new, expires).await.unwrap());
    let loaded = load(store, &new, NS, &["a"]).await.expect("moved session");
    assert_eq!(loaded.values, vec![bytes("1")]);
    assert_close(loaded.created_at, created, "created_at kept by move");
    assert_close(loaded.expires_at, expires, "expires_at set by move");
    assert_eq!(
        values(store, &new, OTHER_NS, &["b"]).await,
        vec![bytes("2")]
    );
    assert_eq!(
        load(store, &old, NS, &["a"]).await,
        None,
        "old id still answers"
    );
    // No resurrection of the old id, and the old id cannot be moved again.
    assert!(
        !store
            .update(&old, &[set(NS, "a", b"late")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(load(store, &old, NS, &["a"]).await, None);
    assert!(!store.move_to(&old, &new_id(), in_a_minute()).await.unwrap());
    assert!(
        !store
            .move_to(&new_id(), &new_id(), in_a_minute())
            .await
            .unwrap()
    );
    assert_eq!(values(store, &new, NS, &["a"]).await, vec![bytes("1")]);
}

pub async fn concurrent_writers_of_different_fields_all_survive<S: SessionStore + ?Sized>(
    store: &S,
) {
    const WRITERS: usize = 12;
    const ROUNDS: usize = 3;
    let id = new_id();
    store
        .create(
            &id,
            &[set(NS, "seed", b"x")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let names: Vec<String> = (0..WRITERS).map(|i| format!("f{i}")).collect();
    for round in 0..ROUNDS {
        let writers = names.iter().map(|name| {
            let id = &id;
            async move {
                let value = format!("{name}-{round}");
                let write = FieldWrite {
                    key: FieldKey {
                        namespace: NS,
                        field: name,
                    },
                    value: Some(value.as_bytes()),
                };
                assert!(
                    store
                        .update(id, &[write], Some(in_a_minute()))
                        .await
                        .unwrap()
                );
            }
        });
        futures_util::future::join_all(writers).await;
    }
    let fields: Vec<&str> = names.iter().map(String::as_str).collect();
    let stored = values(store, &id, NS, &fields).await;
    for (name, value) in names.iter().zip(stored) {
        assert_eq!(
            value,
            bytes(&format!("{name}-{}", ROUNDS - 1)),
            "write to {name} lost"
        );
    }
    assert_eq!(values(store, &id, NS, &["seed"]).await, vec![bytes("x")]);
}

pub async fn values_are_binary_safe_and_large<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, b'\r', b'\n', b'.']).collect();
    let large: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    store
        .create(
            &id,
            &[
                set(NS, "bin", &binary),
                set(NS, "large", &large),
                set(NS, "empty", b""),
            ],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    assert_eq!(
        values(store, &id, NS, &["bin", "large", "empty"]).await,
        vec![
            Some(Bytes::from(binary.clone())),
            Some(Bytes::from(large.clone())),
            Some(Bytes::new())
        ]
    );
    assert!(
        store
            .update(&id, &[set(NS, "small", b"1")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        values(store, &id, NS, &["large"]).await,
        vec![Some(Bytes::from(large))]
    );
}
