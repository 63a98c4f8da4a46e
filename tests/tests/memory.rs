//! The HTTP suite on MemoryStore, plus cases that need no particular store.
#![allow(missing_docs, clippy::unwrap_used)]

typed_sessions_tests::http_suite!(async { typed_sessions::MemoryStore::default() });
typed_sessions_tests::http_index_suite!(async { typed_sessions::MemoryStore::default() });

mod layer_only {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::get;
    use typed_sessions::{MemoryStore, TypedSession};
    use typed_sessions_tests::app::{Counter, Gate, serve_router};
    use typed_sessions_tests::browser::Browser;

    #[tokio::test]
    async fn store_failures_become_500s() {
        typed_sessions_tests::cases::store_failures_become_500s(Arc::new(MemoryStore::default()))
            .await;
    }

    #[tokio::test]
    async fn extractor_without_layer_is_a_500_naming_the_layer() {
        async fn handler(_s: TypedSession<Counter>) -> &'static str {
            "unreachable"
        }
        let router = Router::new().route("/", get(handler));
        let server = serve_router(router, Arc::new(Gate::default())).await;
        let reply = Browser::new(&server.base).get("/").await;
        assert_eq!(reply.status, 500);
        assert!(reply.body.contains("SessionLayer"), "{}", reply.body);
    }

    #[test]
    #[should_panic(expected = "invalid SessionLayer configuration")]
    fn contradictory_config_panics_when_applied() {
        use tower::Layer;
        let layer = typed_sessions::SessionLayer::new(MemoryStore::default())
            .with_cookie_name("__Host-id")
            .with_secure(false);
        let _ = layer.layer(tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }));
    }
}

#[cfg(feature = "json")]
mod json_codec {
    use std::sync::Arc;

    use typed_sessions::{Json, MemoryStore, SessionId, SessionLayer, SessionStore};
    use typed_sessions_tests::app::serve;
    use typed_sessions_tests::browser::Browser;

    #[tokio::test]
    async fn json_codec_stores_readable_values() {
        let store = Arc::new(MemoryStore::default());
        let server = serve(SessionLayer::new(store.clone()).with_codec(Json)).await;
        let mut browser = Browser::new(&server.base);
        browser.get("/login").await;
        assert_eq!(browser.get("/count").await.body, "1");
        assert_eq!(browser.get("/count").await.body, "2");
        let id = SessionId::parse(&browser.cookie.clone().unwrap()).unwrap();
        let counter = store
            .load(&id, "Counter", &["visits"])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            counter.values,
            vec![Some(typed_sessions::store::Bytes::from_static(b"\x032"))]
        );
        let cart = store.load(&id, "cart", &["items"]).await.unwrap().unwrap();
        assert_eq!(
            cart.values,
            vec![Some(typed_sessions::store::Bytes::from_static(
                b"\x03[\"book\"]"
            ))]
        );
    }
}

/// An upgraded connection (as a websocket uses) passes through the layer
/// unharmed, and the session change of the upgrading request is saved.
mod upgrade {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::Response;
    use axum::routing::get;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use typed_sessions::{MemoryStore, SessionLayer, TypedSession};
    use typed_sessions_tests::app::{Counter, Gate, serve_router};
    use typed_sessions_tests::browser::Browser;

    async fn echo_upgrade(mut session: TypedSession<Counter>, request: Request) -> Response {
        *session.visits_mut() += 1;
        let on_upgrade = hyper::upgrade::on(request);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut io = TokioIo::new(upgraded);
            let mut buffer = [0u8; 64];
            while let Ok(n) = io.read(&mut buffer).await {
                if n == 0 || io.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        });
        Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn upgraded_connections_pass_through() {
        let router = Router::new()
            .route("/upgrade", get(echo_upgrade))
            .route(
                "/read",
                get(|s: TypedSession<Counter>| async move { s.visits().to_string() }),
            )
            .layer(SessionLayer::new(MemoryStore::default()));
        let server = serve_router(router, Arc::new(Gate::default())).await;
        let address = server.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request = format!(
            "GET /upgrade HTTP/1.1\r\nHost: {address}\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(
                stream.read(&mut byte).await.unwrap(),
                1,
                "connection closed early"
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let cookie_line = head
            .lines()
            .find(|line| line.to_ascii_lowercase().starts_with("set-cookie:"))
            .expect("the upgrading request's session was saved");
        let cookie = cookie_line
            .split_once('=')
            .unwrap()
            .1
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        stream
            .write_all(b"ping over the upgraded connection")
            .await
            .unwrap();
        let mut echoed = [0u8; 33];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping over the upgraded connection");
        let mut browser = Browser::new(&server.base);
        browser.cookie = Some(cookie);
        assert_eq!(browser.get("/read").await.body, "1");
    }
}
