//! Listing and ending the sessions of an index key: the members checked
//! one by one, and pruned.

use super::*;

impl RedisStore {
    /// The members of an index key with their scores.
    async fn members(&self, key: &[u8]) -> Result<Vec<(String, String)>, StoreError> {
        let mut command = evalsha(&MEMBERS, 1);
        command.arg(key);
        let Value::Array(items) = self.eval(&MEMBERS, &command).await? else {
            return Err(StoreError::Malformed("an index key's members".into()));
        };
        let text = |value: &Value| match value {
            Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            _ => None,
        };
        items
            .chunks_exact(2)
            .map(|pair| {
                text(&pair[0])
                    .zip(text(&pair[1]))
                    .ok_or_else(|| StoreError::Malformed("an index key's members".into()))
            })
            .collect()
    }

    pub(in crate::store::redis) async fn list_index_direct(
        &self,
        index: IndexKey<'_>,
    ) -> Result<Vec<IndexedSession>, StoreError> {
        let key = index_key(&self.prefix, index.namespace, index.key);
        self.list_key(&key, index).await
    }

    /// Lists an index key: checks every member against its session and
    /// prunes those that fail.
    pub(super) async fn list_key(
        &self,
        key: &[u8],
        index: IndexKey<'_>,
    ) -> Result<Vec<IndexedSession>, StoreError> {
        let members = self.members(key).await?;
        let checks = members
            .iter()
            .map(|(member, _)| self.check_member(member, index));
        let checked = try_join_all(checks).await?;
        let atomic = matches!(self.connection, RedisConnection::Single(_));
        let mut live = Vec::with_capacity(members.len());
        let mut stale = Vec::new();
        let old = unix_millis(SystemTime::now())
            .saturating_sub(u64::try_from(GRACE.as_millis()).unwrap_or(u64::MAX))
            as f64;
        for ((member, score), check) in members.iter().zip(checked) {
            match check {
                Check::Live(found) => live.push(found),
                Check::Unreadable => {}
                Check::Fails => {
                    // On a cluster a failing member may be a write under
                    // way (its id added, its session not yet written), even
                    // one whose keys share a slot: a cross-slot move adds
                    // the new id before it creates the session.
                    let score: f64 = score.parse().unwrap_or(f64::MAX);
                    if atomic || score < old {
                        stale.push((member, score));
                    }
                }
            }
        }
        if !stale.is_empty() {
            let mut command = evalsha(&PRUNE, 1);
            command.arg(key);
            for (member, score) in &stale {
                command.arg(member.as_str()).arg(format!("{score:.0}"));
            }
            self.eval_int(&PRUNE, &command).await?;
        }
        Ok(live)
    }

    /// Whether a member of an index key is a live session whose entry
    /// holds the key.
    async fn check_member(&self, member: &str, index: IndexKey<'_>) -> Result<Check, StoreError> {
        let Some(id) = SessionId::parse(member) else {
            return Ok(Check::Fails);
        };
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.key_arg(&id))
            .arg(MARKER)
            .arg(super::super::EXPIRES)
            .arg(HashField(INDEX_NAMESPACE, index.namespace));
        let Value::Array(items) = self.query(&command).await.map_err(backend)? else {
            return Err(StoreError::Malformed("a short HMGET reply".into()));
        };
        let [created, expires, entry] = items.as_slice() else {
            return Err(StoreError::Malformed("a short HMGET reply".into()));
        };
        if !matches!(entry, Value::BulkString(key) if key.as_slice() == index.key) {
            return Ok(Check::Fails);
        }
        match self.times(&id, created, expires).await {
            Ok(Some((created_at, expires_at))) => Ok(Check::Live(IndexedSession {
                id,
                created_at,
                expires_at,
            })),
            Ok(None) => Ok(Check::Fails),
            // Logged by `times`; left for a write to repair.
            Err(StoreError::Malformed(_)) => Ok(Check::Unreadable),
            Err(error) => Err(error),
        }
    }

    pub(in crate::store::redis) async fn end_index_direct(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let key = index_key(&self.prefix, index.namespace, index.key);
        let mut seen = HashSet::new();
        let mut ended = 0;
        for _ in 0..END_PASSES {
            let members = self.members(&key).await?;
            let fresh: Vec<SessionId> = members
                .into_iter()
                .filter(|(member, _)| seen.insert(member.clone()))
                .filter_map(|(member, _)| SessionId::parse(&member))
                .filter(|id| Some(id) != except)
                .collect();
            if fresh.is_empty() {
                return Ok(ended);
            }
            let ends = fresh.iter().map(|id| self.end_one(id, index));
            let gone: Vec<&SessionId> = fresh
                .iter()
                .zip(try_join_all(ends).await?)
                .filter_map(|(id, gone)| gone.then_some(id))
                .collect();
            ended += gone.len();
            if !gone.is_empty() {
                // Ended ids never come back: no check needed.
                let mut command = redis::cmd("ZREM");
                command.arg(key.as_slice());
                for id in gone {
                    command.arg(id.as_str());
                }
                self.query(&command).await.map_err(backend)?;
            }
        }
        tracing::warn!(
            namespace = index.namespace,
            "end_index stopped after {END_PASSES} passes: new sessions kept appearing"
        );
        Ok(ended)
    }

    /// Deletes one session if its entry still holds the key.
    async fn end_one(&self, id: &SessionId, index: IndexKey<'_>) -> Result<bool, StoreError> {
        // Dropped after the delete, the ticket drops this process's cached
        // copy and keeps a concurrent load from caching what it read before.
        let _ticket = match &self.cache {
            Some(cache) => self.ticket(cache, id, false).await,
            None => None,
        };
        let mut command = evalsha(&END_ONE, 1);
        command
            .arg(self.key_arg(id))
            .arg(HashField(INDEX_NAMESPACE, index.namespace))
            .arg(index.key);
        Ok(self.eval_int(&END_ONE, &command).await? == 1)
    }
}

/// What checking one member found.
enum Check {
    Live(IndexedSession),
    /// Not a live session holding the key.
    Fails,
    /// Corrupt times: neither listed nor pruned.
    Unreadable,
}
