//! How [`RedisStore`] loads every field of one namespace
//! ([`load_namespace`](crate::store::SessionStore::load_namespace), the dict-like
//! `Session`'s load) from the session's one hash without reading the other
//! namespaces' values.
//!
//! One round trip, two pipelined commands, no Lua: `HSCAN key 0 MATCH
//! {namespace}.* COUNT 1024` (the namespace with the glob's special
//! characters escaped), then `HMGET` of the marker, `__expires` and the
//! remembered expiry. Redis answers a hash kept compact (a listpack: up to
//! 128 fields of up to 64 bytes each, by default) in one `HSCAN` call
//! whatever the count, and a larger one in one call in practice while it
//! has fewer fields than the count; only matching fields and their values
//! leave the server. When the scan needs more calls (its cursor is not 0),
//! the load runs a script instead that finds the names with `HKEYS` and
//! reads them with `HMGET`, atomically.
//!
//! Why no `MULTI`/`EXEC` around the two: the order makes it unnecessary.
//! Another client's command can run between the scan and the marker's
//! read, and every change that could make the pair wrong removes the
//! marker: a delete, an expiry, a cycle (`RENAME` leaves a forward without
//! a marker) and a cluster move's finish all do, so the load answers "no
//! session", as it would a moment later. A write between the two only
//! means the fields are read just before the expiry is; both are what the
//! session held at one time or the other, and writes are per field. (The
//! other order could see the marker, then an emptied hash after a cycle,
//! and hand the handler a session with none of its keys.)
//!
//! Why not the script every time: a script costs Redis far more than the
//! commands in it, and a transaction's `MULTI`/`EXEC` cost two more
//! commands' overhead; see `bench/RESULTS.md` for the numbers.

use std::io::Write as _;
use std::sync::LazyLock;

use redis::{RedisError, RedisWrite, Script, ToRedisArgs, Value};

use super::{
    EXPIRES, EXPIRY_FIELD, HashField, MARKER, RedisConnection, RedisStore, evalsha, unexpected,
};
use crate::id::SessionId;
use crate::store::{Bytes, LoadedNamespace, StoreError};

/// The `COUNT` of the scan: a hint of how many fields one call visits.
const SCAN_COUNT: usize = 1024;

/// The fallback for hashes one `HSCAN` call does not cover. ARGV: the
/// namespace's field prefix, `{namespace}.`, and the hash field
/// of [`EXPIRY_FIELD`]. The marker, the expiry, the remembered expiry, then
/// name/value pairs of every field with that prefix, the
/// prefix cut off; nil when the key is not a session. `HKEYS` finds the
/// names, so the values of other namespaces never leave the hash; the
/// `HMGET`s go in chunks of 1000 names (Lua's `unpack` has a limit).
static LOAD_NAMESPACE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("load_namespace.lua")));

/// The `HSCAN` pattern of a namespace's fields: `{namespace}.*`, with the
/// characters a glob treats specially escaped.
struct NamespaceGlob<'a>(&'a str);

impl ToRedisArgs for NamespaceGlob<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        for byte in self.0.bytes() {
            if matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\') {
                // Writing into the command's own buffer cannot fail.
                let _ = arg.write_all(b"\\");
            }
            let _ = arg.write_all(&[byte]);
        }
        let _ = arg.write_all(b".*");
    }
}

