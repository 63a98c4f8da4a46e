//! `RedisStore::with_local_cache(max_bytes)` stays within `max_bytes` while
//! a hundred thousand distinct sessions, 25 times what fits, pass through
//! it, and so does the process' memory (the cache's own unit tests push a
//! million through it without Redis). Alone in its test binary so that its resident size is its own;
//! runs a redis-server of its own, filled with a million sessions by
//! pipelined `HSET`s, which the store then loads one by one.
#![cfg(feature = "redis")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod own_server;
mod redis_support;

use std::time::{Duration, Instant, SystemTime};

use redis_support::{OwnRedis, raw, unix_millis};
use typed_sessions::store::redis::RedisStore;
use typed_sessions::{SessionId, SessionStore};

const SESSIONS: usize = 100_000;
const TASKS: usize = 128;
const MAX_BYTES: usize = 4 << 20;
const VALUE: [u8; 64] = [b'x'; 64];

/// Resident memory of this process, in bytes.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split(' ').nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The `n`th session's id: made up, not random, so that the test need not
/// hold a million ids.
fn id(n: usize) -> SessionId {
    SessionId::parse(&format!("memtest{n:025}")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_sessions_stay_within_max_bytes() {
    let server = OwnRedis::start().await;
    let mut admin = raw(&server.url()).await;
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_local_cache(MAX_BYTES);
    let now = unix_millis(SystemTime::now());
    let expires = unix_millis(SystemTime::now() + Duration::from_secs(600));
    let start = Instant::now();
    for chunk in (0..SESSIONS).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for &n in chunk {
            pipe.cmd("HSET")
                .arg(store.key(&id(n)))
                .arg("__created")
                .arg(now)
                .arg("__expires")
                .arg(expires)
                .arg("ns.a")
                .arg(&VALUE[..])
                .ignore();
        }
        let () = pipe.query_async(&mut admin).await.unwrap();
    }
    let filled = start.elapsed();

    // The first call turns tracking on; until then loads are not cached.
    let unknown = SessionId::generate().unwrap();
    assert_eq!(store.load(&unknown, "ns", &["a"]).await.unwrap(), None);

    let before = resident();
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut worst = 0;
                for n in (task..SESSIONS).step_by(TASKS) {
                    let id = id(n);
                    let loaded = store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
                    assert_eq!(loaded.values[0].as_deref(), Some(&VALUE[..]));
                    if n % 1000 < TASKS {
                        // Just loaded: answered from the cache.
                        let hits = store.cache_stats().unwrap().hits;
                        store.load(&id, "ns", &["a"]).await.unwrap().unwrap();
                        let stats = store.cache_stats().unwrap();
                        assert!(stats.hits > hits, "{stats:?}");
                        assert!(stats.bytes <= MAX_BYTES, "{stats:?}");
                        worst = worst.max(stats.bytes);
                    }
                }
                worst
            })
        })
        .collect();
    let mut worst = 0;
    for task in tasks {
        worst = worst.max(task.await.unwrap());
    }
    let elapsed = start.elapsed();
    let stats = store.cache_stats().unwrap();
    let grown = resident().saturating_sub(before);
    println!(
        "{SESSIONS} sessions stored in {filled:?}, loaded through the cache in {elapsed:?}: \
         {stats:?}; largest seen {worst} bytes; resident memory grew by {} KiB",
        grown / 1024
    );
    assert!(stats.bytes <= MAX_BYTES, "{stats:?}");
    assert!(stats.misses as usize >= SESSIONS, "{stats:?}");
    assert!(
        stats.evictions as usize >= SESSIONS - stats.entries - TASKS,
        "{stats:?}"
    );
    // Every session cached would take about 60 MB.
    assert!(grown < 24 << 20, "resident memory grew by {grown} bytes");
}
