//! MongoStore behaviour beyond the conformance suite, on the shared server at
//! `MONGO_URL` (default `mongodb://127.0.0.1:27017/`): the TTL index, expired
//! and corrupt documents left in the collection, name checks, size limits,
//! and moves racing with writers (the non-transactional path: the shared
//! server is standalone).
#![cfg(feature = "mongodb")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod mongo_support;

use std::time::{Duration, SystemTime};

use mongodb::bson::{Binary, Bson, DateTime, Document, doc, spec::BinarySubtype};
use mongodb::{IndexModel, bson};
use typed_sessions::store::Bytes;
use typed_sessions::store::mongodb::{InvalidName, MongoStore};
use typed_sessions::{FieldKey, FieldWrite, SessionStore, StoreError};

use mongo_support::commands;
use mongo_support::*;

const COLLECTION: &str = "store_tests";

async fn store() -> MongoStore {
    shared_store(COLLECTION).await
}

fn bin(bytes: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

fn minutes_from_now(minutes: i64) -> DateTime {
    DateTime::from_millis(DateTime::now().timestamp_millis() + minutes * 60_000)
}

async fn ttl_index(store: &MongoStore) -> Option<IndexModel> {
    use futures_util::TryStreamExt;
    let indexes: Vec<IndexModel> = match store.collection().list_indexes().await {
        Ok(cursor) => cursor.try_collect().await.unwrap(),
        // No collection yet (code 26, NamespaceNotFound): no index either.
        Err(e) if e.to_string().contains("NamespaceNotFound") => Vec::new(),
        Err(e) => panic!("list_indexes: {e}"),
    };
    indexes
        .into_iter()
        .find(|index| index.keys == doc! { "expires_at": 1 })
}

async fn raw(store: &MongoStore, id: &str) -> Option<Document> {
    store
        .collection()
        .find_one(doc! { "_id": id })
        .await
        .unwrap()
}

#[tokio::test]
async fn ttl_index_exists_after_connect() {
    let name = fresh_collection("ttl_connect");
    let store = shared_store(&name).await;
    let index = ttl_index(&store).await.expect("TTL index on expires_at");
    let options = index.options.expect("index options");
    assert_eq!(options.expire_after, Some(Duration::ZERO));
    // Connecting again to a collection that has it is fine.
    let again = shared_store(&name).await;
    again.ensure_index().await.unwrap();
    store.collection().drop().await.unwrap();
}

#[tokio::test]
async fn new_creates_the_index_on_first_use() {
    let url = mongo_url();
    let client = mongodb::Client::with_uri_str(&url).await.unwrap();
    let name = fresh_collection("ttl_new");
    let collection = client.database(DB).collection::<Document>(&name);
    let store = MongoStore::new(collection.clone());
    assert!(ttl_index(&store).await.is_none(), "no I/O before first use");
    assert!(store.load(&new_id(), NS, &["a"]).await.unwrap().is_none());
    assert!(ttl_index(&store).await.is_some());
    collection.drop().await.unwrap();
}

#[tokio::test]
async fn the_ttl_monitor_removes_expired_sessions() {
    let store = store().await;
    let id = new_id();
    let expires = SystemTime::now() + Duration::from_millis(200);
    store
        .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), expires)
        .await
        .unwrap();
    // The monitor runs every second on the test server (every 60 s on
    // mongod): wait for it, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while raw(&store, id.as_str()).await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "TTL monitor never removed it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An expired document the TTL monitor has not removed yet is not a session:
