//! RedisStore beyond the conformance suite: the stored layout, the bytes a
//! small update sends, corrupt data, and `move_to` edge cases on a single
//! server and on Redis Cluster. Uses the shared test servers (`REDIS_URL`,
//! `REDIS_CLUSTER_URLS`) and, for byte counts, a redis-server of its own.
#![cfg(feature = "redis")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod field_write;
use field_write::set;

mod own_server;
mod redis_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use redis::AsyncCommands;
use redis_support::{
    cluster, create, in_a_minute, new_id, raw, raw_cluster, redis_url, single, unix_millis,
};
use typed_sessions::store::Bytes;
use typed_sessions::store::redis::RedisStore;
use typed_sessions::{FieldWrite, SessionId, SessionStore, StoreError};

const PREFIX: &str = "test:store:";

/// `create` of `id` is refused as taken, whatever its key holds.
async fn create_is_refused(store: &RedisStore, id: &SessionId, write: FieldWrite<'_>) {
    let create = store
        .create(id, &[write], SystemTime::now(), in_a_minute())
        .await;
    assert!(matches!(create, Err(StoreError::IdExists)), "{create:?}");
}

#[tokio::test]
async fn layout_is_one_hash_with_marker_fields_and_pexpireat() {
    let store = single("test:layout:").await;
    let id = new_id();
    let created = SystemTime::now() - Duration::from_secs(5);
    let expires = SystemTime::now() + Duration::from_millis(45_678);
    store
        .create(
            &id,
            &[set("cart", "items", b"\x00\x01"), set("auth", "uid", b"7")],
            created,
            expires,
        )
        .await
        .unwrap();
    let key = format!("test:layout:{}", id.as_str());
    assert_eq!(store.key(&id), key);
    let mut con = raw(&redis_url()).await;
    let mut stored: Vec<(String, Vec<u8>)> = con.hgetall(&key).await.unwrap();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            (
                "__created".to_owned(),
                unix_millis(created).to_string().into_bytes()
            ),
            (
                "__expires".to_owned(),
                unix_millis(expires).to_string().into_bytes()
            ),
            ("auth.uid".to_owned(), b"7".to_vec()),
            ("cart.items".to_owned(), vec![0, 1]),
        ]
    );
    let expire_time: i64 = redis::cmd("PEXPIRETIME")
        .arg(&key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(expire_time, unix_millis(expires) as i64);
    // Times come back with millisecond precision, exactly.
    let loaded = store.load(&id, "cart", &["items"]).await.unwrap().unwrap();
    assert_eq!(unix_millis(loaded.expires_at), unix_millis(expires));
    assert_eq!(unix_millis(loaded.created_at), unix_millis(created));
}

#[tokio::test]
async fn corrupt_marker_is_malformed_and_garbage_values_are_returned_as_stored() {
    let store = single(PREFIX).await;
    let mut con = raw(&redis_url()).await;
    let id = new_id();
    let key = store.key(&id);
    let _: () = redis::pipe()
        .hset(&key, "__created", "yesterday-ish")
        .hset(&key, "ns.f", b"\xff\xfe garbage")
        .pexpire(&key, 60_000)
        .query_async(&mut con)
        .await
        .unwrap();
    let result = store.load(&id, "ns", &["f"]).await;
    assert!(
        matches!(result, Err(StoreError::Malformed(_))),
        "{result:?}"
    );

    let id = new_id();
    create(&store, &id, &[set("ns", "f", b"ok")]).await;
    let _: () = con
        .hset(store.key(&id), "ns.f", b"\xff\xfe garbage")
        .await
        .unwrap();
    let loaded = store.load(&id, "ns", &["f"]).await.unwrap().unwrap();
    assert_eq!(
        owned(loaded.values),
        vec![Some(b"\xff\xfe garbage".to_vec())]
    );
}

/// A key that is not a hash: `Malformed` for reads and writes, `create`
/// does not overwrite it, `delete` removes it.
#[tokio::test]
async fn key_of_another_type_is_malformed_never_overwritten() {
    let store = single(PREFIX).await;
    let mut con = raw(&redis_url()).await;
    let id = new_id();
    let key = store.key(&id);
    let _: () = con.set_ex(&key, "a string", 60).await.unwrap();
    let load = store.load(&id, "ns", &["f"]).await;
    assert!(matches!(load, Err(StoreError::Malformed(_))), "{load:?}");
    let update = store
        .update(&id, &[set("ns", "f", b"1")], Some(in_a_minute()))
        .await;
    assert!(
        matches!(update, Err(StoreError::Malformed(_))),
        "{update:?}"
    );
    create_is_refused(&store, &id, set("ns", "f", b"1")).await;
    let value: String = con.get(&key).await.unwrap();
    assert_eq!(value, "a string");
    store.delete(&id).await.unwrap();
    let exists: bool = con.exists(&key).await.unwrap();
    assert!(!exists);
}

