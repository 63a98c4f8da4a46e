//! The operations: straight to Redis, and the [`SessionStore`] impl that
//! puts the local cache, if any, in front of them.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::cluster_routing::Slot;
use redis::{Cmd, Value};

use super::{
    BUSY_PAUSE_FIRST, BUSY_PAUSE_MAX, BUSY_WAIT_MAX, CREATE, EXPIRES, FORWARD, FORWARD_UNTIL,
    HashField, MARKER, RENAME, RedisConnection, RedisStore, TOUCH, UPDATE, backend, effective,
    evalsha, expiry_millis, field_value, forward_until, index, parse_millis, unexpected,
};
use crate::id::SessionId;
use crate::store::{
    Bytes, EXPIRY_FIELD, FieldWrite, IndexKey, IndexedSession, LoadedFields, LoadedNamespace,
    SessionStore, StoreError, unix_millis,
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
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(
        &self,
        id: &SessionId,
        namespace: &str,
        fields: &[&str],
    ) -> Result<Option<LoadedFields>, StoreError> {
        match &self.cache {
            Some(cache) => self.cached_load(cache, id, namespace, fields).await,
            None => self.load_direct(id, namespace, fields).await,
        }
    }

    /// Always read from Redis: the near-cache holds typed loads only. See
    /// [`namespace`](super::namespace) for how the namespace's fields are found.
    async fn load_namespace(
        &self,
        id: &SessionId,
        namespace: &str,
    ) -> Result<Option<LoadedNamespace>, StoreError> {
        self.load_namespace_direct(id, namespace).await
    }

    async fn create(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        match &self.cache {
            Some(cache) => {
                self.cached_create(cache, id, writes, created_at, expires_at)
                    .await
            }
            None => self.create_direct(id, writes, created_at, expires_at).await,
        }
    }

    async fn update(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        match &self.cache {
            Some(cache) => self.cached_update(cache, id, writes, expires_at).await,
            None => self.update_direct(id, writes, expires_at).await,
        }
    }

    async fn touch(&self, id: &SessionId, expires_at: SystemTime) -> Result<bool, StoreError> {
        match &self.cache {
            Some(cache) => self.cached_touch(cache, id, expires_at).await,
            None => self.touch_direct(id, expires_at).await,
        }
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        match &self.cache {
            Some(cache) => self.cached_delete(cache, id).await,
            None => self.delete_direct(id).await,
        }
    }

    async fn move_to(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        match &self.cache {
            Some(cache) => self.cached_move_to(cache, from, to, expires_at).await,
            None => self.move_to_direct(from, to, expires_at).await,
        }
    }

    /// Never cached: it reads the old id's forward, which is not a session.
    async fn forwarded(&self, id: &SessionId) -> Result<Option<SessionId>, StoreError> {
        self.forwarded_direct(id).await
    }

    /// Always read from Redis (see [`index`]).
    async fn list_index(&self, index: IndexKey<'_>) -> Result<Vec<IndexedSession>, StoreError> {
        self.list_index_direct(index).await
    }

    /// See [`index`]: ended sessions leave every near-cache.
    async fn end_index(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        self.end_index_direct(index, except).await
    }
}
