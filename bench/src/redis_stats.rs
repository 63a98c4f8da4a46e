//! What Redis saw: `INFO stats` and `INFO commandstats` before and after a
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
    /// Calls per command, script-internal calls included.
    calls: HashMap<String, u64>,
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
    /// `PEXPIREAT` calls (typed-sessions sets the expiry with every write,
    /// and alone in a TTL refresh). In the `read` scenario, which writes no
    /// data, each one is a TTL refresh.
    pub expiry_sets: u64,
}

fn info_command() -> redis::Cmd {
    let mut command = redis::cmd("INFO");
    command.arg("stats").arg("commandstats");
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
            } else if let Some(rest) = line.strip_prefix("cmdstat_") {
                let Some((name, stats)) = rest.split_once(':') else {
                    continue;
                };
                let calls = stats
                    .split(',')
                    .find_map(|part| part.strip_prefix("calls="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                snapshot.calls.insert(name.to_owned(), calls);
            }
        }
        Ok(snapshot)
    }

    /// What happened between `before` and `after` (both taken by
    /// [`snapshot`](Self::snapshot)), without the second `INFO` itself.
    pub fn delta(&self, before: &Snapshot, after: &Snapshot) -> Delta {
        let calls = |names: &[&str]| -> u64 {
            names
                .iter()
                .map(|name| {
                    let a = after.calls.get(*name).copied().unwrap_or(0);
                    let b = before.calls.get(*name).copied().unwrap_or(0);
                    a.saturating_sub(b)
                })
                .sum()
        };
        Delta {
            net_input_bytes: after
                .net_input_bytes
                .saturating_sub(before.net_input_bytes)
                .saturating_sub(self.info_bytes),
            round_trips: calls(&["evalsha", "eval", "get", "set", "del", "script|load"]),
            data_writes: calls(&["hset", "hdel", "set"]),
            expiry_sets: calls(&["pexpireat"]),
        }
    }
}
