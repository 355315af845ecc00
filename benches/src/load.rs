//! The engine of the load generators: `jaunt-bench` here, and the baselines of
//! `benches/compare` (`tonic-bench`, `tarpc-bench`, `raw-echo`), which depend on this crate so
//! that every system is driven, timed and reported by the same code.
//!
//! - [`ClientOpts`] / [`ServerOpts`]: the command-line flags every load generator takes
//!   (hand-rolled parsing, no extra crate).
//! - [`Caller`]: one caller, making one call at a time; [`run`] drives `c` of them until `n`
//!   calls are done, after an untimed warm-up, and measures every call.
//! - [`Report`]: throughput, mean, median, p99, p99.9, max and errors, printed as text or as
//!   one JSON line (`--json`); [`summarize`] turns the reports of `benches/compare.sh` into
//!   its table and `compare.json`.
//!
//! ```
//! use jaunt_benches::load::{run, Caller, LoadPlan};
//!
//! struct Nop;
//! impl Caller for Nop {
//!     async fn call(&mut self) -> Result<(), String> {
//!         Ok(())
//!     }
//! }
//!
//! let rt = jaunt_benches::load::runtime(1);
//! let outcome = rt.block_on(run(&LoadPlan { n: 100, warmup: 10, progress: false }, vec![Nop, Nop]));
//! assert_eq!(outcome.ok, 100);
//! assert_eq!(outcome.errors, 0);
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

use crate::{BENCH_URI, MESSAGE_LEN};

/// One caller of a load run: a connection (or a share of one) and the request it sends.
///
/// `call` makes one call and checks its reply; an `Err` (with a message for the first error
/// printed) counts as an error and its latency is not recorded.
pub trait Caller: Send + 'static {
    /// Makes one call and waits for its reply.
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// How many calls a run makes.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    /// Timed calls, shared among the callers.
    pub n: u64,
    /// Untimed calls made first, shared among the callers likewise.
    pub warmup: u64,
    /// Show a progress line on stderr (only done when stderr is a terminal).
    pub progress: bool,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Calls answered correctly.
    pub ok: u64,
    /// Calls that failed (an error status, a lost connection, a wrong reply).
    pub errors: u64,
    /// Errors during the warm-up (not counted in `errors`).
    pub warmup_errors: u64,
    /// The first error's message.
    pub first_error: Option<String>,
    /// From the start of the timed calls until the last of them returned.
    pub elapsed: Duration,
    /// The latency of every successful call, in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
}

