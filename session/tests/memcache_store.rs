//! MemcacheStore beyond the conformance suite: heavy concurrent merging,
//! long expiries, the size limit, the record format as stored, unreadable
//! items, and moves racing writes. Runs against the memcached at
//! `MEMCACHE_URL` (default `memcache://127.0.0.1:11211`) and fails when it
//! is unreachable.
#![cfg(feature = "memcache")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod field_write;
use field_write::set;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use memcache::exp::{GetStatus, Meta, Ttl};
use typed_sessions::store::memcache::{DEFAULT_MAX_ITEM_SIZE, MemcacheStore};
use typed_sessions::{SessionId, SessionStore, StoreError};

const DAY: u64 = 24 * 60 * 60;

async fn store() -> MemcacheStore {
    let url =
        std::env::var("MEMCACHE_URL").unwrap_or_else(|_| "memcache://127.0.0.1:11211".to_owned());
    MemcacheStore::connect(&url)
        .await
        .expect("memcached at MEMCACHE_URL (start it with scripts/test-servers.sh)")
}

fn new_id() -> SessionId {
    SessionId::generate().unwrap()
}

fn in_minutes(minutes: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(60 * minutes)
}

fn close(a: SystemTime, b: SystemTime) -> bool {
    a.duration_since(b).unwrap_or_else(|e| e.duration()) <= Duration::from_millis(5)
}

/// The item's remaining TTL in seconds, as memcached reports it.
async fn raw_ttl(store: &MemcacheStore, id: &SessionId) -> i64 {
    let got = store
        .client()
        .get(store.key(id))
        .meta(Meta::NONE.ttl())
        .send()
        .await
        .unwrap();
    assert_eq!(got.status, GetStatus::Hit, "item not in memcached");
    got.item.ttl.unwrap()
}

async fn raw_get(store: &MemcacheStore, key: &str) -> Option<Vec<u8>> {
    store.client().get(key).send().await.unwrap().value
}

async fn raw_set(store: &MemcacheStore, key: &str, value: &[u8]) {
    let stored = store
        .client()
        .set(key, value)
        .ttl(Ttl::secs(120))
        .send()
        .await
        .unwrap();
    assert!(stored.applied());
}

async fn value(
    store: &MemcacheStore,
    id: &SessionId,
    namespace: &str,
    field: &str,
) -> Option<Vec<u8>> {
    store
        .load(id, namespace, &[field])
        .await
        .unwrap()
        .expect("session exists")
        .values
        .remove(0)
        .map(|bytes| bytes.to_vec())
}

/// Twelve writers of one session, twenty rounds each, through `stores`
/// (writer `i` uses `stores[i % stores.len()]`): nothing is lost.
async fn twelve_writers_twenty_rounds(stores: Vec<Arc<MemcacheStore>>) {
    const WRITERS: usize = 12;
    const ROUNDS: usize = 20;
    let id = Arc::new(new_id());
    stores[0]
        .create(
            &id,
            &[set("w", "seed", b"x")],
            SystemTime::now(),
            in_minutes(10),
        )
        .await
        .unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, id) = (stores[writer % stores.len()].clone(), id.clone());
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    // A field of its own per round, so any lost write shows,
                    // and one field it overwrites every round.
                    let name = format!("w{writer}r{round}");
                    let last = format!("w{writer}");
                    let value = format!("{writer}/{round}");
                    let writes = [
                        set("w", &name, value.as_bytes()),
                        set("w", &last, value.as_bytes()),
                    ];
                    assert!(
                        store
                            .update(&id, &writes, Some(in_minutes(10)))
                            .await
                            .unwrap()
                    );
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let mut names = Vec::new();
    let mut expected = Vec::new();
    for writer in 0..WRITERS {
        for round in 0..ROUNDS {
            names.push(format!("w{writer}r{round}"));
            expected.push(Some(format!("{writer}/{round}").into_bytes()));
        }
        names.push(format!("w{writer}"));
        expected.push(Some(format!("{writer}/{}", ROUNDS - 1).into_bytes()));
    }
    names.push("seed".to_owned());
    expected.push(Some(b"x".to_vec()));
    let fields: Vec<&str> = names.iter().map(String::as_str).collect();
    let loaded = stores[0].load(&id, "w", &fields).await.unwrap().unwrap();
    for ((name, got), want) in names.iter().zip(&loaded.values).zip(&expected) {
        assert_eq!(got.as_deref(), want.as_deref(), "write to {name} lost");
    }
}

