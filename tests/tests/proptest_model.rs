//! Property tests over the derive, the layer and the stores, in process
//! (`tower::ServiceExt::oneshot`, no sockets):
//!
//! - random sequences of requests, each a plan of set / mutate / take /
//!   reset operations on two namespaces plus keep / cycle / destroy, with
//!   the client keeping, dropping, replaying (live or dead) or garbling its
//!   cookie: what each handler sees, the cookie that comes back and the
//!   exact store calls the layer makes equal what a model kept here
//!   predicts, and every session ever issued reads back as the model says;
//! - writers of different fields of one session, loading and saving in
//!   random concurrent interleavings: no write is lost.
//!
//! On `MemoryStore` always; on Redis (single and cluster), memcached and
//! the MongoDB-wire server with their features, with fewer cases (the
//! servers must be up: see scripts/test-servers.sh).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use typed_sessions::{MemoryStore, SessionStore};
use typed_sessions_tests::model::{
    Control, Op, Send, Step, WRITABLE, Writer, check_sequence, check_writers,
};

/// One runtime for every case: two workers, so concurrent writers really
/// run in parallel.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking replays whole sequences; keep it bounded.
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

pub fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (-3i64..3).prop_map(Op::SetCount),
        any::<i64>().prop_map(Op::SetCount),
        (-2i64..3).prop_map(Op::AddCount),
        "[a-c]{0,3}".prop_map(Op::SetName),
        (0u16..4).prop_map(Op::PushTag),
        Just(Op::TakeTags),
        Just(Op::TakeName),
        prop_oneof![Just(7u8), any::<u8>()].prop_map(Op::SetSeven),
        proptest::option::of(any::<bool>()).prop_map(Op::SetFlag),
        (0usize..5).prop_map(Op::Touch),
        Just(Op::Reset),
        (0u32..3).prop_map(Op::SetN),
        Just(Op::ResetSide),
    ]
}

pub fn step_strategy() -> impl Strategy<Value = Step> {
    (
        prop_oneof![
            8 => Just(Send::Keep),
            1 => Just(Send::Forget),
            2 => (0usize..8).prop_map(Send::Reuse),
            1 => Just(Send::Garbage),
        ],
        proptest::collection::vec(op_strategy(), 0..5),
        prop_oneof![8 => Just(Control::Keep), 1 => Just(Control::Cycle), 1 => Just(Control::Destroy)],
        any::<bool>(),
    )
        .prop_map(|(send, ops, control, side)| {
            let side = side || ops.iter().any(Op::uses_side);
            Step {
                send,
                ops,
                control,
                side,
            }
        })
}

/// Writers of distinct fields, in the order their releases are sent within
/// a batch.
pub fn writers_strategy() -> impl Strategy<Value = Vec<Writer>> {
    proptest::sample::subsequence((0..WRITABLE).collect::<Vec<_>>(), 1..=WRITABLE)
        .prop_shuffle()
        .prop_flat_map(|fields| {
            let n = fields.len();
            (
                Just(fields),
                proptest::collection::vec((1u64..1000, any::<bool>(), 0usize..3, 0usize..3), n),
            )
        })
        .prop_map(|(fields, params)| {
            fields
                .into_iter()
                .zip(params)
                .map(|(field, (value, mutate, start, extra))| Writer {
                    field,
                    value,
                    mutate,
                    start,
                    release: start + extra,
                })
                .collect()
        })
}