/// Runs `plan.warmup` untimed calls, then `plan.n` timed calls, spread over `callers`
/// (one task per caller, each with one call outstanding at a time; a caller takes the next
/// call from a shared counter, so fast callers make more of them).
///
/// The clock starts once every caller has finished its share of the warm-up and stops when
/// the last timed call returns. Each call is timed on its own (`Instant` around
/// [`Caller::call`]).
pub async fn run<C: Caller>(plan: &LoadPlan, callers: Vec<C>) -> Outcome {
    let c = callers.len();
    assert!(c > 0, "a load run needs at least one caller");
    let n = plan.n;
    let warmup = plan.warmup;
    let warm_counter = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let warm_done = Arc::new(Barrier::new(c + 1));
    let go = Arc::new(Barrier::new(c + 1));
    let per_caller = (n / c as u64 + 16) as usize;

    let mut tasks = Vec::with_capacity(c);
    for mut caller in callers {
        let warm_counter = warm_counter.clone();
        let counter = counter.clone();
        let done = done.clone();
        let warm_done = warm_done.clone();
        let go = go.clone();
        tasks.push(tokio::spawn(async move {
            let mut warmup_errors = 0u64;
            let mut first_error = None;
            while warm_counter.fetch_add(1, Ordering::Relaxed) < warmup {
                if let Err(e) = caller.call().await {
                    warmup_errors += 1;
                    first_error.get_or_insert(format!("(warm-up) {e}"));
                }
            }
            warm_done.wait().await;
            go.wait().await;
            let mut latencies = Vec::with_capacity(per_caller);
            let mut errors = 0u64;
            while counter.fetch_add(1, Ordering::Relaxed) < n {
                let started = Instant::now();
                let result = caller.call().await;
                let took = started.elapsed();
                match result {
                    Ok(()) => latencies.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            let finished = Instant::now();
            // The caller (and its connection) is dropped here, after the clock stopped.
            drop(caller);
            (latencies, errors, warmup_errors, first_error, finished)
        }));
    }

    warm_done.wait().await;
    let start = Instant::now();
    go.wait().await;
    let progress = (plan.progress && std::io::stderr().is_terminal())
        .then(|| tokio::spawn(show_progress(done.clone(), n, start)));

    let mut outcome = Outcome {
        ok: 0,
        errors: 0,
        warmup_errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies_ns: Vec::with_capacity(n as usize),
    };
    let mut last = start;
    for task in tasks {
        match task.await {
            Ok((latencies, errors, warmup_errors, first_error, finished)) => {
                outcome.ok += latencies.len() as u64;
                outcome.latencies_ns.extend_from_slice(&latencies);
                outcome.errors += errors;
                outcome.warmup_errors += warmup_errors;
                if outcome.first_error.is_none() {
                    outcome.first_error = first_error;
                }
                last = last.max(finished);
            }
            Err(e) => {
                outcome.errors += 1;
                outcome
                    .first_error
                    .get_or_insert_with(|| format!("caller task failed: {e}"));
            }
        }
    }
    outcome.elapsed = last - start;
    if let Some(progress) = progress {
        progress.abort();
        eprint!("\r{:72}\r", "");
    }
    outcome.latencies_ns.sort_unstable();
    outcome
}

/// Prints `\r[####      ]  40%  400000/1000000 calls  81234 calls/s` every half second
/// (only started when stderr is a terminal, and only from the second second on, so short
/// runs print nothing).
async fn show_progress(done: Arc<AtomicU64>, n: u64, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.tick().await;
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        if elapsed < Duration::from_secs(1) {
            continue;
        }
        let count = done.load(Ordering::Relaxed).min(n);
        let fraction = if n == 0 { 1.0 } else { count as f64 / n as f64 };
        let filled = (fraction * 30.0) as usize;
        let rate = count as f64 / elapsed.as_secs_f64();
        eprint!(
            "\r[{}{}] {:>3.0}% {count}/{n} calls {rate:.0} calls/s ",
            "#".repeat(filled),
            " ".repeat(30 - filled.min(30)),
            fraction * 100.0
        );
        let _ = std::io::stderr().flush();
        if count >= n {
            break;
        }
    }
}

/// The value at quantile `q` (0..=1) of sorted `values`, by the nearest-rank method: the
/// smallest value such that at least `q` of all values are at or below it.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A run's result, as printed and as written by `--json` (one line).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// `jaunt`, `tonic`, `tarpc` or `raw-echo`.
    pub system: String,
    /// Timed calls made.
    pub n: u64,
    /// Callers (concurrency).
    pub c: usize,
    /// Connections the callers share.
    pub conns: usize,
    /// Request body length, in bytes.
    pub body_bytes: usize,
    /// Correct replies.
    pub ok: u64,
    /// Failed calls.
    pub errors: u64,
    /// Failed warm-up calls (not in `errors`).
    pub warmup_errors: u64,
    /// Untimed warm-up calls made before the clock started.
    pub warmup: u64,
    /// Wall-clock time of the timed calls, in seconds.
    pub secs: f64,
    /// Correct replies per second.
    pub calls_per_s: f64,
    /// Mean latency of the correct calls, in milliseconds.
    pub mean_ms: f64,
    /// Median latency (p50), in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// 99.9th percentile, in milliseconds.
    pub p999_ms: f64,
    /// Slowest correct call, in milliseconds.
    pub max_ms: f64,
    /// Worker threads of the client's runtime.
    pub threads: usize,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl Report {
    /// Sums up `outcome`.
    pub fn new(system: &str, opts: &ClientOpts, body_bytes: usize, outcome: &Outcome) -> Report {
        let lat = &outcome.latencies_ns;
        let secs = outcome.elapsed.as_secs_f64();
        let mean = if lat.is_empty() {
            0.0
        } else {
            lat.iter().map(|&v| v as f64).sum::<f64>() / lat.len() as f64 / 1e6
        };
        Report {
            system: system.to_owned(),
            n: opts.n,
            c: opts.c,
            conns: opts.connections(),
            body_bytes,
            ok: outcome.ok,
            errors: outcome.errors,
            warmup_errors: outcome.warmup_errors,
            warmup: opts.warmup_calls(),
            secs,
            calls_per_s: if secs > 0.0 {
                outcome.ok as f64 / secs
            } else {
                0.0
            },
            mean_ms: mean,
            p50_ms: ms(quantile(lat, 0.5)),
            p99_ms: ms(quantile(lat, 0.99)),
            p999_ms: ms(quantile(lat, 0.999)),
            max_ms: ms(lat.last().copied().unwrap_or(0)),
            threads: opts.threads,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// The report as text, for a person.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "system:     {} ({}-byte request, {} callers on {} connections, {} client threads)",
            self.system, self.body_bytes, self.c, self.conns, self.threads
        );
        let _ = writeln!(
            out,
            "calls:      {} timed in {:.3} s after {} untimed warm-up calls; {} ok, {} errors",
            self.n, self.secs, self.warmup, self.ok, self.errors
        );
        let _ = writeln!(out, "throughput: {:.0} calls/s", self.calls_per_s);
        let _ = writeln!(
            out,
            "latency:    mean {:.3} ms, median {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
            self.mean_ms, self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        );
        out
    }
}

/// Prints `report` (text, or JSON with `--json`) to stdout and the first error, if any, to
/// stderr. Returns the process exit code: 0 without errors, 1 with.
pub fn print_report(report: &Report, outcome: &Outcome, json: bool) -> i32 {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if let Some(e) = &outcome.first_error {
        eprintln!(
            "{} errors ({} during warm-up); the first: {e}",
            outcome.errors + outcome.warmup_errors,
            outcome.warmup_errors
        );
    }
    i32::from(outcome.errors > 0 || outcome.warmup_errors > 0)
}

/// A multi-threaded tokio runtime with `threads` workers (at least 1), timers and IO on.
pub fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime")
}

