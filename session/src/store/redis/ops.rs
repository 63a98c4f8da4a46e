//! The operations straight to Redis, behind the [`SessionStore`](crate::store::SessionStore) impl
//! (which puts the local cache, if any, in front of them).

use std::time::{Duration, SystemTime};

use redis::cluster_routing::Slot;
use redis::{Cmd, Value};

use super::{
    BUSY_PAUSE_FIRST, BUSY_PAUSE_MAX, BUSY_WAIT_MAX, CREATE, EXPIRES, FORWARD, FORWARD_UNTIL,
    HashField, MARKER, RENAME, RedisConnection, RedisStore, TOUCH, UPDATE, backend, effective,
    evalsha, expiry_millis, field_value, forward_until, index, parse_millis, unexpected,
};
use crate::id::SessionId;
use crate::store::{
    Bytes, EXPIRY_FIELD, FieldWrite, LoadedFields, StoreError, from_unix_millis, unix_millis,
};

/// The operations themselves, straight to Redis; the [`SessionStore`]
/// impl puts the local cache, if any, in front of them.
impl RedisStore {
    pub(super) async fn load_direct(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.key_arg(id))
            .arg(MARKER)
            .arg(EXPIRES)
            .arg(HashField::from(EXPIRY_FIELD));
        for field in fields {
            command.arg(HashField(namespace, field));
        }
        let items = match self.query(&command).await.map_err(backend)? {
            Value::Array(items) if items.len() == fields.len() + 3 => items,
            Value::Array(items) => {
                return Err(StoreError::Malformed(format!(
                    "asked Redis for {} hash fields, got {}",
                    fields.len() + 3,
                    items.len()
                )));
            }
            other => return Err(unexpected("the session's hash fields", &other)),
        };
        let mut items = items.into_iter();
        let Some((created_at, expires_at, expiry)) = self.session_head(id, &mut items).await?
        else {
            return Ok(None);
        };
        let values = items.map(field_value).collect::<Result<_, _>>()?;
        Ok(Some(LoadedFields {
            expiry,
            created_at,
            expires_at,
            values,
        }))
    }

    /// The first three values of a load's reply (marker, `__expires`, the
    /// remembered expiry): the session's times and remembered expiry, or
    /// `None` when the marker says there is no live session.
    pub(super) async fn session_head(
        &self,
        id: &SessionId,
        items: &mut std::vec::IntoIter<Value>,
    ) -> Result<Option<(SystemTime, SystemTime, Option<Bytes>)>, StoreError> {
        let (Some(created), Some(expires), Some(expiry)) =
            (items.next(), items.next(), items.next())
        else {
            return Err(StoreError::Malformed("a short load reply".into()));
        };
        let Some((created_at, expires_at)) = self.times(id, &created, &expires).await? else {
            return Ok(None);
        };
        Ok(Some((created_at, expires_at, field_value(expiry)?)))
    }

    pub(super) async fn create_direct(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        if index::sets_entry(writes) {
            return self
                .create_indexed(id, writes, created_at, expires_at)
                .await;
        }
        let mut command = evalsha(&CREATE, 1);
        command.arg(self.key_arg(id));
        self.create_args(&mut command, writes, created_at, expires_at);
        match self.eval_int(&CREATE, &command).await? {
            1 => Ok(()),
            _ => Err(StoreError::IdExists),
        }
    }

    /// `CREATE`'s ARGV.
    pub(super) fn create_args(
        &self,
        command: &mut Cmd,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) {
        command
            .arg(unix_millis(created_at))
            .arg(expiry_millis(expires_at));
        for write in effective(writes) {
            if let Some(value) = write.value {
                command.arg(HashField::from(write.key)).arg(value);
            }
        }
    }

    pub(super) async fn update_direct(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        let (script, command, index_keys, members) = if index::sets_entry(writes) {
            match self.update_indexed_command(id, writes, expires_at).await? {
                Some((command, keys, members)) => (&*index::UPDATE_INDEXED, command, keys, members),
                None => return Ok(false),
            }
        } else {
            let mut command = evalsha(&UPDATE, 1);
            command.arg(self.key_arg(id));
            self.update_args(&mut command, writes, expires_at);
            (&*UPDATE, command, Vec::new(), 0)
        };
        let mut pause = BUSY_PAUSE_FIRST;
        let mut waited = Duration::ZERO;
        let mut busy: u32 = 0;
        loop {
            let (status, card) = self.indexed_reply(script, &command).await?;
            match status {
                1 | 3 => {
                    if status == 3 {
                        self.extend_index(id).await?;
                    }
                    self.after_index_write(&index_keys, members.max(card))
                        .await?;
                    return Ok(true);
                }
                // A cluster move is finishing: wait for it (it ends, or its
                // lease does, within MOVE_LEASE).
                2 if waited < BUSY_WAIT_MAX => {
                    tracing::debug!(session = %id.log_tag(), "session busy moving; waiting");
                    tokio::time::sleep(pause).await;
                    waited += pause;
                    busy += 1;
                    pause = (pause * 2).min(BUSY_PAUSE_MAX);
                }
                2 => {
                    tracing::warn!(
                        session = %id.log_tag(),
                        "session held off for writes longer than any move does; giving up"
                    );
                    return Err(StoreError::Contention(busy));
                }
                _ => return Ok(false),
            }
        }
    }

    /// `UPDATE`'s ARGV.
    pub(super) fn update_args(
        &self,
        command: &mut Cmd,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) {
        let sets = effective(writes).filter(|w| w.value.is_some()).count();
        match expires_at {
            Some(expires_at) => command.arg(expiry_millis(expires_at)),
            None => command.arg(""),
        };
        command.arg(sets);
        for write in effective(writes) {
            if let Some(value) = write.value {
                command.arg(HashField::from(write.key)).arg(value);
            }
        }
        for write in effective(writes) {
            if write.value.is_none() {
                command.arg(HashField::from(write.key));
            }
        }
    }

    pub(super) async fn touch_direct(
        &self,
        id: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let mut command = evalsha(&TOUCH, 1);
        command.arg(self.key_arg(id)).arg(expiry_millis(expires_at));
        match self.eval_int(&TOUCH, &command).await? {
            1 => Ok(true),
            3 => {
                self.extend_index(id).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(super) async fn delete_direct(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key_arg(id));
        self.query(&command).await.map(drop).map_err(backend)
    }

    pub(super) async fn move_to_direct(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let from_key = self.key(from);
        let to_key = self.key(to);
        let expires_at = expiry_millis(expires_at);
        let one_slot = match self.connection {
            RedisConnection::Single(_) => true,
            RedisConnection::Cluster(_) => Slot::for_key(&from_key) == Slot::for_key(&to_key),
        };
        if !one_slot {
            return self
                .move_across_slots(&from_key, &to_key, from, to, expires_at)
                .await;
        }
        let mut command = evalsha(&RENAME, 2);
        command
            .arg(&from_key)
            .arg(&to_key)
            .arg(expires_at)
            .arg(to.as_str())
            .arg(forward_until());
        match self.eval_int(&RENAME, &command).await? {
            1 => Ok(true),
            0 => Ok(false),
            2 => self.move_indexed(from, to, expires_at).await,
            _ => Err(StoreError::IdExists),
        }
    }

    pub(super) async fn forwarded_direct(
        &self,
        id: &SessionId,
    ) -> Result<Option<SessionId>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.key_arg(id))
            .arg(MARKER)
            .arg(FORWARD)
            .arg(FORWARD_UNTIL);
        let Value::Array(items) = self.query(&command).await.map_err(backend)? else {
            return Err(StoreError::Malformed("a short HMGET reply".into()));
        };
        let [Value::Nil, Value::BulkString(to), until] = items.as_slice() else {
            // A live session (then nothing forwards from it) or no forward.
            return Ok(None);
        };
        if parse_millis(until).is_none_or(|until| until <= SystemTime::now()) {
            return Ok(None);
        }
        let to = std::str::from_utf8(to).ok().and_then(SessionId::parse);
        if to.is_none() {
            tracing::warn!(session = %id.log_tag(), "unreadable forward `{FORWARD}` ignored");
        }
        Ok(to)
    }

    /// The expiry of a session written before `__expires` existed, from the
    /// key's `PTTL` and the application's clock; `None` when the key is gone.
    pub(super) async fn legacy_expiry(
        &self,
        id: &SessionId,
    ) -> Result<Option<SystemTime>, StoreError> {
        let mut command = redis::cmd("PTTL");
        command.arg(self.key_arg(id));
        let now = SystemTime::now();
        match self.query(&command).await.map_err(backend)? {
            Value::Int(-2) => Ok(None),
            // No expiry on the key: something outside the store removed it.
            Value::Int(-1) => Ok(Some(from_unix_millis(i64::MAX.unsigned_abs()))),
            Value::Int(ms) if ms >= 0 => Ok(Some(
                now.checked_add(Duration::from_millis(ms.unsigned_abs()))
                    .unwrap_or(now),
            )),
            other => Err(unexpected("a PTTL", &other)),
        }
    }

    /// The creation and expiry times of a session from its marker and
    /// `__expires` as read; `None` when it is not a live session.
    pub(super) async fn times(
        &self,
        id: &SessionId,
        created: &Value,
        expires: &Value,
    ) -> Result<Option<(SystemTime, SystemTime)>, StoreError> {
        if matches!(created, Value::Nil) {
            return Ok(None);
        }
        let Some(created_at) = parse_millis(created) else {
            tracing::warn!(
                session = %id.log_tag(),
                "session marker `{MARKER}` does not hold a creation time"
            );
            return Err(StoreError::Malformed(format!(
                "session marker `{MARKER}` does not hold a creation time in milliseconds"
            )));
        };
        let expires_at = if matches!(expires, Value::Nil) {
            // Written before `__expires` existed: the key's expiry says it.
            match self.legacy_expiry(id).await? {
                Some(expires_at) => expires_at,
                None => return Ok(None),
            }
        } else {
            let Some(expires_at) = parse_millis(expires) else {
                tracing::warn!(
                    session = %id.log_tag(),
                    "session field `{EXPIRES}` does not hold an expiry time"
                );
                return Err(StoreError::Malformed(format!(
                    "session field `{EXPIRES}` does not hold an expiry time in milliseconds"
                )));
            };
            expires_at
        };
        // Past by the application's clock while Redis still holds the key:
        // something moved the key's expiry without `__expires` (an earlier
        // version during a rolling upgrade), so the key's expiry decides.
        let expires_at = if expires_at <= SystemTime::now() {
            match self.legacy_expiry(id).await? {
                Some(expires_at) if expires_at > SystemTime::now() => expires_at,
                _ => return Ok(None),
            }
        } else {
            expires_at
        };
        Ok(Some((created_at, expires_at)))
    }
}
