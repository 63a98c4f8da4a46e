//! The session index of [`MongoStore`]: index entries are ordinary fields
//! (`data.__index.<namespace>`), each namespace's entries are covered by a
//! sparse database index created the first time the store meets the
//! namespace, and `list_index`/`end_index` are one hinted query each. See
//! the [store's module docs](super#the-session-index).

use std::collections::HashMap;
use std::sync::Arc;

use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::{Hint, IndexOptions};
use mongodb::{IndexModel, bson::RawDocument};
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use super::MongoStore;
use super::document::{binary, system_time};
use super::error::{backend, check_name, error_code};
use crate::id::SessionId;
use crate::store::{FieldWrite, INDEX_NAMESPACE, IndexKey, IndexedSession, StoreError};

/// The entry indexes this store (and its clones) knows exist: one cell per
/// indexed namespace, so concurrent first writes create an index once.
#[derive(Default)]
pub(super) struct EntryIndexes(Mutex<HashMap<String, Arc<OnceCell<()>>>>);

impl EntryIndexes {
    /// How many namespaces' indexes are known to exist (for `Debug`).
    pub(super) fn ensured(&self) -> usize {
        self.0
            .lock()
            .values()
            .filter(|cell| cell.initialized())
            .count()
    }

    fn cell(&self, namespace: &str) -> Arc<OnceCell<()>> {
        let mut cells = self.0.lock();
        match cells.get(namespace) {
            Some(cell) => Arc::clone(cell),
            None => Arc::clone(cells.entry(namespace.to_owned()).or_default()),
        }
    }

    /// Forgets that `namespace`'s index exists, so the next use creates it.
    fn forget(&self, namespace: &str) {
        self.0.lock().remove(namespace);
    }
}

/// What the server answers a hint naming no index (BadValue).
const CODE_BAD_HINT: i32 = 2;

/// The stored path of `namespace`'s index entry.
fn entry_path(namespace: &str) -> String {
    format!("data.{INDEX_NAMESPACE}.{namespace}")
}

/// The key pattern of `namespace`'s entry index; also the queries' hint.
fn index_keys(namespace: &str) -> Document {
    doc! { entry_path(namespace): 1 }
}

/// The live sessions whose entry for the namespace holds the key. The entry
/// comes first: a server that uses one clause's index for a write (as
/// SecantusDB does for `delete`) takes the first it can, and `expires_at`
/// has the TTL index, which would scan every live session.
fn index_filter(index: IndexKey<'_>, now: DateTime) -> Document {
    doc! {
        entry_path(index.namespace): binary(index.key),
        "expires_at": { "$gt": now },
        "created_at": { "$type": "date" },
    }
}

impl MongoStore {
    /// Makes sure the entry index of every namespace whose entry `writes`
    /// sets exists. Without such a write it does nothing: no lock, no I/O.
    pub(super) async fn ensure_entry_indexes(
        &self,
        writes: &[FieldWrite<'_>],
    ) -> Result<(), StoreError> {
        for write in writes {
            if let Some((namespace, Some(_))) = IndexKey::of_write(write) {
                self.ensure_entry_index(namespace).await?;
            }
        }
        Ok(())
    }

    /// Creates the sparse index on `data.__index.<namespace>` unless this
    /// store already did. Idempotent on the server too.
    async fn ensure_entry_index(&self, namespace: &str) -> Result<(), StoreError> {
        check_name("namespace", namespace)?;
        self.entry_indexes
            .cell(namespace)
            .get_or_try_init(|| async {
                let model = IndexModel::builder()
                    .keys(index_keys(namespace))
                    .options(IndexOptions::builder().sparse(true).build())
                    .build();
                self.collection.create_index(model).await.map_err(|error| {
                    tracing::warn!(
                        collection = %self.collection.namespace(),
                        namespace,
                        %error,
                        "MongoStore: could not create the session index"
                    );
                    backend(error)
                })?;
                tracing::debug!(
                    collection = %self.collection.namespace(),
                    namespace,
                    "MongoStore: session index is in place"
                );
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// [`SessionStore::list_index`](crate::SessionStore::list_index): one
    /// `find` through the namespace's entry index.
    pub(super) async fn list_entries(
        &self,
        index: IndexKey<'_>,
    ) -> Result<Vec<IndexedSession>, StoreError> {
        let mut retried = false;
        let mut cursor = loop {
            self.ensure_entry_index(index.namespace).await?;
            let found = self
                .collection
                .find(index_filter(index, DateTime::now()))
                .hint(Hint::Keys(index_keys(index.namespace)))
                .projection(doc! { "_id": 1, "created_at": 1, "expires_at": 1 })
                .await;
            match found {
                Err(error) if !retried && self.index_vanished(index.namespace, &error) => {
                    retried = true;
                }
                other => break other.map_err(backend)?,
            }
        };
        let mut found = Vec::new();
        while cursor.advance().await.map_err(backend)? {
            if let Some(session) = indexed_session(cursor.current()) {
                found.push(session);
            }
        }
        Ok(found)
    }

    /// [`SessionStore::end_index`](crate::SessionStore::end_index): one
    /// `delete` (multi) through the namespace's entry index.
    pub(super) async fn end_entries(
        &self,
        index: IndexKey<'_>,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let mut retried = false;
        let result = loop {
            self.ensure_entry_index(index.namespace).await?;
            let mut filter = index_filter(index, DateTime::now());
            if let Some(except) = except {
                filter.insert("_id", doc! { "$ne": except.as_str() });
            }
            let deleted = self
                .collection
                .delete_many(filter)
                .hint(Hint::Keys(index_keys(index.namespace)))
                .await;
            match deleted {
                Err(error) if !retried && self.index_vanished(index.namespace, &error) => {
                    retried = true;
                }
                other => break other.map_err(backend)?,
            }
        };
        Ok(usize::try_from(result.deleted_count).unwrap_or(usize::MAX))
    }

    /// Whether `error` says the hinted index is not there (dropped, or its
    /// collection dropped, since this store created it); if so, forgets it
    /// so that the one retry creates it again.
    fn index_vanished(&self, namespace: &str, error: &mongodb::error::Error) -> bool {
        let vanished = error_code(error) == Some(CODE_BAD_HINT);
        if vanished {
            tracing::warn!(
                collection = %self.collection.namespace(),
                namespace,
                %error,
                "MongoStore: the session index is gone; creating it again"
            );
            self.entry_indexes.forget(namespace);
        }
        vanished
    }
}

/// One listed document as an [`IndexedSession`]; `None`, with a warning,
/// for one whose id or times the store did not write (the filter only
/// matches dates, so only a server that disagrees gets here).
fn indexed_session(raw: &RawDocument) -> Option<IndexedSession> {
    let parsed = Document::try_from(raw).ok().and_then(|doc| {
        let id = SessionId::parse(doc.get_str("_id").ok()?)?;
        let (Some(Bson::DateTime(created_at)), Some(Bson::DateTime(expires_at))) =
            (doc.get("created_at"), doc.get("expires_at"))
        else {
            return None;
        };
        Some(IndexedSession {
            id,
            created_at: system_time(*created_at),
            expires_at: system_time(*expires_at),
        })
    });
    if parsed.is_none() {
        tracing::warn!(
            "MongoStore: a session document found through the index is malformed; left out"
        );
    }
    parsed
}
