//! How [`MongoStore`](super::MongoStore) reports errors: the names it
//! refuses, the server's error codes it reacts to, and driver errors as
//! [`StoreError`].

use mongodb::error::{ErrorKind, WriteFailure};

use super::MAX_DOCUMENT_SIZE;
use crate::store::StoreError;

pub(super) const CODE_PATH_NOT_VIABLE: i32 = 28;
pub(super) const CODE_COMMAND_NOT_FOUND: i32 = 59;
pub(super) const CODE_DUPLICATE_KEY: i32 = 11000;
/// BSONObjectTooLarge, and the "resulting document after update is larger"
/// codes of older servers.
const CODES_TOO_LARGE: [i32; 3] = [10334, 17419, 17420];

/// A namespace or field name that [`MongoStore`](super::MongoStore) refuses because it cannot be
/// part of a MongoDB field path: empty, containing `.` or NUL, or starting
/// with `$`. Reported inside [`StoreError::Backend`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "MongoStore cannot store the {kind} name {name:?}: names must be non-empty, \
     must not contain '.' or NUL and must not start with '$'"
)]
pub struct InvalidName {
    kind: &'static str,
    name: String,
}

impl InvalidName {
    /// What the refused name names: `"namespace"` or `"field"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The refused name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

pub(super) fn check_name(kind: &'static str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.starts_with('$') || name.contains(['.', '\0']) {
        return Err(StoreError::backend(InvalidName {
            kind,
            name: name.to_owned(),
        }));
    }
    Ok(())
}

pub(super) fn too_large(size: usize) -> StoreError {
    StoreError::TooLarge(format!(
        "a MongoDB document holds at most {MAX_DOCUMENT_SIZE} bytes; this write carries {size}"
    ))
}

pub(super) fn error_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Command(e) => Some(e.code),
        _ => None,
    }
}

pub(super) fn backend(error: mongodb::error::Error) -> StoreError {
    match error_code(&error) {
        Some(code) if CODES_TOO_LARGE.contains(&code) => StoreError::TooLarge(error.to_string()),
        _ => StoreError::backend(error),
    }
}
