//! `__expires`, the stored copy of the key's expiry: every write of the
//! expiry keeps it equal to the key's, and a session without it, with
//! garbage in it or with a stale one loads with the key's expiry or as
//! `Malformed`.

use super::*;
use crate::store::unix_millis;

/// `__expires` as stored, and the key's `PEXPIRETIME` (Redis 7).
async fn stored_expiry(store: &RedisStore, key: &str) -> (Value, Value) {
    let field = raw(store, &[b"HGET", key.as_bytes(), EXPIRES.as_bytes()]).await;
    let time = raw(store, &[b"PEXPIRETIME", key.as_bytes()]).await;
    (field, time)
}

fn millis_text(time: SystemTime) -> Value {
    Value::BulkString(unix_millis(time).to_string().into_bytes())
}

fn millis_int(time: SystemTime) -> Value {
    Value::Int(i64::try_from(unix_millis(time)).unwrap())
}

/// Every operation that sets the key's expiry writes the same
/// milliseconds to `__expires`, and a load returns them exactly.
async fn expires_field_follows_every_expiry_write(store: RedisStore) {
    let (from, to, from_key, to_key) = session(&store).await;
    let created = raw(&store, &[b"HGET", from_key.as_bytes(), MARKER.as_bytes()]).await;
    let created = parse_millis(&created).unwrap();
    let check = |key: String, id: SessionId, expires: SystemTime| {
        let store = store.clone();
        async move {
            assert_eq!(
                stored_expiry(&store, &key).await,
                (millis_text(expires), millis_int(expires))
            );
            let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
            assert_eq!(unix_millis(loaded.expires_at), unix_millis(expires));
            assert_eq!(loaded.created_at, created);
        }
    };
    let expires = in_secs(70);
    assert!(store.update(&from, &[], Some(expires)).await.unwrap());
    check(from_key.clone(), from.clone(), expires).await;
    let expires = in_secs(80);
    assert!(
        store
            .update(&from, &[set("b", b"2")], Some(expires))
            .await
            .unwrap()
    );
    check(from_key.clone(), from.clone(), expires).await;
    let expires = in_secs(90);
    assert!(store.touch(&from, expires).await.unwrap());
    check(from_key.clone(), from.clone(), expires).await;
    // A rename on a single server, a cross-slot copy on a cluster.
    let expires = in_secs(100);
    assert!(store.move_to(&from, &to, expires).await.unwrap());
    check(to_key, to.clone(), expires).await;
    // And a create.
    let id = SessionId::generate().unwrap();
    let expires = in_secs(110);
    store
        .create(&id, &[set("a", b"1")], created, expires)
        .await
        .unwrap();
    check(store.key(&id), id, expires).await;
}

#[tokio::test]
async fn single_expires_field_follows_every_expiry_write() {
    expires_field_follows_every_expiry_write(single().await).await;
}

#[tokio::test]
async fn cluster_expires_field_follows_every_expiry_write() {
    expires_field_follows_every_expiry_write(cluster().await).await;
}

