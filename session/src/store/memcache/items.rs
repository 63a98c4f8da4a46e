//! The item operations the store's calls are built from: read, write with
//! or without CAS, create, the merge loop, delete.

use super::*;

/// What a conditional write did.
pub(super) enum Written {
    /// Stored; the item's new CAS token.
    Stored(u64),
    /// `add`: an item exists already.
    Exists,
    /// `cas`: the item changed since it was read.
    Conflict,
    /// `cas`: the item is gone.
    Gone,
}

impl MemcacheStore {
    /// Reads an item, with its CAS token when `cas` is set.
    pub(super) async fn read(
        &self,
        key: &str,
        cas: bool,
    ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let mut get = Get::new(key);
        if cas {
            get = get.meta(Meta::NONE.cas());
        }
        let result = self.client.run(get).await.map_err(backend)?;
        match result.status {
            GetStatus::Hit => {
                let Some(value) = result.value else {
                    return Err(StoreError::Malformed(
                        "memcached answered a get without the value".to_owned(),
                    ));
                };
                let token = match (cas, result.item.cas) {
                    (false, _) => 0,
                    (true, Some(token)) => token,
                    (true, None) => {
                        return Err(StoreError::Malformed(
                            "memcached answered a gets without the CAS token".to_owned(),
                        ));
                    }
                };
                Ok(Some((value, token)))
            }
            // `Pending` is an empty lease placeholder, never written by this
            // store: nothing readable is there.
            _ => Ok(None),
        }
    }

    /// `add` (when `cas` is `None`) or `cas`, with the item's TTL.
    pub(super) async fn write(
        &self,
        id: &SessionId,
        key: &str,
        value: Vec<u8>,
        expires_at: SystemTime,
        cas: Option<u64>,
    ) -> Result<Written, StoreError> {
        let len = value.len();
        let mut set = Set::new(key, b"");
        set.value = value;
        let set = set
            .ttl(item_ttl(expires_at, SystemTime::now()))
            .return_cas();
        let set = match cas {
            Some(token) => set.compare_cas(token),
            None => set.add(),
        };
        let result = match self.client.run(set).await {
            Ok(result) => result,
            Err(error) if refused_as_too_large(&error).is_some() => {
                let message = refused_as_too_large(&error).unwrap_or_default();
                let error = StoreError::TooLarge(format!(
                    "memcached refused the {len}-byte session item ({message}) and, as it \
                     does on a refused store, dropped the item stored before; the server's \
                     item size limit (-I, 1 MiB by default) is below this store's limit of \
                     {} bytes: lower it with MemcacheStore::with_max_item_size",
                    self.max_item_size
                ));
                tracing::error!(session = %id.log_tag(), %error, "session not saved");
                return Err(error);
            }
            Err(error) => return Err(backend(error)),
        };
        Ok(match result.status {
            MutationStatus::Applied => Written::Stored(result.cas.unwrap_or(0)),
            MutationStatus::AlreadyExists => Written::Exists,
            MutationStatus::CasMismatch => Written::Conflict,
            _ => Written::Gone,
        })
    }

