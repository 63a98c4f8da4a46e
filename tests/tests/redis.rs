//! The HTTP suite on RedisStore, on a single server (`REDIS_URL`, default
//! `redis://127.0.0.1:6379/`) and on Redis Cluster (`REDIS_CLUSTER_URLS`,
//! comma-separated, default 127.0.0.1:7000-7002); fails when they are
//! unreachable. Plus Redis-specific cases over HTTP: the bytes Redis
//! receives for a small write to a big session (on a server of the test's
//! own), and a field corrupted with `redis-cli`.
#![cfg(feature = "redis")]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

use typed_sessions::store::redis::RedisStore;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

fn cluster_urls() -> Vec<String> {
    std::env::var("REDIS_CLUSTER_URLS")
        .unwrap_or_else(|_| {
            "redis://127.0.0.1:7000/,redis://127.0.0.1:7001/,redis://127.0.0.1:7002/".into()
        })
        .split(',')
        .map(|url| url.trim().to_owned())
        .collect()
}

async fn single_store() -> RedisStore {
    let url = redis_url();
    RedisStore::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} (start it with scripts/test-servers.sh): {e}"))
}

async fn cluster_store() -> RedisStore {
    let urls = cluster_urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisStore::connect_cluster(&urls)
        .await
        .unwrap_or_else(|e| {
            panic!("Redis Cluster at {urls:?} (start it with scripts/test-servers.sh): {e}")
        })
}

/// Runs `redis-cli` with these arguments (`-c` follows cluster redirects)
/// and returns its output; with `last_argument`, `-x` makes it read the
/// command's last argument, raw bytes, from its standard input.
fn redis_cli_with_input(url: &str, args: &[&str], last_argument: Option<&[u8]>) -> String {
    use std::io::Write;

    let mut command = Command::new("redis-cli");
    command.args(["-c", "-u", url]);
    if last_argument.is_some() {
        command.arg("-x");
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli (Debian package redis-tools; scripts/test.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(last_argument.unwrap_or_default()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

mod single {
    typed_sessions_tests::http_suite!(crate::single_store());
    typed_sessions_tests::http_index_suite!(crate::single_store());
}

mod cluster {
    typed_sessions_tests::http_suite!(crate::cluster_store());
    typed_sessions_tests::http_index_suite!(crate::cluster_store());
}

/// Store failures of any kind become 500s (the suite's generic fault case).
#[tokio::test]
async fn store_failures_become_500s() {
    let store = std::sync::Arc::new(single_store().await);
    typed_sessions_tests::cases::store_failures_become_500s(store).await;
}

/// A field garbled with `redis-cli` is reset to its default with a warning;
/// the request succeeds and the next write replaces the garbage.
async fn corrupt_field_written_with_redis_cli(store: RedisStore, url: &str) {
    use typed_sessions::SessionLayer;
    use typed_sessions_tests::app::serve;
    use typed_sessions_tests::browser::Browser;

    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/count").await.body, "1");
    assert_eq!(browser.get("/count").await.body, "2");
    let id = typed_sessions::SessionId::parse(browser.cookie.as_deref().unwrap()).unwrap();
    let key = store.key(&id);
    let garbage = [0xff; 11];
    let reply = redis_cli_with_input(url, &["HSET", &key, "Counter.visits"], Some(&garbage));
    assert_eq!(reply.trim(), "0", "the field was not there: {reply}");
    let reply = browser.get("/read").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "0"));
    assert_eq!(browser.get("/count").await.body, "1");
    assert_eq!(browser.get("/count").await.body, "2");
}

#[tokio::test]
async fn single_corrupt_field_written_with_redis_cli_is_reset() {
    corrupt_field_written_with_redis_cli(single_store().await, &redis_url()).await;
}

#[tokio::test]
async fn cluster_corrupt_field_written_with_redis_cli_is_reset() {
    corrupt_field_written_with_redis_cli(cluster_store().await, &cluster_urls()[0]).await;
}

/// Server processes of a test's own (shared with the store tests).
#[path = "../../session/tests/own_server/mod.rs"]
mod own_server;

/// The field-level promise over HTTP: a request that changes one small
/// field of a session that also holds a 200 KB field sends Redis under 1 KB
/// (the load of the namespace and the one-field write), and the big field's
/// stored bytes are unchanged. On a server of this test's own, so no other
/// client's traffic is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_write_to_a_big_session_sends_redis_under_1kb() {
    use typed_sessions::{SessionLayer, SessionStore};
    use typed_sessions_tests::app::{BLOB_LEN, serve};
    use typed_sessions_tests::browser::Browser;

    let redis = own_server::redis::OwnRedis::start().await;
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let server = serve(SessionLayer::new(store.clone())).await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/big/init").await.status, 200);
    // The first small write also loads the write script into Redis.
    assert_eq!(
        browser.get("/big/small").await.body,
        format!("1 {BLOB_LEN}")
    );
    let id = typed_sessions::SessionId::parse(browser.cookie.as_deref().unwrap()).unwrap();
    let before = store.load(&id, "big", &["blob"]).await.unwrap().unwrap();

    let input_before = redis.info_stat("total_net_input_bytes").await;
    assert_eq!(
        browser.get("/big/small").await.body,
        format!("2 {BLOB_LEN}")
    );
    let input_after = redis.info_stat("total_net_input_bytes").await;
    // Includes the second `INFO stats` itself (some 30 bytes).
    let received = input_after - input_before;
    println!("Redis received {received} bytes for a one-field write to a 200 KB session");
    assert!(received < 1024, "Redis received {received} bytes");

    let after = store.load(&id, "big", &["blob"]).await.unwrap().unwrap();
    assert_eq!(before.values, after.values);
    assert!(after.values[0].as_ref().unwrap().len() >= BLOB_LEN);
}

/// A session Redis holds corrupt (the key is not a hash, or its creation
/// marker is not a number: `Malformed`) is reset, not a 500 on every
/// request: the layer deletes it and goes on without it.
async fn corrupt_sessions_are_reset(store: RedisStore, url: &str) {
    let key_of = |id: &typed_sessions::SessionId| store.key(id);
    let shared: std::sync::Arc<dyn typed_sessions::SessionStore> =
        std::sync::Arc::new(store.clone());
    typed_sessions_tests::reset_cases::corrupt_record_is_reset(shared.clone(), |id| {
        let reply = redis_cli_with_input(url, &["SET", &key_of(&id), "a string", "EX", "60"], None);
        assert_eq!(reply.trim(), "OK");
        std::future::ready(())
    })
    .await;
    typed_sessions_tests::reset_cases::corrupt_record_is_reset(shared, |id| {
        let reply = redis_cli_with_input(url, &["HSET", &key_of(&id), "__created", "soon"], None);
        assert_eq!(reply.trim(), "0", "the marker was not there: {reply}");
        std::future::ready(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_corrupt_sessions_are_reset() {
    corrupt_sessions_are_reset(single_store().await, &redis_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_corrupt_sessions_are_reset() {
    corrupt_sessions_are_reset(cluster_store().await, &cluster_urls()[0]).await;
}