impl RedisStore {
    pub(super) async fn load_namespace_direct(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        let mut scan = redis::cmd("HSCAN");
        scan.arg(self.key_arg(id))
            .arg(0)
            .arg("MATCH")
            .arg(NamespaceGlob(namespace))
            .arg("COUNT")
            .arg(SCAN_COUNT);
        let mut head = redis::cmd("HMGET");
        head.arg(self.key_arg(id))
            .arg(MARKER)
            .arg(EXPIRES)
            .arg(HashField::from(EXPIRY_FIELD));
        let mut pipeline = redis::pipe();
        pipeline.add_command(scan).add_command(head);
        let (scan, head) = self.query_pair(&pipeline).await.map_err(pair_error)?;
        let Value::Array(head) = head else {
            return Err(unexpected("the session's marker fields", &head));
        };
        let (cursor, found) = match scan {
            Value::Array(reply) => match <[Value; 2]>::try_from(reply) {
                Ok([cursor, Value::Array(found)]) => (cursor, found),
                _ => {
                    return Err(StoreError::Malformed(
                        "an HSCAN reply of another shape".into(),
                    ));
                }
            },
            other => return Err(unexpected("an HSCAN reply", &other)),
        };
        if !matches!(&cursor, Value::BulkString(cursor) if cursor == b"0") {
            return self.load_namespace_script(id, namespace).await;
        }
        let mut head = head.into_iter();
        let Some((created_at, expires_at, expiry)) = self.session_head(id, &mut head).await? else {
            return Ok(None);
        };
        // The glob matched `{namespace}.` at the start of each name.
        let cut = namespace.len() + 1;
        let fields = namespace_fields(id, namespace, found.into_iter(), cut)?;
        Ok(Some(LoadedNamespace {
            expiry,
            created_at,
            expires_at,
            fields,
        }))
    }

    /// Runs a pipeline of two commands: their two replies.
    async fn query_pair(&self, pipeline: &redis::Pipeline) -> Result<(Value, Value), RedisError> {
        let result = match self.active_connection().await? {
            RedisConnection::Single(c) => pipeline.query_async(&mut c.clone()).await,
            RedisConnection::Cluster(c) => pipeline.query_async(&mut c.clone()).await,
        };
        if let (Some(cache), Err(error)) = (&self.cache, &result) {
            cache.observe(error);
        }
        result
    }

    /// The load of a namespace by script, for hashes one scan call does not
    /// cover.
    async fn load_namespace_script(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        let mut command = evalsha(&LOAD_NAMESPACE, 1);
        command
            .arg(self.key_arg(id))
            .arg(HashField(namespace, ""))
            .arg(HashField::from(EXPIRY_FIELD));
        let items = match self.eval(&LOAD_NAMESPACE, &command).await? {
            Value::Nil => return Ok(None),
            Value::Array(items) if items.len() >= 3 && items.len() % 2 == 1 => items,
            other => return Err(unexpected("the namespace's hash fields", &other)),
        };
        let mut items = items.into_iter();
        let Some((created_at, expires_at, expiry)) = self.session_head(id, &mut items).await?
        else {
            return Ok(None);
        };
        let fields = namespace_fields(id, namespace, items, 0)?;
        Ok(Some(LoadedNamespace {
            expiry,
            created_at,
            expires_at,
            fields,
        }))
    }
}

/// A failed pipeline as a store error: a key of another type (both
/// commands fail with `WRONGTYPE`) is data the store cannot read, as for
/// single commands.
fn pair_error(error: RedisError) -> StoreError {
    let wrong_type = error.clone().into_server_errors().is_some_and(|errors| {
        !errors.is_empty() && errors.iter().all(|(_, error)| error.code() == "WRONGTYPE")
    });
    if wrong_type {
        tracing::warn!("a session key holds something other than a hash");
        StoreError::Malformed(format!("session key is not a hash: {error}"))
    } else {
        super::backend(error)
    }
}

/// Name/value pairs of a reply as a namespace's fields, each name with its
/// first `cut` bytes (the namespace's prefix) cut off; a name that is not
/// UTF-8 is left out, with a warning.
fn namespace_fields(
    id: &SessionId,
    namespace: &str,
    mut items: impl ExactSizeIterator<Item = Value>,
    cut: usize,
) -> Result<Vec<(String, Bytes)>, StoreError> {
    let mut fields = Vec::with_capacity(items.len() / 2);
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        let (Value::BulkString(mut name), Value::BulkString(value)) = (name, value) else {
            return Err(StoreError::Malformed(
                "a session hash field that is not a string".into(),
            ));
        };
        name.drain(..cut.min(name.len()));
        match String::from_utf8(name) {
            Ok(name) => fields.push((name, value.into())),
            Err(_) => tracing::warn!(
                session = %id.log_tag(),
                namespace,
                "session hash field name is not UTF-8; left out"
            ),
        }
    }
    Ok(fields)
}
