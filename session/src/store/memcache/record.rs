//! The stored record of one session: a versioned, length-prefixed binary
//! format, written and read by hand.
//!
//! # Version 1
//!
//! All integers are unsigned and big-endian.
//!
//! ```text
//! offset  size  content
//! 0       1     format version: 1
//! 1       8     created_at: Unix time in milliseconds
//! 9       8     expires_at: Unix time in milliseconds
//! 17      4     n: the number of fields
//! 21      ...   n fields, each:
//!                 2   a: length of the namespace
//!                 a   the namespace (UTF-8 as written; not checked on read)
//!                 2   b: length of the field name
//!                 b   the field name
//!                 4   c: length of the value
//!                 c   the value: the codec's bytes, stored as they came
//! ```
//!
//! Nothing follows the last field, and each (namespace, field name) pair
//! appears at most once. Everything from offset 17 on is the *body*: a
//! change of the header alone (touch, move) copies the body verbatim.
//!
//! Parsing is total: every byte string either parses or gives
//! [`StoreError::Malformed`], never a panic, and the parser allocates no more
//! than the input's length justifies (the field index is sized only after
//! checking that the input can hold that many fields; values and names are
//! borrowed from the input). A new format gets a new version byte; a reader
//! refuses versions it does not know.

use std::collections::{HashMap, HashSet};

use crate::store::{FieldWrite, StoreError};

/// The format version this module writes and reads.
pub(crate) const VERSION: u8 = 1;
/// Version byte plus the two timestamps.
pub(crate) const HEADER_LEN: usize = 1 + 8 + 8;
/// The smallest encoding of one field: three length prefixes, empty contents.
const MIN_FIELD_LEN: usize = 2 + 2 + 4;

/// One stored field, borrowed from a record or from a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    pub(crate) namespace: &'a [u8],
    pub(crate) name: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// A parsed record; everything is borrowed from the stored bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    /// Unix milliseconds.
    pub(crate) created_at: u64,
    /// Unix milliseconds.
    pub(crate) expires_at: u64,
    /// The fields, in stored order.
    pub(crate) fields: Vec<Field<'a>>,
    /// The bytes after the header (field count and fields), verbatim.
    pub(crate) body: &'a [u8],
}

fn malformed(message: impl Into<String>) -> StoreError {
    StoreError::Malformed(format!("memcached session record: {}", message.into()))
}

/// Reads from the front of a byte slice, never past its end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], StoreError> {
        if self.rest.len() < len {
            return Err(malformed(format!(
                "{what} needs {len} bytes, {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], StoreError> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(*head)
            }
            None => Err(malformed(format!(
                "{what} needs {N} bytes, {} left",
                self.rest.len()
            ))),
        }
    }

    fn u16_len(&mut self, what: &str) -> Result<usize, StoreError> {
        Ok(usize::from(u16::from_be_bytes(self.array(what)?)))
    }

    fn u32_len(&mut self, what: &str) -> Result<usize, StoreError> {
        let len = u32::from_be_bytes(self.array(what)?);
        usize::try_from(len).map_err(|_| malformed(format!("{what} {len} does not fit in memory")))
    }

    fn u64(&mut self, what: &str) -> Result<u64, StoreError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
}

/// Parses a stored record. See the [module docs](self) for the format.
pub(crate) fn parse(bytes: &[u8]) -> Result<Record<'_>, StoreError> {
    let mut reader = Reader { rest: bytes };
    let [version] = reader.array::<1>("version")?;
    if version != VERSION {
        return Err(malformed(format!(
            "unknown format version {version} (this build reads version {VERSION})"
        )));
    }
    let created_at = reader.u64("created_at")?;
    let expires_at = reader.u64("expires_at")?;
    let body = reader.rest;
    let count = reader.u32_len("field count")?;
    let room = reader.rest.len() / MIN_FIELD_LEN;
    if count > room {
        return Err(malformed(format!(
            "field count {count} exceeds the {room} fields {} bytes can hold",
            reader.rest.len()
        )));
    }
    let mut fields = Vec::with_capacity(count);
    let mut seen = HashSet::with_capacity(count);
    for index in 0..count {
        let len = reader.u16_len("namespace length")?;
        let namespace = reader.take(len, "namespace")?;
        let len = reader.u16_len("field name length")?;
        let name = reader.take(len, "field name")?;
        let len = reader.u32_len("value length")?;
        let value = reader.take(len, "value")?;
        if !seen.insert((namespace, name)) {
            return Err(malformed(format!("field {index} is stored twice")));
        }
        fields.push(Field {
            namespace,
            name,
            value,
        });
    }
    if !reader.rest.is_empty() {
        return Err(malformed(format!(
            "{} bytes after the last field",
            reader.rest.len()
        )));
    }
    Ok(Record {
        created_at,
        expires_at,
        fields,
        body,
    })
}

