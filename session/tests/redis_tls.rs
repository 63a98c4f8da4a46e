//! RedisStore over TLS (`rediss://`, feature `redis-rustls`), against a
//! `redis-server` of this test's own: TLS only (`--port 0`), on a spare
//! loopback port, with a CA and a server certificate generated here. The
//! server is shared by the tests of this file and stops when the test
//! process exits (see `own_server::redis::TlsRedis`). Fails when `redis-server` is
//! missing or built without TLS.
#![cfg(all(feature = "redis-rustls", feature = "conformance"))]
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod field_write;
use field_write::set;

mod own_server;

use own_server::redis::TlsRedis;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, header};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use redis::TlsCertificates;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tower_service::Service as _;
use typed_sessions::store::redis::RedisStore;
use typed_sessions::{SessionId, SessionLayer, SessionState, SessionStore};
use typed_sessions::{StoreError, TypedSession};

/// The bound on any connection attempt below: a failure must be an error,
/// never a hang.
const BOUND: Duration = Duration::from_secs(5);

/// A TLS-only `redis-server` and the CA that signed its certificate.
struct Server {
    redis: TlsRedis,
    dir: PathBuf,
    ca_pem: String,
}

impl Server {
    fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("typed-sessions-tls-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_pem = write_certificates(&dir);
        Self {
            redis: TlsRedis::start(&dir),
            dir,
            ca_pem,
        }
    }

    fn url(&self) -> String {
        self.redis.url()
    }
}

/// Writes a fresh CA (`ca.pem`) and a server certificate for 127.0.0.1 and
/// localhost signed by it (`server.pem`, `server.key`) into `dir`; returns
/// the CA certificate.
fn write_certificates(dir: &std::path::Path) -> String {
    let ca = new_ca("typed-sessions test CA");
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    ca.pem()
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn server() -> &'static Server {
    SERVER.get_or_init(Server::start)
}

/// A connection manager to the test server that trusts `ca_pem` (and
/// nothing else): the way to reach a server whose CA is not in the system
/// trust store.
async fn manager(ca_pem: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::build_with_tls(
        server().url(),
        TlsCertificates {
            client_tls: None,
            root_cert: Some(ca_pem.as_bytes().to_vec()),
        },
    )?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1);
    tokio::time::timeout(BOUND, ConnectionManager::new_with_config(client, config))
        .await
        .expect("connecting must fail or succeed, not hang")
}

async fn store() -> RedisStore {
    let manager = manager(&server().ca_pem)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {} over TLS: {e}", server().url()));
    RedisStore::new(manager).with_prefix("test:tls:")
}

typed_sessions::store_conformance_tests!(crate::store());

/// The test server refuses plain connections: the tests above did talk TLS.
#[tokio::test]
async fn server_speaks_only_tls() {
    let plain = format!("redis://127.0.0.1:{}/", server().redis.port);
    let result = tokio::time::timeout(BOUND, RedisStore::connect(&plain)).await;
    assert!(
        matches!(result, Ok(Err(_))),
        "a plain connection to the TLS port must fail: {result:?}"
    );
}

/// `connect` checks the certificate against the system trust store, which
/// does not hold the test CA: it fails at once, naming the cause.
#[tokio::test]
async fn connect_refuses_a_certificate_of_an_unknown_ca() {
    let result = tokio::time::timeout(BOUND, RedisStore::connect(&server().url()))
        .await
        .expect("connect must fail, not hang");
    let error = result.expect_err("the test CA is not in the system trust store");
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    let message = format!("{error} {:?}", std::error::Error::source(&error));
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "the error must name the certificate: {message}"
    );
}

/// Trusting another CA (a server impersonating this one would present a
/// certificate of its own CA) fails the same way.
#[tokio::test]
async fn a_client_trusting_another_ca_is_refused() {
    let other = new_ca("some other CA").pem();
    let error = manager(&other)
        .await
        .expect_err("a certificate of an untrusted CA must be refused");
    assert!(
        error
            .to_string()
            .contains("invalid peer certificate: UnknownIssuer"),
        "the error must name the certificate: {error}"
    );
}

/// `RedisStore::connect("rediss://…")` works once the CA is trusted, here
/// through `SSL_CERT_FILE` (honoured by the system trust store loader), and
/// so does the local cache, which opens its own RESP3 connection from the
/// same URL. The environment is per process, so the test runs itself again
/// as a child with `SSL_CERT_FILE` set; the child does the work.
#[tokio::test]
async fn connect_trusts_ssl_cert_file() {
    if std::env::var_os("TYPED_SESSIONS_TLS_URL").is_some() {
        return connect_with_trusted_ca().await;
    }
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "connect_trusts_ssl_cert_file", "--nocapture"])
        .env("SSL_CERT_FILE", server().dir.join("ca.pem"))
        .env("TYPED_SESSIONS_TLS_URL", server().url())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn connect_with_trusted_ca() {
    let url = std::env::var("TYPED_SESSIONS_TLS_URL").unwrap();
    for cached in [false, true] {
        let store = RedisStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url} trusting SSL_CERT_FILE: {e}"))
            .with_prefix("test:tls:");
        let store = if cached {
            store.with_local_cache(1 << 20)
        } else {
            store
        };
        round_trip(&store).await;
        if cached {
            // The second load of the round trip came from the cache: the
            // tracked connection is up over TLS.
            let stats = store.cache_stats().unwrap();
            assert!(stats.hits > 0, "{stats:?}");
        }
    }
}

/// Create, load, update, load twice, delete.
async fn round_trip(store: &RedisStore) {
    let id = SessionId::generate().unwrap();
    let set = |value| set("tls", "value", value);
    let now = SystemTime::now();
    store
        .create(&id, &[set(b"one")], now, now + Duration::from_secs(60))
        .await
        .unwrap();
    let value = |loaded: Option<typed_sessions::LoadedFields>| {
        loaded.expect("the session exists").values[0].clone()
    };
    let loaded = store.load(&id, "tls", &["value"]).await.unwrap();
    assert_eq!(value(loaded).as_deref(), Some(&b"one"[..]));
    assert!(store.update(&id, &[set(b"two")], None).await.unwrap());
    for _ in 0..2 {
        let loaded = store.load(&id, "tls", &["value"]).await.unwrap();
        assert_eq!(value(loaded).as_deref(), Some(&b"two"[..]));
    }
    store.delete(&id).await.unwrap();
    assert!(store.load(&id, "tls", &["value"]).await.unwrap().is_none());
}

#[derive(SessionState)]
struct Visits {
    count: u64,
}

async fn count(mut visits: TypedSession<Visits>) -> String {
    *visits.count_mut() += 1;
    visits.count().to_string()
}

/// Two requests through the session layer on the TLS store: the second
/// carries the cookie of the first and sees its write.
#[tokio::test]
async fn requests_through_the_layer() {
    let mut app: Router = Router::new()
        .route("/", get(count))
        .layer(SessionLayer::new(store().await).with_secure(false));

    let response = app
        .call(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .expect("the first request creates a session")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(body(response).await, "1");

    let response = app
        .call(
            Request::get("/")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(body(response).await, "2");
}

async fn body(response: http::Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}
