//! Session ids: 192 random bits from the operating system, as 32 characters of
//! unpadded base64url.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Raw length of an id in bytes (192 bits).
const ID_BYTES: usize = 24;
/// Length of an id's text form.
pub(crate) const ID_LEN: usize = 32;

/// A well-formed session id.
///
/// Only the runtime creates ids (from the operating system's CSPRNG) and only
/// well-formed text is ever parsed into one, so a store never sees a value a
/// client invented. `Debug` prints a short keyed hash, never the id itself, so
/// logging an id cannot leak it; stores use [`SessionId::as_str`] for keys.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

/// The error of [`SessionId::generate`]: the operating system gave no randomness.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomnessError(getrandom::Error);

impl SessionId {
    /// A fresh id: 192 bits from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes).map_err(RandomnessError)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Parses the text form of an id: exactly 32 characters of unpadded
    /// base64url that decode to 24 bytes. Anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != ID_LEN
            || !text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        // 32 characters of base64 carry exactly 192 bits, with no padding
        // and no leftover bits, so any string of the alphabet and length is
        // the encoding of some 24 bytes: there is nothing left to decode.
        Some(Self(text.to_owned()))
    }

    /// The id's text form, for use as (part of) a store key.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short keyed hash of the id, stable for the life of the process, for
    /// logs: it lets events of one session be correlated without revealing
    /// the id.
    pub fn log_tag(&self) -> LogTag {
        static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
        let mut hasher = KEY.get_or_init(Default::default).build_hasher();
        hasher.write(self.0.as_bytes());
        LogTag(hasher.finish() as u32)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.log_tag())
    }
}

/// The loggable stand-in of a [`SessionId`]; see [`SessionId::log_tag`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LogTag(u32);

impl fmt::Display for LogTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for LogTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_32_chars_and_parse_back() {
        let id = SessionId::generate().unwrap();
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(SessionId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(SessionId::generate().unwrap(), id);
    }

    #[test]
    fn malformed_text_is_rejected() {
        for bad in [
            "",
            "short",
            &"a".repeat(31),
            &"a".repeat(33),
            &"a".repeat(5000),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\0",
            "ÄAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_does_not_reveal_the_id() {
        let id = SessionId::generate().unwrap();
        let shown = format!("{id:?}");
        assert!(!shown.contains(id.as_str()));
        assert_eq!(shown, format!("SessionId({})", id.log_tag()));
    }
}