/// Tells the script that started a server where it listens: `LISTENING addr` on stdout,
/// flushed at once.
pub fn announce(addr: impl std::fmt::Display) {
    println!("LISTENING {addr}");
    let _ = std::io::stdout().flush();
}

/// Parses a count: digits with optional `_` separators and an optional `k` / `m` suffix
/// (`1_000_000`, `1000k`, `1m`).
pub fn parse_count(text: &str) -> Result<u64, String> {
    let clean: String = text.chars().filter(|&ch| ch != '_').collect();
    let (digits, factor) = match clean.chars().last() {
        Some('k' | 'K') => (&clean[..clean.len() - 1], 1_000),
        Some('m' | 'M') => (&clean[..clean.len() - 1], 1_000_000),
        _ => (&clean[..], 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(factor))
        .ok_or_else(|| format!("not a count: {text:?}"))
}

/// The flags of a load generator's `client` mode, the same for every system.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOpts {
    /// `--addr HOST:PORT`: the server.
    pub addr: String,
    /// `-n N`: timed calls (default 100000).
    pub n: u64,
    /// `-c C`: concurrent callers, each with one call outstanding (default 100).
    pub c: usize,
    /// `--conns K`: connections the callers share (default: one per caller, as rpcx's
    /// benchmark does).
    pub conns: Option<usize>,
    /// `--uri U`: the uri pulled (default `/bench/echo`; Jaunt only).
    pub uri: String,
    /// `--codec ID`: the body codec, one letter (default `p`, protobuf; Jaunt only).
    pub codec: u8,
    /// `--size BYTES`: send a raw body of this many bytes instead of the benchmark message
    /// (codec `s` unless `--codec` says otherwise), echoed back as it is.
    pub size: Option<usize>,
    /// `--warmup N`: untimed calls first (default: n / 10, at most 20000, at least 2 per caller).
    pub warmup: Option<u64>,
    /// `--json`: print the report as one JSON line.
    pub json: bool,
    /// `--threads T`: worker threads of the client's runtime (default 2).
    pub threads: usize,
    /// `--no-progress`: never show the progress line.
    pub no_progress: bool,
}

impl Default for ClientOpts {
    fn default() -> Self {
        ClientOpts {
            addr: String::new(),
            n: 100_000,
            c: 100,
            conns: None,
            uri: BENCH_URI.to_owned(),
            codec: b'p',
            size: None,
            warmup: None,
            json: false,
            threads: 2,
            no_progress: false,
        }
    }
}