/// not loaded, updated, touched or moved, and `create` replaces it.
#[tokio::test]
async fn expired_document_still_present_is_not_returned() {
    let store = store().await;
    // The test server's TTL monitor runs every second and may remove the
    // document at any moment; an attempt only counts when the document was
    // still there after the store's calls.
    for _ in 0..10 {
        let id = new_id();
        store
            .collection()
            .insert_one(doc! {
                "_id": id.as_str(),
                "data": { NS: { "a": bin(b"old") } },
                "created_at": minutes_from_now(-60),
                "expires_at": minutes_from_now(-1),
            })
            .await
            .unwrap();
        let loaded = store.load(&id, NS, &["a"]).await.unwrap();
        let updated = store
            .update(&id, &[set(NS, "a", b"late")], Some(in_a_minute()))
            .await
            .unwrap();
        let touched = store.touch(&id, in_a_minute()).await.unwrap();
        let moved = store.move_to(&id, &new_id(), in_a_minute()).await.unwrap();
        let Some(still_there) = raw(&store, id.as_str()).await else {
            continue; // swept mid-test
        };
        assert_eq!(loaded, None, "expired document returned");
        assert!(!updated && !touched && !moved, "expired document changed");
        assert_eq!(
            still_there.get_document("data").unwrap(),
            &doc! { NS: { "a": bin(b"old") } }
        );
        // A brand-new session may take the id; it replaces the leftover.
        store
            .create(
                &id,
                &[set(NS, "a", b"new")],
                SystemTime::now(),
                in_a_minute(),
            )
            .await
            .unwrap();
        let loaded = store.load(&id, NS, &["a"]).await.unwrap().unwrap();
        assert_eq!(loaded.values, vec![Some(Bytes::from_static(b"new"))]);
        return;
    }
    panic!("the TTL monitor removed the document every time before the check");
}

