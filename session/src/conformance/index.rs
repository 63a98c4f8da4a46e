//! Cases for the session index ([`SessionStore::list_index`] and
//! [`SessionStore::end_index`]), for stores that keep one; run them with
//! [`store_index_conformance_tests!`](crate::store_index_conformance_tests).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use super::{NS, OTHER_NS, assert_close, bytes, in_a_minute, load, new_id, set, values};
use crate::id::SessionId;
use crate::store::{FieldKey, FieldWrite, INDEX_NAMESPACE, IndexKey, SessionStore, StoreError};

/// Expands to a module `index_conformance` with one `#[tokio::test]` per
/// index case, each calling `$make.await` for its store, as
/// [`store_conformance_tests!`](crate::store_conformance_tests) does.
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
#[macro_export]
macro_rules! store_index_conformance_tests {
    ($make:expr) => {
        mod index_conformance {
            #[allow(unused_imports)]
            use super::*;
            $crate::store_index_conformance_tests!(@cases $make;
                index_lists_exactly_the_sessions_holding_the_key,
                index_follows_entry_writes_and_removals,
                index_never_lists_deleted_moved_or_expired_sessions,
                end_index_ends_every_session_but_the_excepted_one,
                end_index_of_many_sessions_leaves_none,
                writes_without_an_entry_leave_the_index_alone,
                index_keys_are_binary_safe,
            );
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $make.await;
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

/// The write that sets `namespace`'s index entry to `key`.
fn entry<'a>(namespace: &'a str, key: &'a [u8]) -> FieldWrite<'a> {
    FieldWrite {
        key: FieldKey {
            namespace: INDEX_NAMESPACE,
            field: namespace,
        },
        value: Some(key),
    }
}

/// The write that removes `namespace`'s index entry.
fn no_entry(namespace: &str) -> FieldWrite<'_> {
    FieldWrite {
        key: FieldKey {
            namespace: INDEX_NAMESPACE,
            field: namespace,
        },
        value: None,
    }
}

/// A key no other test (or run) uses, so cases can share a backend.
fn unique_key() -> Vec<u8> {
    new_id().as_str().as_bytes().to_vec()
}

async fn create_with<S: SessionStore + ?Sized>(store: &S, writes: &[FieldWrite<'_>]) -> SessionId {
    let id = new_id();
    store
        .create(&id, writes, SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    id
}

async fn listed<S: SessionStore + ?Sized>(
    store: &S,
    namespace: &str,
    key: &[u8],
) -> BTreeSet<String> {
    store
        .list_index(IndexKey { namespace, key })
        .await
        .expect("list_index")
        .into_iter()
        .map(|found| found.id.as_str().to_owned())
        .collect()
}

fn ids(list: &[&SessionId]) -> BTreeSet<String> {
    list.iter().map(|id| id.as_str().to_owned()).collect()
}

/// Only sessions whose entry for that namespace holds that key are listed,
/// with their times; the entry is also an ordinary field.
pub async fn index_lists_exactly_the_sessions_holding_the_key<S: SessionStore + ?Sized>(store: &S) {
    let ada = unique_key();
    let bob = unique_key();
    let created_at = SystemTime::now();
    let expires_at = in_a_minute();
    let first = new_id();
    store
        .create(
            &first,
            &[set(NS, "a", b"1"), entry(NS, &ada)],
            created_at,
            expires_at,
        )
        .await
        .unwrap();
    let second = create_with(store, &[entry(NS, &ada)]).await;
    let bobs = create_with(store, &[entry(NS, &bob)]).await;
    // The same key under another namespace is another index.
    let other = create_with(store, &[entry(OTHER_NS, &ada)]).await;
    let _plain = create_with(store, &[set(NS, "a", &ada)]).await;

    assert_eq!(listed(store, NS, &ada).await, ids(&[&first, &second]));
    assert_eq!(listed(store, NS, &bob).await, ids(&[&bobs]));
    assert_eq!(listed(store, OTHER_NS, &ada).await, ids(&[&other]));
    assert!(listed(store, NS, &unique_key()).await.is_empty());

    let found = store
        .list_index(IndexKey {
            namespace: NS,
            key: &ada,
        })
        .await
        .unwrap();
    let first_found = found.iter().find(|found| found.id == first).unwrap();
    assert_close(first_found.created_at, created_at, "created_at");
    assert_close(first_found.expires_at, expires_at, "expires_at");
    assert_eq!(
        values(store, &first, NS, &["a"]).await,
        vec![bytes("1")],
        "an entry leaves the other fields alone"
    );
    let entry_field = values(store, &first, INDEX_NAMESPACE, &[NS]).await;
    assert_eq!(entry_field, vec![Some(ada.clone().into())]);
}

/// Changing a session's entry moves it to the new key; removing it takes
/// it out of the index.
pub async fn index_follows_entry_writes_and_removals<S: SessionStore + ?Sized>(store: &S) {
    let ada = unique_key();
    let bob = unique_key();
    let id = create_with(store, &[set(NS, "a", b"1"), entry(NS, &ada)]).await;
    let stays = create_with(store, &[entry(NS, &ada)]).await;

    assert!(store.update(&id, &[entry(NS, &bob)], None).await.unwrap());
    assert_eq!(listed(store, NS, &ada).await, ids(&[&stays]));
    assert_eq!(listed(store, NS, &bob).await, ids(&[&id]));

    assert!(store.update(&id, &[no_entry(NS)], None).await.unwrap());
    assert!(listed(store, NS, &bob).await.is_empty());
    assert_eq!(listed(store, NS, &ada).await, ids(&[&stays]));
    assert_eq!(values(store, &id, NS, &["a"]).await, vec![bytes("1")]);

    // Back again, with an expiry change in the same update.
    assert!(
        store
            .update(&id, &[entry(NS, &ada)], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(listed(store, NS, &ada).await, ids(&[&id, &stays]));
}

/// Deleted sessions and the old id of a moved one are never listed; the
/// new id is; an expired session is not listed, even before the backend
/// cleans it up.
pub async fn index_never_lists_deleted_moved_or_expired_sessions<S: SessionStore + ?Sized>(
    store: &S,
) {
    let ada = unique_key();
    let deleted = create_with(store, &[entry(NS, &ada)]).await;
    let moved = create_with(store, &[entry(NS, &ada)]).await;
    let expiring = new_id();
    store
        .create(
            &expiring,
            &[entry(NS, &ada)],
            SystemTime::now(),
            SystemTime::now() + Duration::from_millis(1500),
        )
        .await
        .unwrap();
    assert_eq!(
        listed(store, NS, &ada).await,
        ids(&[&deleted, &moved, &expiring])
    );

    store.delete(&deleted).await.unwrap();
    let to = new_id();
    assert!(store.move_to(&moved, &to, in_a_minute()).await.unwrap());
    assert_eq!(listed(store, NS, &ada).await, ids(&[&to, &expiring]));

    // Expiry is about time passing: wait past it (stores may round to seconds).
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(listed(store, NS, &ada).await, ids(&[&to]));
    assert_eq!(
        store
            .end_index(
                IndexKey {
                    namespace: NS,
                    key: &ada
                },
                None
            )
            .await
            .unwrap(),
        1,
        "ending counts only live sessions"
    );
}

/// `end_index` deletes every session of the key but the excepted one, and
/// nothing of other keys or namespaces.
pub async fn end_index_ends_every_session_but_the_excepted_one<S: SessionStore + ?Sized>(
    store: &S,
) {
    let ada = unique_key();
    let current = create_with(store, &[set(NS, "a", b"1"), entry(NS, &ada)]).await;
    let phone = create_with(store, &[entry(NS, &ada)]).await;
    let laptop = create_with(store, &[entry(NS, &ada), set(OTHER_NS, "b", b"2")]).await;
    let other_user = create_with(store, &[entry(NS, &unique_key())]).await;
    let other_namespace = create_with(store, &[entry(OTHER_NS, &ada)]).await;
    let index = IndexKey {
        namespace: NS,
        key: &ada,
    };

    assert_eq!(store.end_index(index, Some(&current)).await.unwrap(), 2);
    for gone in [&phone, &laptop] {
        assert_eq!(load(store, gone, NS, &[]).await, None, "ended");
        assert_eq!(
            load(store, gone, OTHER_NS, &["b"]).await,
            None,
            "ended whole"
        );
    }
    assert_eq!(values(store, &current, NS, &["a"]).await, vec![bytes("1")]);
    assert_eq!(listed(store, NS, &ada).await, ids(&[&current]));
    assert!(load(store, &other_user, NS, &[]).await.is_some());
    assert!(load(store, &other_namespace, NS, &[]).await.is_some());
    // Ending leaves no forward: the ended ids lead nowhere.
    assert_eq!(store.forwarded(&phone).await.unwrap(), None);

    assert_eq!(store.end_index(index, None).await.unwrap(), 1);
    assert_eq!(load(store, &current, NS, &[]).await, None);
    assert!(listed(store, NS, &ada).await.is_empty());
    assert_eq!(store.end_index(index, None).await.unwrap(), 0);
}

/// Many sessions of one key, some written concurrently with the listing:
/// every session that existed when `end_index` started is gone after it.
pub async fn end_index_of_many_sessions_leaves_none<S: SessionStore + ?Sized>(store: &S) {
    let ada = unique_key();
    let mut created = Vec::new();
    for _ in 0..40 {
        created.push(create_with(store, &[entry(NS, &ada)]).await);
    }
    let index = IndexKey {
        namespace: NS,
        key: &ada,
    };
    assert_eq!(listed(store, NS, &ada).await.len(), 40);
    let (ended, ()) = tokio::join!(store.end_index(index, None), async {
        for id in created.iter().step_by(3) {
            // Writes of other fields racing the end never bring a session back.
            let _ = store.update(id, &[set(NS, "a", b"late")], None).await;
        }
    });
    assert_eq!(ended.unwrap(), 40);
    for id in &created {
        assert_eq!(load(store, id, NS, &["a"]).await, None);
    }
    assert!(listed(store, NS, &ada).await.is_empty());
}

/// Updates, touches and moves without an entry keep a session's place in
/// the index.
pub async fn writes_without_an_entry_leave_the_index_alone<S: SessionStore + ?Sized>(store: &S) {
    let ada = unique_key();
    let id = create_with(store, &[entry(NS, &ada)]).await;
    assert!(
        store
            .update(&id, &[set(NS, "a", b"1"), set(OTHER_NS, "b", b"2")], None)
            .await
            .unwrap()
    );
    assert!(store.touch(&id, in_a_minute()).await.unwrap());
    assert!(
        store
            .update(&id, &[set(NS, "a", b"3")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(listed(store, NS, &ada).await, ids(&[&id]));
}

/// Keys are bytes: any byte, including ones that are not UTF-8, separators
/// and glob characters, and keys that are prefixes of each other are apart.
pub async fn index_keys_are_binary_safe<S: SessionStore + ?Sized>(store: &S) {
    let base = unique_key();
    let mut long = base.clone();
    long.extend_from_slice(b"*?[]{}:\0\xff\x80 ");
    let mut short = base.clone();
    short.push(b'*');
    let a = create_with(store, &[entry(NS, &long)]).await;
    let b = create_with(store, &[entry(NS, &short)]).await;
    let c = create_with(store, &[entry(NS, &base)]).await;
    assert_eq!(listed(store, NS, &long).await, ids(&[&a]));
    assert_eq!(listed(store, NS, &short).await, ids(&[&b]));
    assert_eq!(listed(store, NS, &base).await, ids(&[&c]));
}

/// What a store that keeps no index answers: [`StoreError::Unsupported`]
/// for entry writes and both index calls. Not part of the macro; a store
/// without an index calls it from a test of its own.
pub async fn index_is_refused<S: SessionStore + ?Sized>(store: &S) {
    let key = unique_key();
    let index = IndexKey {
        namespace: NS,
        key: &key,
    };
    assert!(matches!(
        store.list_index(index).await,
        Err(StoreError::Unsupported(_))
    ));
    assert!(matches!(
        store.end_index(index, None).await,
        Err(StoreError::Unsupported(_))
    ));
    let id = new_id();
    assert!(matches!(
        store
            .create(&id, &[entry(NS, &key)], SystemTime::now(), in_a_minute())
            .await,
        Err(StoreError::Unsupported(_))
    ));
    assert_eq!(load(store, &id, NS, &[]).await, None, "nothing created");
    let plain = create_with(store, &[set(NS, "a", b"1")]).await;
    assert!(matches!(
        store.update(&plain, &[entry(NS, &key)], None).await,
        Err(StoreError::Unsupported(_))
    ));
    assert_eq!(values(store, &plain, NS, &["a"]).await, vec![bytes("1")]);
}
