//! Unit tests of the Redis store against the shared test servers, with
//! the helpers the theme modules below share.

use redis::cluster_routing::Slot;

use super::*;
use crate::store::{FieldKey, SessionStore};

mod cluster_move;
mod expiry;

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

/// A command on the store's own connection.
async fn raw(store: &RedisStore, args: &[&[u8]]) -> Value {
    let mut command = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for arg in &args[1..] {
        command.arg(*arg);
    }
    store.query(&command).await.unwrap()
}

fn in_secs(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

fn owned<B: AsRef<[u8]>>(values: Vec<Option<B>>) -> Vec<Option<Vec<u8>>> {
    values
        .into_iter()
        .map(|v| v.map(|b| b.as_ref().to_vec()))
        .collect()
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
