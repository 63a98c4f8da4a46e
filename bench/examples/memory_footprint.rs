//! The memory store's footprint: bytes per small session, and whether
//! expired sessions are swept and their memory reused with no writes.
//!
//! `cargo run --release -p typed-sessions-bench --example memory_footprint`
//!
//! Inserts 500,000 sessions of one `u64` field (8 bytes) with a 5 s expiry
//! through the `SessionStore` API and loads each once, then makes no writes:
//! it idles, reads, and idles again until the store holds nothing or 20 s
//! have passed. Finally it inserts and loads 500,000 sessions again to see
//! whether the freed memory is reused. Memory is the process's resident set from `/proc/self/statm`, so
//! the figures hold for any allocator; they include what the allocator
//! keeps but does not use.

use std::time::{Duration, Instant, SystemTime};

use typed_sessions::{FieldKey, FieldWrite, MemoryStore, SessionId, SessionStore};

const SESSIONS: usize = 500_000;
const EXPIRY: Duration = Duration::from_secs(5);
const KEY: FieldKey<'static> = FieldKey {
    namespace: "Counter",
    field: "visits",
};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    // One thread, so every allocation comes from one allocator arena and
    // the figures do not depend on which worker ran which insert.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Error> {
    let page = page_size();
    let store = MemoryStore::new();
    // The ids are made before the baseline so they do not count as the
    // store's memory, and sit below it in the heap rather than among it.
    let ids = (0..SESSIONS)
        .map(|_| SessionId::generate())
        .collect::<Result<Vec<_>, _>>()?;
    // Printing once first allocates stdout's buffer here, not at the top of
    // the heap after the sessions, where it would keep freed memory from
    // being returned.
    println!("{SESSIONS} sessions of one u64 field, {EXPIRY:?} expiry");
    let base = rss(page)?;

    let start = Instant::now();
    let mut last_expiry = SystemTime::now();
    for (i, id) in ids.iter().enumerate() {
        let value = (i as u64).to_le_bytes();
        let write = FieldWrite {
            key: KEY,
            value: Some(&value),
        };
        let now = SystemTime::now();
        last_expiry = now + EXPIRY;
        store.create(id, &[write], now, last_expiry).await?;
    }
    let filled = rss(page)?;
    println!(
        "inserted {SESSIONS} in {:.2?}: RSS {} -> {} ({:.0} bytes per session), {} held",
        start.elapsed(),
        mib(base),
        mib(filled),
        per_session(filled - base),
        store.len()
    );

    // Each session loaded once, as a request would.
    let mut live = 0;
    for id in &ids {
        live += usize::from(store.load(id, KEY.namespace, &[KEY.field]).await?.is_some());
    }
    let peak = rss(page)?;
    println!(
        "loaded each once ({live} live): RSS {} ({:.0} bytes per session)",
        mib(peak),
        per_session(peak - base)
    );

    // No call at all until every session has expired, then two more
    // seconds: a shard is swept at most once a second, and the sweeper
    // thread wakes once a second.
    let idle = (last_expiry + Duration::from_secs(2))
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    tokio::time::sleep(idle).await;
    println!(
        "idle until expired + 2 s: {} held, RSS {}",
        store.len(),
        mib(rss(page)?)
    );

    // Reads only: 1,000 loads spread over 2 s.
    for id in ids.iter().take(1_000) {
        if store.load(id, KEY.namespace, &[KEY.field]).await?.is_some() {
            return Err("an expired session was returned".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!(
        "after 1,000 reads: {} held, RSS {}",
        store.len(),
        mib(rss(page)?)
    );

    // Idle until nothing is held, for at most 20 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !store.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let swept = rss(page)?;
    println!(
        "idle up to 20 s more: {} held, RSS {} ({:.0}% of what the sessions added)",
        store.len(),
        mib(swept),
        100.0 * (swept - base) as f64 / (peak - base) as f64
    );

    // The same again, with the same ids: is the freed memory reused?
    for (i, id) in ids.iter().enumerate() {
        let value = (i as u64).to_le_bytes();
        let write = FieldWrite {
            key: KEY,
            value: Some(&value),
        };
        let now = SystemTime::now();
        store.create(id, &[write], now, now + EXPIRY).await?;
        store.load(id, KEY.namespace, &[KEY.field]).await?;
    }
    println!(
        "inserted and loaded {SESSIONS} again: RSS {} (peak before {}), {} held",
        mib(rss(page)?),
        mib(peak),
        store.len()
    );
    Ok(())
}

fn per_session(bytes: i64) -> f64 {
    bytes as f64 / SESSIONS as f64
}

/// Resident memory in bytes: the second field of `/proc/self/statm`, in pages.
fn rss(page: u64) -> Result<i64, Error> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("/proc/self/statm has no second field")?
        .parse()?;
    Ok((pages * page) as i64)
}

/// The page size from the auxiliary vector (`AT_PAGESZ`), so no libc call
/// is needed; 4 KiB if it cannot be read.
fn page_size() -> u64 {
    const AT_PAGESZ: u64 = 6;
    let Ok(auxv) = std::fs::read("/proc/self/auxv") else {
        return 4096;
    };
    let words: Vec<u64> = auxv
        .chunks_exact(8)
        .filter_map(|w| w.try_into().ok().map(u64::from_ne_bytes))
        .collect();
    words
        .chunks_exact(2)
        .find(|pair| pair[0] == AT_PAGESZ)
        .map_or(4096, |pair| pair[1])
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
