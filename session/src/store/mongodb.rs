//! mongodb store (being written).