/// One store: its per-session queue lines the writers up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_writers_twenty_rounds_through_one_store_lose_nothing() {
    twelve_writers_twenty_rounds(vec![Arc::new(store().await)]).await;
}

/// Twelve clients, as twelve app servers would be: the gets/cas merge and
/// its retries are what keeps every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_writers_twenty_rounds_through_twelve_clients_lose_nothing() {
    let mut stores = Vec::new();
    for _ in 0..12 {
        stores.push(Arc::new(store().await));
    }
    twelve_writers_twenty_rounds(stores).await;
}

#[tokio::test]
async fn expiries_over_30_days_are_sent_as_absolute_times() {
    let store = store().await;
    let id = new_id();
    let expires = SystemTime::now() + Duration::from_secs(31 * DAY);
    store
        .create(&id, &[set("ns", "a", b"1")], SystemTime::now(), expires)
        .await
        .unwrap();
    let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
    assert_eq!(owned(loaded.values), vec![Some(b"1".to_vec())]);
    assert!(close(loaded.expires_at, expires));
    // Sent as a relative 31-day TTL, memcached would have read a date in
    // 1970 and dropped the item at once.
    let ttl = raw_ttl(&store, &id).await;
    assert!(
        (31 * DAY as i64 - 5..=31 * DAY as i64 + 5).contains(&ttl),
        "memcached ttl {ttl}"
    );

    // Exactly 30 days, the layer's default, and 29 days (relative).
    for days in [30, 29] {
        let expires = SystemTime::now() + Duration::from_secs(days * DAY);
        assert!(
            store
                .update(&id, &[set("ns", "a", b"2")], Some(expires))
                .await
                .unwrap()
        );
        let ttl = raw_ttl(&store, &id).await;
        assert!(
            (days as i64 * DAY as i64 - 5..=days as i64 * DAY as i64 + 5).contains(&ttl),
            "{days} days: memcached ttl {ttl}"
        );
        let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
        assert!(close(loaded.expires_at, expires));
    }

    // Touch moves both the record's expiry and memcached's TTL.
    let expires = SystemTime::now() + Duration::from_secs(45 * DAY);
    assert!(store.touch(&id, expires).await.unwrap());
    let ttl = raw_ttl(&store, &id).await;
    assert!(
        (45 * DAY as i64 - 5..=45 * DAY as i64 + 5).contains(&ttl),
        "ttl {ttl}"
    );
    let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
    assert!(close(loaded.expires_at, expires));
    assert_eq!(owned(loaded.values), vec![Some(b"2".to_vec())]);

    // A move keeps a long expiry too.
    let new = new_id();
    let expires = SystemTime::now() + Duration::from_secs(60 * DAY);
    assert!(store.move_to(&id, &new, expires).await.unwrap());
    let ttl = raw_ttl(&store, &new).await;
    assert!(
        (60 * DAY as i64 - 5..=60 * DAY as i64 + 5).contains(&ttl),
        "ttl {ttl}"
    );
    store.delete(&new).await.unwrap();
}

#[tokio::test]
async fn memcached_keeps_the_item_past_the_record_expiry_but_load_refuses_it() {
    let store = store().await;
    let id = new_id();
    let expires = SystemTime::now() + Duration::from_millis(1200);
    store
        .create(&id, &[set("ns", "a", b"1")], SystemTime::now(), expires)
        .await
        .unwrap();
    let ttl = raw_ttl(&store, &id).await;
    assert!((2..=3).contains(&ttl), "memcached ttl {ttl}");
    // Waiting for the expiry time to pass.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(store.load(&id, "ns", &["a"]).await.unwrap(), None);
    assert!(
        !store
            .update(&id, &[set("ns", "a", b"2")], Some(in_minutes(1)))
            .await
            .unwrap()
    );
    assert!(!store.touch(&id, in_minutes(1)).await.unwrap());
    assert!(!store.move_to(&id, &new_id(), in_minutes(1)).await.unwrap());
}

