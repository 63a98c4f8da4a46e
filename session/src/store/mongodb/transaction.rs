//! `move_to` in a transaction, on a deployment that has them (a replica
//! set or sharded cluster). See the [store's module
//! docs](super#operations-and-atomicity).

use std::time::{Duration, SystemTime};

use mongodb::ClientSession;
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::TransactionOptions;

use super::MongoStore;
use super::document::{forward_document, moved_document, not_live_filter, writable_filter};
use super::error::{CODE_COMMAND_NOT_FOUND, CODE_DUPLICATE_KEY, backend, error_code};
use crate::id::SessionId;
use crate::store::StoreError;

/// Bounded retries of a move transaction on transient transaction errors.
const TRANSACTION_RETRIES: u32 = 5;

impl MongoStore {
    /// Whether the deployment has transactions: asked once with `hello`,
    /// an answer remembered, an error not.
    pub(super) async fn supports_transactions(&self) -> Result<bool, StoreError> {
        self.transactions
            .get_or_try_init(|| async {
                let hello = self
                    .collection
                    .client()
                    .database("admin")
                    .run_command(doc! { "hello": 1 })
                    .await;
                let supported = match hello {
                    Ok(reply) => hello_supports_transactions(&reply),
                    // A server too old to know `hello` has no transactions
                    // this store would use either.
                    Err(error) if error_code(&error) == Some(CODE_COMMAND_NOT_FOUND) => false,
                    Err(error) => return Err(backend(error)),
                };
                tracing::debug!(
                    supported,
                    "MongoStore: move_to uses transactions: {supported}"
                );
                Ok(supported)
            })
            .await
            .copied()
    }

    /// `move_to` as one transaction, run by the driver's retrying
    /// transaction API: a transient transaction error (a conflict) runs it
    /// again, at most [`TRANSACTION_RETRIES`] times in all, and a commit whose
    /// result is unknown is committed again.
    pub(super) async fn move_with_transaction(
        &self,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, StoreError> {
        let mut session = self
            .collection
            .client()
            .start_session()
            .await
            .map_err(backend)?;
        let options = TransactionOptions::builder()
            .write_concern(self.collection.write_concern().cloned())
            .build();
        // Owned, not borrowed: a closure capturing references makes the
        // future not `Send` for every lifetime (rust-lang/rust#96865).
        let (store, from_id, to_id) = (self.clone(), from.clone(), to.clone());
        let mut attempt = 0;
        let moved = session
            .start_transaction()
            .with_options(options)
            .and_run2(async move |session| {
                attempt += 1;
                if attempt > TRANSACTION_RETRIES {
                    // An error without the transient label ends the driver's
                    // retries, which are otherwise bounded only by time.
                    return Err(mongodb::error::Error::custom(GaveUp));
                }
                if attempt > 1 {
                    tracing::debug!(
                        session = %from_id.log_tag(),
                        attempt,
                        "MongoStore: retrying move transaction"
                    );
                    // Back off a little more than the driver does (10 to
                    // 80 ms), so the conflicting writer gets through first.
                    tokio::time::sleep(Duration::from_millis(5 << (attempt - 1))).await;
                }
                let moved = store
                    .move_in_transaction(session, &from_id, &to_id, expires_at)
                    .await?;
                if !moved {
                    // Nothing was written: end it without a commit.
                    session.abort_transaction().await?;
                }
                Ok(moved)
            })
            .await;
        match moved {
            Ok(moved) => Ok(moved),
            Err(error) if error.get_custom::<GaveUp>().is_some() => {
                tracing::warn!(
                    session = %from.log_tag(),
                    "MongoStore: move_to gave up: its transaction kept conflicting"
                );
                Err(StoreError::Contention(TRANSACTION_RETRIES))
            }
            Err(error) if error_code(&error) == Some(CODE_DUPLICATE_KEY) => {
                Err(StoreError::IdExists)
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn move_in_transaction(
        &self,
        session: &mut ClientSession,
        from: &SessionId,
        to: &SessionId,
        expires_at: SystemTime,
    ) -> Result<bool, mongodb::error::Error> {
        // Take `from` with the transaction's first operation, a write, so a
        // concurrent update of it waits for the transaction (and then finds
        // no session) instead of invalidating it. Nothing is lost if a later
        // step fails: the whole transaction is aborted.
        let Some(source) = self
            .collection
            .find_one_and_replace(writable_filter(from, DateTime::now()), forward_document(to))
            .projection(doc! { "data": 1, "created_at": 1 })
            .session(&mut *session)
            .await?
        else {
            return Ok(false);
        };
        // A write error aborts a transaction, so make room for `to` first
        // instead of reacting to a duplicate key (an expired document under
        // a fresh random id is all but impossible, but not quite).
        self.collection
            .delete_one(not_live_filter(to, DateTime::now()))
            .session(&mut *session)
            .await?;
        let doc = moved_document(to, &source, expires_at);
        self.collection
            .insert_one(&doc)
            .session(&mut *session)
            .await?;
        Ok(true)
    }
}

/// Why a move transaction stopped: [`TRANSACTION_RETRIES`] attempts
/// conflicted.
struct GaveUp;

/// Whether a `hello` reply describes a deployment with transactions: a
/// replica set member (wire version ≥ 7) or a mongos (≥ 8), with sessions.
pub(super) fn hello_supports_transactions(reply: &Document) -> bool {
    let wire = match reply.get("maxWireVersion") {
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Int64(v)) => *v,
        _ => 0,
    };
    let sessions = reply.contains_key("logicalSessionTimeoutMinutes");
    let replica_set = reply.contains_key("setName");
    let mongos = matches!(reply.get("msg"), Some(Bson::String(m)) if m == "isdbgrid");
    sessions && ((replica_set && wire >= 7) || (mongos && wire >= 8))
}
