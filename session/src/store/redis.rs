//! redis store (being written).
