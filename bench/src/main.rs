//! The typed-sessions benchmark: a bare axum handler, typed-sessions and
//! tower-sessions, on the memory store and on Redis, in one run, printing one
//! markdown table.
//!
//! ```sh
//! cargo run --release -p typed-sessions-bench            # the full run (~12 min on 2 cores)
//! cargo run --release -p typed-sessions-bench -- --smoke # a few seconds, checks every path
//! cargo run --release -p typed-sessions-bench -- --help
//! ```
//!
//! Redis: `REDIS_URL` (default `redis://127.0.0.1:6379`); the bench uses
//! database 9 of that server (`--redis-db`) and empties that database (only
//! that one) before each Redis cell and at the end.

mod big;
mod client;
mod redis_stats;
mod report;
mod server;

use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Barrier;

use crate::client::{MEASURE, STOP, WARMUP, secs, until};
use crate::redis_stats::{Delta, RedisProbe, Writes};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerKind {
    /// The same routes without any session: the limit.
    Bare,
    /// typed-sessions.
    Typed,
    /// tower-sessions 0.14.
    Tower,
}

/// Which store the session crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreKind {
    /// In-process memory.
    Memory,
    /// Redis.
    Redis,
    /// Redis with typed-sessions' local near-cache
    /// (`RedisStore::with_local_cache`); typed-sessions only.
    RedisCache,
}

/// What each request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Read a small counter and write it back incremented.
    Incr,
    /// Read the counter of an existing session, write nothing.
    Read,
    /// Like `incr`, in a session that also holds a 16 KB `String` that the
    /// route reads (its length) and never changes.
    BigIncr,
    /// Like `incr`, in a session that also holds a cart of 500 structs
    /// (`Vec<Item>`, ~16 KB) that the route never touches.
    CartIncr,
    /// Like `incr`, in a session that also holds a 16 KB `Vec<u8>` that the
    /// route never touches.
    BytesIncr,
    /// No cookie: every request creates a session.
    New,
    /// `incr` through the dict-like `Session` (a key `visits`) instead of a
    /// typed namespace; the other servers answer it as `incr`.
    DictIncr,
}

impl ServerKind {
    const ALL: [Self; 3] = [Self::Bare, Self::Typed, Self::Tower];

    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Typed => "typed-sessions",
            Self::Tower => "tower-sessions",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == text || s.name().starts_with(&format!("{text}-")))
    }
}

impl StoreKind {
    const ALL: [Self; 3] = [Self::Memory, Self::Redis, Self::RedisCache];

    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::RedisCache => "redis-cache",
        }
    }

    fn is_redis(self) -> bool {
        matches!(self, Self::Redis | Self::RedisCache)
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == text)
    }
}

