//! memcache store (being written).
