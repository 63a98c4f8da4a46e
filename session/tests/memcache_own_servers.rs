//! MemcacheStore on memcached processes this test starts itself on spare
//! loopback ports (never the shared server): one killed while calls run and
//! restarted, and two servers sharing the sessions by client-side hashing.
//! Needs the `memcached` binary (scripts/test.sh installs it); when run as
//! root, memcached drops to the `memcache` user.
#![cfg(feature = "memcache")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod field_write;
use field_write::set;

mod own_server;

use own_server::memcached::Memcached;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::timeout;
use typed_sessions::store::Bytes;
use typed_sessions::store::memcache::{AsyncMetaClient, MemcacheStore};
use typed_sessions::{SessionId, SessionStore, StoreError};

/// How long any one store call may take while the server is down. The
/// client's own deadlines are 1 s per dial and per exchange.
const LIMIT: Duration = Duration::from_secs(5);

fn new_id() -> SessionId {
    SessionId::generate().unwrap()
}

fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(300)
}

/// Runs every store operation once; each must fail, none may hang.
async fn every_call_fails(store: &MemcacheStore, id: &SessionId) {
    let results: Vec<(&str, Result<(), StoreError>)> = vec![
        (
            "load",
            timeout(LIMIT, store.load(id, "ns", &["a"]))
                .await
                .expect("load hung")
                .map(|_| ()),
        ),
        (
            "create",
            timeout(
                LIMIT,
                store.create(
                    &new_id(),
                    &[set("ns", "a", b"1")],
                    SystemTime::now(),
                    later(),
                ),
            )
            .await
            .expect("create hung"),
        ),
        (
            "update",
            timeout(
                LIMIT,
                store.update(id, &[set("ns", "a", b"1")], Some(later())),
            )
            .await
            .expect("update hung")
            .map(|_| ()),
        ),
        (
            "touch",
            timeout(LIMIT, store.touch(id, later()))
                .await
                .expect("touch hung")
                .map(|_| ()),
        ),
        (
            "move_to",
            timeout(LIMIT, store.move_to(id, &new_id(), later()))
                .await
                .expect("move_to hung")
                .map(|_| ()),
        ),
        (
            "delete",
            timeout(LIMIT, store.delete(&new_id()))
                .await
                .expect("delete hung"),
        ),
    ];
    for (call, result) in results {
        assert!(
            matches!(result, Err(StoreError::Backend(_))),
            "{call} with memcached down: {result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_memcached_fails_calls_promptly_and_the_store_recovers_on_restart() {
    let port = own_server::spare_port(false);
    let mut server = Memcached::start(port).await;
    let store = Arc::new(MemcacheStore::connect(&server.url()).await.unwrap());
    let id = Arc::new(new_id());
    store
        .create(&id, &[set("ns", "a", b"0")], SystemTime::now(), later())
        .await
        .unwrap();

    // Calls running in a loop while the server is killed.
    let killed = Arc::new(AtomicBool::new(false));
    let (progress, mut progressed) = tokio::sync::mpsc::unbounded_channel::<()>();
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (store, id, killed, progress) =
                (store.clone(), id.clone(), killed.clone(), progress.clone());
            tokio::spawn(async move {
                let mut failures_after_kill = 0;
                while failures_after_kill < 5 {
                    let after_kill = killed.load(Ordering::SeqCst);
                    let name = format!("w{worker}");
                    let call = async {
                        if worker % 2 == 0 {
                            store
                                .update(&id, &[set("ns", &name, b"1")], Some(later()))
                                .await
                                .map(|_| ())
                        } else {
                            store.load(&id, "ns", &["a"]).await.map(|_| ())
                        }
                    };
                    let result = timeout(LIMIT, call)
                        .await
                        .expect("a store call hung while memcached was being killed");
                    match result {
                        Ok(()) => {
                            assert!(!after_kill, "a call succeeded with memcached dead");
                            let _ = progress.send(());
                        }
                        // A call the kill interrupted fails too: fine.
                        Err(error) => {
                            assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
                            if after_kill {
                                failures_after_kill += 1;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    // Kill once the calls are demonstrably running.
    for _ in 0..20 {
        progressed.recv().await.expect("workers made progress");
    }
    server.kill();
    killed.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }
    every_call_fails(&store, &id).await;

    // Restarted on the same port, the same store works again. Memcached
    // keeps nothing across a restart, so the old session is gone.
    let _server = Memcached::start(port).await;
    assert_eq!(store.load(&id, "ns", &["a"]).await.unwrap(), None);
    assert!(
        !store
            .update(&id, &[set("ns", "a", b"1")], Some(later()))
            .await
            .unwrap()
    );
    let fresh = new_id();
    store
        .create(&fresh, &[set("ns", "a", b"1")], SystemTime::now(), later())
        .await
        .unwrap();
    assert!(
        store
            .update(&fresh, &[set("ns", "b", b"2")], Some(later()))
            .await
            .unwrap()
    );
    assert!(store.touch(&fresh, later()).await.unwrap());
    let moved = new_id();
    assert!(store.move_to(&fresh, &moved, later()).await.unwrap());
    let loaded = store
        .load(&moved, "ns", &["a", "b"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        loaded.values,
        vec![
            Some(Bytes::from_static(b"1")),
            Some(Bytes::from_static(b"2"))
        ]
    );
    store.delete(&moved).await.unwrap();
    assert_eq!(store.load(&moved, "ns", &["a"]).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_over_several_servers() {
    let mut first = Memcached::start_spare().await;
    let second_port = loop {
        let port = own_server::spare_port(false);
        if port != first.port {
            break port;
        }
    };
    let second = Memcached::start(second_port).await;
    let url = format!(
        "memcache://127.0.0.1:{},127.0.0.1:{}",
        first.port, second.port
    );
    let store = MemcacheStore::connect(&url).await.unwrap();
    let ids: Vec<SessionId> = (0..40).map(|_| new_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        let value = i.to_string();
        store
            .create(
                id,
                &[set("ns", "i", value.as_bytes())],
                SystemTime::now(),
                later(),
            )
            .await
            .unwrap();
        assert!(
            store
                .update(id, &[set("ns", "j", b"x")], Some(later()))
                .await
                .unwrap()
        );
    }
    // Each session is on exactly one server, and both servers hold some.
    let direct_first = AsyncMetaClient::connect(format!("127.0.0.1:{}", first.port))
        .await
        .unwrap();
    let direct_second = AsyncMetaClient::connect(format!("127.0.0.1:{}", second.port))
        .await
        .unwrap();
    let mut on_first = Vec::new();
    for id in &ids {
        let a = direct_first.get(store.key(id)).send().await.unwrap().hit();
        let b = direct_second.get(store.key(id)).send().await.unwrap().hit();
        assert!(a != b, "session on {} servers", u8::from(a) + u8::from(b));
        on_first.push(a);
    }
    let count = on_first.iter().filter(|a| **a).count();
    assert!(
        0 < count && count < ids.len(),
        "{count} of {} on the first server",
        ids.len()
    );

    // Moves cross servers freely.
    let mut moved = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let new = new_id();
        assert!(store.move_to(id, &new, later()).await.unwrap());
        let loaded = store.load(&new, "ns", &["i", "j"]).await.unwrap().unwrap();
        assert_eq!(
            loaded.values,
            vec![
                Some(Bytes::from(i.to_string())),
                Some(Bytes::from_static(b"x"))
            ]
        );
        assert_eq!(store.load(id, "ns", &["i"]).await.unwrap(), None);
        moved.push(new);
    }

    // With one server down, its sessions fail and the other's still work.
    first.kill();
    let mut worked = 0;
    for id in &moved {
        let on_first = direct_second
            .get(store.key(id))
            .send()
            .await
            .unwrap()
            .status
            == memcache::exp::GetStatus::Miss;
        let result = timeout(LIMIT, store.load(id, "ns", &["i"]))
            .await
            .expect("load hung");
        if on_first {
            assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
        } else {
            assert!(result.unwrap().is_some());
            worked += 1;
        }
    }
    assert!(worked > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_memcached_fails_calls_at_the_client_deadline() {
    let server = Memcached::start_spare().await;
    let store = MemcacheStore::connect(&server.url()).await.unwrap();
    let id = new_id();
    store
        .create(&id, &[set("ns", "a", b"1")], SystemTime::now(), later())
        .await
        .unwrap();
    // Stopped, the server accepts connections (the kernel does) but never
    // answers: every call must end at the client's deadline, not hang.
    server.freeze();
    let result = timeout(LIMIT, store.load(&id, "ns", &["a"])).await;
    let update = timeout(
        LIMIT,
        store.update(&id, &[set("ns", "a", b"2")], Some(later())),
    )
    .await;
    server.thaw();
    assert!(
        matches!(result, Ok(Err(StoreError::Backend(_)))),
        "{result:?}"
    );
    assert!(
        matches!(update, Ok(Err(StoreError::Backend(_)))),
        "{update:?}"
    );
    let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
    assert_eq!(loaded.values, vec![Some(Bytes::from_static(b"1"))]);
}
