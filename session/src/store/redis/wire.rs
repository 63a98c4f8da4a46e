//! Building command arguments (keys, hash fields, `EVALSHA`) and reading
//! replies.

use std::io::Write as _;
use std::time::SystemTime;

use redis::{Cmd, RedisError, RedisWrite, Script, ToRedisArgs, Value};

use crate::id::SessionId;
use crate::store::{
    Bytes, FORWARD_WINDOW, FieldKey, FieldWrite, StoreError, from_unix_millis, unix_millis,
};

/// An `EVALSHA` of `script` with `keys` keys, to which the caller adds the
/// keys and then the arguments. Built as one command, so every argument is
/// written once, straight into the command's buffer.
pub(super) fn evalsha(script: &Script, keys: usize) -> Cmd {
    let mut command = redis::cmd("EVALSHA");
    command.arg(script.get_hash()).arg(keys);
    command
}

/// A session's Redis key, `{prefix}{id}`, written into a command without
/// building a `String` first.
pub(super) struct SessionKey<'a>(pub(super) &'a str, pub(super) &'a SessionId);

impl ToRedisArgs for SessionKey<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = arg.write_all(self.0.as_bytes());
        let _ = arg.write_all(self.1.as_str().as_bytes());
    }
}

/// The hash field of one session field, `{namespace}.{field}`, written into
/// a command without building a `String` first.
pub(super) struct HashField<'a>(pub(super) &'a str, pub(super) &'a str);

impl ToRedisArgs for HashField<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into the command's own buffer cannot fail.
        let _ = arg.write_all(self.0.as_bytes());
        let _ = arg.write_all(b".");
        let _ = arg.write_all(self.1.as_bytes());
    }
}

impl<'a> From<FieldKey<'a>> for HashField<'a> {
    fn from(key: FieldKey<'a>) -> Self {
        Self(key.namespace, key.field)
    }
}

/// A Redis error as a store error: a key of the wrong type is data the store
/// cannot read, everything else is the backend's failure.
pub(super) fn backend(error: RedisError) -> StoreError {
    if error.code() == Some("WRONGTYPE") {
        tracing::warn!("a session key holds something other than a hash");
        StoreError::Malformed(format!("session key is not a hash: {error}"))
    } else {
        StoreError::backend(error)
    }
}

/// One field's value in a reply: absent, or its bytes.
pub(super) fn field_value(value: Value) -> Result<Option<Bytes>, StoreError> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => Ok(Some(bytes.into())),
        other => Err(unexpected("a field value", &other)),
    }
}

pub(super) fn unexpected(what: &str, value: &Value) -> StoreError {
    let kind = match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a string",
        Value::Array(_) => "an array",
        _ => "another kind of reply",
    };
    StoreError::Malformed(format!("expected {what} from Redis, got {kind}"))
}

/// A time the store wrote as decimal Unix milliseconds; `None` for anything
/// else.
pub(super) fn parse_millis(value: &Value) -> Option<SystemTime> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .map(from_unix_millis),
        _ => None,
    }
}

/// The writes that take effect: for a field written several times, only the
/// last. Quadratic in the number of writes, which is the number of fields a
/// request changed, and allocates nothing.
pub(super) fn effective<'w, 'a>(
    writes: &'w [FieldWrite<'a>],
) -> impl Iterator<Item = &'w FieldWrite<'a>> {
    writes
        .iter()
        .enumerate()
        .filter(|(i, write)| !writes[i + 1..].iter().any(|later| later.key == write.key))
        .map(|(_, write)| write)
}

/// Milliseconds for `PEXPIREAT` (and `__expires`), within what Redis
/// accepts.
pub(super) fn expiry_millis(time: SystemTime) -> u64 {
    // Far beyond any useful expiry, and far from overflowing Redis' i64.
    const MAX: u64 = 1 << 52;
    unix_millis(time).min(MAX)
}

/// The end of the forward window of a move made now, in Unix milliseconds
/// by the application's clock (as `__expires`).
pub(super) fn forward_until() -> u64 {
    expiry_millis(SystemTime::now() + FORWARD_WINDOW)
}
