use super::*;

fn in_service() -> Arc<LocalCache> {
    let cache = LocalCache::new(Origin::Single(String::new()), 4 << 20);
    cache.state.store(1, Ordering::Release);
    cache.heard.store(u64::MAX / 2, Ordering::Release);
    cache
}

fn loaded(value: &[u8]) -> LoadedFields {
    LoadedFields {
        created_at: SystemTime::now(),
        expires_at: SystemTime::now() + Duration::from_secs(60),
        values: vec![Some(Bytes::copy_from_slice(value))],
        expiry: None,
    }
}

/// A million distinct sessions through a 4 MiB cache: never over the
/// budget, the most recent ones kept, the old ones evicted.
#[test]
fn a_million_sessions_stay_within_max_bytes() {
    let cache = in_service();
    let value = [b'x'; 64];
    let fill = loaded(&value);
    for n in 0..1_000_000_u32 {
        let key = format!("session:{n:032}");
        let ticket = cache.begin(key, true).unwrap();
        ticket.loaded("ns", &["a"], Some(&fill));
        if n % 10_000 == 0 {
            assert!(
                cache.stats().bytes <= cache.max_bytes,
                "{:?}",
                cache.stats()
            );
        }
    }
    let stats = cache.stats();
    assert!(stats.bytes <= stats.max_bytes, "{stats:?}");
    assert!(stats.entries > 1000, "{stats:?}");
    assert_eq!(
        stats.evictions as usize + stats.entries,
        1_000_000,
        "{stats:?}"
    );
    // Approximately least recently used: the last sessions are there.
    let last = format!("session:{:032}", 999_999);
    assert!(cache.lookup(&last, "ns", &["a"]).is_some());
}

/// An invalidation or another operation between a load's start and its
/// answer keeps the answer out; so does a gap.
#[test]
fn only_the_latest_operation_stores() {
    let cache = in_service();
    let key = || "session:k".to_owned();
    let ticket = cache.begin(key(), true).unwrap();
    cache.on_push(PushInfo {
        kind: PushKind::Invalidate,
        data: vec![Value::Array(vec![Value::BulkString(b"session:k".to_vec())])],
    });
    ticket.loaded("ns", &["a"], Some(&loaded(b"old")));
    assert!(cache.lookup("session:k", "ns", &["a"]).is_none());

    let first = cache.begin(key(), true).unwrap();
    let second = cache.begin(key(), true).unwrap();
    first.loaded("ns", &["a"], Some(&loaded(b"1")));
    assert!(cache.lookup("session:k", "ns", &["a"]).is_none());
    drop(second);
    assert!(cache.lookup("session:k", "ns", &["a"]).is_none());

    let ticket = cache.begin(key(), true).unwrap();
    cache.gap("test");
    cache.state.store(3, Ordering::Release);
    ticket.loaded("ns", &["a"], Some(&loaded(b"1")));
    assert!(cache.lookup("session:k", "ns", &["a"]).is_none());

    // A write dropped unfinished (an error, a cancelled future) drops
    // the entry.
    cache
        .begin(key(), true)
        .unwrap()
        .loaded("ns", &["a"], Some(&loaded(b"1")));
    assert!(cache.lookup("session:k", "ns", &["a"]).is_some());
    drop(cache.begin(key(), true).unwrap());
    assert!(cache.lookup("session:k", "ns", &["a"]).is_none());
}
