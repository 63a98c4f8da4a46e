//! The HTTP suite on MemoryStore, plus cases that need no particular store.
#![allow(missing_docs, clippy::unwrap_used)]

typed_sessions_tests::http_suite!(async { typed_sessions::MemoryStore::default() });

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
        assert_eq!(counter.values, vec![Some(b"2".to_vec())]);
        let cart = store.load(&id, "cart", &["items"]).await.unwrap().unwrap();
        assert_eq!(cart.values, vec![Some(br#"["book"]"#.to_vec())]);
    }
}
