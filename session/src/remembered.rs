//! The bytes of [`EXPIRY_FIELD`](crate::store::EXPIRY_FIELD): the expiry a
//! session chose with `TypedSession::set_expiry`, kept with the session so
//! every later request follows it.
//!
//! Plain text, so a person reading the store sees what it says:
//! `session-end`, `inactivity:<milliseconds>` or `at:<Unix milliseconds>`.

use std::time::Duration;

use crate::config::{Expiry, MAX_EXPIRY};
use crate::store::{from_unix_millis, unix_millis};

pub(crate) fn encode(expiry: &Expiry) -> Vec<u8> {
    match *expiry {
        Expiry::OnSessionEnd => b"session-end".to_vec(),
        Expiry::OnInactivity(limit) => {
            let millis = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
            format!("inactivity:{millis}").into_bytes()
        }
        Expiry::AtDateTime(at) => format!("at:{}", unix_millis(at)).into_bytes(),
    }
}

/// `None` for anything [`encode`] does not produce, or an inactivity limit
/// the layer would refuse (zero, or over [`MAX_EXPIRY`]).
pub(crate) fn decode(bytes: &[u8]) -> Option<Expiry> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text == "session-end" {
        return Some(Expiry::OnSessionEnd);
    }
    if let Some(millis) = text.strip_prefix("inactivity:") {
        let limit = Duration::from_millis(millis.parse().ok()?);
        return (!limit.is_zero() && limit <= MAX_EXPIRY).then_some(Expiry::OnInactivity(limit));
    }
    let millis = text.strip_prefix("at:")?;
    Some(Expiry::AtDateTime(from_unix_millis(millis.parse().ok()?)))
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let at = from_unix_millis(unix_millis(SystemTime::now()));
        for expiry in [
            Expiry::OnSessionEnd,
            Expiry::OnInactivity(Duration::from_millis(1500)),
            Expiry::OnInactivity(MAX_EXPIRY),
            Expiry::AtDateTime(at),
        ] {
            assert_eq!(decode(&encode(&expiry)), Some(expiry));
        }
        for garbage in [
            &b""[..],
            b"inactivity:0",
            b"inactivity:-5",
            b"inactivity:99999999999999999",
            b"at:",
            b"at:x",
            b"session-end ",
            b"\xff\xfe",
        ] {
            assert_eq!(decode(garbage), None, "{garbage:?}");
        }
    }
}
