//! One session as a shard holds it: its id as an inline key, its times as
//! nanoseconds, its fields by the shard's interned names; and how writes
//! change it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::index::Index;
use super::names::{NameId, Names};
use crate::id::{ID_LEN, SessionId};
use crate::store::{FieldWrite, IndexKey};

/// An id's text, inline: no allocation per session for its key.
pub(super) type Key = [u8; ID_LEN];

/// A point in time as nanoseconds since the Unix epoch: half the size of a
/// `SystemTime`, exact from 1970 to 2554 and saturating outside that.
pub(super) type Nanos = u64;

pub(super) struct Record {
    pub(super) created_at: Nanos,
    pub(super) expires_at: Nanos,
    /// The stored fields by name. A session has few, so a slice searched in
    /// order is smaller than a map and as fast. The bytes are shared with
    /// the `LoadedFields` that loads hand out rather than copied into them.
    pub(super) fields: Box<[(NameId, Bytes)]>,
}

pub(super) fn nanos(time: SystemTime) -> Nanos {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos().try_into().unwrap_or(Nanos::MAX))
}

pub(super) fn system_time(nanos: Nanos) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

pub(super) fn now() -> Nanos {
    nanos(SystemTime::now())
}

/// The id a key holds: every key was made by [`key`] from one.
pub(super) fn session_id(key: &Key) -> Option<SessionId> {
    SessionId::parse(std::str::from_utf8(key).ok()?)
}

pub(super) fn key(id: &SessionId) -> Key {
    // Every `SessionId` is `ID_LEN` characters; copying what there is keeps
    // this total without trusting that.
    let mut key = [0; ID_LEN];
    let text = id.as_str().as_bytes();
    let len = text.len().min(ID_LEN);
    key[..len].copy_from_slice(&text[..len]);
    key
}

impl Record {
    pub(super) fn is_live(&self, now: Nanos) -> bool {
        self.expires_at > now
    }

    pub(super) fn get(&self, name: NameId) -> Option<&Bytes> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, b)| b)
    }

    /// Applies `writes` to the session held under `session`, keeping the
    /// shard's `index` in step with its index entries.
    pub(super) fn apply(
        &mut self,
        session: &Key,
        writes: &[FieldWrite<'_>],
        names: &mut Names,
        index: &mut Index,
    ) {
        let mut fields = std::mem::take(&mut self.fields).into_vec();
        // Room for exactly what is added, so the slice below needs no
        // reallocation and the allocator no spare room.
        if fields.is_empty() {
            fields.reserve_exact(writes.len());
        }
        for write in writes {
            // The one check a write without an entry pays.
            let indexed = IndexKey::of_write(write).is_some();
            match write.value {
                Some(bytes) => {
                    let name = names.intern(write.key.namespace, write.key.field);
                    let stored = Bytes::copy_from_slice(bytes);
                    match fields.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, value)) => {
                            if indexed {
                                index.remove(name, value, session);
                            }
                            *value = stored;
                        }
                        None => {
                            fields.reserve_exact(1);
                            fields.push((name, stored));
                        }
                    }
                    if indexed {
                        index.add(name, bytes, *session);
                    }
                }
                None => {
                    if let Some(name) = names.get(write.key.namespace, write.key.field) {
                        if indexed && let Some((_, old)) = fields.iter().find(|(n, _)| *n == name) {
                            index.remove(name, old, session);
                        }
                        fields.retain(|(n, _)| *n != name);
                    }
                }
            }
        }
        // Free unless fields were removed: capacity is length by now.
        self.fields = fields.into_boxed_slice();
    }

    /// This session with its field names numbered as `to` numbers them
    /// rather than as `from` does: each shard numbers names its own way.
    pub(super) fn renamed(self, from: &Names, to: &mut Names) -> Self {
        let Self {
            created_at,
            expires_at,
            fields,
        } = self;
        Self {
            created_at,
            expires_at,
            fields: fields
                .into_vec()
                .into_iter()
                .filter_map(|(name, bytes)| {
                    let (namespace, field) = from.name(name)?;
                    Some((to.intern(namespace, field), bytes))
                })
                .collect(),
        }
    }
}
