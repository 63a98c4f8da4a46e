//! The forwards [`MemoryStore::move_to`](super::MemoryStore) leaves behind:
//! old id to new id, for [`FORWARD_WINDOW`].

use std::collections::HashMap;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::id::SessionId;
use crate::store::FORWARD_WINDOW;

/// Forwards are swept of expired entries once every this many inserts, so
/// the table holds about the logins of one window, never more than a sweep
/// behind.
const SWEEP_EVERY: usize = 64;

/// One table for the whole store: it is written once per login and read
/// only after a write lost a race with one, so one lock is no contention.
#[derive(Default)]
pub(super) struct Forwards {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Old id to (new id, end of the window).
    entries: HashMap<String, (SessionId, SystemTime)>,
    inserts: usize,
}

impl Forwards {
    pub(super) fn insert(&self, from: &SessionId, to: &SessionId, now: SystemTime) {
        let until = now.checked_add(FORWARD_WINDOW).unwrap_or(now);
        let mut table = self.table.lock();
        table.inserts = table.inserts.wrapping_add(1);
        if table.inserts.is_multiple_of(SWEEP_EVERY) {
            table.entries.retain(|_, (_, until)| *until > now);
        }
        table
            .entries
            .insert(from.as_str().to_owned(), (to.clone(), until));
    }

    pub(super) fn remove(&self, from: &SessionId) {
        self.table.lock().entries.remove(from.as_str());
    }

    pub(super) fn get(&self, from: &SessionId, now: SystemTime) -> Option<SessionId> {
        let table = self.table.lock();
        table
            .entries
            .get(from.as_str())
            .filter(|(_, until)| *until > now)
            .map(|(to, _)| to.clone())
    }
}
