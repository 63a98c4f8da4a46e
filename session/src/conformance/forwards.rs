//! Cases for the remembered expiry ([`EXPIRY_FIELD`]) and the forward a
//! move leaves behind ([`SessionStore::forwarded`]).

use std::time::{Duration, SystemTime};

use super::{NS, OTHER_NS, bytes, in_a_minute, load, new_id, set, values};
use crate::store::{EXPIRY_FIELD, FORWARD_WINDOW, FieldKey, FieldWrite, SessionStore};

fn expiry(value: &[u8]) -> FieldWrite<'_> {
    FieldWrite {
        key: EXPIRY_FIELD,
        value: Some(value),
    }
}

/// The reserved field comes back with every namespace's load (the dict-like
/// `Session`'s reserved one too), follows
/// updates and removals, and moves with the session.
pub async fn remembered_expiry_loads_with_any_namespace<S: SessionStore + ?Sized>(store: &S) {
    let plain = new_id();
    store
        .create(
            &plain,
            &[set(NS, "a", b"1")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let found = load(store, &plain, NS, &["a"]).await.unwrap();
    assert_eq!(found.expiry, None, "a session stored without it has none");

    let id = new_id();
    store
        .create(
            &id,
            &[set(NS, "a", b"1"), expiry(b"first")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    for namespace in [NS, OTHER_NS] {
        let found = load(store, &id, namespace, &["a"]).await.unwrap();
        assert_eq!(found.expiry, bytes("first"), "loaded with {namespace}");
    }
    for namespace in [NS, crate::DICT_NAMESPACE] {
        let found = store.load_namespace(&id, namespace).await.unwrap();
        let found = found.unwrap_or_else(|| panic!("{namespace}: no session"));
        assert_eq!(found.expiry, bytes("first"), "{namespace} loaded alone");
    }
    assert_eq!(values(store, &id, NS, &["a"]).await, vec![bytes("1")]);

    assert!(store.update(&id, &[expiry(b"second")], None).await.unwrap());
    let to = new_id();
    assert!(store.move_to(&id, &to, in_a_minute()).await.unwrap());
    let found = load(store, &to, OTHER_NS, &[]).await.unwrap();
    assert_eq!(found.expiry, bytes("second"), "moved with the session");

    let removal = FieldWrite {
        key: EXPIRY_FIELD,
        value: None,
    };
    assert!(store.update(&to, &[removal], None).await.unwrap());
    assert_eq!(load(store, &to, NS, &["a"]).await.unwrap().expiry, None);
    assert_eq!(values(store, &to, NS, &["a"]).await, vec![bytes("1")]);
}

/// After a move the old id forwards to the new one, but reads, updates,
/// touches and moves of the old id still find no session.
pub async fn move_leaves_a_forward_that_is_not_a_session<S: SessionStore + ?Sized>(store: &S) {
    let from = new_id();
    store
        .create(
            &from,
            &[set(NS, "a", b"1")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    assert_eq!(store.forwarded(&from).await.unwrap(), None, "live session");
    let to = new_id();
    assert!(store.move_to(&from, &to, in_a_minute()).await.unwrap());

    assert_eq!(store.forwarded(&from).await.unwrap(), Some(to.clone()));
    assert_eq!(store.forwarded(&to).await.unwrap(), None);
    assert_eq!(store.forwarded(&new_id()).await.unwrap(), None);
    assert!(load(store, &from, NS, &["a"]).await.is_none());
    assert!(
        !store
            .update(&from, &[set(NS, "a", b"2")], None)
            .await
            .unwrap()
    );
    assert!(!store.touch(&from, in_a_minute()).await.unwrap());
    assert!(
        !store
            .move_to(&from, &new_id(), in_a_minute())
            .await
            .unwrap()
    );
    assert_eq!(values(store, &to, NS, &["a"]).await, vec![bytes("1")]);
}

/// `delete` leaves no forward, removes one from the id it deletes, and a
/// forward to a deleted session does not bring it back.
pub async fn delete_leaves_no_forward<S: SessionStore + ?Sized>(store: &S) {
    let id = new_id();
    store
        .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    store.delete(&id).await.unwrap();
    assert_eq!(store.forwarded(&id).await.unwrap(), None);

    let from = new_id();
    store
        .create(
            &from,
            &[set(NS, "a", b"1")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let to = new_id();
    assert!(store.move_to(&from, &to, in_a_minute()).await.unwrap());
    store.delete(&to).await.unwrap();
    assert_eq!(store.forwarded(&from).await.unwrap(), Some(to.clone()));
    assert!(
        !store
            .update(&to, &[set(NS, "a", b"2")], None)
            .await
            .unwrap()
    );
    assert!(load(store, &to, NS, &["a"]).await.is_none(), "resurrected");

    store.delete(&from).await.unwrap();
    assert_eq!(store.forwarded(&from).await.unwrap(), None);
}

/// The forward ends with [`FORWARD_WINDOW`].
pub async fn forward_ends_with_its_window<S: SessionStore + ?Sized>(store: &S) {
    let from = new_id();
    store
        .create(
            &from,
            &[set(NS, "a", b"1")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let to = new_id();
    assert!(store.move_to(&from, &to, in_a_minute()).await.unwrap());
    let moved = std::time::Instant::now();
    assert_eq!(store.forwarded(&from).await.unwrap(), Some(to.clone()));
    // A time limit has no signal to wait for; stores keep times to the
    // millisecond, so a short margin past the window is enough.
    tokio::time::sleep(
        FORWARD_WINDOW.saturating_sub(moved.elapsed()) + Duration::from_millis(1100),
    )
    .await;
    assert_eq!(store.forwarded(&from).await.unwrap(), None);
    assert_eq!(values(store, &to, NS, &["a"]).await, vec![bytes("1")]);
}

/// Writers of the old id racing a move, doing what the layer does when an
/// update finds no session (follow the forward, update the new id), lose
/// nothing, whichever side of the move each write lands on.
pub async fn writes_racing_a_move_all_survive<S: SessionStore + ?Sized>(store: &S) {
    const WRITERS: usize = 16;
    let from = new_id();
    store
        .create(
            &from,
            &[set(NS, "seed", b"x")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let to = new_id();
    let names: Vec<String> = (0..WRITERS).map(|i| format!("w{i}")).collect();
    let writers = names.iter().map(|name| {
        let from = &from;
        async move {
            let write = FieldWrite {
                key: FieldKey {
                    namespace: NS,
                    field: name,
                },
                value: Some(name.as_bytes()),
            };
            if store.update(from, &[write], None).await.unwrap() {
                return;
            }
            let target = store.forwarded(from).await.unwrap();
            let target = target.unwrap_or_else(|| panic!("{name}: no session and no forward"));
            assert!(
                store.update(&target, &[write], None).await.unwrap(),
                "{name}: the forward leads nowhere"
            );
        }
    });
    let mover = async {
        tokio::task::yield_now().await;
        assert!(store.move_to(&from, &to, in_a_minute()).await.unwrap());
    };
    futures_util::future::join(futures_util::future::join_all(writers), mover).await;
    let fields: Vec<&str> = names.iter().map(String::as_str).collect();
    let stored = values(store, &to, NS, &fields).await;
    for (name, value) in names.iter().zip(stored) {
        assert_eq!(value, bytes(name), "write to {name} lost");
    }
    assert!(load(store, &from, NS, &["seed"]).await.is_none());
}