    /// Encodes a record, or the `TooLarge` error naming the limit.
    pub(super) fn encode(
        &self,
        id: &SessionId,
        created_at: u64,
        expires_at: SystemTime,
        fields: &[record::Field<'_>],
    ) -> Result<Vec<u8>, StoreError> {
        record::encode(
            created_at,
            unix_millis(expires_at),
            fields,
            self.max_item_size,
        )
        .map_err(|error| {
            let error = StoreError::TooLarge(match error {
                EncodeError::OverLimit { len, limit } => format!(
                    "the session would be a {len}-byte memcached item, over the limit of \
                     {limit} bytes (MemcacheStore::with_max_item_size; memcached's own \
                     item size limit, -I, is 1 MiB by default)"
                ),
                EncodeError::FieldTooLong(message) => message,
            });
            tracing::warn!(session = %id.log_tag(), %error, "session not saved");
            error
        })
    }

    /// Parses a stored item; `None` for an expired record or an unreadable
    /// one (logged).
    pub(super) fn live<'a>(
        &self,
        id: &SessionId,
        bytes: &'a [u8],
        now: SystemTime,
    ) -> Option<Record<'a>> {
        match record::parse(bytes) {
            Ok(record) if record.expires_at > unix_millis(now) => Some(record),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(
                    session = %id.log_tag(),
                    %error,
                    "unreadable memcached session item treated as absent"
                );
                None
            }
        }
    }

    /// Stores a brand-new item at `key`: `add`, or a `cas` over an item
    /// that is expired or unreadable. Returns the new item's CAS token.
    pub(super) async fn create_item(
        &self,
        id: &SessionId,
        key: &str,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<u64, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            let started = Instant::now();
            match self
                .write(id, key, value.to_vec(), expires_at, None)
                .await?
            {
                Written::Stored(cas) => return Ok(cas),
                Written::Exists => {}
                Written::Conflict | Written::Gone => {
                    return Err(StoreError::Malformed(
                        "memcached answered an add like a cas".to_owned(),
                    ));
                }
            }
            // Something is there: a live session, or a dead item to replace.
            let Some((bytes, cas)) = self.read(key, true).await? else {
                continue; // gone since: add again
            };
            if self.live(id, &bytes, SystemTime::now()).is_some() {
                return Err(StoreError::IdExists);
            }
            match self
                .write(id, key, value.to_vec(), expires_at, Some(cas))
                .await?
            {
                Written::Stored(cas) => return Ok(cas),
                _ => backoff(attempt, started).await,
            }
        }
        Err(StoreError::Contention(MAX_ATTEMPTS))
    }

    /// The read-modify-write loop of update and touch: `gets`, `change`
    /// the live record into new bytes expiring at the given time (the new
    /// expiry, or the record's own with `None`), `cas` them back; again on
    /// a conflict. `Ok(false)` when the session is gone.
    pub(super) async fn modify(
        &self,
        id: &SessionId,
        expires_at: Option<SystemTime>,
        change: impl Fn(&Record<'_>, SystemTime) -> Result<Vec<u8>, StoreError>,
    ) -> Result<bool, StoreError> {
        let key = self.key(id);
        let _turn = self.queues.turn(&key).await;
        for attempt in 0..MAX_ATTEMPTS {
            let started = Instant::now();
            let Some((bytes, cas)) = self.read(&key, true).await? else {
                return Ok(false);
            };
            let Some(record) = self.live(id, &bytes, SystemTime::now()) else {
                return Ok(false);
            };
            let expires_at =
                expires_at.unwrap_or_else(|| crate::store::from_unix_millis(record.expires_at));
            let value = change(&record, expires_at)?;
            match self.write(id, &key, value, expires_at, Some(cas)).await? {
                Written::Stored(_) => return Ok(true),
                Written::Conflict => {
                    tracing::trace!(session = %id.log_tag(), attempt, "cas conflict, retrying");
                    backoff(attempt, started).await;
                }
                Written::Gone => return Ok(false),
                Written::Exists => {
                    return Err(StoreError::Malformed(
                        "memcached answered a cas like an add".to_owned(),
                    ));
                }
            }
        }
        tracing::warn!(session = %id.log_tag(), attempts = MAX_ATTEMPTS, "session write gave up");
        Err(StoreError::Contention(MAX_ATTEMPTS))
    }

    /// `delete`, only while the item's CAS token is `cas` when given.
    pub(super) async fn delete_item(
        &self,
        key: &str,
        cas: Option<u64>,
    ) -> Result<MutationStatus, StoreError> {
        let mut delete = Delete::new(key);
        if let Some(cas) = cas {
            delete = delete.compare_cas(cas);
        }
        let result = self.client.run(delete).await.map_err(backend)?;
        Ok(result.status)
    }
}