/// A hash without the marker is not a session: not loaded, not updated or
/// touched, and not overwritten by `create`.
#[tokio::test]
async fn hash_without_marker_is_not_a_session() {
    let store = single(PREFIX).await;
    let mut con = raw(&redis_url()).await;
    let id = new_id();
    let key = store.key(&id);
    let _: () = redis::pipe()
        .hset(&key, "ns.f", "stray")
        .pexpire(&key, 60_000)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(store.load(&id, "ns", &["f"]).await.unwrap(), None);
    assert!(
        !store
            .update(&id, &[set("ns", "f", b"1")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert!(!store.touch(&id, in_a_minute()).await.unwrap());
    assert!(!store.move_to(&id, &new_id(), in_a_minute()).await.unwrap());
    create_is_refused(&store, &id, set("ns", "f", b"1")).await;
    let value: String = con.hget(&key, "ns.f").await.unwrap();
    assert_eq!(value, "stray");
}

async fn move_onto_existing_id_fails_and_keeps_both(store: &RedisStore) {
    let (from, to) = (new_id(), new_id());
    create(store, &from, &[set("ns", "f", b"from")]).await;
    create(store, &to, &[set("ns", "f", b"to")]).await;
    let result = store.move_to(&from, &to, in_a_minute()).await;
    assert!(matches!(result, Err(StoreError::IdExists)), "{result:?}");
    for (id, value) in [(&from, &b"from"[..]), (&to, &b"to"[..])] {
        let loaded = store.load(id, "ns", &["f"]).await.unwrap().unwrap();
        assert_eq!(owned(loaded.values), vec![Some(value.to_vec())]);
    }
}

#[tokio::test]
async fn single_move_onto_existing_id_fails_and_keeps_both() {
    move_onto_existing_id_fails_and_keeps_both(&single(PREFIX).await).await;
}

#[tokio::test]
async fn cluster_move_onto_existing_id_fails_and_keeps_both() {
    move_onto_existing_id_fails_and_keeps_both(&cluster(PREFIX).await).await;
}

/// With a hash-tagged prefix every session is in one slot, and the move is
/// the atomic one-script rename even on a cluster.
#[tokio::test]
async fn cluster_move_within_one_slot_uses_rename() {
    let store = cluster("{test-sessions}:").await;
    let (from, to) = (new_id(), new_id());
    let created = SystemTime::now() - Duration::from_secs(10);
    store
        .create(&from, &[set("ns", "f", b"1")], created, in_a_minute())
        .await
        .unwrap();
    let expires = SystemTime::now() + Duration::from_secs(90);
    assert!(store.move_to(&from, &to, expires).await.unwrap());
    assert_eq!(store.load(&from, "ns", &["f"]).await.unwrap(), None);
    let loaded = store.load(&to, "ns", &["f"]).await.unwrap().unwrap();
    assert_eq!(owned(loaded.values), vec![Some(b"1".to_vec())]);
    assert_eq!(unix_millis(loaded.created_at), unix_millis(created));
    assert_eq!(unix_millis(loaded.expires_at), unix_millis(expires));
    // No internal field is left on the moved session.
    let mut con = raw_cluster().await;
    let names: Vec<String> = con.hkeys(store.key(&to)).await.unwrap();
    assert!(!names.iter().any(|n| n == "__moving"), "{names:?}");
}

/// A cross-slot cluster move copies the session as it is: every field of
/// every namespace, byte for byte, and the creation time; the old key keeps
/// only a short-lived, field-less tombstone, carrying the forward to the new
/// id, that no operation treats as a session.
#[tokio::test]
async fn cluster_move_across_slots_copies_everything() {
    let store = cluster(PREFIX).await;
    let (from, to) = (new_id(), new_id());
    let large: Vec<u8> = (0..150 * 1024).map(|i| (i % 253) as u8).collect();
    let created = SystemTime::now() - Duration::from_secs(60);
    store
        .create(
            &from,
            &[
                set("a", "x", &large),
                set("b", "y", b"\x00\r\n"),
                set("b", "z", b""),
            ],
            created,
            in_a_minute(),
        )
        .await
        .unwrap();
    let expires = SystemTime::now() + Duration::from_secs(300);
    assert!(store.move_to(&from, &to, expires).await.unwrap());
    let a = store.load(&to, "a", &["x"]).await.unwrap().unwrap();
    assert_eq!(owned(a.values), vec![Some(large)]);
    assert_eq!(unix_millis(a.created_at), unix_millis(created));
    assert_eq!(unix_millis(a.expires_at), unix_millis(expires));
    let b = store.load(&to, "b", &["y", "z"]).await.unwrap().unwrap();
    assert_eq!(
        owned(b.values),
        vec![Some(b"\x00\r\n".to_vec()), Some(Vec::new())]
    );
    assert_eq!(store.load(&from, "a", &["x"]).await.unwrap(), None);
    let mut con = raw_cluster().await;
    let mut old: Vec<String> = con.hkeys(store.key(&from)).await.unwrap();
    old.sort();
    assert_eq!(old, ["__forward", "__forward_until", "__moving"]);
    assert_eq!(store.forwarded(&from).await.unwrap(), Some(to.clone()));
    let ttl: i64 = con.pttl(store.key(&from)).await.unwrap();
    assert!((0..=60_000).contains(&ttl), "tombstone ttl {ttl}");
    create_is_refused(&store, &from, set("a", "x", b"1")).await;
}

/// Writers hammer the old id of a session while it moves across cluster
/// slots. No write that reported success is lost: if the move succeeded, the
/// new id holds every such write and the old id takes no more; if it gave up
/// under contention, the old id holds them. (The move holds writes off
/// after its first attempt, so it gets through.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_move_loses_no_concurrent_write() {
    const WRITERS: usize = 6;
    let store = Arc::new(cluster(PREFIX).await);
    let mut moves = 0;
    for round in 0..5 {
        let (from, to) = (new_id(), new_id());
        create(&store, &from, &[set("ns", "seed", b"s")]).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, from, stop) = (store.clone(), from.clone(), stop.clone());
                tokio::spawn(async move {
                    let field = format!("w{w}");
                    let mut last_ok = None;
                    for n in 0u32.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let value = n.to_string();
                        if store
                            .update(
                                &from,
                                &[set("ns", &field, value.as_bytes())],
                                Some(in_a_minute()),
                            )
                            .await
                            .unwrap()
                        {
                            last_ok = Some(value);
                        } else {
                            break; // moved away: later writes would fail too
                        }
                        if n % 4 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    (field, last_ok)
                })
            })
            .collect();
        // Let the writers get going (a few writes each) before moving.
        tokio::time::sleep(Duration::from_millis(5 * (round + 1))).await;
        let moved = store.move_to(&from, &to, in_a_minute()).await;
        stop.store(true, Ordering::Relaxed);
        let mut results = Vec::new();
        for writer in writers {
            results.push(writer.await.unwrap());
        }
        let holder = match moved {
            Ok(true) => {
                moves += 1;
                assert_eq!(store.load(&from, "ns", &["seed"]).await.unwrap(), None);
                &to
            }
            Err(StoreError::Contention(_)) => &from,
            other => panic!("move: {other:?}"),
        };
        let fields: Vec<&str> = results.iter().map(|(f, _)| f.as_str()).collect();
        let loaded = store.load(holder, "ns", &fields).await.unwrap().unwrap();
        for ((field, last_ok), stored) in results.iter().zip(loaded.values) {
            let stored = stored.map(|b| String::from_utf8(b.to_vec()).unwrap());
            assert_eq!(&stored, last_ok, "round {round}: write to {field} lost");
        }
    }
    assert!(moves > 0, "no move got through concurrent writers");
}