impl ClientOpts {
    /// Parses the flags after `client`.
    pub fn parse(args: &[String]) -> Result<ClientOpts, String> {
        let mut opts = ClientOpts::default();
        let mut codec_given = false;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let (flag, inline) = match flag.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (flag.as_str(), None),
            };
            let mut value = || -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag {
                "--addr" | "-a" => opts.addr = value()?,
                "-n" => opts.n = parse_count(&value()?)?,
                "-c" => opts.c = parse_count(&value()?)? as usize,
                "--conns" => opts.conns = Some(parse_count(&value()?)? as usize),
                "--uri" => opts.uri = value()?,
                "--codec" => {
                    let v = value()?;
                    opts.codec = match v.as_bytes() {
                        [id] => *id,
                        _ => match v.as_str() {
                            "protobuf" => b'p',
                            "json" => b'j',
                            "plain" => b's',
                            _ => return Err(format!("--codec wants one letter (p, j, s…): {v:?}")),
                        },
                    };
                    codec_given = true;
                }
                "--size" => opts.size = Some(parse_count(&value()?)? as usize),
                "--warmup" => opts.warmup = Some(parse_count(&value()?)?),
                "--threads" => opts.threads = parse_count(&value()?)? as usize,
                "--json" => opts.json = true,
                "--no-progress" => opts.no_progress = true,
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        if opts.addr.is_empty() {
            return Err("--addr HOST:PORT is required".to_owned());
        }
        if opts.c == 0 || opts.n == 0 {
            return Err("-n and -c must be at least 1".to_owned());
        }
        if opts.conns == Some(0) {
            return Err("--conns must be at least 1".to_owned());
        }
        if opts.size.is_some() && !codec_given {
            opts.codec = b's';
        }
        Ok(opts)
    }

    /// Connections to open: `--conns`, or one per caller.
    pub fn connections(&self) -> usize {
        self.conns.unwrap_or(self.c).clamp(1, self.c)
    }

    /// Untimed calls before the clock starts.
    pub fn warmup_calls(&self) -> u64 {
        self.warmup
            .unwrap_or_else(|| (self.n / 10).min(20_000).max(2 * self.c as u64))
    }

    /// The request body length: `--size`, or the benchmark message's 581 bytes.
    pub fn body_len(&self) -> usize {
        self.size.unwrap_or(MESSAGE_LEN)
    }

    /// The load plan of these options.
    pub fn plan(&self) -> LoadPlan {
        LoadPlan {
            n: self.n,
            warmup: self.warmup_calls(),
            progress: !self.no_progress && !self.json,
        }
    }
}

/// The flags of a load generator's `server` mode.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerOpts {
    /// `--addr HOST:PORT` (default `127.0.0.1:0`: a free port, printed on the `LISTENING`
    /// line).
    pub addr: String,
    /// `--threads T`: worker threads of the server's runtime (default 2).
    pub threads: usize,
    /// `--lifetime SECS`: exit after this long, a safety net for scripts (default 3600).
    pub lifetime: Duration,
}

impl ServerOpts {
    /// Parses the flags after `server`.
    pub fn parse(args: &[String]) -> Result<ServerOpts, String> {
        let mut opts = ServerOpts {
            addr: "127.0.0.1:0".to_owned(),
            threads: 2,
            lifetime: Duration::from_secs(3600),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--addr" | "-a" => opts.addr = value()?,
                "--threads" => opts.threads = parse_count(&value()?)? as usize,
                "--lifetime" => opts.lifetime = Duration::from_secs(parse_count(&value()?)?),
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        Ok(opts)
    }
}

/// The usage text of the common flags, for each binary's `--help`.
pub const CLIENT_FLAGS: &str = "\
  client --addr HOST:PORT [-n N] [-c C] [--conns K] [--warmup N] [--threads T] [--json] [--no-progress]
         [--uri U] [--codec p|j|s] [--size BYTES]
    -n N           timed calls (default 100000; 1_000_000, 100k and 1m are accepted)
    -c C           concurrent callers, one call outstanding each (default 100)
    --conns K      connections shared by the callers (default: one per caller)
    --warmup N     untimed calls before the clock starts (default n/10, at most 20000)
    --threads T    client runtime worker threads (default 2)
    --json         print the report as one JSON line
    --uri U        uri to pull (default /bench/echo)
    --codec ID     body codec: p (protobuf, default), j (JSON), s (plain; default with --size)
    --size BYTES   send a raw body of BYTES bytes, echoed back as it is
  server [--addr HOST:PORT] [--threads T] [--lifetime SECS]
    prints `LISTENING addr` once it listens (default 127.0.0.1:0, a free port)";

/// The systems of `compare.sh`, in the order of its table.
pub const SYSTEMS: [&str; 4] = ["jaunt", "tonic", "tarpc", "raw-echo"];

/// One line of `target/bench/compare.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CompareRow {
    /// The system.
    pub system: String,
    /// Its throughput.
    pub calls_per_s: f64,
    /// Its median latency.
    pub p50_ms: f64,
    /// Its p99 latency.
    pub p99_ms: f64,
    /// Its p99.9 latency.
    pub p999_ms: f64,
}

