//! HTTP cases of the stored format: values survive changes inside a field's
//! type, every codec reads every other codec's values, and a field the
//! handler does not touch is never decoded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use serde::{Deserialize, Deserializer, Serialize};
use typed_sessions::codec::TAG_MESSAGE_PACK;
use typed_sessions::{SessionId, SessionLayer, SessionState, SessionStore, TypedSession};

use crate::app::{Gate, serve_router};
use crate::browser::Browser;

type Store = Arc<dyn SessionStore>;

fn id_of(cookie: &str) -> SessionId {
    SessionId::parse(&cookie[cookie.len() - 32..]).expect("cookie holds an id")
}

/// Version 1 of a user's types, as deployed first.
mod v1 {
    use super::*;

    #[derive(Serialize, Deserialize, Default, Debug)]
    pub enum Kind {
        #[default]
        Free,
        Pro,
    }

    #[derive(Serialize, Deserialize, Default, Debug)]
    pub struct Profile {
        pub name: String,
        pub tags: Vec<String>,
        pub kind: Kind,
    }

    #[derive(SessionState)]
    #[session(namespace = "account")]
    pub struct Account {
        pub profile: Profile,
        pub plan: Kind,
    }
}

/// Version 2: `tags` removed, `age` added with a serde default, and a new
/// enum variant.
mod v2 {
    use super::*;

    #[derive(Serialize, Deserialize, Default, Debug)]
    pub enum Kind {
        #[default]
        Free,
        Pro,
        Team,
    }

    #[derive(Serialize, Deserialize, Default, Debug)]
    pub struct Profile {
        pub name: String,
        pub kind: Kind,
        #[serde(default)]
        pub age: u32,
    }

    #[derive(SessionState)]
    #[session(namespace = "account")]
    pub struct Account {
        pub profile: Profile,
        pub plan: Kind,
    }
}

async fn write_v1(mut s: TypedSession<v1::Account>) -> &'static str {
    s.set_profile(v1::Profile {
        name: "ada".to_owned(),
        tags: vec!["x".to_owned()],
        kind: v1::Kind::Pro,
    });
    s.set_plan(v1::Kind::Pro);
    "ok"
}

async fn read_v2(mut s: TypedSession<v2::Account>) -> String {
    let answer = format!("{:?} {:?}", s.profile(), s.plan());
    s.profile_mut().age += 1;
    s.set_plan(v2::Kind::Team);
    answer
}

/// A state for the codec switch: a string and a number.
#[derive(SessionState)]
#[session(namespace = "switch")]
pub struct Switch {
    pub note: String,
    pub count: u64,
}

/// Answers what it read, then changes both fields.
async fn switch(mut s: TypedSession<Switch>) -> String {
    let answer = format!("{:?} {}", s.note(), s.count());
    s.note_mut().push('!');
    *s.count_mut() += 1;
    answer
}

fn layer_router(layer: SessionLayer) -> Router {
    Router::new()
        .route("/v1", get(write_v1))
        .route("/v2", get(read_v2))
        .route("/switch", get(switch))
        .layer(layer)
}

/// A session written by version 1 of the types is read by version 2 with
/// its values intact; version 2's own writes then read back.
pub async fn values_survive_changes_inside_field_types(store: Store) {
    let server = serve_router(
        layer_router(SessionLayer::new(store.clone())),
        Arc::new(Gate::default()),
    )
    .await;
    let mut browser = Browser::new(&server.base);
    assert_eq!(browser.get("/v1").await.body, "ok");
    assert_eq!(
        browser.get("/v2").await.body,
        r#"Profile { name: "ada", kind: Pro, age: 0 } Pro"#
    );
    assert_eq!(
        browser.get("/v2").await.body,
        r#"Profile { name: "ada", kind: Pro, age: 1 } Team"#
    );
}

