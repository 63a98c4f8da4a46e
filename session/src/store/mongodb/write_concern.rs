//! Which acknowledgement [`MongoStore`]'s writes wait for: its write concern.
//! See the [store's module docs](super#durability).

use mongodb::Collection;
use mongodb::bson::Document;
use mongodb::options::{Acknowledgment, CollectionOptions, WriteConcern};

use super::MongoStore;

impl MongoStore {
    /// The write concern a store uses unless its URI (or the collection given
    /// to [`new`](Self::new)) states one: `{w: "majority", j: true}`, a write
    /// is acknowledged once a majority of the replica set has it in its
    /// on-disk journal (on a standalone server: once it is in the journal).
    /// See [durability](super#durability) for why, and what it costs.
    pub fn default_write_concern() -> WriteConcern {
        WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .journal(true)
            .build()
    }

    /// Makes every write of this store (session writes, deletes, moves
    /// including their transactions, index creation) wait for `concern`,
    /// instead of [`default_write_concern`](Self::default_write_concern) or
    /// the one the URI or collection stated. For example
    /// `WriteConcern::nodes(1)` acknowledges a write once the primary has
    /// applied it in memory: faster, but a crash of the server can then lose
    /// acknowledged writes (logins, logouts, "log out everywhere").
    #[must_use]
    pub fn with_write_concern(mut self, concern: WriteConcern) -> Self {
        self.collection = concerned(&self.collection, concern);
        self
    }

    /// The write concern this store's writes carry.
    pub fn write_concern(&self) -> Option<&WriteConcern> {
        self.collection.write_concern()
    }
}

/// `collection` as it is (read concern, read preference), writing with
/// `concern`.
pub(super) fn concerned(
    collection: &Collection<Document>,
    concern: WriteConcern,
) -> Collection<Document> {
    let namespace = collection.namespace();
    let options = CollectionOptions::builder()
        .selection_criteria(collection.selection_criteria().cloned())
        .read_concern(collection.read_concern().cloned())
        .write_concern(concern)
        .build();
    collection
        .client()
        .database(&namespace.db)
        .collection_with_options(&namespace.coll, options)
}