/// Loaded values as owned vectors, to compare with expected bytes.
fn owned(values: Vec<Option<Bytes>>) -> Vec<Option<Vec<u8>>> {
    values
        .into_iter()
        .map(|value| value.map(|bytes| bytes.to_vec()))
        .collect()
}

/// A namespace load finds exactly its namespace's fields, whatever glob
/// characters the namespace holds and however big the hash: compact, a
/// hash table within one scan, and one too big for one scan (then the
/// load runs a script), each with a namespace that shares a prefix and one
/// that a glob would confuse with it, and a reserved namespace (the
/// dict-like `Session`'s), which loads with one scan of every reserved
/// field.
async fn namespace_load_finds_exactly_its_fields(store: RedisStore) {
    let big = [b'x'; 100];
    for (count, value) in [(3, &b"v"[..]), (200, &big[..]), (1500, &b"v"[..])] {
        for namespace in ["dict", "we[i]rd*?\\", "a?b", "__session"] {
            let id = new_id();
            let names: Vec<String> = (0..count).map(|i| format!("k{i}")).collect();
            let mut writes: Vec<FieldWrite<'_>> = names
                .iter()
                .map(|name| set(namespace, name, value))
                .collect();
            // Neighbours: a longer namespace with the same start, and ones
            // the unescaped glob would match.
            writes.push(set("dictx", "k0", b"no"));
            writes.push(set("weirdxyz", "k0", b"no"));
            writes.push(set("wexrd", "k0", b"no"));
            writes.push(set("a-b", "k0", b"no"));
            // Reserved neighbours, which a reserved namespace's scan sees.
            writes.push(set("__sessionx", "k0", b"no"));
            writes.push(set("__", "k0", b"no"));
            create(&store, &id, &writes).await;
            let loaded = store.load_namespace(&id, namespace).await.unwrap().unwrap();
            let mut found: Vec<String> = loaded.fields.iter().map(|(n, _)| n.clone()).collect();
            found.sort();
            let mut expected = names.clone();
            expected.sort();
            assert_eq!(found, expected, "{namespace} with {count} fields");
            assert!(loaded.fields.iter().all(|(_, v)| v.as_ref() == value));
        }
    }
    // No session: nothing, whichever way it is read.
    assert!(
        store
            .load_namespace(&new_id(), "dict")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn single_namespace_load_finds_exactly_its_fields() {
    namespace_load_finds_exactly_its_fields(single(PREFIX).await).await;
}

#[tokio::test]
async fn cluster_namespace_load_finds_exactly_its_fields() {
    namespace_load_finds_exactly_its_fields(cluster(PREFIX).await).await;
}

/// A namespace load racing a cycle (`move_to`) from another connection
/// sees either every key of the namespace or no session, never a session
/// with keys missing. The load is two pipelined commands without a
/// transaction; Redis runs the commands of one read back to back, so this
/// catches a load spread over round trips, and the commands' order covers
/// a pipeline split across reads.
async fn namespace_load_racing_a_move_is_whole_or_none(loader: RedisStore, mover: RedisStore) {
    const KEYS: usize = 20;
    const ROUNDS: usize = 100;
    let names: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
    let mut whole_loads = 0;
    for round in 0..ROUNDS {
        let namespace = if round % 2 == 0 { "dict" } else { "__session" };
        let from = new_id();
        let mut writes: Vec<FieldWrite<'_>> = names
            .iter()
            .map(|name| set(namespace, name, b"v"))
            .collect();
        writes.push(set("typed", "visits", b"1"));
        create(&loader, &from, &writes).await;
        let moved = Arc::new(AtomicBool::new(false));
        let load_task = {
            let (loader, from, moved) = (loader.clone(), from.clone(), moved.clone());
            tokio::spawn(async move {
                let mut whole = 0;
                loop {
                    let after_move = moved.load(Ordering::Acquire);
                    match loader.load_namespace(&from, namespace).await.unwrap() {
                        Some(loaded) => {
                            assert_eq!(loaded.fields.len(), KEYS, "a torn namespace load");
                            assert!(!after_move, "the old id loads after the move finished");
                            whole += 1;
                        }
                        None => return whole,
                    }
                }
            })
        };
        let to = new_id();
        tokio::task::yield_now().await;
        assert!(mover.move_to(&from, &to, in_a_minute()).await.unwrap());
        moved.store(true, Ordering::Release);
        whole_loads += load_task.await.unwrap();
        let loaded = mover.load_namespace(&to, namespace).await.unwrap().unwrap();
        assert_eq!(loaded.fields.len(), KEYS);
    }
    // The loads did race the moves rather than all finishing before them.
    assert!(whole_loads > 0, "no load ran before a move");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_namespace_load_racing_a_move_is_whole_or_none() {
    namespace_load_racing_a_move_is_whole_or_none(single(PREFIX).await, single(PREFIX).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_namespace_load_racing_a_move_is_whole_or_none() {
    namespace_load_racing_a_move_is_whole_or_none(cluster(PREFIX).await, cluster(PREFIX).await)
        .await;
}