/// The layer configured with each codec in turn: what one wrote, the next
/// reads, and its next write rewrites the field in its own codec.
pub async fn switching_codecs_keeps_sessions_and_rewrites_on_write(store: Store) {
    let layers: Vec<(u8, SessionLayer)> = codec_layers(&store);
    let servers = {
        let mut servers = Vec::new();
        for (tag, layer) in layers {
            let server = serve_router(layer_router(layer), Arc::new(Gate::default())).await;
            servers.push((tag, server));
        }
        servers
    };
    for (first_tag, first) in &servers {
        for (tag, second) in &servers {
            if first_tag == tag {
                continue;
            }
            let mut browser = Browser::new(&first.base);
            assert_eq!(browser.get("/switch").await.body, r#""" 0"#);
            let cookie = browser.cookie.clone().expect("a session");
            assert_eq!(stored_tags(&store, &cookie).await, [*first_tag; 2]);
            // The same browser, now served by the layer with the other codec.
            let mut switched = Browser::new(&second.base);
            switched.cookie = Some(cookie.clone());
            assert_eq!(
                switched.get("/switch").await.body,
                r#""!" 1"#,
                "{first_tag:#04x} -> {tag:#04x}"
            );
            assert_eq!(stored_tags(&store, &cookie).await, [*tag; 2]);
            assert_eq!(switched.get("/switch").await.body, r#""!!" 2"#);
        }
    }
}

fn codec_layers(store: &Store) -> Vec<(u8, SessionLayer)> {
    #[allow(unused_mut)]
    let mut layers = vec![(TAG_MESSAGE_PACK, SessionLayer::new(store.clone()))];
    #[cfg(feature = "json")]
    layers.push((
        typed_sessions::codec::TAG_JSON,
        SessionLayer::new(store.clone()).with_codec(typed_sessions::Json),
    ));
    #[cfg(feature = "bincode")]
    layers.push((
        typed_sessions::codec::TAG_BINCODE,
        SessionLayer::new(store.clone()).with_codec(typed_sessions::Bincode),
    ));
    assert!(
        layers.len() >= 2,
        "the format cases need the json or bincode feature"
    );
    layers
}

async fn stored_tags(store: &Store, cookie: &str) -> Vec<u8> {
    let loaded = store
        .load(&id_of(cookie), "switch", &["note", "count"])
        .await
        .unwrap()
        .expect("the session is stored");
    loaded
        .values
        .iter()
        .map(|value| value.as_ref().expect("the field is stored")[0])
        .collect()
}

/// How many times a [`Counted`] was deserialized.
static DECODED: AtomicUsize = AtomicUsize::new(0);

/// A field type that counts its decodings.
#[derive(Serialize, Default, Debug)]
pub struct Counted(Vec<u64>);

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DECODED.fetch_add(1, Ordering::SeqCst);
        Vec::deserialize(deserializer).map(Counted)
    }
}

#[derive(SessionState)]
#[session(namespace = "lazy")]
pub struct Lazy {
    pub visits: u64,
    pub heavy: Counted,
}

async fn lazy_fill(mut s: TypedSession<Lazy>) -> &'static str {
    s.set_heavy(Counted((0..1000).collect()));
    "ok"
}

async fn lazy_visit(mut s: TypedSession<Lazy>) -> String {
    *s.visits_mut() += 1;
    s.visits().to_string()
}

async fn lazy_read(s: TypedSession<Lazy>) -> String {
    // Read twice: decoded once.
    format!("{} {}", s.heavy().0.len(), s.heavy().0.len())
}

async fn lazy_replace(mut s: TypedSession<Lazy>) -> &'static str {
    s.set_heavy(Counted(vec![1]));
    "ok"
}

/// A handler that does not touch a field never decodes it, and setting a
/// field does not decode its old value.
pub async fn untouched_fields_are_never_decoded(store: Store) {
    let router = Router::new()
        .route("/fill", get(lazy_fill))
        .route("/visit", get(lazy_visit))
        .route("/read", get(lazy_read))
        .route("/replace", get(lazy_replace))
        .layer(SessionLayer::new(store));
    let server = serve_router(router, Arc::new(Gate::default())).await;
    let mut browser = Browser::new(&server.base);
    browser.get("/fill").await;
    let before = DECODED.load(Ordering::SeqCst);
    for expected in ["1", "2", "3"] {
        assert_eq!(browser.get("/visit").await.body, expected);
    }
    assert_eq!(browser.get("/replace").await.body, "ok");
    assert_eq!(DECODED.load(Ordering::SeqCst), before, "decoded untouched");
    assert_eq!(browser.get("/read").await.body, "1 1");
    assert_eq!(DECODED.load(Ordering::SeqCst), before + 1);
}