impl Scenario {
    const ALL: [Self; 7] = [
        Self::Incr,
        Self::Read,
        Self::BigIncr,
        Self::CartIncr,
        Self::BytesIncr,
        Self::New,
        Self::DictIncr,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Incr => "incr",
            Self::Read => "read",
            Self::BigIncr => "big-incr",
            Self::CartIncr => "cart-incr",
            Self::BytesIncr => "bytes-incr",
            Self::New => "new",
            Self::DictIncr => "dict-incr",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == text)
    }

    /// The endpoint the measured requests hit.
    fn path(self) -> &'static str {
        match self {
            Self::Incr | Self::New => "/incr",
            Self::Read => "/read",
            Self::BigIncr => "/big-incr",
            Self::CartIncr => "/cart-incr",
            Self::BytesIncr => "/bytes-incr",
            Self::DictIncr => "/dict-incr",
        }
    }

    /// The endpoint that makes a worker's session before the measured
    /// requests; `None` when each request makes its own.
    fn init_path(self) -> Option<&'static str> {
        match self {
            Self::Incr | Self::Read => Some("/incr"),
            Self::BigIncr => Some("/big-init"),
            Self::CartIncr => Some("/cart-init"),
            Self::BytesIncr => Some("/bytes-init"),
            Self::DictIncr => Some("/dict-incr"),
            Self::New => None,
        }
    }

    /// The endpoint that answers `ok` when the big field the measured route
    /// never touches is still intact, asked once per worker after the
    /// window.
    fn check_path(self) -> Option<&'static str> {
        match self {
            Self::CartIncr => Some("/cart-check"),
            Self::BytesIncr => Some("/bytes-check"),
            Self::Incr | Self::Read | Self::BigIncr | Self::New | Self::DictIncr => None,
        }
    }

    /// What the session holds beside the counter, for the big-field table;
    /// `None` for the scenarios that are not in it.
    fn big_field(self) -> Option<&'static str> {
        match self {
            Self::Incr => Some("nothing"),
            Self::BigIncr => Some("a 16 KB `String`, whose length the route reads"),
            Self::CartIncr => Some("a cart of 500 structs `Vec<Item>` (~16 KB), untouched"),
            Self::BytesIncr => Some("a 16 KB `Vec<u8>`, untouched"),
            Self::Read | Self::New | Self::DictIncr => None,
        }
    }

    /// Whether each measured request adds one to the session's counter.
    fn increments(self) -> bool {
        !matches!(self, Self::Read | Self::New)
    }

    /// Every endpoint of the scenarios, each once (the bare server answers
    /// them all alike).
    fn all_paths() -> std::collections::BTreeSet<&'static str> {
        Self::ALL
            .into_iter()
            .flat_map(|s| [Some(s.path()), s.init_path(), s.check_path()])
            .flatten()
            .collect()
    }
}

/// One server set-up: a server and, for the session crates, a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Setup {
    server: ServerKind,
    store: Option<StoreKind>,
}

impl Setup {
    fn label(self) -> String {
        match self.store {
            None => self.server.name().to_owned(),
            Some(store) => format!("{} / {}", self.server.name(), store.name()),
        }
    }
}

/// The command line.
#[derive(Debug, Clone)]
pub struct Options {
    seconds: f64,
    warmup: f64,
    runs: usize,
    concurrency: Vec<usize>,
    servers: Vec<ServerKind>,
    stores: Vec<StoreKind>,
    scenarios: Vec<Scenario>,
    redis_url: String,
    client_threads: usize,
    server_threads: usize,
    out: Option<String>,
    smoke: bool,
}

const USAGE: &str = "\
typed-sessions-bench: bare axum vs typed-sessions vs tower-sessions, memory and Redis

USAGE: cargo run --release -p typed-sessions-bench -- [OPTIONS]

  --seconds S        measured seconds per cell and run            [2]
  --warmup S         warm-up seconds before each measurement      [0.5]
  --runs N           runs per cell (the table shows medians)      [3]
  --concurrency L    workers per cell, comma-separated            [1,32,128]
  --servers L        bare,typed,tower                             [all]
  --stores L         memory,redis,redis-cache                     [all]
  --scenarios L      incr,read,big-incr,cart-incr,bytes-incr,new,dict-incr [all]
  --redis-db N       the Redis database used (and emptied)        [9]
  --client-threads N threads of the load generator                [cores]
  --server-threads N worker threads of each server                [cores]
  --out FILE         also write the report to FILE
  --smoke            one short cell per server/store/scenario (8 workers, 0.1 s);
                     fails on any error
  -h, --help         this text