#[tokio::test]
async fn oversized_session_is_refused_and_the_stored_one_kept() {
    let store = store().await;
    let id = new_id();
    let small = vec![7u8; 100 * 1024];
    store
        .create(
            &id,
            &[set("ns", "a", &small)],
            SystemTime::now(),
            in_minutes(5),
        )
        .await
        .unwrap();
    let huge = vec![9u8; 1024 * 1024];
    let error = store
        .update(
            &id,
            &[set("ns", "b", &huge), set("ns", "a", b"changed")],
            Some(in_minutes(5)),
        )
        .await
        .unwrap_err();
    let StoreError::TooLarge(message) = &error else {
        panic!("expected TooLarge, got {error:?}");
    };
    assert!(
        message.contains(&DEFAULT_MAX_ITEM_SIZE.to_string()),
        "the error names the limit: {message}"
    );
    assert!(error.to_string().contains("too large"), "{error}");
    // Nothing of the refused write landed.
    let loaded = store.load(&id, "ns", &["a", "b"]).await.unwrap().unwrap();
    assert_eq!(owned(loaded.values), vec![Some(small.clone()), None]);

    // A brand-new oversized session is not stored at all.
    let other = new_id();
    let error = store
        .create(
            &other,
            &[set("ns", "b", &huge)],
            SystemTime::now(),
            in_minutes(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::TooLarge(_)), "{error:?}");
    assert_eq!(store.load(&other, "ns", &["b"]).await.unwrap(), None);
    assert_eq!(raw_get(&store, &store.key(&other)).await, None);

    // The default limit fits memcached's default 1 MiB items: a record of
    // exactly the limit is stored, one byte more is refused.
    let fill = DEFAULT_MAX_ITEM_SIZE - 21 - 8 - "ns".len() - "fill".len();
    let exact = vec![1u8; fill];
    let full = new_id();
    store
        .create(
            &full,
            &[set("ns", "fill", &exact)],
            SystemTime::now(),
            in_minutes(5),
        )
        .await
        .unwrap();
    assert_eq!(
        value(&store, &full, "ns", "fill").await,
        Some(exact.clone())
    );
    let error = store
        .update(
            &full,
            &[set("ns", "fill", &[exact.as_slice(), &[1]].concat())],
            Some(in_minutes(5)),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::TooLarge(_)), "{error:?}");
    assert_eq!(value(&store, &full, "ns", "fill").await, Some(exact));
    store.delete(&full).await.unwrap();

    // A limit above the server's: memcached refuses, and that is TooLarge
    // too. Memcached drops the stored item when it refuses a store, which
    // is why the store's own limit must stay below the server's.
    let lax = store.clone().with_max_item_size(4 * 1024 * 1024);
    let doomed = new_id();
    lax.create(
        &doomed,
        &[set("ns", "a", b"1")],
        SystemTime::now(),
        in_minutes(5),
    )
    .await
    .unwrap();
    let error = lax
        .update(
            &doomed,
            &[set("ns", "b", &vec![3u8; 2 * 1024 * 1024])],
            Some(in_minutes(5)),
        )
        .await
        .unwrap_err();
    let StoreError::TooLarge(message) = &error else {
        panic!("expected TooLarge, got {error:?}");
    };
    assert!(message.contains("memcached refused"), "{message}");
    assert!(
        message.contains("4194304"),
        "the error names the limit: {message}"
    );
    assert_eq!(lax.load(&doomed, "ns", &["a"]).await.unwrap(), None);
    // The connection pool is still usable after the refusal.
    assert!(
        lax.update(&id, &[set("ns", "c", b"ok")], Some(in_minutes(5)))
            .await
            .unwrap()
    );
    assert_eq!(value(&store, &id, "ns", "c").await, Some(b"ok".to_vec()));
    assert_eq!(value(&store, &id, "ns", "a").await, Some(small));
}

