//! The stored-format comparison: for the field types users keep in a
//! session, the encoded size and the time to encode and decode one value in
//! each candidate format; then which formats read a value written by an
//! older version of its type correctly, which refuse it, and which silently
//! read something else.
//!
//! ```sh
//! cargo run --release -p typed-sessions-bench --bin codecs            # ~1 min
//! cargo run --release -p typed-sessions-bench --bin codecs -- --smoke # a second
//! cargo run --release -p typed-sessions-bench --bin codecs -- --out FILE
//! ```
//!
//! Each format is called as its crate documents it, on one value at a time,
//! as a session stores one field at a time; trailing bytes are not checked
//! (typed-sessions' decoding does not check them either).

#[path = "../big.rs"]
#[allow(dead_code)] // `BigValue::is_intact` serves the benchmark's servers only.
mod big;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::big::BigValue;

type Error = String;

/// One stored format.
trait Format {
    /// The name in the tables.
    const NAME: &'static str;
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error>;
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error>;
}

/// MessagePack, structs as maps keyed by field name.
struct RmpNamed;
/// MessagePack, structs as arrays (field order only).
struct RmpCompact;
/// bincode 2, serde mode, standard configuration (variable-length integers).
struct Bincode2;
struct Postcard;
struct Json;
/// CBOR.
struct Ciborium;

impl Format for RmpNamed {
    const NAME: &'static str = "rmp-serde named";
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
        rmp_serde::to_vec_named(value).map_err(|e| e.to_string())
    }
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}

impl Format for RmpCompact {
    const NAME: &'static str = "rmp-serde compact";
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
        rmp_serde::to_vec(value).map_err(|e| e.to_string())
    }
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}

impl Format for Bincode2 {
    const NAME: &'static str = "bincode 2";
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| e.to_string())
    }
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map(|(value, _)| value)
            .map_err(|e| e.to_string())
    }
}

impl Format for Postcard {
    const NAME: &'static str = "postcard";
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
        postcard::to_stdvec(value).map_err(|e| e.to_string())
    }
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
    }
}

impl Format for Json {
    const NAME: &'static str = "serde_json";
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

impl Format for Ciborium {
    const NAME: &'static str = "ciborium (CBOR)";
    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        ciborium::from_reader(bytes).map_err(|e| e.to_string())
    }
}

/// Something done once per format.
trait PerFormat {
    fn run<F: Format>(&mut self);
}

/// Runs `job` for every format, in table order.
fn each_format(job: &mut impl PerFormat) {
    job.run::<RmpNamed>();
    job.run::<RmpCompact>();
    job.run::<Bincode2>();
    job.run::<Postcard>();
    job.run::<Json>();
    job.run::<Ciborium>();
}

/// The formats' names, in table order.
fn format_names() -> Vec<&'static str> {
    struct Names(Vec<&'static str>);
    impl PerFormat for Names {
        fn run<F: Format>(&mut self) {
            self.0.push(F::NAME);
        }
    }
    let mut names = Names(Vec::new());
    each_format(&mut names);
    names.0
}

// ---- the values ----

