//! The markdown report: run conditions, one table, and the targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::redis_stats::RedisProbe;
use crate::{Options, Sample, Scenario, ServerKind, Setup, StoreKind};

/// Every sample, by cell.
pub type Samples = BTreeMap<(Scenario, usize, Setup), Vec<Sample>>;

/// The typed-sessions refresh interval under the bench's 30-day sliding
/// expiry: a tenth of the inactivity limit, at most a minute.
const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The conditions of a run.
pub struct Environment {
    command: String,
    date: String,
    cores: usize,
    cpu: String,
    load_start: String,
    load_end: String,
    redis: Option<String>,
    started: std::time::Instant,
    elapsed: Duration,
    cpu_start: Option<CpuCounters>,
    usage: Option<String>,
}

/// Machine-wide and own CPU counters, in seconds.
#[derive(Debug, Clone, Copy)]
struct CpuCounters {
    /// Busy time of all CPUs (user, nice, system, irq, softirq).
    busy: f64,
    /// Time the hypervisor gave to others while our CPUs wanted to run.
    steal: f64,
    /// Everything, idle included.
    total: f64,
    /// This process and its waited-for children (the servers).
    own: f64,
    /// The Redis process (all its clients).
    redis: f64,
}

impl CpuCounters {
    async fn read(probe: Option<&mut RedisProbe>) -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let ticks: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (USER_HZ = 100)
        let tick = |i: usize| ticks.get(i).copied().unwrap_or(0.0) / 100.0;
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<f64> = own_stat[own_stat.rfind(')')? + 1..]
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        // utime stime cutime cstime: fields 14-17, here 11-14.
        let own = fields.get(11..15)?.iter().sum::<f64>() / 100.0;
        let redis = match probe {
            Some(probe) => probe.cpu_seconds().await.unwrap_or(0.0),
            None => 0.0,
        };
        Some(Self {
            busy: tick(0) + tick(1) + tick(2) + tick(5) + tick(6),
            steal: tick(7),
            total: (0..8).map(tick).sum(),
            own,
            redis,
        })
    }
}

impl Environment {
    /// Notes the conditions at the start of a run.
    pub async fn capture(options: &Options, probe: Option<&mut RedisProbe>) -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let command = if args.is_empty() {
            "cargo run --release -p typed-sessions-bench".to_owned()
        } else {
            format!(
                "cargo run --release -p typed-sessions-bench -- {}",
                args.join(" ")
            )
        };
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let redis = match probe {
            Some(probe) => Some(format!(
                "Redis {} at {}",
                probe.version().await.unwrap_or_else(|_| "?".into()),
                options.redis_url
            )),
            None => None,
        };
        Self {
            command,
            date: utc_now(),
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            load_start: load_average(),
            load_end: String::new(),
            redis,
            started: std::time::Instant::now(),
            elapsed: Duration::ZERO,
            cpu_start: None,
            usage: None,
        }
    }

    /// Starts counting CPU use (after the Redis probe is ready).
    pub async fn start_counting(&mut self, probe: Option<&mut RedisProbe>) {
        self.cpu_start = CpuCounters::read(probe).await;
    }

    /// Notes the conditions at the end of a run.
    pub async fn finish(mut self, probe: Option<&mut RedisProbe>) -> Self {
        self.load_end = load_average();
        self.elapsed = self.started.elapsed();
        if let (Some(a), Some(b)) = (self.cpu_start, CpuCounters::read(probe).await) {
            let total = (b.total - a.total).max(1e-9);
            let share = |x: f64| 100.0 * x.max(0.0) / total;
            let busy = b.busy - a.busy;
            let own = b.own - a.own;
            let redis = b.redis - a.redis;
            self.usage = Some(format!(
                "CPU of the machine during the run: {:.0}% busy — this benchmark (load \
                 generator and servers) {:.0}%, Redis {:.0}%, everything else {:.0}%; \
                 {:.0}% stolen by the hypervisor",
                share(busy),
                share(own),
                share(redis),
                share(busy - own - redis),
                share(b.steal - a.steal),
            ));
        }
        self
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".into())
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// One cell, its runs combined.
#[derive(Debug, Clone, Default)]
struct Cell {
    rps: f64,
    spread: f64,
    p50: f64,
    p99: f64,
    bytes_in: Option<f64>,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
    redis_cpu: Option<f64>,
    redis_exec: Option<f64>,
    commands: Option<f64>,
    data_writes: u64,
    expiry_sets: u64,
    window: Duration,
    errors: u64,
    wrong: u64,
    problem: Option<String>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn combine(samples: &[Sample]) -> Cell {
    let rps: Vec<f64> = samples.iter().map(Sample::rps).collect();
    let mid = median(rps.clone());
    let (lo, hi) = rps.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
        (lo.min(r), hi.max(r))
    });
    let per_request = |f: &dyn Fn(&Sample) -> Option<f64>| -> Option<f64> {
        let values: Vec<f64> = samples
            .iter()
            .filter_map(|s| f(s).map(|v| v / s.requests.max(1) as f64))
            .collect();
        (!values.is_empty()).then(|| median(values))
    };
    let redis = |f: fn(&crate::redis_stats::Delta) -> f64| {
        per_request(&|s: &Sample| s.redis.as_ref().map(f))
    };
    Cell {
        rps: mid,
        spread: if samples.len() > 1 && mid > 0.0 {
            (hi - lo) / mid
        } else {
            0.0
        },
        p50: median(samples.iter().map(|s| s.p50_us).collect()),
        p99: median(samples.iter().map(|s| s.p99_us).collect()),
        bytes_in: redis(|r| r.net_input_bytes as f64),
        commands: redis(|r| r.commands as f64),
        redis_cpu: redis(|r| r.cpu_seconds * 1e6),
        redis_exec: redis(|r| r.command_usec as f64),
        server_cpu: per_request(&|s: &Sample| s.server_cpu.map(|c| c * 1e6)),
        client_cpu: per_request(&|s: &Sample| s.client_cpu.map(|c| c * 1e6)),
        data_writes: samples
            .iter()
            .filter_map(|s| s.redis.as_ref().map(|r| r.data_writes))
            .sum(),
        expiry_sets: samples
            .iter()
            .filter_map(|s| s.redis.as_ref().map(|r| r.expiry_sets))
            .sum(),
        window: samples.iter().map(|s| s.window).sum(),
        errors: samples.iter().map(|s| s.errors).sum(),
        wrong: samples.iter().map(|s| s.wrong).sum(),
        problem: samples.iter().find_map(|s| s.problem.clone()),
    }
}

