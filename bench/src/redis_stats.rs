//! What Redis saw: `INFO stats`, `commandstats` and `cpu` before and after a
//! measured window, on a connection of the bench's own.

use std::collections::HashMap;

use redis::aio::MultiplexedConnection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The bench's own connection to the benchmark database.
pub struct RedisProbe {
    connection: MultiplexedConnection,
    /// Bytes of the `INFO` command itself, subtracted from each delta.
    info_bytes: u64,
}

/// Server-wide counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    net_input_bytes: u64,
    /// Calls and microseconds per command, script-internal calls included.
    calls: HashMap<String, (u64, u64)>,
    /// CPU seconds of the Redis process, user plus system.
    cpu_seconds: f64,
}

/// What Redis received between two snapshots, the probe's own `INFO`
/// removed.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    /// Bytes received from clients.
    pub net_input_bytes: u64,
    /// Top-level commands that carry a session operation (`EVALSHA`,
    /// `EVAL`, `GET`, `SET`, `DEL`, `SCRIPT LOAD`): round trips.
    pub round_trips: u64,
    /// Commands that write session data: `HSET`, `HDEL` (typed-sessions'
    /// scripts) and `SET` (tower-sessions).
    pub data_writes: u64,
    /// Microseconds Redis spent executing the top-level commands counted in
    /// `round_trips` (from `commandstats`; networking not included).
    pub command_usec: u64,
    /// CPU seconds the Redis process used (all its clients).
    pub cpu_seconds: f64,
    /// `PEXPIREAT` calls (typed-sessions sets the expiry with every write,
    /// and alone in a TTL refresh). In the `read` scenario, which writes no
    /// data, each one is a TTL refresh.
    pub expiry_sets: u64,
}

fn info_command() -> redis::Cmd {
    let mut command = redis::cmd("INFO");
    command.arg("stats").arg("commandstats").arg("cpu");
    command
}

impl RedisProbe {
    /// Connects to `url` (which names the benchmark database).
    pub async fn connect(url: &str) -> Result<Self, BoxError> {
        let client = redis::Client::open(url)?;
        let connection = client.get_multiplexed_async_connection().await?;
        Ok(Self {
            connection,
            info_bytes: info_command().get_packed_command().len() as u64,
        })
    }

    /// Empties the benchmark database (only that one).
    pub async fn flush_db(&mut self) -> Result<(), BoxError> {
        redis::cmd("FLUSHDB")
            .query_async::<()>(&mut self.connection)
            .await?;
        Ok(())
    }

    /// The server's version.
    pub async fn version(&mut self) -> Result<String, BoxError> {
        let text: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.connection)
            .await?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_owned())
    }

    /// Reads the counters.
    pub async fn snapshot(&mut self) -> Result<Snapshot, BoxError> {
        let text: String = info_command().query_async(&mut self.connection).await?;
        let mut snapshot = Snapshot::default();
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("total_net_input_bytes:") {
                snapshot.net_input_bytes = value.trim().parse()?;
            } else if let Some(value) = line
                .strip_prefix("used_cpu_user:")
                .or_else(|| line.strip_prefix("used_cpu_sys:"))
            {
                snapshot.cpu_seconds += value.trim().parse::<f64>()?;
            } else if let Some(rest) = line.strip_prefix("cmdstat_") {
                let Some((name, stats)) = rest.split_once(':') else {
                    continue;
                };
                let stat = |key: &str| {
                    stats
                        .split(',')
                        .find_map(|part| part.strip_prefix(key))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                };
                snapshot
                    .calls
                    .insert(name.to_owned(), (stat("calls="), stat("usec=")));
            }
        }
        Ok(snapshot)
    }

    /// What happened between `before` and `after` (both taken by
    /// [`snapshot`](Self::snapshot)), without the second `INFO` itself.
    pub fn delta(&self, before: &Snapshot, after: &Snapshot) -> Delta {
        let sum = |names: &[&str], pick: fn((u64, u64)) -> u64| -> u64 {
            names
                .iter()
                .map(|name| {
                    let a = after.calls.get(*name).copied().map_or(0, pick);
                    let b = before.calls.get(*name).copied().map_or(0, pick);
                    a.saturating_sub(b)
                })
                .sum()
        };
        let calls = |names: &[&str]| sum(names, |(calls, _)| calls);
        const TOP_LEVEL: &[&str] = &["evalsha", "eval", "get", "set", "del", "script|load"];
        Delta {
            net_input_bytes: after
                .net_input_bytes
                .saturating_sub(before.net_input_bytes)
                .saturating_sub(self.info_bytes),
            round_trips: calls(TOP_LEVEL),
            command_usec: sum(TOP_LEVEL, |(_, usec)| usec),
            cpu_seconds: (after.cpu_seconds - before.cpu_seconds).max(0.0),
            data_writes: calls(&["hset", "hdel", "set"]),
            expiry_sets: calls(&["pexpireat"]),
        }
    }
}
