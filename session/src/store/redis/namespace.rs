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
//! A namespace of the crate's own (starting with `__`, as the dict-like
//! `Session`'s does) loads with a single command: `HSCAN key 0 MATCH __*
//! COUNT 1024` finds the marker fields and the namespace's fields at once,
//! and the load keeps the namespace's fields and the marker fields and
//! drops the rest: the other reserved fields, the move and index
//! bookkeeping. Those are few and small, though index entries hold an
//! indexed value (a user id, say), so they cross the connection the
//! session's own fields cross anyway. One command is atomic, and Redis
//! runs one fewer per request.
//!
//! Why no `MULTI`/`EXEC` around the two commands of other namespaces: the order makes it unnecessary.
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

use redis::{Cmd, RedisError, RedisWrite, Script, ToRedisArgs, Value};

use super::{
    EXPIRES, EXPIRY_FIELD, HashField, MARKER, RedisConnection, RedisStore, evalsha, unexpected,
};
use crate::id::SessionId;
use crate::store::{Bytes, FieldKey, LoadedNamespace, StoreError};

/// The `COUNT` of the scan: a hint of how many fields one call visits.
const SCAN_COUNT: usize = 1024;

/// The prefix of the crate's own namespaces and hash fields, and the glob
/// that matches every field starting with it.
const RESERVED: &str = "__";
const RESERVED_GLOB: &str = "__*";

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
        if namespace.starts_with(RESERVED) {
            return self.load_reserved_namespace(id, namespace).await;
        }
        let scan = self.scan(id, NamespaceGlob(namespace));
        let mut head = redis::cmd("HMGET");
        head.arg(self.key_arg(id))
            .arg(MARKER)
            .arg(EXPIRES)
            .arg(HashField::from(EXPIRY_FIELD));
        let mut pipeline = redis::pipe();
        pipeline.add_command(scan).add_command(head);
        let (scan, head) = self.query_pair(&pipeline).await.map_err(load_error)?;
        let Value::Array(head) = head else {
            return Err(unexpected("the session's marker fields", &head));
        };
        let Some(found) = scanned(scan)? else {
            return self.load_namespace_script(id, namespace).await;
        };
        // The glob matched `{namespace}.` at the start of each name.
        let cut = namespace.len() + 1;
        let mut head = head.into_iter();
        self.loaded(id, namespace, &mut head, found.into_iter(), cut)
            .await
    }

    /// The load of a namespace starting with [`RESERVED`]: one `HSCAN` of
    /// every reserved field, the marker fields among them.
    async fn load_reserved_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        let scan = self.scan(id, RESERVED_GLOB);
        let reply = self.query(&scan).await.map_err(load_error)?;
        let Some(found) = scanned(reply)? else {
            return self.load_namespace_script(id, namespace).await;
        };
        let [mut created, mut expires, mut expiry] = [Value::Nil, Value::Nil, Value::Nil];
        let mut fields = Vec::with_capacity(found.len() / 2);
        let mut found = found.into_iter();
        while let (Some(name), Some(value)) = (found.next(), found.next()) {
            let Value::BulkString(name) = name else {
                return Err(unexpected("a hash field name", &name));
            };
            // The marker fields first: the remembered expiry is a field of
            // the reserved namespace `__`, never one of the loaded fields.
            if name == MARKER.as_bytes() {
                created = value;
            } else if name == EXPIRES.as_bytes() {
                expires = value;
            } else if is_key(&name, EXPIRY_FIELD) {
                expiry = value;
            } else if is_field(&name, namespace) {
                fields.extend([Value::BulkString(name), value]);
            }
        }
        let mut head = vec![created, expires, expiry].into_iter();
        let cut = namespace.len() + 1;
        self.loaded(id, namespace, &mut head, fields.into_iter(), cut)
            .await
    }

    /// `HSCAN key 0 MATCH {pattern} COUNT {SCAN_COUNT}`.
    fn scan(&self, id: &SessionId, pattern: impl ToRedisArgs) -> Cmd {
        let mut scan = redis::cmd("HSCAN");
        scan.arg(self.key_arg(id))
            .arg(0)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        scan
    }

    /// The namespace from a load's reply: `head` holds the marker,
    /// `__expires` and the remembered expiry (the session is gone unless
    /// they are a session's), `fields` the namespace's name/value pairs,
    /// each name with its first `cut` bytes to cut off.
    async fn loaded(
        &self,
        id: &SessionId,
        namespace: &str,
        head: &mut std::vec::IntoIter<Value>,
        fields: impl ExactSizeIterator<Item = Value>,
        cut: usize,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        let Some((created_at, expires_at, expiry)) = self.session_head(id, head).await? else {
            return Ok(None);
        };
        Ok(Some(LoadedNamespace {
            expiry,
            created_at,
            expires_at,
            fields: namespace_fields(id, namespace, fields, cut)?,
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
        let mut items = match self.eval(&LOAD_NAMESPACE, &command).await? {
            Value::Nil => return Ok(None),
            Value::Array(items) if items.len() >= 3 && items.len() % 2 == 1 => items,
            other => return Err(unexpected("the namespace's hash fields", &other)),
        };
        // The head's three items, then the pairs, their names already
        // without the prefix. (The script path is rare: the copy is fine.)
        let fields = items.split_off(3);
        self.loaded(id, namespace, &mut items.into_iter(), fields.into_iter(), 0)
            .await
    }
}

/// Whether a hash field belongs to `namespace` (is named `{namespace}.…`).
fn is_field(name: &[u8], namespace: &str) -> bool {
    matches!(name.strip_prefix(namespace.as_bytes()), Some([b'.', ..]))
}

/// Whether a hash field is the one of `key`.
fn is_key(name: &[u8], key: FieldKey<'_>) -> bool {
    name.strip_prefix(key.namespace.as_bytes())
        .and_then(|rest| rest.strip_prefix(b"."))
        == Some(key.field.as_bytes())
}

/// The name/value pairs of an `HSCAN` reply that covered the whole hash;
/// `None` when the scan needs more calls (its cursor is not 0).
fn scanned(reply: Value) -> Result<Option<Vec<Value>>, StoreError> {
    let Value::Array(reply) = reply else {
        return Err(unexpected("an HSCAN reply", &reply));
    };
    match <[Value; 2]>::try_from(reply) {
        Ok([Value::BulkString(cursor), Value::Array(found)]) => {
            Ok((cursor == b"0").then_some(found))
        }
        _ => Err(StoreError::Malformed(
            "an HSCAN reply of another shape".into(),
        )),
    }
}

/// A failed load as a store error: a key of another type (every command
/// fails with `WRONGTYPE`) is data the store cannot read, as for single
/// commands.
fn load_error(error: RedisError) -> StoreError {
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