/// A version-1 record built by hand from the documented format.
fn record(created_ms: u64, expires_ms: u64, fields: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend_from_slice(&created_ms.to_be_bytes());
    out.extend_from_slice(&expires_ms.to_be_bytes());
    out.extend_from_slice(&(fields.len() as u32).to_be_bytes());
    for (namespace, name, value) in fields {
        out.extend_from_slice(&(namespace.len() as u16).to_be_bytes());
        out.extend_from_slice(namespace.as_bytes());
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn stored_item_follows_the_documented_format() {
    let store = store().await.with_prefix("ts-test:");
    let id = new_id();
    let created = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let expires = SystemTime::UNIX_EPOCH + Duration::from_millis(unix_ms(in_minutes(5)));
    store
        .create(
            &id,
            &[
                set("cart", "items", b"\x00\x01"),
                set("auth", "user", b"ada"),
            ],
            created,
            expires,
        )
        .await
        .unwrap();
    assert_eq!(store.key(&id), format!("ts-test:{}", id.as_str()));
    assert_eq!(
        raw_get(&store, &format!("session:{}", id.as_str())).await,
        None
    );
    let stored = raw_get(&store, &store.key(&id))
        .await
        .expect("item under the prefix");
    assert_eq!(
        stored,
        record(
            1_700_000_000_123,
            unix_ms(expires),
            &[("cart", "items", b"\x00\x01"), ("auth", "user", b"ada")]
        )
    );

    // And a hand-written record is read back.
    let other = new_id();
    raw_set(
        &store,
        &store.key(&other),
        &record(5_000, unix_ms(in_minutes(5)), &[("ns", "x", b"hand made")]),
    )
    .await;
    let loaded = store.load(&other, "ns", &["x"]).await.unwrap().unwrap();
    assert_eq!(owned(loaded.values), vec![Some(b"hand made".to_vec())]);
    assert_eq!(
        loaded.created_at,
        SystemTime::UNIX_EPOCH + Duration::from_millis(5_000)
    );
    // An update rewrites it, keeping the creation time and unknown fields.
    assert!(
        store
            .update(&other, &[set("ns", "y", b"1")], Some(in_minutes(5)))
            .await
            .unwrap()
    );
    let loaded = store
        .load(&other, "ns", &["x", "y"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        owned(loaded.values),
        vec![Some(b"hand made".to_vec()), Some(b"1".to_vec())]
    );
    assert_eq!(
        loaded.created_at,
        SystemTime::UNIX_EPOCH + Duration::from_millis(5_000)
    );
}

#[tokio::test]
async fn unreadable_items_are_treated_as_absent_and_left_alone() {
    let store = store().await;
    let live = unix_ms(in_minutes(5));
    let mut newer_version = record(0, live, &[("ns", "a", b"1")]);
    newer_version[0] = 2;
    let mut truncated = record(0, live, &[("ns", "a", b"1")]);
    truncated.pop();
    let mut huge_count = record(0, live, &[]);
    huge_count[17..21].copy_from_slice(&u32::MAX.to_be_bytes());
    let expired = record(0, unix_ms(SystemTime::now()) - 1000, &[("ns", "a", b"1")]);
    for (what, garbage) in [
        ("text", b"not a session record".to_vec()),
        ("newer version", newer_version),
        ("truncated", truncated),
        ("huge field count", huge_count),
        ("expired record memcached still holds", expired),
    ] {
        let id = new_id();
        let key = store.key(&id);
        raw_set(&store, &key, &garbage).await;
        assert_eq!(store.load(&id, "ns", &["a"]).await.unwrap(), None, "{what}");
        assert!(
            !store
                .update(&id, &[set("ns", "a", b"2")], Some(in_minutes(1)))
                .await
                .unwrap(),
            "{what}"
        );
        assert!(!store.touch(&id, in_minutes(1)).await.unwrap(), "{what}");
        assert!(
            !store.move_to(&id, &new_id(), in_minutes(1)).await.unwrap(),
            "{what}"
        );
        assert_eq!(
            raw_get(&store, &key).await,
            Some(garbage),
            "{what}: left alone"
        );
        // A brand-new session may take the id: the dead item is replaced.
        store
            .create(
                &id,
                &[set("ns", "a", b"fresh")],
                SystemTime::now(),
                in_minutes(1),
            )
            .await
            .unwrap();
        assert_eq!(
            value(&store, &id, "ns", "a").await,
            Some(b"fresh".to_vec()),
            "{what}"
        );
        store.delete(&id).await.unwrap();
    }
}

#[tokio::test]
async fn move_onto_a_live_session_is_refused_and_loses_nothing() {
    let store = store().await;
    let (old, taken) = (new_id(), new_id());
    store
        .create(
            &old,
            &[set("ns", "a", b"old")],
            SystemTime::now(),
            in_minutes(5),
        )
        .await
        .unwrap();
    store
        .create(
            &taken,
            &[set("ns", "a", b"taken")],
            SystemTime::now(),
            in_minutes(5),
        )
        .await
        .unwrap();
    let result = store.move_to(&old, &taken, in_minutes(5)).await;
    assert!(matches!(result, Err(StoreError::IdExists)), "{result:?}");
    assert_eq!(value(&store, &old, "ns", "a").await, Some(b"old".to_vec()));
    assert_eq!(
        value(&store, &taken, "ns", "a").await,
        Some(b"taken".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_a_move_lands_on_the_new_id_or_reports_false() {
    // The writer has a client of its own, as another app server would: in
    // one store, the per-session queue would line the two up instead.
    let store = Arc::new(store().await);
    let other = Arc::new(self::store().await);
    let mut landed = 0;
    for round in 0..40 {
        let (old, new) = (Arc::new(new_id()), Arc::new(new_id()));
        store
            .create(
                &old,
                &[set("ns", "a", b"0"), set("ns", "keep", b"k")],
                SystemTime::now(),
                in_minutes(5),
            )
            .await
            .unwrap();
        let writer = {
            let (store, old) = (other.clone(), old.clone());
            tokio::spawn(async move {
                store
                    .update(&old, &[set("ns", "a", b"1")], Some(in_minutes(5)))
                    .await
                    .unwrap()
            })
        };
        let mover = {
            let (store, old, new) = (store.clone(), old.clone(), new.clone());
            tokio::spawn(async move { store.move_to(&old, &new, in_minutes(5)).await.unwrap() })
        };
        let (wrote, moved) = (writer.await.unwrap(), mover.await.unwrap());
        assert!(moved, "round {round}");
        let loaded = store
            .load(&new, "ns", &["a", "keep"])
            .await
            .unwrap()
            .unwrap();
        let expected: &[u8] = if wrote { b"1" } else { b"0" };
        assert_eq!(
            owned(loaded.values),
            vec![Some(expected.to_vec()), Some(b"k".to_vec())],
            "round {round}"
        );
        assert_eq!(
            store.load(&old, "ns", &["a"]).await.unwrap(),
            None,
            "round {round}"
        );
        landed += usize::from(wrote);
        store.delete(&new).await.unwrap();
    }
    // Not an assertion on timing: both outcomes are correct; this only
    // reports which were seen.
    eprintln!("writes that landed before the move: {landed}/40");
}

#[tokio::test]
async fn connect_rejects_bad_urls_and_unreachable_servers() {
    for url in [
        "redis://127.0.0.1:6379",
        "127.0.0.1:11211",
        "memcache://",
        "memcache://h:1?x=1",
    ] {
        let result = MemcacheStore::connect(url).await;
        assert!(
            matches!(result, Err(StoreError::Backend(_))),
            "{url}: {result:?}"
        );
    }
    // Port 1 on loopback: nothing listens, the connection is refused.
    let result = MemcacheStore::connect("memcache://127.0.0.1:1").await;
    assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
}

/// Loaded values as owned vectors, to compare with expected bytes.
fn owned(values: Vec<Option<typed_sessions::store::Bytes>>) -> Vec<Option<Vec<u8>>> {
    values
        .into_iter()
        .map(|value| value.map(|bytes| bytes.to_vec()))
        .collect()
}
