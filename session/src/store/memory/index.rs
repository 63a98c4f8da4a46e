//! One shard's part of the session index: for each index entry's name and
//! index key, the shard's sessions whose entry holds that key.
//!
//! It holds exactly the entries of the sessions the shard holds (live, or
//! expired and not yet swept): the shard changes it under its lock in the
//! same step as the records, so it never lists a session the shard no
//! longer has and shrinks as sessions go.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::names::{NameId, Names};
use super::{Key, Map, SHRINK_ABOVE};
use crate::store::INDEX_NAMESPACE;

/// The sessions that share one index key. A shard mostly holds one
/// session of a key (a user's few sessions are spread over all shards), so
/// one is held inline; more go to a set, which needs only the fast hash of
/// the session table: the ids are server-generated.
enum Ids {
    One(Key),
    Many(HashSet<Key, foldhash::fast::RandomState>),
}

/// Index keys to sessions. Keys are the application's values (a user name,
/// say), which a client may choose, so they get the standard library's
/// DoS-resistant hasher rather than the fast one.
type Keys = HashMap<Box<[u8]>, Ids>;

/// The index of one shard, keyed by the shard's [`NameId`] of each entry
/// (the field of [`INDEX_NAMESPACE`] named after the indexed namespace).
/// Empty, it is one empty table: sessions without entries cost nothing.
#[derive(Default)]
pub(super) struct Index {
    entries: Map<NameId, Keys>,
}

impl Index {
    /// Records that session `session`'s entry `name` holds `key`.
    pub(super) fn add(&mut self, name: NameId, key: &[u8], session: Key) {
        let keys = self.entries.entry(name).or_default();
        match keys.get_mut(key) {
            Some(ids) => ids.insert(session),
            None => {
                keys.insert(key.into(), Ids::One(session));
            }
        }
    }

    /// Records that session `session`'s entry `name` no longer holds `key`,
    /// dropping what is left empty.
    pub(super) fn remove(&mut self, name: NameId, key: &[u8], session: &Key) {
        let Some(keys) = self.entries.get_mut(&name) else {
            return;
        };
        let Some(ids) = keys.get_mut(key) else {
            return;
        };
        if ids.remove(session) {
            keys.remove(key);
            if keys.is_empty() {
                self.entries.remove(&name);
            }
        }
    }

    /// Takes out every entry of a session the shard no longer holds under
    /// `session`. Free when the shard has no index entries at all.
    pub(super) fn forget(&mut self, session: &Key, fields: &[(NameId, Bytes)]) {
        if self.entries.is_empty() {
            return;
        }
        for (name, key) in fields {
            // Only entries' names are keys of `entries`.
            if self.entries.contains_key(name) {
                self.remove(*name, key, session);
            }
        }
    }

    /// Puts in every entry of a session the shard now holds under
    /// `session`, its fields numbered by `names`; whether it had any.
    pub(super) fn remember(
        &mut self,
        session: Key,
        fields: &[(NameId, Bytes)],
        names: &Names,
    ) -> bool {
        let mut any = false;
        for (name, key) in fields {
            if names
                .name(*name)
                .is_some_and(|(namespace, _)| &**namespace == INDEX_NAMESPACE)
            {
                self.add(*name, key, session);
                any = true;
            }
        }
        any
    }

    /// The sessions whose entry `name` holds `key`.
    pub(super) fn sessions(&self, name: NameId, key: &[u8]) -> impl Iterator<Item = &Key> {
        self.entries
            .get(&name)
            .and_then(|keys| keys.get(key))
            .into_iter()
            .flat_map(Ids::iter)
    }

    /// After a sweep: tables of keys using less than a quarter of their
    /// room give it back, as the session table does.
    pub(super) fn shrink(&mut self) {
        for keys in self.entries.values_mut() {
            let (len, capacity) = (keys.len(), keys.capacity());
            if capacity > SHRINK_ABOVE && len < capacity / 4 {
                keys.shrink_to(len * 2);
            }
        }
    }

    /// Whether the index holds no table at all.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many (entry, session) pairs the index holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries
            .values()
            .flat_map(|keys| keys.values())
            .map(|ids| ids.iter().count())
            .sum()
    }
}

impl Ids {
    fn insert(&mut self, session: Key) {
        match self {
            Self::One(one) if *one == session => {}
            Self::One(one) => {
                *self = Self::Many([*one, session].into_iter().collect());
            }
            Self::Many(many) => {
                many.insert(session);
            }
        }
    }

    /// Takes `session` out; whether none are left.
    fn remove(&mut self, session: &Key) -> bool {
        match self {
            Self::One(one) => one == session,
            Self::Many(many) => {
                many.remove(session);
                if many.len() == 1
                    && let Some(last) = many.iter().next()
                {
                    *self = Self::One(*last);
                    return false;
                }
                // A key that held many sessions and now holds few gives
                // the room back.
                let (len, capacity) = (many.len(), many.capacity());
                if capacity > SHRINK_ABOVE && len < capacity / 4 {
                    many.shrink_to(len * 2);
                }
                many.is_empty()
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Key> {
        let (one, many) = match self {
            Self::One(one) => (Some(one), None),
            Self::Many(many) => (None, Some(many)),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(n: u8) -> Key {
        [n; crate::id::ID_LEN]
    }

    #[test]
    fn removing_the_last_session_of_a_key_drops_the_key() {
        let mut names = Names::default();
        let user = names.intern(INDEX_NAMESPACE, "User");
        let mut index = Index::default();
        index.add(user, b"ada", session(1));
        index.add(user, b"ada", session(2));
        index.add(user, b"bob", session(3));
        assert_eq!(index.sessions(user, b"ada").count(), 2);
        assert_eq!(index.len(), 3);
        index.remove(user, b"ada", &session(1));
        index.remove(user, b"ada", &session(2));
        assert_eq!(index.sessions(user, b"ada").count(), 0);
        assert_eq!(index.entries[&user].len(), 1, "only bob's key is left");
        index.remove(user, b"bob", &session(3));
        assert!(index.entries.is_empty());
    }

    #[test]
    fn a_key_of_many_sessions_gives_its_room_back() {
        let mut names = Names::default();
        let user = names.intern(INDEX_NAMESPACE, "User");
        let mut index = Index::default();
        for n in 0..200 {
            index.add(user, b"ada", session(n));
        }
        index.add(user, b"ada", session(7));
        assert_eq!(index.len(), 200, "a session is held once");
        for n in 1..200 {
            index.remove(user, b"ada", &session(n));
        }
        assert!(matches!(
            index.entries[&user].get(&b"ada"[..]),
            Some(Ids::One(last)) if *last == session(0)
        ));
        index.remove(user, b"ada", &session(0));
        assert!(index.is_empty());
    }

    #[test]
    fn forget_and_remember_touch_only_entries() {
        let mut names = Names::default();
        let user = names.intern(INDEX_NAMESPACE, "User");
        let plain = names.intern("User", "name");
        let fields = [
            (plain, Bytes::from_static(b"ada")),
            (user, Bytes::from_static(b"ada")),
        ];
        let mut index = Index::default();
        assert!(index.remember(session(1), &fields, &names));
        assert!(!index.remember(session(2), &fields[..1], &names));
        assert_eq!(index.len(), 1);
        index.forget(&session(1), &fields);
        assert_eq!(index.len(), 0);
        assert!(index.entries.is_empty());
    }
}