/// Picks, per system, the run with the highest throughput among `reports` (the best of the
/// rounds), in the order of [`SYSTEMS`] (others after, by name). Returns the chosen reports.
pub fn best_per_system(reports: &[Report]) -> Vec<Report> {
    let mut best: BTreeMap<String, Report> = BTreeMap::new();
    for r in reports {
        match best.get(&r.system) {
            Some(b) if b.calls_per_s >= r.calls_per_s => {}
            _ => {
                best.insert(r.system.clone(), r.clone());
            }
        }
    }
    let mut out = Vec::new();
    for system in SYSTEMS {
        if let Some(r) = best.remove(system) {
            out.push(r);
        }
    }
    out.extend(best.into_values());
    out
}

/// The table `compare.sh` prints: per system its best round's throughput, that figure's
/// ratio to Jaunt's best, that round's latencies, the errors of all rounds, the median
/// throughput over the rounds and its ratio to Jaunt's median, and every round's throughput.
pub fn compare_table(reports: &[Report]) -> String {
    let best = best_per_system(reports);
    let jaunt = best.iter().find(|r| r.system == "jaunt");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| system | calls/s (best) | jaunt ÷ system | p50 ms | p99 ms | p99.9 ms | max ms | errors | median calls/s | jaunt ÷ system (medians) | every round (calls/s) |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let jaunt_median = median_calls_per_s(reports, "jaunt");
    for r in &best {
        let ratio = match jaunt {
            Some(j) if r.calls_per_s > 0.0 => format!("{:.2}×", j.calls_per_s / r.calls_per_s),
            _ => "-".to_owned(),
        };
        let rounds: Vec<String> = reports
            .iter()
            .filter(|x| x.system == r.system)
            .map(|x| format!("{:.0}", x.calls_per_s))
            .collect();
        let errors: u64 = reports
            .iter()
            .filter(|x| x.system == r.system)
            .map(|x| x.errors + x.warmup_errors)
            .sum();
        let median = median_calls_per_s(reports, &r.system);
        let median_ratio = if median > 0.0 && jaunt_median > 0.0 {
            format!("{:.2}×", jaunt_median / median)
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {:.0} | {} | {} |",
            r.system,
            r.calls_per_s,
            ratio,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms,
            errors,
            median,
            median_ratio,
            rounds.join(", ")
        );
    }
    out
}