/// `data` that is not a document, a namespace that is not a document, and a
/// field that is not Binary: loads see defaults (warned), writes reset the
/// garbage and succeed, other namespaces survive where they can.
#[tokio::test]
async fn garbage_data_is_read_as_empty_and_reset_on_write() {
    let store = store().await;
    let garbage: [(&str, Bson); 4] = [
        ("string", Bson::String("garbage".into())),
        ("null", Bson::Null),
        ("array", Bson::Array(vec![Bson::Document(doc! { NS: {} })])),
        ("number", Bson::Int32(5)),
    ];
    for (what, data) in garbage {
        let id = new_id();
        store
            .collection()
            .insert_one(doc! {
                "_id": id.as_str(),
                "data": data,
                "created_at": DateTime::now(),
                "expires_at": minutes_from_now(5),
            })
            .await
            .unwrap();
        let loaded = store.load(&id, NS, &["a", "b"]).await.unwrap();
        assert_eq!(loaded.unwrap().values, vec![None, None], "data {what}");
        assert!(
            store
                .update(&id, &[set(NS, "a", b"1")], Some(in_a_minute()))
                .await
                .unwrap(),
            "data {what}"
        );
        let loaded = store.load(&id, NS, &["a", "b"]).await.unwrap().unwrap();
        assert_eq!(
            loaded.values,
            vec![Some(Bytes::from_static(b"1")), None],
            "data {what}"
        );
    }

    // A garbage namespace next to a good one.
    let id = new_id();
    store
        .collection()
        .insert_one(doc! {
            "_id": id.as_str(),
            "data": { NS: [1, 2], "other": { "x": bin(b"keep") } },
            "created_at": DateTime::now(),
            "expires_at": minutes_from_now(5),
        })
        .await
        .unwrap();
    assert_eq!(
        store.load(&id, NS, &["a"]).await.unwrap().unwrap().values,
        vec![None]
    );
    assert!(
        store
            .update(&id, &[set(NS, "a", b"1")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        store.load(&id, NS, &["a"]).await.unwrap().unwrap().values,
        vec![Some(Bytes::from_static(b"1"))]
    );
    assert_eq!(
        store
            .load(&id, "other", &["x"])
            .await
            .unwrap()
            .unwrap()
            .values,
        vec![Some(Bytes::from_static(b"keep"))]
    );
}

#[tokio::test]
async fn field_that_is_not_binary_reads_as_missing() {
    let store = store().await;
    let id = new_id();
    store
        .collection()
        .insert_one(doc! {
            "_id": id.as_str(),
            "data": { NS: { "text": "not binary", "num": 7, "doc": {}, "good": bin(b"ok") } },
            "created_at": DateTime::now(),
            "expires_at": minutes_from_now(5),
        })
        .await
        .unwrap();
    let loaded = store
        .load(&id, NS, &["text", "num", "doc", "good"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        loaded.values,
        vec![None, None, None, Some(Bytes::from_static(b"ok"))]
    );
    // Writing such a field replaces it.
    assert!(
        store
            .update(&id, &[set(NS, "text", b"now binary")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .load(&id, NS, &["text"])
            .await
            .unwrap()
            .unwrap()
            .values,
        vec![Some(Bytes::from_static(b"now binary"))]
    );
}

/// Missing or non-date `created_at`/`expires_at`: the document is treated as
/// expired (and the TTL monitor ignores it, so `create` must replace it).
#[tokio::test]
async fn malformed_times_are_treated_as_expired() {
    let store = store().await;
    let malformed = [
        doc! { "expires_at": minutes_from_now(5) },
        doc! { "created_at": "yesterday", "expires_at": minutes_from_now(5) },
        doc! { "created_at": DateTime::now() },
        doc! { "created_at": DateTime::now(), "expires_at": 1e20 },
    ];
    for times in malformed {
        let id = new_id();
        let mut document = doc! { "_id": id.as_str(), "data": { NS: { "a": bin(b"x") } } };
        document.extend(times.clone());
        store.collection().insert_one(document).await.unwrap();
        assert_eq!(store.load(&id, NS, &["a"]).await.unwrap(), None, "{times}");
        assert!(
            !store
                .update(&id, &[set(NS, "a", b"y")], Some(in_a_minute()))
                .await
                .unwrap(),
            "{times}"
        );
        assert!(!store.touch(&id, in_a_minute()).await.unwrap(), "{times}");
        store
            .create(
                &id,
                &[set(NS, "a", b"new")],
                SystemTime::now(),
                in_a_minute(),
            )
            .await
            .unwrap();
        assert_eq!(
            store.load(&id, NS, &["a"]).await.unwrap().unwrap().values,
            vec![Some(Bytes::from_static(b"new"))],
            "{times}"
        );
    }
}

#[tokio::test]
async fn names_that_would_break_the_path_are_refused() {
    let store = store().await;
    let id = new_id();
    store
        .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    fn refused<T: std::fmt::Debug>(result: Result<T, StoreError>) -> InvalidName {
        match result {
            Err(StoreError::Backend(e)) => e.downcast_ref::<InvalidName>().cloned().unwrap(),
            other => panic!("expected InvalidName, got {other:?}"),
        }
    }
    let e = refused(store.load(&id, "a.b", &["a"]).await);
    assert_eq!((e.kind(), e.name()), ("namespace", "a.b"));
    refused(store.load(&id, NS, &["$where"]).await);
    let e = refused(
        store
            .update(
                &id,
                &[set(NS, "a", b"2"), set(NS, "x.y", b"3")],
                Some(in_a_minute()),
            )
            .await,
    );
    assert!(e.to_string().contains("x.y"), "{e}");
    refused(
        store
            .create(
                &new_id(),
                &[set("$set", "a", b"1")],
                SystemTime::now(),
                in_a_minute(),
            )
            .await,
    );
    refused(
        store
            .update(&id, &[set(NS, "", b"1")], Some(in_a_minute()))
            .await,
    );
    // Nothing of the refused update was written.
    assert_eq!(
        store.load(&id, NS, &["a"]).await.unwrap().unwrap().values,
        vec![Some(Bytes::from_static(b"1"))]
    );
}

/// The layer never writes and removes one field in one update, but a
/// hand-written caller may: the last write wins (Mongo itself would refuse
/// the conflicting `$set`/`$unset`).
#[tokio::test]
async fn set_and_remove_of_one_field_last_wins() {
    let store = store().await;
    let id = new_id();
    let key = FieldKey {
        namespace: NS,
        field: "a",
    };
    store
        .create(
            &id,
            &[
                FieldWrite {
                    key,
                    value: Some(b"1"),
                },
                FieldWrite { key, value: None },
            ],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.load(&id, NS, &["a"]).await.unwrap().unwrap().values,
        vec![None]
    );
    let writes = [
        FieldWrite { key, value: None },
        FieldWrite {
            key,
            value: Some(b"2"),
        },
    ];
    assert!(
        store
            .update(&id, &writes, Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        store.load(&id, NS, &["a"]).await.unwrap().unwrap().values,
        vec![Some(Bytes::from_static(b"2"))]
    );
    let writes = [
        FieldWrite {
            key,
            value: Some(b"3"),
        },
        FieldWrite { key, value: None },
    ];
    assert!(
        store
            .update(&id, &writes, Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert_eq!(
        store.load(&id, NS, &["a"]).await.unwrap().unwrap().values,
        vec![None]
    );
}

#[tokio::test]
async fn documents_over_16_mib_are_too_large() {
    let store = store().await;
    let huge = vec![7u8; 17 * 1024 * 1024];
    let id = new_id();
    let created = store
        .create(
            &id,
            &[set(NS, "huge", &huge)],
            SystemTime::now(),
            in_a_minute(),
        )
        .await;
    assert!(
        matches!(created, Err(StoreError::TooLarge(_))),
        "{created:?}"
    );
    assert_eq!(store.load(&id, NS, &["huge"]).await.unwrap(), None);

    // Each write fits; together they do not: the server refuses the update.
    let half = vec![1u8; 9 * 1024 * 1024];
    store
        .create(
            &id,
            &[set(NS, "a", &half)],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    let updated = store
        .update(&id, &[set(NS, "b", &half)], Some(in_a_minute()))
        .await;
    assert!(
        matches!(updated, Err(StoreError::TooLarge(_))),
        "{updated:?}"
    );
    let loaded = store.load(&id, NS, &["a", "b"]).await.unwrap().unwrap();
    assert_eq!(loaded.values, vec![Some(Bytes::from(half)), None]);
    store.delete(&id).await.unwrap();
}

#[tokio::test]
async fn document_layout_is_as_documented() {
    let store = store().await;
    let id = new_id();
    let created = SystemTime::now();
    store
        .create(
            &id,
            &[set("cart", "items", b"\x00\x01"), set("user", "uid", b"7")],
            created,
            in_a_minute(),
        )
        .await
        .unwrap();
    let document = raw(&store, id.as_str()).await.unwrap();
    assert_eq!(
        document.get_document("data").unwrap(),
        &doc! { "cart": { "items": bin(b"\x00\x01") }, "user": { "uid": bin(b"7") } }
    );
    assert_eq!(
        document.get_datetime("created_at").unwrap(),
        &DateTime::from_system_time(created)
    );
    assert!(document.get_datetime("expires_at").is_ok());
    let keys: Vec<&str> = document.keys().map(String::as_str).collect();
    assert_eq!(keys, ["_id", "data", "created_at", "expires_at"]);
    // Removing a field unsets exactly its path.
    let remove = FieldWrite {
        key: FieldKey {
            namespace: "cart",
            field: "items",
        },
        value: None,
    };
    assert!(
        store
            .update(&id, &[remove], Some(in_a_minute()))
            .await
            .unwrap()
    );
    let document = raw(&store, id.as_str()).await.unwrap();
    assert_eq!(
        document.get_document("data").unwrap(),
        &doc! { "cart": {}, "user": { "uid": bin(b"7") } }
    );
    let _ = bson::to_vec(&document).unwrap();
}

#[tokio::test]
async fn standalone_server_moves_without_transactions() {
    assert!(!store().await.moves_in_transactions().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_keeps_every_acknowledged_write() {
    mongo_support::move_keeps_every_acknowledged_write(&store().await, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_moves_leave_one_session() {
    mongo_support::concurrent_moves_leave_one_session(&store().await).await;
}

/// A move that stopped after marking the session (crash, timeout) leaves it
/// readable, refuses writes while the mark holds, and writable after.
#[tokio::test]
async fn an_interrupted_move_blocks_writes_only_until_its_lease_ends() {
    let store = store().await;
    let id = new_id();
    store
        .create(&id, &[set(NS, "a", b"1")], SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    let until = DateTime::from_millis(DateTime::now().timestamp_millis() + 1500);
    store
        .collection()
        .update_one(
            doc! { "_id": id.as_str() },
            doc! { "$set": { "moving": { "to": new_id().as_str(), "until": until } } },
        )
        .await
        .unwrap();
    assert!(
        !store
            .update(&id, &[set(NS, "a", b"2")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    assert!(!store.touch(&id, in_a_minute()).await.unwrap());
    assert!(!store.move_to(&id, &new_id(), in_a_minute()).await.unwrap());
    assert_eq!(
        store.load(&id, NS, &["a"]).await.unwrap().unwrap().values,
        vec![Some(Bytes::from_static(b"1"))]
    );
    // Waiting for the lease to pass is waiting for time, not for a signal.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert!(
        store
            .update(&id, &[set(NS, "a", b"2")], Some(in_a_minute()))
            .await
            .unwrap()
    );
    let to = new_id();
    assert!(store.move_to(&id, &to, in_a_minute()).await.unwrap());
    assert_eq!(
        store.load(&to, NS, &["a"]).await.unwrap().unwrap().values,
        vec![Some(Bytes::from_static(b"2"))]
    );
    let moved = raw(&store, to.as_str()).await.unwrap();
    assert!(!moved.contains_key("moving"), "{moved}");
}

/// `move_to` onto a live id fails with IdExists and leaves `from` as it
/// was, writable at once.
#[tokio::test]
async fn move_onto_a_live_id_changes_nothing() {
    let store = store().await;
    let (from, to) = (new_id(), new_id());
    for id in [&from, &to] {
        store
            .create(
                id,
                &[set(NS, "a", id.as_str().as_bytes())],
                SystemTime::now(),
                in_a_minute(),
            )
            .await
            .unwrap();
    }
    let moved = store.move_to(&from, &to, in_a_minute()).await;
    assert!(matches!(moved, Err(StoreError::IdExists)), "{moved:?}");
    for id in [&from, &to] {
        assert_eq!(
            store.load(id, NS, &["a"]).await.unwrap().unwrap().values,
            vec![Some(Bytes::copy_from_slice(id.as_str().as_bytes()))]
        );
    }
    assert!(
        store
            .update(&from, &[set(NS, "b", b"1")], Some(in_a_minute()))
            .await
            .unwrap()
    );
}

/// The write of `namespace`'s index entry (the layer's `#[session(index)]`).
fn entry<'a>(namespace: &'a str, key: &'a [u8]) -> FieldWrite<'a> {
    set(typed_sessions::store::INDEX_NAMESPACE, namespace, key)
}

/// Every `(stage, indexName)` of an explained plan, depth first.
fn stages(plan: &Document) -> Vec<(String, Option<String>)> {
    let mut found = vec![(
        plan.get_str("stage").unwrap_or_default().to_owned(),
        plan.get_str("indexName").ok().map(str::to_owned),
    )];
    for child in ["inputStage", "executionStages"] {
        if let Ok(child) = plan.get_document(child) {
            found.extend(stages(child));
        }
    }
    if let Ok(children) = plan.get_array("inputStages") {
        for child in children.iter().filter_map(Bson::as_document) {
            found.extend(stages(child));
        }
    }
    found
}

#[tokio::test]
async fn session_index_is_a_database_index_its_queries_use() {
    use futures_util::TryStreamExt;
    let (store, log) = commands::logged_store(&mongo_url(), "session_index", |store| store).await;
    let (ada, bob) = (new_id(), new_id());
    let mut adas = Vec::new();
    for i in 0..30 {
        let key = if i % 3 == 0 { &ada } else { &bob };
        let id = new_id();
        let mut writes = vec![set(NS, "a", b"1")];
        if i < 24 {
            writes.push(entry(NS, key.as_str().as_bytes()));
            if key == &ada {
                adas.push(id.clone());
            }
        }
        store
            .create(&id, &writes, SystemTime::now(), in_a_minute())
            .await
            .unwrap();
    }

    let indexes: Vec<IndexModel> = store
        .collection()
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let index = indexes
        .iter()
        .find(|index| index.keys == doc! { "data.__index.ns": 1 })
        .unwrap_or_else(|| panic!("no index on data.__index.ns in {indexes:?}"));
    let options = index.options.as_ref().expect("index options");
    assert_eq!(
        options.sparse,
        Some(true),
        "sessions without an entry stay out"
    );
    let name = options.name.clone().expect("index name");

    log.take();
    let key = typed_sessions::store::IndexKey {
        namespace: NS,
        key: ada.as_str().as_bytes(),
    };
    let listed = store.list_index(key).await.unwrap();
    assert_eq!(listed.len(), adas.len());
    let sent = log.take();
    let names: Vec<&str> = sent.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["find"], "listing is one query");
    let find = &sent[0].1;
    assert_eq!(
        find.get_document("hint").unwrap(),
        &doc! { "data.__index.ns": 1 }
    );
    // Explain the very query the store sent.
    let mut explained = doc! { "find": find.get_str("find").unwrap() };
    for part in ["filter", "projection", "hint"] {
        explained.insert(part, find.get(part).unwrap().clone());
    }
    let explain = store
        .collection()
        .client()
        .database(DB)
        .run_command(doc! { "explain": explained, "verbosity": "executionStats" })
        .await
        .unwrap();
    let plan = explain
        .get_document("queryPlanner")
        .and_then(|planner| planner.get_document("winningPlan"))
        .unwrap();
    assert!(
        stages(plan).contains(&("IXSCAN".to_owned(), Some(name.clone()))),
        "the listing scans the session index: {plan}"
    );
    let stats = explain.get_document("executionStats").unwrap();
    let examined = stats
        .get("totalDocsExamined")
        .and_then(Bson::as_i64)
        .or_else(|| {
            stats
                .get("totalDocsExamined")
                .and_then(Bson::as_i32)
                .map(i64::from)
        });
    assert_eq!(
        examined,
        Some(i64::try_from(adas.len()).unwrap()),
        "only the key's sessions are read: {stats}"
    );

    // Ending is one multi-document delete, through the same index.
    log.take();
    let ended = store.end_index(key, Some(&adas[0])).await.unwrap();
    assert_eq!(ended, adas.len() - 1);
    let sent = log.take();
    let names: Vec<&str> = sent.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["delete"], "ending is one delete");
    let delete = sent[0].1.get_array("deletes").unwrap()[0]
        .as_document()
        .unwrap();
    assert_eq!(delete.get("limit").and_then(Bson::as_i32), Some(0));
    assert_eq!(
        delete.get_document("hint").unwrap(),
        &doc! { "data.__index.ns": 1 }
    );
    // SecantusDB's explain of a delete describes no plan, and its delete
    // uses an index for the first filter clause that has one: the entry
    // must come first (expires_at has the TTL index).
    let first = delete.get_document("q").unwrap().keys().next().cloned();
    assert_eq!(first.as_deref(), Some("data.__index.ns"));
    store.collection().drop().await.unwrap();
}

#[tokio::test]
async fn writes_without_an_entry_cost_no_index_work() {
    let (store, log) = commands::logged_store(&mongo_url(), "index_cost", |store| store).await;
    let id = new_id();
    let plain = [set(NS, "a", b"1")];
    store
        .create(&id, &plain, SystemTime::now(), in_a_minute())
        .await
        .unwrap();
    assert!(
        store
            .update(&id, &plain, Some(in_a_minute()))
            .await
            .unwrap()
    );
    // Removing an entry needs no index either.
    let removal = FieldWrite {
        key: FieldKey {
            namespace: typed_sessions::store::INDEX_NAMESPACE,
            field: NS,
        },
        value: None,
    };
    assert!(store.update(&id, &[removal], None).await.unwrap());
    assert_eq!(log.take_names(), ["insert", "update", "update"]);

    // The first entry of a namespace creates its index, once per store.
    let other = new_id();
    store
        .create(
            &other,
            &[entry(NS, b"ada")],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    assert_eq!(log.take_names(), ["createIndexes", "insert"]);
    assert!(store.update(&id, &[entry(NS, b"bob")], None).await.unwrap());
    assert!(
        store
            .clone()
            .update(&other, &[entry(NS, b"bob")], None)
            .await
            .unwrap()
    );
    assert_eq!(log.take_names(), ["update", "update"]);
    store.collection().drop().await.unwrap();
}

#[tokio::test]
async fn a_dropped_session_index_is_created_again() {
    let store = shared_store(&fresh_collection("index_dropped")).await;
    let key = new_id();
    let index = typed_sessions::store::IndexKey {
        namespace: NS,
        key: key.as_str().as_bytes(),
    };
    let id = new_id();
    store
        .create(
            &id,
            &[entry(NS, index.key)],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    store
        .collection()
        .drop_index("data.__index.ns_1")
        .await
        .unwrap();
    assert!(!has_entry_index(&store).await);
    assert_eq!(store.list_index(index).await.unwrap().len(), 1);
    assert!(has_entry_index(&store).await, "created again");
    store
        .collection()
        .drop_index("data.__index.ns_1")
        .await
        .unwrap();
    assert_eq!(store.end_index(index, None).await.unwrap(), 1);
    assert!(has_entry_index(&store).await, "created again");
    store.collection().drop().await.unwrap();
}

async fn has_entry_index(store: &MongoStore) -> bool {
    let names: Vec<String> = store.collection().list_index_names().await.unwrap();
    names.iter().any(|name| name == "data.__index.ns_1")
}

/// Runs one of each kind of write through `store`: create (with an index
/// entry, so the entry index is created), update, touch, a move without
/// transactions, end_index, delete.
async fn every_kind_of_write(store: &MongoStore) {
    let (id, key) = (new_id(), new_id());
    let index = typed_sessions::store::IndexKey {
        namespace: NS,
        key: key.as_str().as_bytes(),
    };
    store
        .create(
            &id,
            &[set(NS, "a", b"1"), entry(NS, index.key)],
            SystemTime::now(),
            in_a_minute(),
        )
        .await
        .unwrap();
    assert!(
        store
            .update(&id, &[set(NS, "a", b"2")], None)
            .await
            .unwrap()
    );
    assert!(store.touch(&id, in_a_minute()).await.unwrap());
    let to = new_id();
    assert!(store.move_to(&id, &to, in_a_minute()).await.unwrap());
    assert_eq!(store.end_index(index, None).await.unwrap(), 1);
    store.delete(&to).await.unwrap();
}

/// The write commands `log` recorded, each with its `writeConcern`; fails
/// unless every kind of write the store sends is among them.
fn write_concerns(log: &commands::CommandLog) -> Vec<(String, Option<Document>)> {
    let writes: Vec<(String, Option<Document>)> = log
        .take_writes()
        .into_iter()
        .map(|(name, command)| {
            let concern = command.get_document("writeConcern").ok().cloned();
            (name, concern)
        })
        .collect();
    for kind in [
        "insert",
        "update",
        "delete",
        "findAndModify",
        "createIndexes",
    ] {
        assert!(
            writes.iter().any(|(name, _)| name == kind),
            "no {kind} among {writes:?}"
        );
    }
    writes
}

#[tokio::test]
async fn every_write_waits_for_a_journaled_majority_by_default() {
    let (store, log) = commands::logged_store(&mongo_url(), "concern_default", |s| s).await;
    assert_eq!(
        store.write_concern(),
        Some(&MongoStore::default_write_concern())
    );
    every_kind_of_write(&store).await;
    for (name, concern) in write_concerns(&log) {
        assert_eq!(concern, Some(doc! { "w": "majority", "j": true }), "{name}");
    }
    store.collection().drop().await.unwrap();
}

#[tokio::test]
async fn a_chosen_write_concern_replaces_the_default() {
    let chosen = mongodb::options::WriteConcern::nodes(1);
    let (store, log) = commands::logged_store(&mongo_url(), "concern_chosen", |s| {
        s.with_write_concern(chosen)
    })
    .await;
    every_kind_of_write(&store).await;
    for (name, concern) in write_concerns(&log) {
        assert_eq!(concern, Some(doc! { "w": 1 }), "{name}");
    }
    store.collection().drop().await.unwrap();

    // A write concern the URI states is kept.
    let url = mongo_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}w=1&journal=false");
    let (store, log) = commands::logged_store(&url, "concern_uri", |s| s).await;
    every_kind_of_write(&store).await;
    for (name, concern) in write_concerns(&log) {
        assert_eq!(concern, Some(doc! { "w": 1, "j": false }), "{name}");
    }
    store.collection().drop().await.unwrap();
}
