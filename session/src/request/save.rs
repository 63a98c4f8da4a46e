//! The save after the handler: gathers the writes, asks [`plan`](super::plan)
//! what to do, and does it.

use std::time::SystemTime;

use http::HeaderValue;

use super::plan::{Facts, Live, Step};
use super::{DictSlot, Existence, RequestSession, SaveError};
use crate::config::{Config, Expiry};
use crate::cookies::Presented;
use crate::dict::DICT_NAMESPACE;
use crate::id::SessionId;
use crate::store::{EXPIRY_FIELD, FieldKey, FieldWrite, StoreError};

impl RequestSession {
    /// After the handler: carries out what it asked for and writes what it
    /// changed. Returns the `Set-Cookie` value to send, if any.
    pub(crate) async fn save(&self) -> Result<Option<HeaderValue>, SaveError> {
        let (existence, action, chosen_expiry, writes, dict_writes) = {
            let state = self.state.lock();
            let mut writes = Vec::new();
            for slot in &state.slots {
                match &slot.parked {
                    Some(session) => session.writes(&mut writes)?,
                    None => tracing::warn!(
                        namespace = slot.namespace,
                        "a TypedSession<{}> was still alive after the handler returned; its changes are not saved",
                        slot.type_name
                    ),
                }
            }
            let mut dict_writes = Vec::new();
            match &state.dict {
                DictSlot::Parked(dict) => dict.writes(&mut dict_writes),
                DictSlot::InUse => tracing::warn!(
                    namespace = DICT_NAMESPACE,
                    "a Session was still alive after the handler returned; its changes are not saved"
                ),
                DictSlot::Untaken => {}
            }
            (
                state.existence,
                state.action,
                state.expiry,
                writes,
                dict_writes,
            )
        };
        let mut writes: Vec<FieldWrite<'_>> = writes
            .iter()
            .map(|(key, value)| FieldWrite {
                key: *key,
                value: value.as_deref(),
            })
            .chain(dict_writes.iter().map(|(field, value)| FieldWrite {
                key: FieldKey {
                    namespace: DICT_NAMESPACE,
                    field,
                },
                value: value.as_deref(),
            }))
            .collect();
        // The handler's own writes, without the remembered expiry: what a
        // write that lost a race with a login carries over to the new id,
        // and what a login that lost its session starts a new one with.
        let own_writes = writes.len();
        let id = self.presented.id();
        let live = match (existence, id) {
            (
                Existence::Live {
                    created_at,
                    expires_at,
                    remembered,
                },
                Some(_),
            ) => Some(Live {
                created_at,
                stored_expiry: expires_at,
                remembered,
            }),
            _ => None,
        };
        let config = &self.shared.config;
        let now = SystemTime::now();
        let had_cookie = !matches!(self.presented, Presented::Nothing);
        let plan = Facts {
            action,
            live,
            had_cookie,
            refused: had_cookie && matches!(existence, Existence::Absent),
            old_key: matches!(self.presented, Presented::OldKey(_)),
            has_writes: !writes.is_empty(),
            chosen_expiry,
            config_expiry: config.expiry(),
            absolute_timeout: config.absolute_timeout,
            now,
        }
        .plan();
        let chosen_bytes = plan
            .store_chosen
            .map(|chosen| crate::remembered::encode(&chosen));
        if let Some(bytes) = &chosen_bytes {
            writes.push(FieldWrite {
                key: EXPIRY_FIELD,
                value: Some(bytes),
            });
        }

        let store = &*self.shared.store;
        let cookie = &self.shared.cookie;
        let expiry = plan.expiry;
        // Every step but `Nothing` and `Create` acts on the live session,
        // so on the presented id.
        let (step, id) = match (plan.step, id) {
            (Step::Nothing { remove_cookie }, _) => {
                return Ok(if remove_cookie {
                    cookie.removal()
                } else {
                    None
                });
            }
            (Step::Create { expires_at }, _) => {
                return self
                    .create(&writes, expiry, now, expires_at, now)
                    .await
                    .map(Some);
            }
            (step, Some(id)) => (step, id),
            (_, None) => return Ok(None),
        };
        match step {
            Step::Delete => {
                self.shared.call(store.delete(id)).await?;
                if action == crate::request::Action::Destroy {
                    tracing::info!(session = %id.log_tag(), "session destroyed");
                } else {
                    tracing::info!(session = %id.log_tag(), "session reached its expiry date; ended");
                }
                Ok(cookie.removal())
            }
            Step::Cycle { expires_at } => {
                // The move comes first, the writes after it, on the new id:
                // whatever fails or is dropped after the move, the login's
                // writes (say, who is logged in) never land on the old id,
                // which an attacker may have planted, nor on an id another
                // request's response issued. The worst case is a logged-out
                // user, told so by a 500.
                let new_id = SessionId::generate()?;
                if !self
                    .shared
                    .call(store.move_to(id, &new_id, expires_at))
                    .await?
                {
                    if own_writes == 0 {
                        return Ok(self.vanished(id));
                    }
                    // The session ended (or another request cycled it)
                    // first. Its changes are never forwarded: they start a
                    // session of their own, whose cookie this response
                    // issues, keeping the creation time and the expiry the
                    // cycled session would have had.
                    tracing::info!(
                        session = %id.log_tag(),
                        "session ended (destroyed, cycled or expired) before this request cycled its id; its changes start a new session"
                    );
                    let remembered = live
                        .and_then(|live| live.remembered)
                        .filter(|_| chosen_bytes.is_none())
                        .map(|remembered| crate::remembered::encode(&remembered));
                    if let Some(bytes) = &remembered {
                        writes.push(FieldWrite {
                            key: EXPIRY_FIELD,
                            value: Some(bytes),
                        });
                    }
                    let created_at = live.map_or(now, |live| live.created_at);
                    return self
                        .create(&writes, expiry, created_at, expires_at, now)
                        .await
                        .map(Some);
                }
                if !writes.is_empty()
                    && !self
                        .shared
                        .call(store.update(&new_id, &writes, Some(expires_at)))
                        .await?
                {
                    return Ok(self.vanished(&new_id));
                }
                tracing::info!(from = %id.log_tag(), to = %new_id.log_tag(), "session id cycled");
                Ok(self.issue(&new_id, expiry, expires_at, now))
            }
            Step::Update { refresh } => {
                if !self.shared.call(store.update(id, &writes, refresh)).await? {
                    return self.forward(id, &writes[..own_writes]).await;
                }
                Ok(refresh.and_then(|expires_at| self.issue(id, expiry, expires_at, now)))
            }
            Step::Touch { expires_at } => {
                if !self.shared.call(store.touch(id, expires_at)).await? {
                    return Ok(self.vanished(id));
                }
                Ok(self.issue(id, expiry, expires_at, now))
            }
            Step::Nothing { .. } | Step::Create { .. } => Ok(None),
        }
    }

