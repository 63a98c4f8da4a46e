//! How [`MongoStore`] writes a session: `create`'s insert, `update`'s one
//! `update_one`, and repairing stored data that is in a write's way. See
//! the [store's module docs](super#operations-and-atomicity).

use std::collections::BTreeMap;
use std::time::SystemTime;

use mongodb::bson::{DateTime, Document, doc};

use super::document::{binary, bson_time, encoded_len, not_live_filter, writable_filter};
use super::error::{
    CODE_DUPLICATE_KEY, CODE_PATH_NOT_VIABLE, backend, check_name, error_code, too_large,
};
use super::{MAX_DOCUMENT_SIZE, MongoStore};
use crate::id::SessionId;
use crate::store::{FieldWrite, StoreError};

impl MongoStore {
    /// [`SessionStore::create`](crate::SessionStore::create): one
    /// `insert_one` of the whole document.
    pub(super) async fn create_session(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let folded = fold_writes(writes)?;
        let mut data = Document::new();
        for ((namespace, field), value) in folded {
            let Some(bytes) = value else { continue };
            if !data.contains_key(namespace) {
                data.insert(namespace, Document::new());
            }
            if let Ok(fields) = data.get_document_mut(namespace) {
                fields.insert(field, binary(bytes));
            }
        }
        let doc = doc! {
            "_id": id.as_str(),
            "data": data,
            "created_at": bson_time(created_at),
            "expires_at": bson_time(expires_at),
        };
        let size = encoded_len(&doc);
        if size > MAX_DOCUMENT_SIZE {
            return Err(too_large(size));
        }
        self.ensure_index().await?;
        self.ensure_entry_indexes(writes).await?;
        match self.insert_new(id, &doc).await {
            Ok(()) => Ok(()),
            Err(error) if error_code(&error) == Some(CODE_DUPLICATE_KEY) => {
                Err(StoreError::IdExists)
            }
            Err(error) => Err(backend(error)),
        }
    }

    /// Inserts a brand-new session document (`doc` has `_id` = `id`). A live
    /// session with that id is a duplicate-key error; an expired one that is
    /// still there is replaced.
    pub(super) async fn insert_new(
        &self,
        id: &SessionId,
        doc: &Document,
    ) -> Result<(), mongodb::error::Error> {
        let error = match self.collection.insert_one(doc).await {
            Ok(_) => return Ok(()),
            Err(error) if error_code(&error) == Some(CODE_DUPLICATE_KEY) => error,
            Err(error) => return Err(error),
        };
        // The id is taken. Replace the document only if it is not live.
        let deleted = self
            .collection
            .delete_one(not_live_filter(id, DateTime::now()))
            .await?;
        if deleted.deleted_count == 0 {
            return Err(error);
        }
        tracing::debug!(
            session = %id.log_tag(),
            "MongoStore: replaced an expired document not yet removed by the TTL monitor"
        );
        self.collection.insert_one(doc).await?;
        Ok(())
    }

    /// Resets a `data` or `data.<namespace>` that is not a document (so a
    /// `$set` below it cannot work) to an empty document. Only ever called
    /// after such a `$set` failed.
    async fn repair(&self, id: &SessionId, namespaces: &[&str]) -> Result<(), StoreError> {
        let mut paths = vec!["data".to_owned()];
        paths.extend(namespaces.iter().map(|ns| format!("data.{ns}")));
        for path in paths {
            let mut filter = writable_filter(id, DateTime::now());
            filter.insert(
                "$or",
                vec![
                    doc! { &path: { "$type": "array" } },
                    doc! { &path: { "$exists": true, "$not": { "$type": "object" } } },
                ],
            );
            let result = self
                .collection
                .update_one(filter, doc! { "$set": { &path: {} } })
                .await
                .map_err(backend)?;
            if result.modified_count > 0 {
                tracing::warn!(
                    session = %id.log_tag(),
                    path = %path,
                    "MongoStore: stored session data was not a document; reset it to empty"
                );
            }
        }
        Ok(())
    }

    /// [`SessionStore::update`](crate::SessionStore::update): one
    /// `update_one` of the paths it names (and, if stored data is in its way,
    /// a repair and one retry).
    pub(super) async fn update_session(
        &self,
        id: &SessionId,
        writes: &[FieldWrite<'_>],
        expires_at: Option<SystemTime>,
    ) -> Result<bool, StoreError> {
        self.ensure_index().await?;
        self.ensure_entry_indexes(writes).await?;
        let writes = fold_writes(writes)?;
        let size: usize = writes.values().map(|v| v.map_or(0, <[u8]>::len)).sum();
        if size > MAX_DOCUMENT_SIZE {
            return Err(too_large(size));
        }
        let mut set = Document::new();
        if let Some(expires_at) = expires_at {
            set.insert("expires_at", bson_time(expires_at));
        }
        let mut unset = Document::new();
        let mut namespaces: Vec<&str> = Vec::new();
        for ((namespace, field), value) in &writes {
            let path = format!("data.{namespace}.{field}");
            match value {
                Some(bytes) => {
                    set.insert(path, binary(bytes));
                    if !namespaces.contains(namespace) {
                        namespaces.push(namespace);
                    }
                }
                None => {
                    unset.insert(path, "");
                }
            }
        }
        let mut update = Document::new();
        if !set.is_empty() {
            update.insert("$set", set);
        }
        if !unset.is_empty() {
            update.insert("$unset", unset);
        }
        if update.is_empty() {
            // Nothing to change (MongoDB refuses an empty update): only
            // whether the session is still there.
            let found = self
                .collection
                .find_one(writable_filter(id, DateTime::now()))
                .projection(doc! { "_id": 1 })
                .await
                .map_err(backend)?;
            return Ok(found.is_some());
        }
        let first = self
            .collection
            .update_one(writable_filter(id, DateTime::now()), update.clone())
            .await;
        let result = match first {
            Err(error) if error_code(&error) == Some(CODE_PATH_NOT_VIABLE) => {
                // `data` or `data.<ns>` holds something that is not a document.
                self.repair(id, &namespaces).await?;
                self.collection
                    .update_one(writable_filter(id, DateTime::now()), update)
                    .await
            }
            other => other,
        };
        Ok(result.map_err(backend)?.matched_count > 0)
    }
}

/// The writes of one call: (namespace, field) to new bytes or removal.
type FoldedWrites<'a> = BTreeMap<(&'a str, &'a str), Option<&'a [u8]>>;

/// Validates the names and keeps the last write of each field, in a stable
/// order.
pub(super) fn fold_writes<'a>(writes: &[FieldWrite<'a>]) -> Result<FoldedWrites<'a>, StoreError> {
    let mut folded = BTreeMap::new();
    for write in writes {
        check_name("namespace", write.key.namespace)?;
        check_name("field", write.key.field)?;
        folded.insert((write.key.namespace, write.key.field), write.value);
    }
    Ok(folded)
}