Redis: REDIS_URL [redis://127.0.0.1:6379]; its database part is replaced by --redis-db.
";

fn parse_list<T>(text: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    text.split(',')
        .map(|part| parse(part.trim()).ok_or_else(|| format!("unknown value {part:?}")))
        .collect()
}

fn parse_options(args: &[String]) -> Result<Option<Options>, String> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let mut options = Options {
        seconds: 2.0,
        warmup: 0.5,
        runs: 3,
        concurrency: vec![1, 32, 128],
        servers: ServerKind::ALL.to_vec(),
        stores: StoreKind::ALL.to_vec(),
        scenarios: Scenario::ALL.to_vec(),
        redis_url: String::new(),
        client_threads: cores,
        server_threads: cores,
        out: None,
        smoke: false,
    };
    let mut redis_db = 9u32;
    let mut explicit = Vec::new();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let number = |text: String| -> Result<f64, String> {
            text.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{flag}: not a number: {text:?}"))
        };
        let count = |text: String| -> Result<usize, String> {
            text.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: not a positive integer: {text:?}"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--smoke" => options.smoke = true,
            "--seconds" => options.seconds = number(value()?)?,
            "--warmup" => options.warmup = number(value()?)?,
            "--runs" => options.runs = count(value()?)?,
            "--concurrency" => options.concurrency = parse_list(&value()?, |t| t.parse().ok())?,
            "--servers" => options.servers = parse_list(&value()?, ServerKind::parse)?,
            "--stores" => options.stores = parse_list(&value()?, StoreKind::parse)?,
            "--scenarios" => options.scenarios = parse_list(&value()?, Scenario::parse)?,
            "--redis-db" => redis_db = count(value()?)? as u32,
            "--client-threads" => options.client_threads = count(value()?)?,
            "--server-threads" => options.server_threads = count(value()?)?,
            "--out" => options.out = Some(value()?),
            other => return Err(format!("unknown option {other:?}; try --help")),
        }
        explicit.push(flag.clone());
    }
    if options.smoke {
        let given = |f: &str| explicit.iter().any(|e| e == f);
        if !given("--seconds") {
            options.seconds = 0.1;
        }
        if !given("--warmup") {
            options.warmup = 0.05;
        }
        if !given("--runs") {
            options.runs = 1;
        }
        if !given("--concurrency") {
            options.concurrency = vec![8];
        }
    }
    if options.concurrency.contains(&0) {
        return Err("--concurrency: workers must be positive".into());
    }
    let base = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    options.redis_url = with_database(&base, redis_db);
    Ok(Some(options))
}

/// `url` with its database path replaced by `db`.
fn with_database(url: &str, db: u32) -> String {
    let host_start = url.find("://").map_or(0, |i| i + 3);
    let end = url[host_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| host_start + i);
    format!("{}/{db}", &url[..end])
}

/// The set-ups the options ask for, in table order.
fn setups(options: &Options) -> Vec<Setup> {
    let mut setups = Vec::new();
    if options.servers.contains(&ServerKind::Bare) {
        setups.push(Setup {
            server: ServerKind::Bare,
            store: None,
        });
    }
    for store in &options.stores {
        for server in [ServerKind::Typed, ServerKind::Tower] {
            // tower-sessions has no near-cache.
            let cached_tower = server == ServerKind::Tower && *store == StoreKind::RedisCache;
            if options.servers.contains(&server) && !cached_tower {
                setups.push(Setup {
                    server,
                    store: Some(*store),
                });
            }
        }
    }
    setups
}

/// One measurement of one cell.
#[derive(Debug, Clone)]
pub struct Sample {
    requests: u64,
    /// CPU seconds the server process used in the window.
    server_cpu: Option<f64>,
    /// CPU seconds the load generator used in the window.
    client_cpu: Option<f64>,
    /// Every request answered, set-up and warm-up included.
    total: u64,
    window: Duration,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    wrong: u64,
    problem: Option<String>,
    redis: Option<Delta>,
    /// What `MONITOR` saw in the window (the TTL refresh check only).
    watched: Option<Writes>,
}

impl Sample {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// How a cell's server differs from the defaults.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    /// The session crates' sliding expiry.
    inactivity: Duration,
    /// Record every command of the benchmark database through `MONITOR`.
    watch: bool,
    /// tower-sessions' Redis connection pool size.
    tower_pool: usize,
}

impl Default for Variant {
    fn default() -> Self {
        Self {
            inactivity: server::INACTIVITY,
            watch: false,
            tower_pool: 1,
        }
    }
}

/// A running server process.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

