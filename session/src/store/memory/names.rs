//! Field names interned once per shard, so a session stores a small number
//! per field instead of its own copies of the namespace and field names.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

/// A field's name (namespace and field) within one shard's [`Names`].
pub(super) type NameId = usize;

/// The names of every field a shard has stored, each given a [`NameId`].
///
/// Names are never forgotten: they come from the program's session types,
/// not from requests, so there are only as many as the program (and its
/// earlier versions) ever declared.
#[derive(Default)]
pub(super) struct Names {
    /// namespace -> field -> id, looked up with borrowed `&str`s.
    ids: HashMap<Arc<str>, HashMap<Arc<str>, NameId, RandomState>, RandomState>,
    /// id -> (namespace, field), for carrying a session to another shard.
    names: Vec<(Arc<str>, Arc<str>)>,
}

impl Names {
    /// The ids of the fields of `namespace` this shard has seen.
    pub(super) fn namespace(
        &self,
        namespace: &str,
    ) -> Option<&HashMap<Arc<str>, NameId, RandomState>> {
        self.ids.get(namespace)
    }

    /// The id of a name, if it has one.
    pub(super) fn get(&self, namespace: &str, field: &str) -> Option<NameId> {
        self.ids.get(namespace)?.get(field).copied()
    }

    /// The id of a name, giving it one if it has none yet.
    pub(super) fn intern(&mut self, namespace: &str, field: &str) -> NameId {
        if let Some(id) = self.get(namespace, field) {
            return id;
        }
        let namespace: Arc<str> = match self.ids.get_key_value(namespace) {
            Some((shared, _)) => shared.clone(),
            None => namespace.into(),
        };
        let field: Arc<str> = field.into();
        let id = self.names.len();
        self.names.push((namespace.clone(), field.clone()));
        self.ids.entry(namespace).or_default().insert(field, id);
        id
    }

    /// The namespace and field an id stands for.
    pub(super) fn name(&self, id: NameId) -> Option<&(Arc<str>, Arc<str>)> {
        self.names.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_keeps_its_id_and_namespaces_are_shared() {
        let mut names = Names::default();
        let a = names.intern("ns", "a");
        let b = names.intern("ns", "b");
        let other = names.intern("other", "a");
        assert_ne!(a, b);
        assert_ne!(a, other);
        assert_eq!(names.intern("ns", "a"), a);
        assert_eq!(names.get("ns", "b"), Some(b));
        assert_eq!(names.get("ns", "missing"), None);
        assert_eq!(names.get("missing", "a"), None);
        let Some((ns_a, _)) = names.name(a) else {
            panic!("no name for {a}")
        };
        let Some((ns_b, field_b)) = names.name(b) else {
            panic!("no name for {b}")
        };
        assert!(Arc::ptr_eq(ns_a, ns_b), "one copy of the namespace");
        assert_eq!((&**ns_b, &**field_b), ("ns", "b"));
    }
}