/// Why a record could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EncodeError {
    /// The record would be `len` bytes, over `limit`.
    OverLimit { len: usize, limit: usize },
    /// A name or value is longer than its length prefix can say.
    FieldTooLong(String),
}

/// Encodes a record, refusing one longer than `limit` bytes before
/// allocating it.
pub(crate) fn encode(
    created_at: u64,
    expires_at: u64,
    fields: &[Field<'_>],
    limit: usize,
) -> Result<Vec<u8>, EncodeError> {
    let mut len = HEADER_LEN + 4;
    for field in fields {
        for (what, part, max) in [
            ("namespace", field.namespace, usize::from(u16::MAX)),
            ("field name", field.name, usize::from(u16::MAX)),
            ("value", field.value, u32::MAX as usize),
        ] {
            if part.len() > max {
                return Err(EncodeError::FieldTooLong(format!(
                    "a {what} of {} bytes is over the record format's {max}",
                    part.len()
                )));
            }
        }
        len = len
            .saturating_add(MIN_FIELD_LEN)
            .saturating_add(field.namespace.len())
            .saturating_add(field.name.len())
            .saturating_add(field.value.len());
    }
    if len > limit {
        return Err(EncodeError::OverLimit { len, limit });
    }
    let count = u32::try_from(fields.len()).map_err(|_| {
        EncodeError::FieldTooLong(format!(
            "{} fields are over the format's 2^32",
            fields.len()
        ))
    })?;
    let mut out = Vec::with_capacity(len);
    out.push(VERSION);
    out.extend_from_slice(&created_at.to_be_bytes());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for field in fields {
        // The lengths were checked above; the conversions cannot fail.
        for part in [field.namespace, field.name] {
            out.extend_from_slice(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(part);
        }
        let value_len = u32::try_from(field.value.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&value_len.to_be_bytes());
        out.extend_from_slice(field.value);
    }
    Ok(out)
}

/// A record with a new header and the `body` of a parsed record, copied
/// verbatim (the body is already valid: it came out of [`parse`]).
pub(crate) fn with_header(created_at: u64, expires_at: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.push(VERSION);
    out.extend_from_slice(&created_at.to_be_bytes());
    out.extend_from_slice(&expires_at.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The stored fields with `writes` applied: a written field keeps its place
/// with the new value, a removed one is dropped, a new one is appended in
/// the order written; every other field keeps its stored bytes. When a
/// field is written more than once, the last write wins.
pub(crate) fn merge<'a>(stored: &[Field<'a>], writes: &[FieldWrite<'a>]) -> Vec<Field<'a>> {
    let mut last_write: HashMap<(&[u8], &[u8]), usize> = HashMap::with_capacity(writes.len());
    for (index, write) in writes.iter().enumerate() {
        last_write.insert(
            (write.key.namespace.as_bytes(), write.key.field.as_bytes()),
            index,
        );
    }
    let mut applied = vec![false; writes.len()];
    let mut out = Vec::with_capacity(stored.len() + writes.len());
    for field in stored {
        match last_write.get(&(field.namespace, field.name)) {
            Some(&index) => {
                applied[index] = true;
                if let Some(value) = writes[index].value {
                    out.push(Field { value, ..*field });
                }
            }
            None => out.push(*field),
        }
    }
    for (index, write) in writes.iter().enumerate() {
        let key = (write.key.namespace.as_bytes(), write.key.field.as_bytes());
        if applied[index] || last_write.get(&key) != Some(&index) {
            continue;
        }
        if let Some(value) = write.value {
            out.push(Field {
                namespace: key.0,
                name: key.1,
                value,
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::FieldKey;

    fn field<'a>(namespace: &'a str, name: &'a str, value: &'a [u8]) -> Field<'a> {
        Field {
            namespace: namespace.as_bytes(),
            name: name.as_bytes(),
            value,
        }
    }

    fn write<'a>(namespace: &'a str, field: &'a str, value: Option<&'a [u8]>) -> FieldWrite<'a> {
        FieldWrite {
            key: FieldKey { namespace, field },
            value,
        }
    }

    fn sample() -> Vec<u8> {
        encode(
            1_700_000_000_123,
            1_700_000_060_456,
            &[
                field("cart", "items", b"\x00\x01\x02"),
                field("cart", "uid", b""),
                field("auth", "items", &[0xff; 300]),
            ],
            usize::MAX,
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let record = parse(&bytes).unwrap();
        assert_eq!(record.created_at, 1_700_000_000_123);
        assert_eq!(record.expires_at, 1_700_000_060_456);
        assert_eq!(
            record.fields,
            vec![
                field("cart", "items", b"\x00\x01\x02"),
                field("cart", "uid", b""),
                field("auth", "items", &[0xff; 300]),
            ]
        );
        assert_eq!(record.body, &bytes[HEADER_LEN..]);
        // Exactly the documented layout.
        assert_eq!(bytes[0], VERSION);
        assert_eq!(&bytes[1..9], &1_700_000_000_123u64.to_be_bytes());
        assert_eq!(&bytes[17..21], &3u32.to_be_bytes());
        assert_eq!(&bytes[21..23], &4u16.to_be_bytes());
        assert_eq!(&bytes[23..27], b"cart");
        assert_eq!(&bytes[27..29], &5u16.to_be_bytes());
        assert_eq!(&bytes[29..34], b"items");
        assert_eq!(&bytes[34..38], &3u32.to_be_bytes());
        assert_eq!(bytes.len(), 21 + (8 + 9 + 3) + (8 + 7) + (8 + 9 + 300));
    }

    #[test]
    fn empty_and_extreme_records_round_trip() {
        for (created, expires) in [(0, 0), (u64::MAX, u64::MAX), (1, u64::MAX)] {
            let bytes = encode(created, expires, &[], usize::MAX).unwrap();
            assert_eq!(bytes.len(), HEADER_LEN + 4);
            let record = parse(&bytes).unwrap();
            assert_eq!((record.created_at, record.expires_at), (created, expires));
            assert!(record.fields.is_empty());
        }
        let long_name = "n".repeat(usize::from(u16::MAX));
        let bytes = encode(1, 2, &[field(&long_name, &long_name, b"v")], usize::MAX).unwrap();
        assert_eq!(parse(&bytes).unwrap().fields[0].name.len(), 65535);
    }

    #[test]
    fn with_header_keeps_the_body() {
        let bytes = sample();
        let record = parse(&bytes).unwrap();
        let moved = with_header(5, 6, record.body);
        let again = parse(&moved).unwrap();
        assert_eq!((again.created_at, again.expires_at), (5, 6));
        assert_eq!(again.fields, record.fields);
        assert_eq!(&moved[HEADER_LEN..], &bytes[HEADER_LEN..]);
    }

    #[test]
    fn limit_is_checked_before_allocating() {
        let bytes = sample();
        let fields = parse(&bytes).unwrap().fields;
        let (created, expires) = (1_700_000_000_123, 1_700_000_060_456);
        assert_eq!(
            encode(created, expires, &fields, bytes.len()).unwrap(),
            bytes
        );
        assert_eq!(
            encode(created, expires, &fields, bytes.len() - 1),
            Err(EncodeError::OverLimit {
                len: bytes.len(),
                limit: bytes.len() - 1
            })
        );
        let long_name = "n".repeat(usize::from(u16::MAX) + 1);
        assert!(matches!(
            encode(1, 2, &[field("ns", &long_name, b"")], usize::MAX),
            Err(EncodeError::FieldTooLong(_))
        ));
    }

    /// A record whose header says `count` fields, followed by `rest`.
    fn raw(version: u8, count: u32, rest: &[u8]) -> Vec<u8> {
        let mut bytes = vec![version];
        bytes.extend_from_slice(&[0; 16]);
        bytes.extend_from_slice(&count.to_be_bytes());
        bytes.extend_from_slice(rest);
        bytes
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let good = sample();
        let one_field = {
            let mut rest = Vec::new();
            rest.extend_from_slice(&2u16.to_be_bytes());
            rest.extend_from_slice(b"ns");
            rest.extend_from_slice(&1u16.to_be_bytes());
            rest.extend_from_slice(b"f");
            rest.extend_from_slice(&1u32.to_be_bytes());
            rest.push(b'v');
            rest
        };
        assert!(parse(&raw(VERSION, 1, &one_field)).is_ok());
        let twice = [one_field.clone(), one_field.clone()].concat();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("version only", vec![VERSION]),
            ("version 0", raw(0, 0, &[])),
            ("version 2", raw(2, 0, &[])),
            ("version 255", raw(255, 0, &[])),
            ("header cut in created_at", good[..5].to_vec()),
            ("header cut in expires_at", good[..12].to_vec()),
            ("no field count", good[..HEADER_LEN].to_vec()),
            ("field count cut", good[..HEADER_LEN + 2].to_vec()),
            ("count 1, no fields", raw(VERSION, 1, &[])),
            ("count u32::MAX", raw(VERSION, u32::MAX, &[0; 64])),
            (
                "count larger than the bytes allow",
                raw(VERSION, 9, &[0; 64]),
            ),
            (
                "namespace length cut",
                raw(VERSION, 1, &[0, 0, 0, 0, 0, 0, 0]),
            ),
            (
                "huge namespace length",
                raw(VERSION, 1, &[0xff, 0xff, 0, 0, 0, 0, 0, 0]),
            ),
            (
                "huge field name length",
                raw(VERSION, 1, &[0, 0, 0xff, 0xff, 0, 0, 0, 0]),
            ),
            (
                "huge value length",
                raw(VERSION, 1, &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            ),
            (
                "value one byte short",
                raw(VERSION, 1, &one_field[..one_field.len() - 1]),
            ),
            (
                "trailing byte",
                raw(VERSION, 1, &[one_field.as_slice(), &[0]].concat()),
            ),
            (
                "trailing bytes after no fields",
                raw(VERSION, 0, &[1, 2, 3]),
            ),
            ("duplicate field", raw(VERSION, 2, &twice)),
            ("sample truncated by one", good[..good.len() - 1].to_vec()),
            ("sample plus a byte", [good.as_slice(), &[0]].concat()),
        ];
        for (what, bytes) in cases {
            match parse(&bytes) {
                Err(StoreError::Malformed(message)) => {
                    assert!(!message.is_empty(), "{what}");
                }
                other => panic!("{what}: expected Malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn every_prefix_and_every_byte_flip_is_handled() {
        let good = sample();
        for len in 0..good.len() {
            assert!(
                matches!(parse(&good[..len]), Err(StoreError::Malformed(_))),
                "prefix of {len} bytes"
            );
        }
        // Flipping any byte either still parses (a changed value or time) or
        // is Malformed; it never panics.
        for index in 0..good.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bytes = good.clone();
                bytes[index] ^= flip;
                let _ = parse(&bytes);
            }
        }
    }

    #[test]
    fn pseudo_random_inputs_never_panic() {
        // A small xorshift generator: deterministic, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 96) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                // Mostly the right version, so the parser gets past it.
                if next() % 4 != 0 {
                    *first = VERSION;
                }
            }
            let _ = parse(&bytes);
        }
    }

    #[test]
    fn merge_sets_removes_and_appends() {
        let stored = [
            field("a", "x", b"1"),
            field("a", "y", b"2"),
            field("b", "x", b"3"),
        ];
        let merged = merge(
            &stored,
            &[
                write("a", "y", None),
                write("b", "x", Some(b"30")),
                write("a", "z", Some(b"4")),
                write("a", "gone", None),
            ],
        );
        assert_eq!(
            merged,
            vec![
                field("a", "x", b"1"),
                field("b", "x", b"30"),
                field("a", "z", b"4"),
            ]
        );
        // Unchanged fields are the stored bytes themselves, not copies.
        assert!(std::ptr::eq(merged[0].value, stored[0].value));
    }

    #[test]
    fn merge_last_write_wins() {
        let stored = [field("a", "x", b"1")];
        let merged = merge(
            &stored,
            &[
                write("a", "x", Some(b"first")),
                write("a", "x", None),
                write("a", "n", None),
                write("a", "n", Some(b"new")),
            ],
        );
        assert_eq!(merged, vec![field("a", "n", b"new")]);
        assert_eq!(
            merge(&[], &[write("a", "x", None), write("a", "y", Some(b""))]),
            vec![field("a", "y", b"")]
        );
    }
}