/// A session an earlier version wrote (marker, fields and the key's
/// expiry, no `__expires`) loads with the key's expiry, never as one
/// that does not expire; its next write or touch adds `__expires`.
async fn session_without_expires_field_loads_with_the_key_expiry(store: RedisStore) {
    let id = SessionId::generate().unwrap();
    let key = store.key(&id);
    let created = SystemTime::now() - Duration::from_secs(30);
    let expires = in_secs(45);
    let created_text = unix_millis(created).to_string();
    let expires_text = unix_millis(expires).to_string();
    let k = key.as_bytes();
    raw(&store, &[b"HSET", k, b"__created", created_text.as_bytes()]).await;
    raw(&store, &[b"HSET", k, b"ns.a", b"old"]).await;
    raw(&store, &[b"PEXPIREAT", k, expires_text.as_bytes()]).await;

    let loaded = store.load(&id, "ns", &["a", "b"]).await.unwrap().unwrap();
    assert_eq!(
        owned(loaded.values),
        vec![Some(b"old".to_vec()), None],
        "fields of an old session"
    );
    assert_eq!(unix_millis(loaded.created_at), unix_millis(created));
    // From PTTL and this machine's clock: exact to the round trip.
    let off = loaded
        .expires_at
        .duration_since(expires)
        .unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_millis(500), "expiry off by {off:?}");
    // The namespace load reads the expiry the same way.
    let loaded = store.load_namespace(&id, "ns").await.unwrap().unwrap();
    assert_eq!(loaded.fields, vec![("a".to_owned(), "old".into())]);
    assert_eq!(unix_millis(loaded.created_at), unix_millis(created));
    let off = loaded
        .expires_at
        .duration_since(expires)
        .unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_millis(500), "expiry off by {off:?}");

    let touched = in_secs(55);
    assert!(store.touch(&id, touched).await.unwrap());
    assert_eq!(
        stored_expiry(&store, &key).await,
        (millis_text(touched), millis_int(touched))
    );
    let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
    assert_eq!(unix_millis(loaded.expires_at), unix_millis(touched));

    // An old session whose key expiry was removed from outside: far
    // in the future, as before.
    let id = SessionId::generate().unwrap();
    let key = store.key(&id);
    let k = key.as_bytes();
    raw(&store, &[b"HSET", k, b"__created", created_text.as_bytes()]).await;
    let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
    assert!(loaded.expires_at > in_secs(100 * 365 * 24 * 3600));
    // An update adds `__expires` (and the key's expiry) too.
    let expires = in_secs(65);
    assert!(
        store
            .update(&id, &[set("a", b"1")], Some(expires))
            .await
            .unwrap()
    );
    assert_eq!(
        stored_expiry(&store, &key).await,
        (millis_text(expires), millis_int(expires))
    );
}

#[tokio::test]
async fn single_session_without_expires_field_loads_with_the_key_expiry() {
    session_without_expires_field_loads_with_the_key_expiry(single().await).await;
}

#[tokio::test]
async fn cluster_session_without_expires_field_loads_with_the_key_expiry() {
    session_without_expires_field_loads_with_the_key_expiry(cluster().await).await;
}

/// Anything but decimal milliseconds in `__expires` is `Malformed`,
/// never a panic and never a made-up expiry; the next write replaces it.
#[tokio::test]
async fn garbage_in_expires_is_malformed_until_the_next_write() {
    let store = single().await;
    let garbage: [&[u8]; 7] = [
        b"soon",
        b"",
        b"-5",
        b"1.5e12",
        b" 1795647679583",
        b"99999999999999999999999",
        b"\xff\xfe",
    ];
    for bad in garbage {
        let id = SessionId::generate().unwrap();
        store
            .create(&id, &[set("a", b"1")], SystemTime::now(), in_a_minute())
            .await
            .unwrap();
        let key = store.key(&id);
        raw(&store, &[b"HSET", key.as_bytes(), b"__expires", bad]).await;
        let result = store.load(&id, "ns", &["a"]).await;
        assert!(
            matches!(result, Err(StoreError::Malformed(_))),
            "{bad:?}: {result:?}"
        );
        assert!(store.touch(&id, in_a_minute()).await.unwrap());
        let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
        assert_eq!(owned(loaded.values), vec![Some(b"1".to_vec())]);
    }
}

/// `__expires` in the past while Redis still holds the key (an earlier
/// version extended the key only): the key's expiry decides; once the
/// key has no time left either, the session is gone.
#[tokio::test]
async fn a_stale_expires_field_defers_to_the_key_expiry() {
    let store = single().await;
    let id = SessionId::generate().unwrap();
    store
        .create(&id, &[set("a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    let key = store.key(&id);
    let past = unix_millis(SystemTime::now() - Duration::from_secs(1)).to_string();
    raw(
        &store,
        &[b"HSET", key.as_bytes(), b"__expires", past.as_bytes()],
    )
    .await;
    let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
    assert_eq!(owned(loaded.values), vec![Some(b"1".to_vec())]);
    let left = loaded.expires_at.duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(50), "{left:?}");
    // An expiry that has really passed: Redis drops the key.
    raw(&store, &[b"PEXPIRE", key.as_bytes(), b"1"]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.load(&id, "ns", &["a"]).await.unwrap(), None);
}
