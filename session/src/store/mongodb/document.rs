//! The BSON side of [`MongoStore`](super::MongoStore): the filters its
//! operations share, the documents a move writes, reading a loaded document
//! without trusting it, and conversions between the store's types and BSON.

use std::time::{Duration, SystemTime};

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};

use crate::id::SessionId;
use crate::store::{EXPIRY_FIELD, FORWARD_WINDOW};

/// What the old document becomes when `move_to` retires it: a forward to
/// `to` until the window ends, without `created_at` (so it is never a live
/// session) and with `expires_at` at the window's end (so the TTL index
/// removes it).
pub(super) fn forward_document(to: &SessionId) -> Document {
    let now = SystemTime::now();
    let until = bson_time(now.checked_add(FORWARD_WINDOW).unwrap_or(now));
    doc! { "forward": { "to": to.as_str(), "until": until }, "expires_at": until }
}

/// `{_id, expires_at > now, created_at is a date}`: the session is live.
pub(super) fn live_filter(id: &SessionId, now: DateTime) -> Document {
    doc! {
        "_id": id.as_str(),
        "expires_at": { "$gt": now },
        "created_at": { "$type": "date" },
    }
}

/// Live, and not being moved by a non-transactional `move_to` (whose lease
/// has not ended): the session may be written.
pub(super) fn writable_filter(id: &SessionId, now: DateTime) -> Document {
    let mut filter = live_filter(id, now);
    filter.insert("moving.until", doc! { "$not": { "$gt": now } });
    filter
}

/// The document with this id, if it is not live (expired or malformed).
pub(super) fn not_live_filter(id: &SessionId, now: DateTime) -> Document {
    doc! {
        "_id": id.as_str(),
        "$nor": [ {
            "expires_at": { "$gt": now },
            "created_at": { "$type": "date" },
        } ],
    }
}

/// The document `move_to` inserts under `to`: `source`'s data and creation
/// time (it was read with the live filter, so `created_at` is a date).
pub(super) fn moved_document(
    to: &SessionId,
    source: &Document,
    expires_at: SystemTime,
) -> Document {
    let mut doc = doc! { "_id": to.as_str() };
    doc.insert(
        "data",
        source
            .get("data")
            .cloned()
            .unwrap_or_else(|| Bson::Document(Document::new())),
    );
    doc.insert(
        "created_at",
        source
            .get("created_at")
            .cloned()
            .unwrap_or_else(|| Bson::DateTime(DateTime::now())),
    );
    doc.insert("expires_at", bson_time(expires_at));
    doc
}

/// The stored fields of `namespace` in a loaded document; `None` (with a
/// warning for garbage) when there is no readable namespace document.
pub(super) fn namespace_fields<'a>(
    id: &SessionId,
    namespace: &str,
    doc: &'a Document,
) -> Option<&'a Document> {
    let data = match doc.get("data")? {
        Bson::Document(data) => data,
        other => {
            tracing::warn!(
                session = %id.log_tag(),
                stored_type = ?other.element_type(),
                "MongoStore: session data is not a document; treated as empty"
            );
            return None;
        }
    };
    match data.get(namespace)? {
        Bson::Document(fields) => Some(fields),
        other => {
            tracing::warn!(
                session = %id.log_tag(),
                namespace,
                stored_type = ?other.element_type(),
                "MongoStore: stored namespace is not a document; treated as empty"
            );
            None
        }
    }
}

/// The bytes of [`EXPIRY_FIELD`] in a loaded document, if stored as Binary.
pub(super) fn stored_expiry(id: &SessionId, doc: &Document) -> Option<bytes::Bytes> {
    match namespace_fields(id, EXPIRY_FIELD.namespace, doc)?.get(EXPIRY_FIELD.field)? {
        Bson::Binary(value) => Some(value.bytes.clone().into()),
        _ => None,
    }
}

pub(super) fn warn_not_binary(id: &SessionId, namespace: &str, field: &str, value: &Bson) {
    tracing::warn!(
        session = %id.log_tag(),
        namespace,
        field,
        stored_type = ?value.element_type(),
        "MongoStore: stored field is not Binary; treated as missing"
    );
}

pub(super) fn binary(bytes: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    }
}

pub(super) fn bson_time(time: SystemTime) -> DateTime {
    DateTime::from_system_time(time)
}

/// A BSON date as `SystemTime`, clamped instead of overflowing.
pub(super) fn system_time(time: DateTime) -> SystemTime {
    let millis = time.timestamp_millis();
    let offset = Duration::from_millis(millis.unsigned_abs());
    let converted = if millis >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    };
    converted.unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The size of `doc` as BSON, computed without encoding it (the encoder
/// refuses oversized values instead of measuring them).
pub(super) fn encoded_len(doc: &Document) -> usize {
    // length prefix, elements (type byte, key, NUL, value), terminating NUL
    4 + doc
        .iter()
        .map(|(key, value)| 1 + key.len() + 1 + value_len(value))
        .sum::<usize>()
        + 1
}

fn value_len(value: &Bson) -> usize {
    match value {
        Bson::Document(doc) => encoded_len(doc),
        Bson::Binary(binary) => 4 + 1 + binary.bytes.len(),
        Bson::String(text) => 4 + text.len() + 1,
        // Dates, and anything else a session document holds: 8 bytes or
        // less; the server has the last word anyway.
        _ => 8,
    }
}
