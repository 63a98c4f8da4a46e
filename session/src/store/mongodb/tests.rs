//! Unit tests of the Mongo store's pure parts; the store itself is tested
//! against a server in `tests/mongo_*.rs`.

use std::time::{Duration, SystemTime};

use mongodb::bson::{DateTime, doc};

use super::document::{binary, encoded_len, system_time};
use super::error::check_name;
use super::transaction::hello_supports_transactions;
use super::write::fold_writes;
use crate::store::FieldWrite;

#[test]
fn names_that_break_paths_are_refused() {
    for bad in ["", "a.b", "$set", "a\0b", "."] {
        assert!(check_name("field", bad).is_err(), "{bad:?}");
    }
    for good in ["a", "user_id", "cart-2", "a$", "Ünïcode"] {
        assert!(check_name("field", good).is_ok(), "{good:?}");
    }
}

#[test]
fn last_write_of_a_field_wins() {
    use crate::store::FieldKey;
    let key = FieldKey {
        namespace: "ns",
        field: "f",
    };
    let writes = [
        FieldWrite {
            key,
            value: Some(b"1"),
        },
        FieldWrite { key, value: None },
        FieldWrite {
            key,
            value: Some(b"2"),
        },
    ];
    let folded = fold_writes(&writes).unwrap_or_default();
    assert_eq!(folded.len(), 1);
    assert_eq!(folded.get(&("ns", "f")), Some(&Some(&b"2"[..])));
}

#[test]
fn transaction_support_from_hello() {
    let standalone = doc! { "maxWireVersion": 27, "logicalSessionTimeoutMinutes": 30 };
    assert!(!hello_supports_transactions(&standalone));
    let replica =
        doc! { "maxWireVersion": 27, "logicalSessionTimeoutMinutes": 30, "setName": "rs" };
    assert!(hello_supports_transactions(&replica));
    let old = doc! { "maxWireVersion": 6, "logicalSessionTimeoutMinutes": 30, "setName": "rs" };
    assert!(!hello_supports_transactions(&old));
    let mongos =
        doc! { "maxWireVersion": 21, "logicalSessionTimeoutMinutes": 30, "msg": "isdbgrid" };
    assert!(hello_supports_transactions(&mongos));
}

#[test]
fn encoded_len_matches_the_encoder() {
    let doc = doc! {
        "_id": "abc",
        "data": { "ns": { "f": binary(b"12345"), "g": binary(b"") }, "empty": {} },
        "created_at": DateTime::now(),
    };
    let mut encoded = Vec::new();
    doc.to_writer(&mut encoded).unwrap_or_default();
    assert_eq!(encoded_len(&doc), encoded.len());
}

#[test]
fn extreme_dates_do_not_panic() {
    let _ = system_time(DateTime::MAX);
    let _ = system_time(DateTime::MIN);
    assert_eq!(
        system_time(DateTime::from_millis(1500)),
        SystemTime::UNIX_EPOCH + Duration::from_millis(1500)
    );
}
