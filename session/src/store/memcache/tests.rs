//! Unit tests of the parent module.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn index_entries_are_refused_whether_set_or_removed() {
    use crate::store::{FieldKey, INDEX_NAMESPACE};
    let write = |namespace, value| FieldWrite {
        key: FieldKey {
            namespace,
            field: "User",
        },
        value,
    };
    for value in [Some(&b"ada"[..]), None] {
        let writes = [
            write("User", Some(&b"1"[..])),
            write(INDEX_NAMESPACE, value),
        ];
        let Err(error) = refuse_index_entries(&writes) else {
            panic!("{value:?} accepted");
        };
        assert!(matches!(error, StoreError::Unsupported(_)));
        assert!(error.to_string().contains("#[session(index)]"), "{error}");
    }
    assert!(refuse_index_entries(&[write("User", None), write("__", None)]).is_ok());
}

#[test]
fn errors_never_carry_the_key() {
    use memcache::exp::Error;
    let key = b"session:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_vec();
    let timeout = Error::Timeout { key: key.clone() };
    let ambiguous = Error::Ambiguous {
        key: key.clone(),
        source: Box::new(Error::Timeout { key: key.clone() }),
    };
    for error in [timeout, ambiguous] {
        let error = backend(error);
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains("AAAAAAAA"), "{text}");
            assert!(!text.contains("65, 65, 65"), "{text}");
        }
    }
}

#[test]
fn urls() {
    assert_eq!(
        parse_url("memcache://127.0.0.1:11211").unwrap(),
        ["127.0.0.1:11211"]
    );
    assert_eq!(parse_url("memcache://cache/").unwrap(), ["cache:11211"]);
    assert_eq!(
        parse_url("memcache://a:1,b:2, memcache://c").unwrap(),
        ["a:1", "b:2", "c:11211"]
    );
    assert_eq!(parse_url("memcache://[::1]:5").unwrap(), ["[::1]:5"]);
    assert_eq!(parse_url("memcache://[::1]").unwrap(), ["[::1]:11211"]);
    for bad in [
        "127.0.0.1:11211",
        "redis://x:1",
        "memcache://",
        "memcache://a:1,",
        "memcache://a:",
        "memcache://a:1/db",
        "memcache://a:1?timeout=3",
        "memcache://u@a:1",
    ] {
        assert!(parse_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn ttls_are_relative_up_to_30_days_then_absolute() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let at = |ms: u64| now + Duration::from_millis(ms);
    assert_eq!(item_ttl(at(1500), now), Ttl::secs(3));
    assert_eq!(item_ttl(at(2000), now), Ttl::secs(3));
    assert_eq!(item_ttl(now, now), Ttl::secs(1));
    assert_eq!(item_ttl(now - Duration::from_secs(5), now), Ttl::secs(1));
    let day = 24 * 60 * 60 * 1000;
    assert_eq!(
        item_ttl(at(30 * day - 1000), now),
        Ttl::secs(30 * 24 * 60 * 60)
    );
    // 30 days exactly is one second past the relative range.
    assert_eq!(
        item_ttl(at(30 * day), now),
        Ttl::at(now + Duration::from_secs(30 * 24 * 60 * 60 + 1))
    );
    assert_eq!(
        item_ttl(at(31 * day + 1), now),
        Ttl::at(now + Duration::from_secs(31 * 24 * 60 * 60 + 2))
    );
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 2);
    assert_eq!(
        item_ttl(far, now),
        Ttl::at(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)))
    );
}
