//! Cases for [`SessionStore::load_namespace`]: exactly the namespace's
//! fields, whatever their names and however many, and nothing for a
//! session that is not there.

use std::time::{Duration, SystemTime};

use super::{NS, OTHER_NS, assert_close, bytes, in_a_minute, new_id, remove, set};
use crate::id::SessionId;
use crate::store::{EXPIRY_FIELD, FieldKey, FieldWrite, LoadedNamespace, SessionStore};

async fn load_namespace<S: SessionStore + ?Sized>(
    store: &S,
    id: &SessionId,
    namespace: &str,
) -> Option<LoadedNamespace> {
    store
        .load_namespace(id, namespace)
        .await
        .expect("load_namespace")
}

/// A namespace's fields as loaded, sorted by name (stores may return any
/// order), as text pairs.
async fn namespace_fields<S: SessionStore + ?Sized>(
    store: &S,
    id: &SessionId,
    namespace: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut fields: Vec<(String, Vec<u8>)> = load_namespace(store, id, namespace)
        .await
        .expect("session exists")
        .fields
        .into_iter()
        .map(|(name, value)| (name, value.to_vec()))
        .collect();
    fields.sort();
    fields
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    expected
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
        .collect()
}

pub async fn load_namespace_returns_exactly_that_namespace<S: SessionStore + ?Sized>(store: &S) {
    // Namespaces whose names start alike must not leak into each other.
    const LONGER_NS: &str = "confx";
    const SHORTER_NS: &str = "con";
    let id = new_id();
    let created = SystemTime::now() - Duration::from_secs(5);
    let expires = in_a_minute();
    store
        .create(
            &id,
            &[
                set(NS, "a", b"1"),
                set(NS, "b", b"2"),
                set(OTHER_NS, "a", b"other"),
                set(LONGER_NS, "c", b"longer"),
                set(SHORTER_NS, "d", b"shorter"),
                FieldWrite {
                    key: EXPIRY_FIELD,
                    value: Some(b"remembered"),
                },
            ],
            created,
            expires,
        )
        .await
        .unwrap();
    let loaded = load_namespace(store, &id, NS)
        .await
        .expect("session exists");
    assert_close(loaded.created_at, created, "created_at");
    assert_close(loaded.expires_at, expires, "expires_at");
    assert_eq!(loaded.expiry, bytes("remembered"), "the remembered expiry");
    assert_eq!(
        namespace_fields(store, &id, NS).await,
        pairs(&[("a", "1"), ("b", "2")])
    );
    assert_eq!(
        namespace_fields(store, &id, OTHER_NS).await,
        pairs(&[("a", "other")])
    );
    assert_eq!(
        namespace_fields(store, &id, LONGER_NS).await,
        pairs(&[("c", "longer")])
    );
    assert_eq!(
        namespace_fields(store, &id, SHORTER_NS).await,
        pairs(&[("d", "shorter")])
    );
    // A namespace the session does not hold: the session, with no fields.
    assert_eq!(namespace_fields(store, &id, "unused").await, vec![]);
    // Updates show: a set field, a removed one, an added one.
    assert!(
        store
            .update(
                &id,
                &[set(NS, "a", b"one"), remove(NS, "b"), set(NS, "c", b"3")],
                None,
            )
            .await
            .unwrap()
    );
    assert_eq!(
        namespace_fields(store, &id, NS).await,
        pairs(&[("a", "one"), ("c", "3")])
    );
    // Removing every field leaves a session with an empty namespace.
    assert!(
        store
            .update(&id, &[remove(NS, "a"), remove(NS, "c")], None)
            .await
            .unwrap()
    );
    assert_eq!(namespace_fields(store, &id, NS).await, vec![]);
    assert_eq!(
        namespace_fields(store, &id, OTHER_NS).await,
        pairs(&[("a", "other")])
    );
}

pub async fn load_namespace_of_missing_expired_deleted_or_moved_session_is_none<
    S: SessionStore + ?Sized,
>(
    store: &S,
) {
    assert_eq!(load_namespace(store, &new_id(), NS).await, None);

    let deleted = new_id();
    store
        .create(
            &deleted,
            &[set(NS, "a", b"1")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    store.delete(&deleted).await.unwrap();
    assert_eq!(load_namespace(store, &deleted, NS).await, None);

    let old = new_id();
    store
        .create(
            &old,
            &[set(NS, "a", b"1")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let new = new_id();
    assert!(store.move_to(&old, &new, in_a_minute()).await.unwrap());
    assert_eq!(load_namespace(store, &old, NS).await, None);
    assert_eq!(
        namespace_fields(store, &new, NS).await,
        pairs(&[("a", "1")])
    );

    let expiring = new_id();
    store
        .create(
            &expiring,
            &[set(NS, "a", b"1")],
            SystemTime::now(),
            SystemTime::now() + Duration::from_millis(1500),
        )
        .await
        .unwrap();
    assert!(load_namespace(store, &expiring, NS).await.is_some());
    // Expiry is about time passing: wait past it (stores may round to seconds).
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        load_namespace(store, &expiring, NS).await,
        None,
        "expired session returned"
    );
}

pub async fn load_namespace_of_many_fields_with_any_names<S: SessionStore + ?Sized>(store: &S) {
    // More fields than one Lua `unpack` or one protocol chunk takes, names
    // in several scripts and with the characters escaping schemes use,
    // binary values.
    let mut names: Vec<String> = (0..1500).map(|i| format!("k{i}")).collect();
    names.extend(["ключ", "鍵", "a b", "%2E", "emoji 🎉", "\\", "x-y_z", "a:b"].map(str::to_owned));
    let binary: Vec<u8> = (0..=255u8).chain([0, b'\r', b'\n']).collect();
    let id = new_id();
    let writes: Vec<FieldWrite<'_>> = names
        .iter()
        .map(|name| FieldWrite {
            key: FieldKey {
                namespace: NS,
                field: name,
            },
            value: Some(if name == "a b" {
                &binary[..]
            } else {
                name.as_bytes()
            }),
        })
        .collect();
    store
        .create(&id, &writes, SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    let mut expected: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|name| {
            let value = if name == "a b" {
                binary.clone()
            } else {
                name.as_bytes().to_vec()
            };
            (name.clone(), value)
        })
        .collect();
    expected.sort();
    assert_eq!(namespace_fields(store, &id, NS).await, expected);
}
