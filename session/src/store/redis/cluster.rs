//! `move_to` on Redis Cluster across slots: copy out, copy in, finish (see
//! the [module docs](super#move_to-on-redis-cluster)).

use std::time::Duration;

use redis::Value;

use super::{
    COPY_IN, COPY_OUT, DISCARD, EXPIRES, FINISH, FROZEN, MOVE_ATTEMPTS, MOVE_LEASE, RedisStore,
    THAW, evalsha, forward_until, index, unexpected,
};
use crate::id::SessionId;
use crate::store::StoreError;

/// Which branch a cluster-move step took.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    Done,
    Retry,
    Gone,
}

impl RedisStore {
    /// A cross-slot move on a cluster: copy out, copy in, finish; again
    /// while concurrent writes to `from` keep invalidating the copy.
    pub(super) async fn move_across_slots(
        &self,
        from_key: &str,
        to_key: &str,
        from: &SessionId,
        to: &SessionId,
        expires_at: u64,
    ) -> Result<bool, StoreError> {
        for attempt in 1..=MOVE_ATTEMPTS {
            // The first attempt lets writes to `from` go on (and carries
            // them over by trying again); later ones hold them off briefly.
            let lease = if attempt == 1 { None } else { Some(MOVE_LEASE) };
            let token = SessionId::generate().map_err(StoreError::backend)?;
            let token = token.as_str();
            let Some(fields) = self.copy_out(from_key, token, lease).await? else {
                return Ok(false);
            };
            let moved_index = match self.index_copy(to, expires_at, &fields).await {
                Ok(moved_index) => moved_index,
                Err(error) => {
                    self.thaw(from_key, token, lease).await;
                    return Err(error);
                }
            };
            let until = moved_index.as_ref().map(|moved| moved.until);
            let result =
                self.copy_in_and_finish(from_key, to_key, to, token, expires_at, &fields, until);
            let step = match result.await {
                Ok(step) => step,
                Err(error) => {
                    self.thaw(from_key, token, lease).await;
                    return Err(error);
                }
            };
            match step {
                Step::Done => {
                    if let Some(moved_index) = &moved_index {
                        self.index_moved(from, moved_index).await;
                    }
                    return Ok(true);
                }
                Step::Retry => {
                    tracing::debug!(
                        from = %from.log_tag(), to = %to.log_tag(), attempt,
                        "session written during a cluster move; copying again"
                    );
                    self.discard(to_key, token).await?;
                }
                Step::Gone => {
                    tracing::debug!(
                        from = %from.log_tag(), to = %to.log_tag(),
                        "session deleted during a cluster move; discarding the copy"
                    );
                    self.discard(to_key, token).await?;
                    return Ok(false);
                }
            }
        }
        tracing::warn!(
            from = %from.log_tag(),
            "cluster move gave up: the session kept being written"
        );
        Err(StoreError::Contention(MOVE_ATTEMPTS))
    }

    /// Lets writes to `from` go on after a failed cluster move that held
    /// them off. Best effort; the lease runs out by itself anyway.
    pub(super) async fn thaw(&self, from_key: &str, token: &str, lease: Option<Duration>) {
        if lease.is_some() {
            let mut thaw = evalsha(&THAW, 1);
            thaw.arg(from_key).arg(token);
            let _ = self.eval(&THAW, &thaw).await;
        }
    }

    /// Cluster move, steps 2 and 3.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn copy_in_and_finish(
        &self,
        from_key: &str,
        to_key: &str,
        to: &SessionId,
        token: &str,
        expires_at: u64,
        fields: &[Value],
        indexed_until: Option<u64>,
    ) -> Result<Step, StoreError> {
        if !self
            .copy_in(to_key, token, expires_at, fields, indexed_until)
            .await?
        {
            return Err(StoreError::IdExists);
        }
        self.finish(from_key, token, to).await
    }

    /// Cluster move, step 1: marks `from` with `token` (and with a lease,
    /// holds off writes to it until the lease ends) and returns all of its
    /// hash fields and values, flat; `None` when it is not a session.
    pub(super) async fn copy_out(
        &self,
        from_key: &str,
        token: &str,
        lease: Option<Duration>,
    ) -> Result<Option<Vec<Value>>, StoreError> {
        let lease_ms = lease.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut command = evalsha(&COPY_OUT, 1);
        command.arg(from_key).arg(token).arg(lease_ms);
        match self.eval(&COPY_OUT, &command).await? {
            Value::Nil => Ok(None),
            Value::Array(items) if items.len() % 2 == 0 => Ok(Some(items)),
            other => Err(unexpected("the session's fields", &other)),
        }
    }

    /// Cluster move, step 2: creates `to` from the copy, unless it exists.
    /// The lease, the old expiry and the old `__indexed_until` are not
    /// copied; `indexed_until` is the new one.
    pub(super) async fn copy_in(
        &self,
        to_key: &str,
        token: &str,
        expires_at: u64,
        fields: &[Value],
        indexed_until: Option<u64>,
    ) -> Result<bool, StoreError> {
        let mut command = evalsha(&COPY_IN, 1);
        command.arg(to_key).arg(token).arg(expires_at);
        for pair in fields.chunks_exact(2) {
            let (Value::BulkString(name), Value::BulkString(value)) = (&pair[0], &pair[1]) else {
                return Err(StoreError::Malformed(
                    "a session hash field that is not a string".into(),
                ));
            };
            if name != FROZEN.as_bytes()
                && name != EXPIRES.as_bytes()
                && name != index::INDEXED_UNTIL.as_bytes()
            {
                command.arg(name.as_slice()).arg(value.as_slice());
            }
        }
        if let Some(until) = indexed_until {
            command.arg(index::INDEXED_UNTIL).arg(until);
        }
        Ok(self.eval_int(&COPY_IN, &command).await? == 1)
    }

    /// Cluster move, step 3: deletes `from` if nothing wrote to it since
    /// step 1.
    pub(super) async fn finish(
        &self,
        from_key: &str,
        token: &str,
        to: &SessionId,
    ) -> Result<Step, StoreError> {
        let mut command = evalsha(&FINISH, 1);
        command
            .arg(from_key)
            .arg(token)
            .arg(to.as_str())
            .arg(forward_until());
        Ok(match self.eval_int(&FINISH, &command).await? {
            1 => Step::Done,
            0 => Step::Retry,
            _ => Step::Gone,
        })
    }

    /// Deletes the copy a cluster move made, if it is still that copy.
    pub(super) async fn discard(&self, to_key: &str, token: &str) -> Result<(), StoreError> {
        let mut command = evalsha(&DISCARD, 1);
        command.arg(to_key).arg(token);
        self.eval_int(&DISCARD, &command).await.map(drop)
    }
}
