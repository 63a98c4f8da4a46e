//! What Redis saw: `INFO stats`, `commandstats` and `cpu` before and after a
//! measured window, on a connection of the bench's own; and, for the TTL
//! refresh check, every command of the benchmark database through `MONITOR`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The bench's own connection to the benchmark database.
pub struct RedisProbe {
    url: String,
    db: String,
    connection: MultiplexedConnection,
    /// Bytes of the `INFO` command itself, subtracted from each delta.
    info_bytes: u64,
}

/// Server-wide counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    net_input_bytes: u64,
    commands: u64,
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
    /// Commands executed, those run inside scripts included.
    pub commands: u64,
    /// Microseconds Redis spent executing the top-level commands
    /// (`EVALSHA`, `EVAL`, `GET`, `SET`, `HMGET`, `PTTL`, `DEL`; from
    /// `commandstats`, networking not included). `HMGET` is also counted
    /// when a script runs it; its time is then counted twice, which for
    /// these scripts is a fraction of a microsecond.
    pub command_usec: u64,
    /// CPU seconds the Redis process used (all its clients).
    pub cpu_seconds: f64,
    /// Commands that can write session data: `HSET`, `HDEL` (typed-sessions'
    /// scripts) and `SET` (tower-sessions).
    pub data_writes: u64,
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
        let db = client
            .get_connection_info()
            .redis_settings()
            .db()
            .to_string();
        let connection = client.get_multiplexed_async_connection().await?;
        Ok(Self {
            url: url.to_owned(),
            db,
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

    /// CPU seconds the Redis process has used so far.
    pub async fn cpu_seconds(&mut self) -> Result<f64, BoxError> {
        Ok(self.snapshot().await?.cpu_seconds)
    }

    /// Reads the counters.
    pub async fn snapshot(&mut self) -> Result<Snapshot, BoxError> {
        let text: String = info_command().query_async(&mut self.connection).await?;
        let mut snapshot = Snapshot::default();
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("total_net_input_bytes:") {
                snapshot.net_input_bytes = value.trim().parse()?;
            } else if let Some(value) = line.strip_prefix("total_commands_processed:") {
                snapshot.commands = value.trim().parse()?;
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
        const TOP_LEVEL: &[&str] = &["evalsha", "eval", "get", "set", "hmget", "pttl", "del"];
        Delta {
            net_input_bytes: after
                .net_input_bytes
                .saturating_sub(before.net_input_bytes)
                .saturating_sub(self.info_bytes),
            commands: after
                .commands
                .saturating_sub(before.commands)
                .saturating_sub(1),
            command_usec: sum(TOP_LEVEL, |(_, usec)| usec),
            cpu_seconds: (after.cpu_seconds - before.cpu_seconds).max(0.0),
            data_writes: calls(&["hset", "hdel", "set"]),
            expiry_sets: calls(&["pexpireat"]),
        }
    }

    /// Starts recording every command of the benchmark database.
    pub async fn monitor(&self) -> Result<Monitor, BoxError> {
        let client = redis::Client::open(self.url.as_str())?;
        let monitor = client.get_async_monitor().await?;
        let seen: Arc<parking_lot::Mutex<Vec<Seen>>> = Default::default();
        let record = seen.clone();
        let prefix = format!("[{} ", self.db);
        let task = tokio::spawn(async move {
            let mut lines = monitor.into_on_message::<String>();
            while let Some(line) = lines.next().await {
                if let Some(seen) = Seen::parse(&line, &prefix) {
                    record.lock().push(seen);
                }
            }
        });
        Ok(Monitor { seen, task })
    }
}

/// One command `MONITOR` reported, classified.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// Server time, Unix seconds.
    at: f64,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `HSET`/`HDEL` naming a session field (`namespace.field`; the store's
    /// own fields have no dot), or `SET` (tower-sessions' whole record).
    FieldWrite,
    /// `PEXPIREAT`, `PEXPIRE`, `EXPIRE`, `EXPIREAT`.
    Expire,
    Other,
}

impl Seen {
    /// Parses `1700000000.123456 [9 127.0.0.1:5000] "HSET" "key" "a.b" "v"`
    /// (or `[9 lua]` for a command a script ran).
    fn parse(line: &str, db_prefix: &str) -> Option<Self> {
        let (at, rest) = line.split_once(' ')?;
        let rest = rest.strip_prefix(db_prefix)?;
        let (_, args) = rest.split_once("] ")?;
        let args = quoted(args);
        let command = args.first()?.to_ascii_uppercase();
        let kind = match command.as_str() {
            "HSET" => {
                // key, then field/value pairs
                let writes_field = args
                    .iter()
                    .skip(2)
                    .step_by(2)
                    .any(|field| field.contains('.'));
                if writes_field {
                    Kind::FieldWrite
                } else {
                    Kind::Other
                }
            }
            "HDEL" if args.iter().skip(2).any(|f| f.contains('.')) => Kind::FieldWrite,
            "SET" => Kind::FieldWrite,
            "PEXPIREAT" | "PEXPIRE" | "EXPIRE" | "EXPIREAT" => Kind::Expire,
            _ => Kind::Other,
        };
        Some(Self {
            at: at.parse().ok()?,
            kind,
        })
    }
}

/// The quoted tokens of a `MONITOR` line, unescaped only as far as the
/// classification needs (escapes are kept as written).
fn quoted(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut token = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        token.push('\\');
                        token.push(next);
                    }
                }
                '"' => break,
                c => token.push(c),
            }
        }
        tokens.push(token);
    }
    tokens
}

/// A running `MONITOR` of the benchmark database.
pub struct Monitor {
    seen: Arc<parking_lot::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What `MONITOR` saw in a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Writes {
    /// Session field writes (or whole-record writes).
    pub field_writes: u64,
    /// Expiry settings.
    pub expires: u64,
}

impl Monitor {
    /// Stops recording and counts what happened between `from` and `to`.
    pub async fn finish(self, from: SystemTime, to: SystemTime) -> Writes {
        // MONITOR lags a little behind the commands; let it catch up.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        self.task.abort();
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let (from, to) = (secs(from), secs(to));
        let mut writes = Writes::default();
        for seen in self.seen.lock().iter() {
            if seen.at < from || seen.at > to {
                continue;
            }
            match seen.kind {
                Kind::FieldWrite => writes.field_writes += 1,
                Kind::Expire => writes.expires += 1,
                Kind::Other => {}
            }
        }
        writes
    }
}
