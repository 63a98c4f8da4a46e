use redis::cluster_routing::Slot;

use super::cluster::Step;
use super::*;
use crate::store::FieldKey;
use crate::store::{SessionStore, unix_millis};

async fn single() -> RedisStore {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    RedisStore::connect(&url)
        .await
        .expect("the Redis of scripts/test-servers.sh")
        .with_prefix("test:unit:")
}

async fn cluster() -> RedisStore {
    let urls = std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
        "redis://127.0.0.1:7000/,redis://127.0.0.1:7001/,redis://127.0.0.1:7002/".into()
    });
    let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
    RedisStore::connect_cluster(&urls)
        .await
        .expect("the Redis Cluster of scripts/test-servers.sh")
        .with_prefix("test:unit:")
}

fn in_a_minute() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

fn set<'a>(field: &'a str, value: &'a [u8]) -> FieldWrite<'a> {
    FieldWrite {
        key: FieldKey {
            namespace: "ns",
            field,
        },
        value: Some(value),
    }
}

/// A session and a fresh target id in different slots.
async fn session(store: &RedisStore) -> (SessionId, SessionId, String, String) {
    loop {
        let (from, to) = (
            SessionId::generate().unwrap(),
            SessionId::generate().unwrap(),
        );
        let (from_key, to_key) = (store.key(&from), store.key(&to));
        if Slot::for_key(&from_key) == Slot::for_key(&to_key) {
            continue;
        }
        store
            .create(&from, &[set("a", b"1")], SystemTime::now(), in_a_minute())
            .await
            .unwrap();
        return (from, to, from_key, to_key);
    }
}

async fn value(store: &RedisStore, id: &SessionId, field: &str) -> Option<Option<Vec<u8>>> {
    let loaded = store.load(id, "ns", &[field]).await.unwrap()?;
    loaded
        .values
        .into_iter()
        .next()
        .map(|v| v.map(|b| b.to_vec()))
}

fn expiry() -> u64 {
    unix_millis(in_a_minute())
}

