//! Forward records, item TTLs, error mapping, backoff and URL parsing.

use super::*;

/// The namespace of the two fields of a forward record.
pub(super) const FORWARD_NAMESPACE: &[u8] = b"__forward";

/// The item `move_to` leaves at the old key: a record that expired at the
/// epoch (so nothing reads it as a session) with the new id in
/// `__forward.to` and the end of the window, Unix milliseconds as a
/// big-endian u64, in `__forward.until`. Its memcached TTL ends with the
/// window.
/// `Unsupported` for writes that set or remove an index entry: this store
/// keeps no index (see *Session index* on [`MemcacheStore`]).
pub(super) fn refuse_index_entries(writes: &[FieldWrite<'_>]) -> Result<(), StoreError> {
    if writes
        .iter()
        .any(|write| IndexKey::of_write(write).is_some())
    {
        return Err(StoreError::Unsupported(NO_INDEX));
    }
    Ok(())
}

pub(super) fn forward_record(to: &SessionId, until: SystemTime) -> Vec<u8> {
    let until = unix_millis(until).to_be_bytes();
    let fields = [
        record::Field {
            namespace: FORWARD_NAMESPACE,
            name: b"to",
            value: to.as_str().as_bytes(),
        },
        record::Field {
            namespace: FORWARD_NAMESPACE,
            name: b"until",
            value: &until,
        },
    ];
    // Two short fields are far below any item size limit.
    record::encode(0, 0, &fields, usize::MAX).unwrap_or_default()
}

/// Memcached's TTL for a session expiring at `expires_at`: one second past
/// it, in whole seconds, relative up to 30 days and an absolute Unix time
/// beyond (where Memcached reads any TTL as absolute).
pub(super) fn item_ttl(expires_at: SystemTime, now: SystemTime) -> Ttl {
    let remaining = expires_at.duration_since(now).unwrap_or(Duration::ZERO);
    // Rounded up, plus one: memcached's clock ticks once a second, so the
    // item outlives the record's own expiry rather than the other way round.
    let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0) + 1;
    match u32::try_from(secs) {
        Ok(secs) if u64::from(secs) <= MAX_RELATIVE_TTL => Ttl::secs(secs),
        _ => {
            let at = unix_millis(expires_at).div_ceil(1000).saturating_add(1);
            let at = at.min(u64::from(u32::MAX));
            Ttl::at(SystemTime::UNIX_EPOCH + Duration::from_secs(at))
        }
    }
}

/// A client error as [`StoreError::Backend`], with the key left out: the
/// client's errors name the key, and a key holds a full session id, which
/// must never reach a log.
pub(super) fn backend(error: memcache::exp::Error) -> StoreError {
    StoreError::backend(ClientError(describe(&error)))
}

pub(super) fn describe(error: &memcache::exp::Error) -> String {
    use memcache::exp::Error;
    match error {
        Error::Timeout { .. } => "memcached did not answer within the client's deadline".to_owned(),
        Error::Ambiguous { source, .. } => format!(
            "the request was sent but its outcome is unknown: {}",
            describe(source)
        ),
        other => other.to_string(),
    }
}

/// An error of the memcached client, described without the key.
#[derive(Debug)]
pub(super) struct ClientError(String);

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "memcached: {}", self.0)
    }
}

impl std::error::Error for ClientError {}

/// memcached's message when it refused an item over its size limit. The
/// client reports it as a server error, wrapped as ambiguous because it
/// drops the connection after an error reply.
pub(super) fn refused_as_too_large(error: &memcache::exp::Error) -> Option<&str> {
    match error {
        memcache::exp::Error::Server(message) if message.contains("too large") => Some(message),
        memcache::exp::Error::Ambiguous { source, .. } => refused_as_too_large(source),
        _ => None,
    }
}

/// Sleeps a random time (full jitter) up to a cap that starts at the time
/// the failed attempt took (at least 0.5 ms) and doubles with each attempt,
/// up to 100 ms: colliding writers spread out over more than their
/// read-to-write window, which grows when the machine or the network is
/// slow. The caps of all [`MAX_ATTEMPTS`] add up to about 3 s at most.
pub(super) async fn backoff(attempt: u32, started: Instant) {
    let unit = started.elapsed().max(Duration::from_micros(500));
    let cap = unit
        .saturating_mul(1 << attempt.min(16))
        .min(Duration::from_millis(100));
    let cap_micros = u64::try_from(cap.as_micros()).unwrap_or(100_000);
    let random = RandomState::new().build_hasher().finish();
    tokio::time::sleep(Duration::from_micros(random % (cap_micros + 1))).await;
}

/// Splits a `memcache://` URL into `host:port` server addresses.
pub(super) fn parse_url(url: &str) -> Result<Vec<String>, StoreError> {
    let invalid = |why: &str| {
        StoreError::backend(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("invalid memcache URL {url:?}: {why}"),
        ))
    };
    let Some(rest) = url.strip_prefix("memcache://") else {
        return Err(invalid("expected memcache://host:port"));
    };
    let mut servers = Vec::new();
    for part in rest.split(',') {
        let part = part.trim();
        let part = part.strip_prefix("memcache://").unwrap_or(part);
        let part = part.strip_suffix('/').unwrap_or(part);
        if part.is_empty() {
            return Err(invalid("empty server address"));
        }
        if part.contains(['/', '?', '#', '@']) {
            return Err(invalid(
                "only host:port is supported (no path, query, or user)",
            ));
        }
        let has_port = match part.rsplit_once(':') {
            Some((host, port)) => {
                !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.is_empty()
            }
            None => false,
        };
        if has_port {
            servers.push(part.to_owned());
        } else if part.ends_with(':') {
            return Err(invalid("empty port"));
        } else {
            servers.push(format!("{part}:11211"));
        }
    }
    Ok(servers)
}
