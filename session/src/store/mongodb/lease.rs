//! `move_to` without transactions (a standalone server): mark and read,
//! copy, retire, each step atomic, the mark a lease that lapses by itself;
//! and `forwarded`, which waits out such a move. See the [store's module
//! docs](super#operations-and-atomicity).

use std::time::{Duration, SystemTime};

use mongodb::bson::{Bson, DateTime, Document, doc};

use super::document::{forward_document, moved_document, writable_filter};
use super::error::{CODE_DUPLICATE_KEY, backend, error_code};
use super::{MOVE_LEASE, MongoStore};
use crate::id::SessionId;
use crate::store::StoreError;

/// Bounded re-copies of a non-transactional move when the marked session
/// still changed (a server whose findAndModify is not atomic).
const MOVE_SYNC_RETRIES: u32 = 4;

impl MongoStore {
    /// `move_to` in three atomic steps, the first marking `from` for
    /// [`MOVE_LEASE`].
    pub(super) async fn move_without_transaction(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        // 1. Mark `from` as being moved and read it, in one atomic step. From
        //    now until the lease ends, updates and touches of `from` find no
        //    session (as they will once the move is done), so none of their
        //    writes can be acknowledged and then lost with `from`.
        let now = DateTime::now();
        let lease = DateTime::from_millis(
            now.timestamp_millis()
                .saturating_add(i64::try_from(MOVE_LEASE.as_millis()).unwrap_or(i64::MAX)),
        );
        let Some(source) = self
            .collection
            .find_one_and_update(
                writable_filter(from, now),
                doc! { "$set": { "moving": { "to": to.as_str(), "until": lease } } },
            )
            .projection(doc! { "data": 1, "created_at": 1 })
            .await
            .map_err(backend)?
        else {
            // Gone, expired, or being moved by a concurrent request.
            return Ok(false);
        };
        // 2. Copy it to `to`.
        let doc = moved_document(to, &source, expires_at);
        if let Err(error) = self.insert_new(to, &doc).await {
            self.release(from, to).await;
            if error_code(&error) == Some(CODE_DUPLICATE_KEY) {
                return Err(StoreError::IdExists);
            }
            return Err(backend(error));
        }
        // 3. Retire `from` if it still carries this move's mark and the data
        //    that was copied. On MongoDB the mark makes the data check
        //    redundant; it protects against servers whose findAndModify is
        //    not atomic (SecantusDB 0.7.0b3: a write can land just after the
        //    document was read but before the mark): then the copy is brought
        //    up to date and the delete retried.
        let mut copied = source.get("data").cloned();
        for _ in 0..MOVE_SYNC_RETRIES {
            let mut filter = doc! { "_id": from.as_str(), "moving.to": to.as_str() };
            match &copied {
                Some(data) => filter.insert("data", data.clone()),
                None => filter.insert("data", doc! { "$exists": false }),
            };
            // Retired by becoming the forward to `to`.
            let replaced = self
                .collection
                .replace_one(filter, forward_document(to))
                .await
                .map_err(backend)?;
            if replaced.matched_count > 0 {
                return Ok(true);
            }
            let current = self
                .collection
                .find_one(doc! { "_id": from.as_str(), "moving.to": to.as_str() })
                .projection(doc! { "data": 1 })
                .await
                .map_err(backend)?;
            let Some(current) = current else {
                // `from` was deleted (destroy) while it was copied: the
                // delete wins, and the copy goes too.
                tracing::debug!(
                    session = %from.log_tag(),
                    "MongoStore: session deleted during move_to; dropping the copy"
                );
                self.collection
                    .delete_one(doc! { "_id": to.as_str() })
                    .await
                    .map_err(backend)?;
                return Ok(false);
            };
            tracing::debug!(
                session = %from.log_tag(),
                "MongoStore: session changed while it was being marked for move_to; copying again"
            );
            copied = current.get("data").cloned();
            let update = match &copied {
                Some(data) => doc! { "$set": { "data": data.clone() } },
                None => doc! { "$unset": { "data": "" } },
            };
            self.collection
                .update_one(doc! { "_id": to.as_str() }, update)
                .await
                .map_err(backend)?;
        }
        tracing::warn!(
            session = %from.log_tag(),
            "MongoStore: move_to gave up: the session kept changing after it was marked"
        );
        let _ = self
            .collection
            .delete_one(doc! { "_id": to.as_str() })
            .await;
        self.release(from, to).await;
        Err(StoreError::Contention(MOVE_SYNC_RETRIES))
    }

    /// Best effort: makes `from` writable again after a failed move.
    async fn release(&self, from: &SessionId, to: &SessionId) {
        let released = self
            .collection
            .update_one(
                doc! { "_id": from.as_str(), "moving.to": to.as_str() },
                doc! { "$unset": { "moving": "" } },
            )
            .await;
        if let Err(error) = released {
            tracing::warn!(
                session = %from.log_tag(),
                %error,
                "MongoStore: could not clear the move marker; the session is read-only until it lapses"
            );
        }
    }

    /// [`SessionStore::forwarded`](crate::SessionStore::forwarded): the
    /// forward `id` left, if any; while a move without transactions still
    /// holds `id`'s mark, waits (polling) for it to end.
    pub(super) async fn find_forward(
        &self,
        id: &SessionId,
    ) -> Result<Option<SessionId>, StoreError> {
        // A write refused because a move without transactions had marked
        // the session (step 1) asks here while the move runs: wait for
        // the move to end (it does within its lease), then read its
        // forward.
        let mut pause = Duration::from_millis(2);
        loop {
            let found = self
                .collection
                .find_one(doc! { "_id": id.as_str() })
                .projection(doc! { "_id": 0, "forward": 1, "moving": 1, "created_at": 1 })
                .await
                .map_err(backend)?;
            let Some(found) = found else {
                return Ok(None);
            };
            let now = DateTime::now();
            let live_until = |doc: &Document| matches!(doc.get("until"), Some(Bson::DateTime(until)) if *until > now);
            if let Ok(forward) = found.get_document("forward") {
                return Ok(live_until(forward)
                    .then(|| forward.get_str("to").ok().and_then(SessionId::parse))
                    .flatten());
            }
            let moving = found.get_document("moving").is_ok_and(live_until);
            if !moving || !found.contains_key("created_at") {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}