/// CPU seconds (user + system) a process has used so far, from
/// `/proc/<pid>/stat` (Linux; `None` elsewhere).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses;
    // utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

impl ServerProcess {
    async fn start(setup: Setup, options: &Options, variant: Variant) -> Result<Self, BoxError> {
        let exe = std::env::current_exe()?;
        // BENCH_SERVER_WRAPPER="valgrind --tool=callgrind" runs each server
        // under a profiler.
        let wrapper = std::env::var("BENCH_SERVER_WRAPPER").unwrap_or_default();
        let mut wrapper = wrapper.split_whitespace();
        let mut command = match wrapper.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(wrapper).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        let mut child = command
            .arg("serve")
            .arg(setup.server.name())
            .arg(setup.store.map_or("none", StoreKind::name))
            .arg(&options.redis_url)
            .arg(options.server_threads.to_string())
            .arg(variant.inactivity.as_secs().to_string())
            .env("BENCH_TOWER_POOL", variant.tower_pool.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout of the server")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .map_err(|_| "the server did not start within 120 s")??
            .ok_or("the server exited before it was ready")?;
        let port: u16 = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("unexpected server output {line:?}"))?;
        Ok(Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    async fn stop(mut self) {
        // Closing stdin asks it to exit; kill in case it does not.
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// Measures one cell once: a fresh server, fresh sessions, warm-up, window.
async fn run_cell(
    options: &Options,
    setup: Setup,
    scenario: Scenario,
    workers: usize,
    probe: Option<&mut RedisProbe>,
    variant: Variant,
) -> Result<Sample, BoxError> {
    let mut probe = match (setup.store, probe) {
        (Some(store), Some(probe)) if store.is_redis() => {
            probe.flush_db().await?;
            Some(probe)
        }
        _ => None,
    };
    let server = ServerProcess::start(setup, options, variant).await?;
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let start = Arc::new(Barrier::new(workers + 1));
    let expected = (options.seconds * 60_000.0 / workers as f64) as usize + 16;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            tokio::spawn(client::worker(
                server.addr,
                scenario,
                setup.server != ServerKind::Bare,
                phase.clone(),
                start.clone(),
                expected.min(1 << 20),
            ))
        })
        .collect();
    start.wait().await;
    until(Instant::now() + secs(options.warmup)).await;
    let before = match probe.as_deref_mut() {
        Some(probe) => Some(probe.snapshot().await?),
        None => None,
    };
    let monitor = match probe.as_deref() {
        Some(probe) if variant.watch => Some(probe.monitor().await?),
        _ => None,
    };
    let server_pid = server.child.id();
    let cpu_before = (cpu_seconds(server_pid), cpu_seconds(None));
    phase.store(MEASURE, Ordering::Release);
    let t0 = Instant::now();
    let wall0 = std::time::SystemTime::now();
    until(t0 + secs(options.seconds)).await;
    let t1 = Instant::now();
    let wall1 = std::time::SystemTime::now();
    phase.store(STOP, Ordering::Release);
    let cpu_after = (cpu_seconds(server_pid), cpu_seconds(None));
    let used = |before: Option<f64>, after: Option<f64>| Some(after? - before?);
    let redis = match (probe, before) {
        (Some(probe), Some(before)) => {
            let after = probe.snapshot().await?;
            Some(probe.delta(&before, &after))
        }
        _ => None,
    };
    let watched = match monitor {
        Some(monitor) => Some(monitor.finish(wall0, wall1).await),
        None => None,
    };
    let mut latencies = Vec::new();
    let (mut errors, mut wrong, mut problem, mut total) = (0, 0, None, 0);
    for task in tasks {
        let result = task.await?;
        total += result.total + 1;
        latencies.extend_from_slice(&result.latencies);
        errors += result.errors;
        wrong += result.wrong;
        problem = problem.or(result.first_problem);
    }
    server.stop().await;
    latencies.sort_unstable();
    Ok(Sample {
        requests: latencies.len() as u64,
        server_cpu: used(cpu_before.0, cpu_after.0),
        client_cpu: used(cpu_before.1, cpu_after.1),
        total,
        window: t1 - t0,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        errors,
        wrong,
        problem,
        redis,
        watched,
    })
}

/// The inactivity limit of the TTL refresh check: typed-sessions refreshes
/// a read-only session at most once per tenth of it (1 s).
pub const REFRESH_CHECK_INACTIVITY: Duration = Duration::from_secs(10);

/// The TTL refresh check: typed-sessions on Redis, `read`, with a 10 s
/// inactivity limit, so that refreshes are due every second and the
/// "at most one per interval per session" rule is exercised, not just met
/// by sessions too young to need one.
async fn refresh_check(
    options: &Options,
    setups: &[Setup],
    probe: Option<&mut RedisProbe>,
) -> Result<Option<(usize, Sample)>, BoxError> {
    let setup = Setup {
        server: ServerKind::Typed,
        store: Some(StoreKind::Redis),
    };
    if !setups.contains(&setup) || !options.scenarios.contains(&Scenario::Read) {
        return Ok(None);
    }
    let Some(&workers) = options
        .concurrency
        .iter()
        .min_by_key(|w| (**w as i64 - 32).abs())
    else {
        return Ok(None);
    };
    let mut check = options.clone();
    if !options.smoke {
        check.seconds = options.seconds.max(3.0);
    }
    let sample = run_cell(
        &check,
        setup,
        Scenario::Read,
        workers,
        probe,
        Variant {
            inactivity: REFRESH_CHECK_INACTIVITY,
            watch: true,
            ..Variant::default()
        },
    )
    .await
    .map_err(|e| format!("TTL refresh check: {e}"))?;
    eprintln!(
        "refresh check: read x{workers} typed-sessions / redis, {} s inactivity: {:?}",
        REFRESH_CHECK_INACTIVITY.as_secs(),
        sample.watched
    );
    Ok(Some((workers, sample)))
}

/// tower-sessions on Redis as tower-sessions-redis-store's example sets it
/// up (a pool of 6 connections), `incr` at 32 workers, the same runs as the
/// table: the table uses one connection, like typed-sessions, which is
/// faster here.
async fn pool_check(
    options: &Options,
    setups: &[Setup],
    mut probe: Option<&mut RedisProbe>,
) -> Result<Option<Vec<Sample>>, BoxError> {
    let setup = Setup {
        server: ServerKind::Tower,
        store: Some(StoreKind::Redis),
    };
    if !setups.contains(&setup) || !options.scenarios.contains(&Scenario::Incr) {
        return Ok(None);
    }
    let Some(&workers) = options
        .concurrency
        .iter()
        .min_by_key(|w| (**w as i64 - 32).abs())
    else {
        return Ok(None);
    };
    let mut samples = Vec::new();
    for _ in 0..options.runs {
        let sample = run_cell(
            options,
            setup,
            Scenario::Incr,
            workers,
            probe.as_deref_mut(),
            Variant {
                tower_pool: 6,
                ..Variant::default()
            },
        )
        .await
        .map_err(|e| format!("tower-sessions pool of 6: {e}"))?;
        eprintln!(
            "pool check: incr x{workers} tower-sessions / redis, pool of 6: {:.0} req/s",
            sample.rps()
        );
        samples.push(sample);
    }
    Ok(Some(samples))
}

async fn run(options: Options) -> Result<bool, BoxError> {
    let setups = setups(&options);
    let uses_redis = setups
        .iter()
        .any(|s| s.store.is_some_and(StoreKind::is_redis));
    let mut probe = if uses_redis {
        Some(RedisProbe::connect(&options.redis_url).await.map_err(|e| {
            format!(
                "Redis at {} is needed (start it with scripts/test-servers.sh, or \
                 --stores memory): {e}",
                options.redis_url
            )
        })?)
    } else {
        None
    };
    let mut environment = report::Environment::capture(&options, probe.as_mut()).await;
    environment.start_counting(probe.as_mut()).await;
    let cells = setups.len() * options.scenarios.len() * options.concurrency.len();
    eprintln!(
        "{} cells x {} runs, {:.1} s + {:.1} s warm-up each: about {:.0} s",
        cells,
        options.runs,
        options.seconds,
        options.warmup,
        (cells * options.runs) as f64 * (options.seconds + options.warmup + 0.15)
    );
    let mut samples: report::Samples = Default::default();
    // Runs are interleaved (run 1 of every cell, then run 2, ...) so that
    // drifting background load spreads over every set-up alike.
    for run in 0..options.runs {
        for &scenario in &options.scenarios {
            for &workers in &options.concurrency {
                for &setup in &setups {
                    let sample = run_cell(
                        &options,
                        setup,
                        scenario,
                        workers,
                        probe.as_mut(),
                        Variant::default(),
                    )
                    .await
                    .map_err(|e| {
                        format!("{} {} x{workers}: {e}", setup.label(), scenario.name())
                    })?;
                    eprintln!(
                        "run {}/{} {:>8} x{:<3} {:<28} {:>9.0} req/s  p50 {:>7.0} us  p99 {:>7.0} us  ({} requests in all){}{}",
                        run + 1,
                        options.runs,
                        scenario.name(),
                        workers,
                        setup.label(),
                        sample.rps(),
                        sample.p50_us,
                        sample.p99_us,
                        sample.total,
                        sample
                            .redis
                            .as_ref()
                            .map(|r| format!(
                                "  {:.0} B/req",
                                r.net_input_bytes as f64 / sample.requests.max(1) as f64
                            ))
                            .unwrap_or_default(),
                        if sample.errors + sample.wrong > 0 {
                            format!(
                                "  ERRORS {} WRONG {}: {}",
                                sample.errors,
                                sample.wrong,
                                sample.problem.as_deref().unwrap_or("")
                            )
                        } else {
                            String::new()
                        }
                    );
                    samples
                        .entry((scenario, workers, setup))
                        .or_default()
                        .push(sample);
                }
            }
        }
    }
    let refresh = refresh_check(&options, &setups, probe.as_mut()).await?;
    let pool6 = pool_check(&options, &setups, probe.as_mut()).await?;
    if let Some(probe) = probe.as_mut() {
        probe.flush_db().await?;
    }
    let environment = environment.finish(probe.as_mut()).await;
    let (text, clean) = report::render(
        &options,
        &setups,
        &samples,
        refresh.as_ref(),
        pool6.as_ref(),
        &environment,
    );
    println!("{text}");
    if let Some(path) = &options.out {
        std::fs::write(path, &text)?;
    }
    Ok(clean)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve_main(&args[1..]);
    }
    let options = match parse_options(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("error: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads)
        .thread_name("client")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("error: some requests failed or lost their session (see the table)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `typed-sessions-bench serve SERVER STORE REDIS_URL THREADS INACTIVITY_SECS`: the child
/// process that runs one server.
fn serve_main(args: &[String]) -> ExitCode {
    let [server, store, redis_url, threads, inactivity] = args else {
        eprintln!(
            "usage: typed-sessions-bench serve SERVER STORE|none REDIS_URL THREADS INACTIVITY_SECS"
        );
        return ExitCode::from(2);
    };
    let (Some(server), Some(store), Ok(threads), Ok(inactivity)) = (
        ServerKind::parse(server),
        StoreKind::parse(store).or((store == "none").then_some(StoreKind::Memory)),
        threads.parse::<usize>(),
        inactivity.parse::<u64>(),
    ) else {
        eprintln!("serve: bad arguments {args:?}");
        return ExitCode::from(2);
    };
    match server::main(
        server,
        store,
        redis_url,
        threads,
        Duration::from_secs(inactivity),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("serve {}: {error}", server.name());
            ExitCode::FAILURE
        }
    }
}