    async fn create(
        &self,
        writes: &[FieldWrite<'_>],
        expiry: Expiry,
        created_at: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<HeaderValue, SaveError> {
        // A collision of 192-bit random ids does not happen; the retry only
        // keeps a broken random source from overwriting anything.
        for _ in 0..3 {
            let id = SessionId::generate()?;
            match self
                .shared
                .call(
                    self.shared
                        .store
                        .create(&id, writes, created_at, expires_at),
                )
                .await
            {
                Ok(()) => {
                    tracing::info!(session = %id.log_tag(), "session created");
                    return self
                        .issue(&id, expiry, expires_at, now)
                        .ok_or(SaveError::Cookie);
                }
                Err(StoreError::IdExists) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::IdExists.into())
    }

    /// The cookie that hands `id` to the client, for a session expiring at
    /// `expires_at` (computed at `now`): `Max-Age` and `Expires` never reach
    /// past the session, and `OnSessionEnd` sends neither.
    fn issue(
        &self,
        id: &SessionId,
        expiry: Expiry,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Option<HeaderValue> {
        let max_age = match expiry {
            Expiry::OnSessionEnd => None,
            Expiry::OnInactivity(_) | Expiry::AtDateTime(_) => {
                match Config::lifetime(expires_at, now) {
                    Some(seconds) => Some(seconds),
                    // Checked by the caller; a dead session gets no cookie.
                    None => return self.shared.cookie.removal(),
                }
            }
        };
        (self.shared.cookie).issue(id, max_age, now, &self.shared.config)
    }

    /// An update of `id` found no session: if a login moved it within the
    /// forward window, the handler's writes go to the session under its new
    /// id (an ordinary update, so a session deleted since stays deleted);
    /// otherwise they are dropped. No cookie either way: the old id is dead
    /// and the login's response carries the new one.
    async fn forward(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
    ) -> Result<Option<HeaderValue>, SaveError> {
        let store = &*self.shared.store;
        if writes.is_empty() {
            return Ok(self.vanished(id));
        }
        let Some(to) = self.shared.call(store.forwarded(id)).await? else {
            return Ok(self.vanished(id));
        };
        if !self.shared.call(store.update(&to, writes, None)).await? {
            return Ok(self.vanished(id));
        }
        tracing::info!(
            from = %id.log_tag(), to = %to.log_tag(),
            "session id cycled while this request ran; its changes went to the new id"
        );
        Ok(None)
    }

    /// The session was deleted or moved while this request ran: its changes
    /// are dropped rather than resurrecting it.
    fn vanished(&self, id: &SessionId) -> Option<HeaderValue> {
        tracing::info!(
            session = %id.log_tag(),
            "session ended (destroyed, cycled or expired) while this request ran; its changes are dropped"
        );
        None
    }
}
