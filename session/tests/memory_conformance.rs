//! MemoryStore against the store conformance suite.
#![cfg(feature = "conformance")]
#![allow(missing_docs)]

typed_sessions::store_conformance_tests!(async { typed_sessions::MemoryStore::default() });
typed_sessions::store_index_conformance_tests!(async { typed_sessions::MemoryStore::default() });