#[tokio::test]
async fn write_between_copy_and_finish_makes_the_move_copy_again() {
    let store = cluster().await;
    let (from, to, from_key, to_key) = session(&store).await;
    let fields = store
        .copy_out(&from_key, "t1", None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .update(&from, &[set("b", b"late")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Retry
    );
    store.discard(&to_key, "t1").await.unwrap();
    assert_eq!(store.load(&to, "ns", &["a"]).await.unwrap(), None);
    // The whole move now carries the late write over.
    assert!(store.move_to(&from, &to, in_a_minute()).await.unwrap());
    assert_eq!(value(&store, &to, "b").await, Some(Some(b"late".to_vec())));
    assert_eq!(value(&store, &from, "a").await, None);
}

#[tokio::test]
async fn delete_during_the_move_wins() {
    let store = cluster().await;
    let (from, to, from_key, to_key) = session(&store).await;
    let fields = store
        .copy_out(&from_key, "t1", None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    store.delete(&from).await.unwrap();
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Gone
    );
    store.discard(&to_key, "t1").await.unwrap();
    assert_eq!(value(&store, &to, "a").await, None);
}

/// A step the cluster client retries after it already took effect (a
/// lost reply) reports the same outcome and does no harm.
#[tokio::test]
async fn repeated_steps_are_idempotent() {
    let store = cluster().await;
    let (from, to, from_key, to_key) = session(&store).await;
    let fields = store
        .copy_out(&from_key, "t1", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .copy_out(&from_key, "t1", None)
            .await
            .unwrap()
            .unwrap(),
        fields
    );
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .copy_in(&to_key, "t2", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Done
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Done
    );
    assert_eq!(value(&store, &to, "a").await, Some(Some(b"1".to_vec())));
    assert_eq!(value(&store, &from, "a").await, None);
    // Another move's token does not match the tombstone.
    assert_eq!(
        store.finish(&from_key, "t2", &to).await.unwrap(),
        Step::Gone
    );
}

/// While a retrying move holds writes off, an update waits; once the
/// move is done it reports the session gone, as after an atomic rename.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_waits_for_a_held_move_then_reports_it_gone() {
    let store = cluster().await;
    let (from, to, from_key, to_key) = session(&store).await;
    let fields = store
        .copy_out(&from_key, "t1", Some(Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap();
    let writer = {
        let (store, from) = (store.clone(), from.clone());
        tokio::spawn(async move {
            store
                .update(&from, &[set("b", b"late")], Some(in_a_minute()))
                .await
        })
    };
    // The writer is held off: it does not complete while the move runs.
    tokio::task::yield_now().await;
    assert!(!writer.is_finished());
    assert!(
        store
            .copy_in(&to_key, "t1", expiry(), &fields, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Done
    );
    assert!(
        !writer.await.unwrap().unwrap(),
        "write landed on a moved session"
    );
    // The lease field is not copied; the moved session takes writes.
    let mut con = match store.connection() {
        RedisConnection::Cluster(c) => c.clone(),
        RedisConnection::Single(_) => unreachable!(),
    };
    let frozen: bool = redis::cmd("HEXISTS")
        .arg(&to_key)
        .arg(FROZEN)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(!frozen);
    assert!(
        store
            .update(&to, &[set("b", b"new")], Some(in_a_minute()))
            .await
            .unwrap()
    );
}

/// A mover that died holding writes off blocks them only until its
/// lease ends; the write then lands and the stale mark is gone.
#[tokio::test]
async fn lease_of_a_dead_mover_runs_out() {
    let store = cluster().await;
    let (from, to, from_key, _to_key) = session(&store).await;
    store
        .copy_out(&from_key, "t1", Some(Duration::from_millis(300)))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .update(&from, &[set("b", b"after")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        value(&store, &from, "b").await,
        Some(Some(b"after".to_vec()))
    );
    assert_eq!(
        store.finish(&from_key, "t1", &to).await.unwrap(),
        Step::Retry
    );
}

/// A command on the store's own connection.
async fn raw(store: &RedisStore, args: &[&[u8]]) -> Value {
    let mut command = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for arg in &args[1..] {
        command.arg(*arg);
    }
    store.query(&command).await.unwrap()
}

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

fn in_secs(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
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

fn owned<B: AsRef<[u8]>>(values: Vec<Option<B>>) -> Vec<Option<Vec<u8>>> {
    values
        .into_iter()
        .map(|v| v.map(|b| b.as_ref().to_vec()))
        .collect()
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

/// A namespace load leaves out a field name that is not UTF-8, and
/// answers a key that is not a hash, or a marker that is not a time,
/// with `Malformed`.
#[tokio::test]
async fn namespace_load_of_odd_data() {
    let store = single().await;
    let id = SessionId::generate().unwrap();
    store
        .create(&id, &[set("a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    let key = store.key(&id);
    raw(&store, &[b"HSET", key.as_bytes(), b"ns.\xff\xfe", b"2"]).await;
    let loaded = store.load_namespace(&id, "ns").await.unwrap().unwrap();
    assert_eq!(loaded.fields, vec![("a".to_owned(), "1".into())]);

    raw(&store, &[b"HSET", key.as_bytes(), b"__created", b"soon"]).await;
    let result = store.load_namespace(&id, "ns").await;
    assert!(
        matches!(result, Err(StoreError::Malformed(_))),
        "{result:?}"
    );

    let id = SessionId::generate().unwrap();
    let key = store.key(&id);
    raw(&store, &[b"SET", key.as_bytes(), b"x", b"EX", b"60"]).await;
    let result = store.load_namespace(&id, "ns").await;
    assert!(
        matches!(result, Err(StoreError::Malformed(_))),
        "{result:?}"
    );
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

/// Creates, updates and moves of more fields than one Lua `unpack`
/// takes at once (the scripts write them in chunks).
async fn many_fields_in_one_write(store: RedisStore) {
    let names: Vec<String> = (0..1500).map(|i| format!("f{i}")).collect();
    let values: Vec<Vec<u8>> = (0..1500).map(|i| format!("v{i}").into_bytes()).collect();
    let writes: Vec<FieldWrite<'_>> = names
        .iter()
        .zip(&values)
        .map(|(name, value)| set(name, value))
        .collect();
    let fields: Vec<&str> = names.iter().map(String::as_str).collect();
    let (from, to, _from_key, _to_key) = session(&store).await;
    assert!(
        store
            .update(&from, &writes, Some(in_a_minute()))
            .await
            .unwrap()
    );
    let loaded = store.load(&from, "ns", &fields).await.unwrap().unwrap();
    assert_eq!(
        owned(loaded.values),
        values.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    // Remove the first 1200, rewrite the others.
    let mut changes: Vec<FieldWrite<'_>> = names[..1200]
        .iter()
        .map(|name| FieldWrite {
            key: FieldKey {
                namespace: "ns",
                field: name,
            },
            value: None,
        })
        .collect();
    changes.extend(names[1200..].iter().map(|name| set(name, b"new")));
    assert!(
        store
            .update(&from, &changes, Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert!(store.move_to(&from, &to, in_a_minute()).await.unwrap());
    let loaded = store.load(&to, "ns", &fields).await.unwrap().unwrap();
    let expected: Vec<Option<Vec<u8>>> = (0..1500)
        .map(|i| (i >= 1200).then(|| b"new".to_vec()))
        .collect();
    assert_eq!(owned(loaded.values), expected);
    let id = SessionId::generate().unwrap();
    store
        .create(&id, &writes, SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    let loaded = store.load(&id, "ns", &fields).await.unwrap().unwrap();
    assert_eq!(
        owned(loaded.values),
        values.iter().cloned().map(Some).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn single_many_fields_in_one_write() {
    many_fields_in_one_write(single().await).await;
}

#[tokio::test]
async fn cluster_many_fields_in_one_write() {
    many_fields_in_one_write(cluster().await).await;
}

/// The last write of a field wins, in `create` and in `update`.
#[tokio::test]
async fn last_write_of_a_field_wins() {
    let store = single().await;
    let id = SessionId::generate().unwrap();
    let remove_a = FieldWrite {
        key: FieldKey {
            namespace: "ns",
            field: "a",
        },
        value: None,
    };
    store
        .create(
            &id,
            &[set("a", b"1"), set("b", b"1"), set("b", b"2"), remove_a],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let loaded = store.load(&id, "ns", &["a", "b"]).await.unwrap().unwrap();
    assert_eq!(owned(loaded.values), vec![None, Some(b"2".to_vec())]);
    let writes = [remove_a, set("a", b"3"), set("b", b"4"), set("b", b"5")];
    assert!(
        store
            .update(&id, &writes, Some(in_a_minute()))
            .await
            .unwrap()
    );
    let loaded = store.load(&id, "ns", &["a", "b"]).await.unwrap().unwrap();
    assert_eq!(
        owned(loaded.values),
        vec![Some(b"3".to_vec()), Some(b"5".to_vec())]
    );
}

/// A cluster move cancelled at any point (the layer's timeout drops the
/// future) never loses the session: the old id still holds it, or the
/// move finished and the new id does. Writes to the old id go on (at
/// most after a lease), and a second move gets through.
#[tokio::test]
async fn cluster_move_cancelled_part_way_loses_nothing() {
    let store = cluster().await;
    let mut outcomes = [0_u32; 2];
    for step in 0..40_u32 {
        let (from, to, _from_key, _to_key) = session(&store).await;
        // Cancelled after a number of waits rather than a time: every wait
        // is a round trip, so the early steps stop the move part way on a
        // fast machine as on a slow one.
        let moved = after_waits(step, store.move_to(&from, &to, in_a_minute())).await;
        let holder = match moved {
            Some(result) => {
                assert!(result.unwrap());
                outcomes[1] += 1;
                &to
            }
            None => match value(&store, &from, "a").await {
                Some(_) => {
                    outcomes[0] += 1;
                    // Writes to the old id still land, and it moves.
                    assert!(
                        store
                            .update(&from, &[set("b", b"2")], Some(in_a_minute()))
                            .await
                            .unwrap()
                    );
                    let again = SessionId::generate().unwrap();
                    assert!(store.move_to(&from, &again, in_a_minute()).await.unwrap());
                    assert_eq!(value(&store, &again, "b").await, Some(Some(b"2".to_vec())));
                    continue;
                }
                // Cancelled after the finish took effect.
                None => &to,
            },
        };
        assert_eq!(value(&store, holder, "a").await, Some(Some(b"1".to_vec())));
        assert_eq!(value(&store, &from, "a").await, None);
    }
    println!(
        "cancelled before the finish: {}, moved: {}",
        outcomes[0], outcomes[1]
    );
    assert!(outcomes[0] > 0, "no move was cancelled part way");
}

/// Polls `future` until it has waited `waits` times, then drops it
/// (`None`), as the layer's timeout drops a store call.
async fn after_waits<F: std::future::Future>(waits: u32, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut waited = 0;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending if waited >= waits => std::task::Poll::Ready(None),
        std::task::Poll::Pending => {
            waited += 1;
            std::task::Poll::Pending
        }
    })
    .await
}

/// A `__frozen` lease no mover wrote (set from outside, far in the
/// future) does not hold an update forever: it gives up with
/// `Contention` once it has waited longer than any move holds writes.
#[tokio::test]
async fn update_gives_up_on_a_lease_no_move_ends() {
    let store = single().await;
    let id = SessionId::generate().unwrap();
    store
        .create(&id, &[set("a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    let key = store.key(&id);
    let far = unix_millis(in_secs(3600)).to_string();
    raw(
        &store,
        &[b"HSET", key.as_bytes(), FROZEN.as_bytes(), far.as_bytes()],
    )
    .await;
    let result = store
        .update(&id, &[set("a", b"2")], Some(in_a_minute()))
        .await;
    assert!(
        matches!(result, Err(StoreError::Contention(_))),
        "{result:?}"
    );
    assert_eq!(value(&store, &id, "a").await, Some(Some(b"1".to_vec())));
}