/// `12,345`.
fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "–".into();
    }
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(value: f64, base: Option<f64>) -> Option<String> {
    let base = base.filter(|b| b.is_finite() && *b > 0.0)?;
    value
        .is_finite()
        .then(|| format!("{:.2}", value / base).replace("0.00", "<0.01"))
}

/// `figure (× bare, × tower)`, leaving out the ratios that do not apply.
fn with_ratios(figure: String, bare: Option<String>, tower: Option<String>) -> String {
    match (bare, tower) {
        (None, None) => figure,
        (Some(b), None) => format!("{figure} ({b} b)"),
        (None, Some(t)) => format!("{figure} ({t} t)"),
        (Some(b), Some(t)) => format!("{figure} ({b} b, {t} t)"),
    }
}

/// Renders the report; the flag is false when any request failed or lost
/// its session.
pub fn render(
    options: &Options,
    setups: &[Setup],
    samples: &Samples,
    refresh: Option<&(usize, Sample)>,
    pool6: Option<&Vec<Sample>>,
    env: &Environment,
) -> (String, bool) {
    let cells: BTreeMap<_, Cell> = samples.iter().map(|(k, v)| (*k, combine(v))).collect();
    let mut out = String::new();
    let _ = writeln!(out, "## Run\n");
    let _ = writeln!(out, "- command: `{}`", env.command);
    let _ = writeln!(out, "- date: {}", env.date);
    let _ = writeln!(
        out,
        "- machine: {} cores ({}); load average (1/5/15 min) {} at the start, {} at the end",
        env.cores, env.cpu, env.load_start, env.load_end
    );
    if let Some(usage) = &env.usage {
        let _ = writeln!(out, "- {usage}");
    }
    if let Some(redis) = &env.redis {
        let _ = writeln!(out, "- {redis}");
    }
    let _ = writeln!(
        out,
        "- each cell: {} run(s) of {:.1} s after {:.1} s warm-up, a fresh server process per run, \
         runs interleaved; figures are medians over runs; {} client threads, {} server threads; \
         whole run {:.0} s",
        options.runs,
        options.seconds,
        options.warmup,
        options.client_threads,
        options.server_threads,
        env.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "\n(b) = ratio to the bare handler, (t) = ratio to tower-sessions on the same store. \
         ± = half the spread of req/s over runs ((max − min) / 2 / median). Redis B in/req = bytes Redis \
         received per request (`total_net_input_bytes`); cmds/req = commands Redis executed per \
         request, those run inside scripts included (`total_commands_processed`). CPU µs/req = CPU time per request of the server process / the load \
         generator / the Redis process (from `/proc` and `INFO cpu`; Redis counts all its clients); \
         in brackets, the part of Redis' time spent executing the commands (`commandstats`).\n"
    );
    let _ = writeln!(
        out,
        "| scenario | workers | server / store | req/s | p50 µs | p99 µs | CPU µs/req server / client / Redis | Redis B in/req | Redis cmds/req |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut clean = true;
    let mut problems = Vec::new();
    for &scenario in &options.scenarios {
        for &workers in &options.concurrency {
            let bare = cells.get(&(
                scenario,
                workers,
                Setup {
                    server: ServerKind::Bare,
                    store: None,
                },
            ));
            for &setup in setups {
                let Some(cell) = cells.get(&(scenario, workers, setup)) else {
                    continue;
                };
                let tower = match (setup.server, setup.store) {
                    (ServerKind::Typed, Some(store)) => cells.get(&(
                        scenario,
                        workers,
                        Setup {
                            server: ServerKind::Tower,
                            store: Some(store),
                        },
                    )),
                    _ => None,
                };
                let is_bare = setup.server == ServerKind::Bare;
                let bare_of = |f: fn(&Cell) -> f64| {
                    if is_bare { None } else { bare.map(f) }
                };
                let spread = if options.runs > 1 {
                    format!(" ±{:.0}%", cell.spread * 50.0)
                } else {
                    String::new()
                };
                let rps = with_ratios(
                    format!("{}{spread}", thousands(cell.rps)),
                    ratio(cell.rps, bare_of(|c| c.rps)),
                    ratio(cell.rps, tower.map(|c| c.rps)),
                );
                let p50 = with_ratios(
                    thousands(cell.p50),
                    ratio(cell.p50, bare_of(|c| c.p50)),
                    ratio(cell.p50, tower.map(|c| c.p50)),
                );
                let p99 = with_ratios(
                    thousands(cell.p99),
                    ratio(cell.p99, bare_of(|c| c.p99)),
                    ratio(cell.p99, tower.map(|c| c.p99)),
                );
                let bytes = cell.bytes_in.map_or(String::new(), |b| {
                    with_ratios(thousands(b), None, ratio(b, tower.and_then(|c| c.bytes_in)))
                });
                let calls = cell.commands.map_or(String::new(), |c| format!("{c:.2}"));
                let micros = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
                let mut cpu = format!("{} / {}", micros(cell.server_cpu), micros(cell.client_cpu));
                if let Some(redis) = cell.redis_cpu {
                    let _ = write!(cpu, " / {redis:.1} ({})", micros(cell.redis_exec));
                }
                let _ = writeln!(
                    out,
                    "| {} | {workers} | {} | {rps} | {p50} | {p99} | {cpu} | {bytes} | {calls} |",
                    scenario.name(),
                    setup.label()
                );
                if cell.errors + cell.wrong > 0 {
                    clean = false;
                    problems.push(format!(
                        "- {} {} x{workers}: {} failed, {} wrong answers; first: {}",
                        setup.label(),
                        scenario.name(),
                        cell.errors,
                        cell.wrong,
                        cell.problem.as_deref().unwrap_or("?")
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        let _ = writeln!(out, "\n**Failures:**\n");
        for problem in &problems {
            let _ = writeln!(out, "{problem}");
        }
    }
    let pool6 = pool6.map(|samples| combine(samples));
    big_fields(&mut out, options, &cells);
    targets(&mut out, options, &cells, refresh, pool6.as_ref());
    if let Some((_, sample)) = refresh
        && sample.errors + sample.wrong > 0
    {
        clean = false;
    }
    (out, clean)
}

/// The concurrency the targets are checked at: 32 workers, or the closest
/// that was run.
fn target_workers(options: &Options) -> Option<usize> {
    options
        .concurrency
        .iter()
        .copied()
        .min_by_key(|w| (*w as i64 - 32).abs())
}

/// The big-field cells beside `incr`, at the targets' concurrency: each
/// route touches only `visits` (`big-incr` also reads its field's length)
/// while the session holds a big field. Memory as a fraction of bare, Redis
/// as a fraction of the same crate's Redis `incr`; the ratio CPU time
/// predicts in brackets; and the bytes Redis received per request.
fn big_fields(
    out: &mut String,
    options: &Options,
    cells: &BTreeMap<(Scenario, usize, Setup), Cell>,
) {
    let Some(workers) = target_workers(options) else {
        return;
    };
    let scenarios: Vec<Scenario> = options
        .scenarios
        .iter()
        .copied()
        .filter(|s| s.big_field().is_some())
        .collect();
    if scenarios.iter().all(|s| *s == Scenario::Incr) {
        return;
    }
    let cell = |scenario, server, store| cells.get(&(scenario, workers, Setup { server, store }));
    let fraction = |c: Option<&Cell>, base: Option<&Cell>| match (c, base) {
        (Some(c), Some(base)) if base.rps > 0.0 => format!(
            "{:.2}{}",
            c.rps / base.rps,
            cpu_ratio(base, c).map_or(String::new(), |r| format!(" ({r:.2})"))
        ),
        _ => "–".to_owned(),
    };
    let _ = writeln!(out, "\n## Big fields ({workers} workers)\n");
    let _ = writeln!(
        out,
        "Each route increments `visits` while the session also holds the field named. \
         Memory: req/s as a fraction of bare; Redis: as a fraction of the same crate's Redis \
         `incr` (its req/s in the `incr` row). In brackets, the ratio that CPU time per request \
         predicts. Redis B in/req: bytes Redis received per request (the load command and the \
         write), typed-sessions / tower-sessions. Server CPU: the server process's CPU µs per \
         request on the memory store, typed-sessions / tower-sessions (steadier than req/s on a \
         shared machine).\n"
    );
    let _ = writeln!(
        out,
        "| the session also holds | memory: typed-sessions | memory: tower-sessions | Redis: typed-sessions | Redis: tower-sessions | Redis B in/req | server CPU µs/req, memory |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for scenario in scenarios {
        let memory = |server| {
            fraction(
                cell(scenario, server, Some(StoreKind::Memory)),
                cell(scenario, ServerKind::Bare, None),
            )
        };
        let redis = |server| {
            let base = cell(Scenario::Incr, server, Some(StoreKind::Redis));
            match (scenario, base) {
                (Scenario::Incr, Some(base)) => format!("{} req/s", thousands(base.rps)),
                _ => fraction(cell(scenario, server, Some(StoreKind::Redis)), base),
            }
        };
        let bytes = |server| {
            cell(scenario, server, Some(StoreKind::Redis))
                .and_then(|c| c.bytes_in)
                .map_or("–".to_owned(), thousands)
        };
        let cpu = |server| {
            cell(scenario, server, Some(StoreKind::Memory))
                .and_then(|c| c.server_cpu)
                .map_or("–".to_owned(), |c| format!("{c:.1}"))
        };
        let _ = writeln!(
            out,
            "| {} (`{}`) | {} | {} | {} | {} | {} / {} | {} / {} |",
            scenario.big_field().unwrap_or(""),
            scenario.name(),
            memory(ServerKind::Typed),
            memory(ServerKind::Tower),
            redis(ServerKind::Typed),
            redis(ServerKind::Tower),
            bytes(ServerKind::Typed),
            bytes(ServerKind::Tower),
            cpu(ServerKind::Typed),
            cpu(ServerKind::Tower),
        );
    }
}

/// The throughput ratio `cell / base` that CPU time alone predicts: both
/// cells' CPU per request (server, load generator and Redis together), on
/// the assumption that the closed loop is CPU-bound. Less sensitive than
/// req/s to what else runs on the machine.
fn cpu_ratio(base: &Cell, cell: &Cell) -> Option<f64> {
    let total = |c: &Cell| Some(c.server_cpu? + c.client_cpu? + c.redis_cpu.unwrap_or(0.0));
    Some(total(base)? / total(cell)?)
}

/// The targets, checked at 32 workers (or the concurrency closest
/// to it that was run).
fn targets(
    out: &mut String,
    options: &Options,
    cells: &BTreeMap<(Scenario, usize, Setup), Cell>,
    refresh: Option<&(usize, Sample)>,
    pool6: Option<&Cell>,
) {
    let Some(&workers) = options
        .concurrency
        .iter()
        .min_by_key(|w| (**w as i64 - 32).abs())
    else {
        return;
    };
    let cell = |scenario, server, store| cells.get(&(scenario, workers, Setup { server, store }));
    let typed = |scenario, store| cell(scenario, ServerKind::Typed, Some(store));
    let tower = |scenario, store| cell(scenario, ServerKind::Tower, Some(store));
    let bare = |scenario| cell(scenario, ServerKind::Bare, None);
    let verdict = |met: bool| if met { "met" } else { "**missed**" };
    let mut rows = Vec::new();

    let mut versus_bare = |scenario, floor: f64, name: &str| {
        if let (Some(t), Some(b)) = (typed(scenario, StoreKind::Memory), bare(scenario)) {
            let r = t.rps / b.rps;
            let ts = tower(scenario, StoreKind::Memory)
                .map(|c| {
                    format!(
                        "; tower-sessions {:.2}{}",
                        c.rps / b.rps,
                        cpu_ratio(b, c).map_or(String::new(), |r| format!(" (CPU {r:.2})"))
                    )
                })
                .unwrap_or_default();
            let cpu = cpu_ratio(b, t).map_or(String::new(), |r| format!(" (CPU {r:.2})"));
            rows.push(format!(
                "| memory `{name}`: ≥ {floor:.2} of bare req/s | {r:.2}{cpu}{ts} | {} |",
                verdict(r >= floor)
            ));
        }
    };
    versus_bare(Scenario::Incr, 0.85, "incr");
    versus_bare(Scenario::BigIncr, 0.75, "big-incr");
    versus_bare(Scenario::CartIncr, 0.75, "cart-incr");
    versus_bare(Scenario::BytesIncr, 0.75, "bytes-incr");
    let mut versus_incr = |scenario, floor: f64, name: &str| {
        let of_incr = |server| {
            let (c, base) = (
                cell(scenario, server, Some(StoreKind::Redis))?,
                cell(Scenario::Incr, server, Some(StoreKind::Redis))?,
            );
            Some((c.rps / base.rps, cpu_ratio(base, c)))
        };
        if let Some((r, cpu)) = of_incr(ServerKind::Typed) {
            let cpu = cpu.map_or(String::new(), |c| format!(" (CPU {c:.2})"));
            let ts = of_incr(ServerKind::Tower)
                .map(|(r, cpu)| {
                    format!(
                        "; tower-sessions {r:.2}{}",
                        cpu.map_or(String::new(), |c| format!(" (CPU {c:.2})"))
                    )
                })
                .unwrap_or_default();
            rows.push(format!(
                "| Redis `{name}`: ≥ {floor:.2} of Redis `incr` req/s | {r:.2}{cpu}{ts} | {} |",
                verdict(r >= floor)
            ));
        }
    };
    versus_incr(Scenario::CartIncr, 0.7, "cart-incr");
    versus_incr(Scenario::BytesIncr, 0.7, "bytes-incr");
    if let (Some(t), Some(w)) = (
        typed(Scenario::Incr, StoreKind::Redis),
        tower(Scenario::Incr, StoreKind::Redis),
    ) {
        let r = t.rps / w.rps;
        let cpu = cpu_ratio(w, t).map_or(String::new(), |r| format!(" (CPU {r:.2}×)"));
        let of_bare = bare(Scenario::Incr)
            .map(|b| {
                format!(
                    " (of bare: typed {:.2}, tower {:.2})",
                    t.rps / b.rps,
                    w.rps / b.rps
                )
            })
            .unwrap_or_default();
        let of_pool6 = pool6
            .map(|p| {
                format!(
                    "; against tower-sessions with its example's pool of 6 connections \
                     ({} req/s): {:.2}×",
                    thousands(p.rps),
                    t.rps / p.rps
                )
            })
            .unwrap_or_default();
        rows.push(format!(
            "| Redis `incr`: ≥ 2× tower-sessions req/s | {r:.2}×{cpu}{of_bare}{of_pool6} | {} |",
            verdict(r >= 2.0)
        ));
    }
    // The near-cache (issue 13).
    if let (Some(c), Some(m), Some(w)) = (
        typed(Scenario::Read, StoreKind::RedisCache),
        typed(Scenario::Read, StoreKind::Memory),
        tower(Scenario::Read, StoreKind::Redis),
    ) {
        let (of_memory, of_tower) = (c.rps / m.rps, c.rps / w.rps);
        rows.push(format!(
            "| Redis `read` with the near-cache: ≥ 0.8× typed-sessions memory, ≥ 2× tower-sessions Redis | {of_memory:.2}× memory, {of_tower:.2}× tower | {} |",
            verdict(of_memory >= 0.8 && of_tower >= 2.0)
        ));
    }
    if let (Some(c), Some(w)) = (
        typed(Scenario::Incr, StoreKind::RedisCache),
        tower(Scenario::Incr, StoreKind::Redis),
    ) {
        let r = c.rps / w.rps;
        rows.push(format!(
            "| Redis `incr` with the near-cache: ≥ 1.8× tower-sessions Redis | {r:.2}× | {} |",
            verdict(r >= 1.8)
        ));
    }
    for store in [StoreKind::Memory, StoreKind::Redis] {
        if let (Some(d), Some(t)) = (
            typed(Scenario::DictIncr, store),
            typed(Scenario::Incr, store),
        ) {
            let r = d.rps / t.rps;
            let cpu = cpu_ratio(t, d).map_or(String::new(), |r| format!(" (CPU {r:.2})"));
            rows.push(format!(
                "| {} `dict-incr` (dict-like `Session`): ≥ 0.90 of typed `incr` req/s | {r:.2}{cpu} | {} |",
                store.name(),
                verdict(r >= 0.9)
            ));
        }
    }
    if let Some(t) = typed(Scenario::BigIncr, StoreKind::Redis)
        && let Some(bytes) = t.bytes_in
    {
        let ts = tower(Scenario::BigIncr, StoreKind::Redis)
            .and_then(|c| c.bytes_in)
            .map(|b| format!("; tower-sessions {}", thousands(b)))
            .unwrap_or_default();
        rows.push(format!(
            "| Redis `big-incr`: < 300 bytes received by Redis per request | {}{ts} | {} |",
            thousands(bytes),
            verdict(bytes < 300.0)
        ));
    }
    if let Some(t) = typed(Scenario::Read, StoreKind::Redis) {
        let sessions = (workers * options.runs) as u64;
        let per_session_window = t.window.as_secs_f64() / options.runs as f64;
        let allowed =
            sessions * (1 + (per_session_window / REFRESH_INTERVAL.as_secs_f64()).floor() as u64);
        rows.push(format!(
            "| Redis `read`: no field writes; ≤ 1 TTL refresh per interval ({} s) per session | \
             {} field writes (`HSET`/`HDEL`), {} TTL refreshes (`PEXPIREAT`) for {workers} sessions × {} runs over {:.1} s each (allowed ≤ {allowed}) | {} |",
            REFRESH_INTERVAL.as_secs(),
            t.data_writes,
            t.expiry_sets,
            options.runs,
            per_session_window,
            verdict(t.data_writes == 0 && t.expiry_sets <= allowed)
        ));
    }
    if let Some((sessions, sample)) = refresh
        && let Some(watched) = &sample.watched
    {
        let interval = crate::REFRESH_CHECK_INACTIVITY.as_secs_f64() / 10.0;
        let window = sample.window.as_secs_f64();
        let allowed = *sessions as u64 * (1 + (window / interval).floor() as u64);
        let expected = *sessions as f64 * window / interval;
        rows.push(format!(
            "| the same with a {} s inactivity limit (refresh interval {interval:.0} s), \
             every command seen through `MONITOR` | {} field writes, {} TTL refreshes for \
             {sessions} sessions over {window:.1} s (allowed ≤ {allowed}; one per interval \
             would be ≈ {expected:.0}) | {} |",
            crate::REFRESH_CHECK_INACTIVITY.as_secs(),
            watched.field_writes,
            watched.expires,
            verdict(watched.field_writes == 0 && watched.expires <= allowed)
        ));
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Targets ({workers} workers)\n");
    let _ = writeln!(
        out,
        "(CPU …) = the ratio that CPU time per request (server + load generator + Redis) \
         predicts for a CPU-bound closed loop; it depends less on what else runs on the machine.\n"
    );
    let _ = writeln!(out, "| target | measured | |");
    let _ = writeln!(out, "|---|---|---|");
    for row in rows {
        let _ = writeln!(out, "{row}");
    }
}