fn memory() -> Arc<dyn SessionStore> {
    Arc::new(MemoryStore::default())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn memory_sequences_match_the_model(steps in proptest::collection::vec(step_strategy(), 1..24)) {
        RUNTIME.block_on(check_sequence(memory(), &steps));
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn memory_concurrent_writers_lose_nothing(writers in writers_strategy()) {
        RUNTIME.block_on(check_writers(memory(), &writers));
    }
}

/// Fixed cases the generators may not hit often: a cycle with writes, a
/// destroy with writes, reset after set, take on a stored field, a dead
/// cookie replayed after a cycle.
#[test]
fn memory_hand_picked_sequences() {
    let step = |send, ops: Vec<Op>, control| Step {
        side: ops.iter().any(Op::uses_side),
        send,
        ops,
        control,
    };
    let steps = vec![
        step(
            Send::Keep,
            vec![Op::SetCount(1), Op::PushTag(3)],
            Control::Keep,
        ),
        step(
            Send::Keep,
            vec![Op::SetN(2), Op::SetName("a".into())],
            Control::Cycle,
        ),
        step(Send::Reuse(0), vec![Op::AddCount(1)], Control::Keep),
        step(
            Send::Reuse(1),
            vec![Op::TakeTags, Op::Reset, Op::SetSeven(7)],
            Control::Keep,
        ),
        step(Send::Keep, vec![Op::Touch(3), Op::Touch(4)], Control::Keep),
        step(
            Send::Keep,
            vec![Op::ResetSide, Op::SetFlag(Some(true))],
            Control::Destroy,
        ),
        step(Send::Garbage, vec![], Control::Destroy),
        step(Send::Reuse(1), vec![Op::SetN(0)], Control::Cycle),
        step(Send::Forget, vec![Op::Reset], Control::Keep),
    ];
    RUNTIME.block_on(check_sequence(memory(), &steps));
    let writers: Vec<Writer> = (0..WRITABLE)
        .map(|field| Writer {
            field,
            value: field as u64 + 1,
            mutate: field % 2 == 0,
            start: 0,
            release: 0,
        })
        .collect();
    RUNTIME.block_on(check_writers(memory(), &writers));
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use typed_sessions::store::redis::RedisStore;

    fn single() -> Arc<dyn SessionStore> {
        let url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
        let store = RUNTIME
            .block_on(RedisStore::connect(&url))
            .unwrap_or_else(|e| panic!("Redis at {url} (scripts/test-servers.sh): {e}"));
        Arc::new(store)
    }

    fn cluster() -> Arc<dyn SessionStore> {
        let urls = std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
            "redis://127.0.0.1:7000/,redis://127.0.0.1:7001/,redis://127.0.0.1:7002/".into()
        });
        let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
        let store = RUNTIME
            .block_on(RedisStore::connect_cluster(&urls))
            .unwrap_or_else(|e| panic!("Redis Cluster at {urls:?} (scripts/test-servers.sh): {e}"));
        Arc::new(store)
    }

    static SINGLE: LazyLock<Arc<dyn SessionStore>> = LazyLock::new(single);
    static CLUSTER: LazyLock<Arc<dyn SessionStore>> = LazyLock::new(cluster);

    proptest! {
        #![proptest_config(config(64))]

        #[test]
        fn redis_sequences_match_the_model(steps in proptest::collection::vec(step_strategy(), 1..16)) {
            RUNTIME.block_on(check_sequence(SINGLE.clone(), &steps));
        }

        #[test]
        fn redis_concurrent_writers_lose_nothing(writers in writers_strategy()) {
            RUNTIME.block_on(check_writers(SINGLE.clone(), &writers));
        }

        #[test]
        fn redis_cluster_sequences_match_the_model(steps in proptest::collection::vec(step_strategy(), 1..16)) {
            RUNTIME.block_on(check_sequence(CLUSTER.clone(), &steps));
        }

        #[test]
        fn redis_cluster_concurrent_writers_lose_nothing(writers in writers_strategy()) {
            RUNTIME.block_on(check_writers(CLUSTER.clone(), &writers));
        }
    }
}

#[cfg(feature = "memcache")]
mod memcache {
    use super::*;
    use typed_sessions::store::memcache::MemcacheStore;

    static STORE: LazyLock<Arc<dyn SessionStore>> = LazyLock::new(|| {
        let url = std::env::var("MEMCACHE_URL")
            .unwrap_or_else(|_| "memcache://127.0.0.1:11211".to_owned());
        let store = RUNTIME
            .block_on(MemcacheStore::connect(&url))
            .unwrap_or_else(|e| panic!("memcached at {url} (scripts/test-servers.sh): {e}"));
        Arc::new(store)
    });

    proptest! {
        #![proptest_config(config(64))]

        #[test]
        fn memcache_sequences_match_the_model(steps in proptest::collection::vec(step_strategy(), 1..16)) {
            RUNTIME.block_on(check_sequence(STORE.clone(), &steps));
        }

        #[test]
        fn memcache_concurrent_writers_lose_nothing(writers in writers_strategy()) {
            RUNTIME.block_on(check_writers(STORE.clone(), &writers));
        }
    }
}

#[cfg(feature = "mongodb")]
mod mongodb {
    use super::*;
    use typed_sessions::store::mongodb::MongoStore;

    static STORE: LazyLock<Arc<dyn SessionStore>> = LazyLock::new(|| {
        let url =
            std::env::var("MONGO_URL").unwrap_or_else(|_| "mongodb://127.0.0.1:27017/".to_owned());
        let store = RUNTIME
            .block_on(MongoStore::connect(
                &url,
                "typed_sessions_tests",
                "proptest",
            ))
            .unwrap_or_else(|e| panic!("MongoDB at {url} (scripts/test-servers.sh): {e}"));
        Arc::new(store)
    });

    proptest! {
        #![proptest_config(config(48))]

        #[test]
        fn mongo_sequences_match_the_model(steps in proptest::collection::vec(step_strategy(), 1..16)) {
            RUNTIME.block_on(check_sequence(STORE.clone(), &steps));
        }

        #[test]
        fn mongo_concurrent_writers_lose_nothing(writers in writers_strategy()) {
            RUNTIME.block_on(check_writers(STORE.clone(), &writers));
        }
    }
}