/// The median throughput of `system`'s runs (the mean of the two middle ones for an even
/// count); 0 without runs.
pub fn median_calls_per_s(reports: &[Report], system: &str) -> f64 {
    let mut v: Vec<f64> = reports
        .iter()
        .filter(|r| r.system == system)
        .map(|r| r.calls_per_s)
        .collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// The rows of `compare.json` (best run per system).
pub fn compare_rows(reports: &[Report]) -> Vec<CompareRow> {
    best_per_system(reports)
        .into_iter()
        .map(|r| CompareRow {
            system: r.system,
            calls_per_s: r.calls_per_s,
            p50_ms: r.p50_ms,
            p99_ms: r.p99_ms,
            p999_ms: r.p999_ms,
        })
        .collect()
}

/// `summarize --out FILE REPORT...`: reads the JSON reports (one per file, or one per
/// line), prints the comparison table and writes `compare.json` to `FILE`. Returns the exit
/// code (1 if any run had errors or a file could not be read).
pub fn summarize(args: &[String]) -> i32 {
    let mut out_path = None;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--out" {
            out_path = it.next().cloned();
        } else {
            files.push(arg.clone());
        }
    }
    let mut reports = Vec::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                eprintln!("cannot read {file}: {e}");
                return 1;
            }
        };
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            match serde_json::from_str::<Report>(line) {
                Ok(r) => reports.push(r),
                Err(e) => {
                    eprintln!("{file}: not a report: {e}");
                    return 1;
                }
            }
        }
    }
    print!("{}", compare_table(&reports));
    if let Some(path) = out_path {
        let rows = compare_rows(&reports);
        let json = serde_json::to_string_pretty(&rows).expect("rows serialize");
        if let Some(dir) = std::path::Path::new(&path).parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(&path, json + "\n") {
            eprintln!("cannot write {path}: {e}");
            return 1;
        }
        println!("wrote {path}");
    }
    i32::from(reports.iter().any(|r| r.errors > 0 || r.warmup_errors > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(quantile(&v, 0.5), 500);
        assert_eq!(quantile(&v, 0.99), 990);
        assert_eq!(quantile(&v, 0.999), 999);
        assert_eq!(quantile(&v, 1.0), 1000);
        assert_eq!(quantile(&v, 0.0), 1);
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[7], 0.999), 7);
    }

    #[test]
    fn counts_parse() {
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("100k"), Ok(100_000));
        assert_eq!(parse_count("2m"), Ok(2_000_000));
        assert!(parse_count("x").is_err());
    }

    #[test]
    fn client_flags_parse() {
        let o =
            ClientOpts::parse(&args("--addr 127.0.0.1:1 -n 1k -c 10 --conns 2 --json")).unwrap();
        assert_eq!((o.n, o.c, o.connections(), o.json), (1000, 10, 2, true));
        assert_eq!(o.codec, b'p');
        assert_eq!(o.body_len(), MESSAGE_LEN);
        let o = ClientOpts::parse(&args("--addr=x:1 --size 64")).unwrap();
        assert_eq!((o.codec, o.body_len(), o.connections()), (b's', 64, 100));
        let o = ClientOpts::parse(&args("--addr x:1 --size 64 --codec j")).unwrap();
        assert_eq!(o.codec, b'j');
        assert!(ClientOpts::parse(&args("-n 10")).is_err());
        assert!(ClientOpts::parse(&args("--addr x:1 --bogus")).is_err());
        // More connections than callers is capped: a connection without a caller is idle.
        let o = ClientOpts::parse(&args("--addr x:1 -c 4 --conns 8")).unwrap();
        assert_eq!(o.connections(), 4);
    }

    #[test]
    fn run_counts_every_call_once() {
        struct Flaky(u64);
        impl Caller for Flaky {
            async fn call(&mut self) -> Result<(), String> {
                self.0 += 1;
                if self.0.is_multiple_of(10) {
                    Err("every tenth".to_owned())
                } else {
                    Ok(())
                }
            }
        }
        let rt = runtime(2);
        let plan = LoadPlan {
            n: 1000,
            warmup: 0,
            progress: false,
        };
        let out = rt.block_on(run(&plan, vec![Flaky(0), Flaky(0), Flaky(0)]));
        assert_eq!(out.ok + out.errors, 1000);
        assert!(out.errors >= 90 && out.errors <= 100, "{}", out.errors);
        assert_eq!(out.latencies_ns.len() as u64, out.ok);
        assert!(out.latencies_ns.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(out.first_error.as_deref(), Some("every tenth"));
    }

    #[test]
    fn compare_picks_the_best_round() {
        let mk = |system: &str, cps: f64| Report {
            system: system.to_owned(),
            n: 1,
            c: 1,
            conns: 1,
            body_bytes: 581,
            ok: 1,
            errors: 0,
            warmup_errors: 0,
            warmup: 0,
            secs: 1.0,
            calls_per_s: cps,
            mean_ms: 1.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            p999_ms: 3.0,
            max_ms: 4.0,
            threads: 2,
        };
        let reports = vec![
            mk("tonic", 10.0),
            mk("jaunt", 30.0),
            mk("jaunt", 40.0),
            mk("tonic", 20.0),
        ];
        let rows = compare_rows(&reports);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].system, "jaunt");
        assert_eq!(rows[0].calls_per_s, 40.0);
        assert_eq!(rows[1].calls_per_s, 20.0);
        let table = compare_table(&reports);
        assert!(table.contains("| tonic | 20 | 2.00× |"), "{table}");
        assert!(table.contains("| 15 | 2.33× |"), "{table}");
        assert_eq!(median_calls_per_s(&reports, "jaunt"), 35.0);
        assert_eq!(median_calls_per_s(&reports, "none"), 0.0);
        // The round-trip of a report through its JSON line.
        let r = mk("raw-echo", 5.0);
        assert_eq!(serde_json::from_str::<Report>(&r.to_json()).unwrap(), r);
    }
}
