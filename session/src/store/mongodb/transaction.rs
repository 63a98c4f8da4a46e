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

    /// `move_to` as one transaction, retried (bounded) when it conflicts.
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
        let mut attempt = 0;
        loop {
            attempt += 1;
            session
                .start_transaction()
                .with_options(
                    TransactionOptions::builder()
                        .write_concern(self.collection.write_concern().cloned())
                        .build(),
                )
                .await
                .map_err(backend)?;
            let outcome = self
                .move_in_transaction(&mut session, from, to, expires_at)
                .await;
            let error = match outcome {
                Ok(true) => match commit(&mut session).await {
                    Ok(()) => return Ok(true),
                    Err(error) => error,
                },
                Ok(false) => {
                    // Nothing was written; abort to end the transaction.
                    let _ = session.abort_transaction().await;
                    return Ok(false);
                }
                Err(error) => {
                    let _ = session.abort_transaction().await;
                    error
                }
            };
            if error.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR) {
                if attempt < TRANSACTION_RETRIES {
                    tracing::debug!(session = %from.log_tag(), %error, "MongoStore: retrying move transaction");
                    // Back off a little, growing, so the conflicting writer
                    // gets through before the next attempt.
                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                    continue;
                }
                tracing::warn!(
                    session = %from.log_tag(),
                    %error,
                    "MongoStore: move_to gave up: its transaction kept conflicting"
                );
                return Err(StoreError::Contention(TRANSACTION_RETRIES));
            }
            if error_code(&error) == Some(CODE_DUPLICATE_KEY) {
                return Err(StoreError::IdExists);
            }
            return Err(backend(error));
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

/// Commits, retrying a commit whose result is unknown (bounded).
async fn commit(session: &mut ClientSession) -> Result<(), mongodb::error::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match session.commit_transaction().await {
            Err(error)
                if error.contains_label(mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT)
                    && attempt < TRANSACTION_RETRIES => {}
            other => return other,
        }
    }
}

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