/// A profile with optional and enum fields, nested.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
struct Profile {
    name: String,
    email: Option<String>,
    plan: Plan,
    address: Option<Address>,
    tags: Vec<String>,
    last_login: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
enum Plan {
    #[default]
    Free,
    Pro,
    Team {
        seats: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
struct Address {
    city: String,
    zip: String,
}

fn profile() -> Profile {
    Profile {
        name: "Ada Lovelace".into(),
        email: Some("ada@example.com".into()),
        plan: Plan::Team { seats: 12 },
        address: Some(Address {
            city: "London".into(),
            zip: "W1 4AB".into(),
        }),
        tags: vec!["beta".into(), "admin".into()],
        last_login: None,
    }
}

fn preferences() -> HashMap<String, i64> {
    (0..20)
        .map(|i| (format!("pref_{i:02}"), i * 1000 - 5000))
        .collect()
}

fn long_string() -> String {
    (0..big::OCTETS_LEN)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

/// One value to measure, in every format.
struct Measure<'a, T> {
    label: &'a str,
    value: &'a T,
    batch: Duration,
    row: Vec<Cell>,
}

/// One format's figures for one value.
enum Cell {
    Done {
        size: usize,
        encode: Duration,
        decode: Duration,
    },
    Failed(String),
}

/// Batches per figure: the machine is shared, so the best of many.
const BATCHES: usize = 11;

/// The best of [`BATCHES`] batches' time per call of `f`, each batch long enough
/// to outlast the timer's resolution.
fn time_per_call(batch: Duration, mut f: impl FnMut()) -> Duration {
    let mut calls = 1u32;
    loop {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        if start.elapsed() >= batch / 4 || calls >= 1 << 24 {
            break;
        }
        calls *= 2;
    }
    let calls = calls * 4;
    (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed() / calls
        })
        .min()
        .unwrap_or_default()
}

impl<T: Serialize + DeserializeOwned + PartialEq> PerFormat for Measure<'_, T> {
    fn run<F: Format>(&mut self) {
        let cell = (|| {
            let bytes = F::encode(self.value)?;
            let back: T = F::decode(&bytes)?;
            if back != *self.value {
                return Err("decodes to a different value".to_owned());
            }
            let encode = time_per_call(self.batch, || {
                let _ = black_box(F::encode(black_box(self.value)));
            });
            let decode = time_per_call(self.batch, || {
                let _ = black_box(F::decode::<T>(black_box(&bytes)));
            });
            Ok(Cell::Done {
                size: bytes.len(),
                encode,
                decode,
            })
        })()
        .unwrap_or_else(Cell::Failed);
        self.row.push(cell);
    }
}

fn measure<T: Serialize + DeserializeOwned + PartialEq>(
    label: &str,
    value: &T,
    batch: Duration,
) -> (String, Vec<Cell>) {
    let mut job = Measure {
        label,
        value,
        batch,
        row: Vec::new(),
    };
    each_format(&mut job);
    eprintln!("measured {}", job.label);
    (label.to_owned(), job.row)
}

fn time_text(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1000 {
        format!("{ns} ns")
    } else if ns < 100_000 {
        format!("{:.1} µs", ns as f64 / 1000.0)
    } else {
        format!("{:.0} µs", ns as f64 / 1000.0)
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---- schema evolution ----

/// Version 1 of the types, as the stored value was written.
mod v1 {
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub enum Kind {
        Free,
        Pro,
    }

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Profile {
        pub name: String,
        pub tags: Vec<String>,
        pub kind: Kind,
    }

    /// The issue's value, and one whose empty list a format that reads by
    /// position would take for something else.
    pub fn values() -> [Profile; 2] {
        [
            Profile {
                name: "ada".into(),
                tags: vec!["x".into()],
                kind: Kind::Pro,
            },
            Profile {
                name: "bob".into(),
                tags: Vec::new(),
                kind: Kind::Pro,
            },
        ]
    }
}

/// The version-2 types of each change, and the value that reading version
/// 1's bytes should give.
mod v2 {
    pub use super::v1::Kind;

    pub mod added {
        use super::Kind;
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct Profile {
            pub name: String,
            pub tags: Vec<String>,
            pub kind: Kind,
            #[serde(default)]
            pub age: u32,
        }
    }

    pub mod added_required {
        use super::Kind;
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct Profile {
            pub name: String,
            pub tags: Vec<String>,
            pub kind: Kind,
            pub age: u32,
        }
    }

    pub mod added_between {
        use super::Kind;
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct Profile {
            pub name: String,
            #[serde(default)]
            pub age: u32,
            pub tags: Vec<String>,
            pub kind: Kind,
        }
    }

    pub mod added_option {
        use super::Kind;
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct Profile {
            pub name: String,
            pub tags: Vec<String>,
            pub kind: Kind,
            pub nickname: Option<String>,
        }
    }

    pub mod removed {
        use super::Kind;
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct Profile {
            pub name: String,
            pub kind: Kind,
        }
    }

    pub mod removed_and_added {
        use super::Kind;
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct Profile {
            pub name: String,
            #[serde(default)]
            pub age: u32,
            pub kind: Kind,
        }
    }

    pub mod variant_at_end {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub enum Kind {
            Free,
            Pro,
            Team,
        }
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct Profile {
            pub name: String,
            pub tags: Vec<String>,
            pub kind: Kind,
        }
    }

    pub mod variant_before {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub enum Kind {
            Free,
            Trial,
            Pro,
        }
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct Profile {
            pub name: String,
            pub tags: Vec<String>,
            pub kind: Kind,
        }
    }
}

/// What reading version 1's bytes as version 2 gave.
enum Outcome {
    Correct,
    Refused(String),
    Wrong(String),
}

/// One change: each version-1 value read as `T`, which should give what
/// `expect` makes of it.
struct Evolve<T> {
    expect: fn(v1::Profile) -> T,
    row: Vec<Outcome>,
}

impl<T: DeserializeOwned + PartialEq + std::fmt::Debug> PerFormat for Evolve<T> {
    fn run<F: Format>(&mut self) {
        // A silent wrong value outweighs an error, an error outweighs success.
        let mut outcome = Outcome::Correct;
        for value in v1::values() {
            let got = F::encode(&value).and_then(|bytes| F::decode::<T>(&bytes));
            match got {
                Ok(got) if got == (self.expect)(value.clone()) => {}
                Ok(got) => {
                    outcome = Outcome::Wrong(format!("`{value:?}` read as `{got:?}`"));
                    break;
                }
                Err(error) => outcome = Outcome::Refused(error),
            }
        }
        self.row.push(outcome);
    }
}

fn evolve<T: DeserializeOwned + PartialEq + std::fmt::Debug>(
    expect: fn(v1::Profile) -> T,
) -> Vec<Outcome> {
    let mut job = Evolve {
        expect,
        row: Vec::new(),
    };
    each_format(&mut job);
    job.row
}

fn evolution() -> Vec<(&'static str, Vec<Outcome>)> {
    use v2::*;
    vec![
        (
            "field `age: u32` added at the end, `#[serde(default)]`",
            evolve(|v| added::Profile {
                name: v.name,
                tags: v.tags,
                kind: v.kind,
                age: 0,
            }),
        ),
        (
            "field `age: u32` added at the end, no `#[serde(default)]` (error is right)",
            evolve(|v| added_required::Profile {
                name: v.name,
                tags: v.tags,
                kind: v.kind,
                age: 0,
            }),
        ),
        (
            "field `age: u32` added between others, `#[serde(default)]`",
            evolve(|v| added_between::Profile {
                name: v.name,
                age: 0,
                tags: v.tags,
                kind: v.kind,
            }),
        ),
        (
            "field `nickname: Option<String>` added at the end, no `#[serde(default)]`",
            evolve(|v| added_option::Profile {
                name: v.name,
                tags: v.tags,
                kind: v.kind,
                nickname: None,
            }),
        ),
        (
            "field `tags` removed",
            evolve(|v| removed::Profile {
                name: v.name,
                kind: v.kind,
            }),
        ),
        (
            "field `tags` removed and `age: u32` added in its place, `#[serde(default)]`",
            evolve(|v| removed_and_added::Profile {
                name: v.name,
                age: 0,
                kind: v.kind,
            }),
        ),
        (
            "enum variant `Team` added after the others",
            evolve(|v| variant_at_end::Profile {
                name: v.name,
                tags: v.tags,
                kind: match v.kind {
                    Kind::Free => variant_at_end::Kind::Free,
                    Kind::Pro => variant_at_end::Kind::Pro,
                },
            }),
        ),
        (
            "enum variant `Trial` added before the stored `Pro`",
            evolve(|v| variant_before::Profile {
                name: v.name,
                tags: v.tags,
                kind: match v.kind {
                    Kind::Free => variant_before::Kind::Free,
                    Kind::Pro => variant_before::Kind::Pro,
                },
            }),
        ),
    ]
}

// ---- the report ----

fn report(batch: Duration) -> (String, bool) {
    let names = format_names();
    let rows = vec![
        measure("`u64` (1,700,000,000)", &1_700_000_000u64, batch),
        measure("`String`, 15 bytes", &"ada@example.com".to_owned(), batch),
        measure("`String`, 16 KB", &long_string(), batch),
        measure("`Vec<u8>`, 16 KB", &big::Octets::make(), batch),
        measure(
            "`serde_bytes::ByteBuf`, 16 KB",
            &serde_bytes::ByteBuf::from(big::octets()),
            batch,
        ),
        measure(
            "cart, 500 × `Item { sku, qty, name }`",
            &big::Cart::make(),
            batch,
        ),
        measure(
            "nested struct with `Option` and enum fields",
            &profile(),
            batch,
        ),
        measure("`HashMap<String, i64>`, 20 entries", &preferences(), batch),
    ];
    let mut clean = true;
    let mut out = String::new();
    let header = |out: &mut String, first: &str| {
        let _ = write!(out, "| {first} |");
        for name in &names {
            let _ = write!(out, " {name} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in &names {
            let _ = write!(out, "---:|");
        }
        out.push('\n');
    };
    let _ = writeln!(out, "### Encoded size, bytes\n");
    header(&mut out, "value");
    for (label, cells) in &rows {
        let _ = write!(out, "| {label} |");
        for cell in cells {
            match cell {
                Cell::Done { size, .. } => {
                    let _ = write!(out, " {} |", thousands(*size));
                }
                Cell::Failed(error) => {
                    clean = false;
                    let _ = write!(out, " failed: {error} |");
                }
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\n### Time per value, encode / decode\n\nThe best of {BATCHES} batches of {} ms each.\n",
        (batch.as_secs_f64() * 1000.0).round()
    );
    header(&mut out, "value");
    for (label, cells) in &rows {
        let _ = write!(out, "| {label} |");
        for cell in cells {
            match cell {
                Cell::Done { encode, decode, .. } => {
                    let _ = write!(out, " {} / {} |", time_text(*encode), time_text(*decode));
                }
                Cell::Failed(_) => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\n### Schema evolution\n\nVersion 1: `Profile {{ name: String, tags: Vec<String>, kind: Kind }}`, \
         `enum Kind {{ Free, Pro }}`; the values `Profile {{ name: \"ada\", tags: [\"x\"], kind: Pro }}` \
         and `Profile {{ name: \"bob\", tags: [], kind: Pro }}`, each read back as version 2. \
         ok = both give the expected version-2 value; error = decoding fails for one or both \
         (typed-sessions resets the field to its default and logs a warning); **wrong** = one \
         gives a different value, without any error.\n"
    );
    header(&mut out, "version 2");
    let mut wrongs = Vec::new();
    let mut errors = Vec::new();
    for (change, outcomes) in evolution() {
        let _ = write!(out, "| {change} |");
        for (outcome, name) in outcomes.iter().zip(&names) {
            match outcome {
                Outcome::Correct => out.push_str(" ok |"),
                Outcome::Refused(error) => {
                    out.push_str(" error |");
                    errors.push(format!("- {name}, {change}: {error}"));
                }
                Outcome::Wrong(got) => {
                    out.push_str(" **wrong** |");
                    wrongs.push(format!("- {name}, {change}: {got}"));
                }
            }
        }
        out.push('\n');
    }
    for (title, list) in [("The wrong values", wrongs), ("The errors", errors)] {
        if !list.is_empty() {
            let _ = writeln!(out, "\n{title}:\n");
            for line in list {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    (out, clean)
}

fn main() -> ExitCode {
    let mut batch = Duration::from_millis(10);
    let mut out_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => batch = Duration::from_micros(200),
            "--out" => match args.next() {
                Some(path) => out_file = Some(path),
                None => {
                    eprintln!("--out needs a file");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!(
                    "usage: cargo run --release -p typed-sessions-bench --bin codecs -- [--smoke] [--out FILE]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let (text, clean) = report(batch);
    println!("{text}");
    if let Some(path) = out_file
        && let Err(error) = std::fs::write(&path, &text)
    {
        eprintln!("{path}: {error}");
        return ExitCode::FAILURE;
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: a format failed to round-trip a value (see the table)");
        ExitCode::FAILURE
    }
}
