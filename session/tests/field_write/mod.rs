//! The one-field write the store tests build their calls from.

use typed_sessions::{FieldKey, FieldWrite};

/// Writes `value` to `namespace.field`.
pub fn set<'a>(namespace: &'a str, field: &'a str, value: &'a [u8]) -> FieldWrite<'a> {
    FieldWrite {
        key: FieldKey { namespace, field },
        value: Some(value),
    }
}
