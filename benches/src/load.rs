//! The load generators' side of the compare harness: `jaunt-bench` here, and the baselines of
//! `benches/compare` (`tonic-bench`, `tarpc-bench`, `raw-echo`), which depend on this crate so
//! that every system is driven, timed and reported by the same code.
//!
//! The engine itself — callers, the clock, latency histograms, reports — is the
//! [`jaunt_load`] crate, which `jaunt bench` (the command line) runs on too; it is re-exported
//! here. This module adds what only the harness needs:
//!
//! - [`ClientOpts`] / [`ServerOpts`]: the command-line flags every load generator of the
//!   harness takes (clap);
//! - [`summarize`]: turns the reports of `benches/compare.sh` into its table and
//!   `compare.json`.
//!
//! ```
//! use jaunt_benches::load::{run, Caller, LoadPlan, Stop};
//!
//! struct Nop;
//! impl Caller for Nop {
//!     async fn call(&mut self) -> Result<(), String> {
//!         Ok(())
//!     }
//! }
//!
//! let rt = jaunt_benches::load::runtime(1);
//! let outcome = rt.block_on(run(&LoadPlan::new(Stop::Count(100)).warmup(10), vec![Nop, Nop]));
//! assert_eq!(outcome.ok, 100);
//! assert_eq!(outcome.errors, 0);
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use serde::{Deserialize, Serialize};

pub use jaunt_load::{
    parse_count, run, runtime, Caller, LoadPlan, Outcome, Report, RunShape, Stop,
};

use crate::{BENCH_URI, MESSAGE_LEN};

/// The value at quantile `q` (0..=1) of sorted `values`, by the nearest-rank method: the
/// smallest value such that at least `q` of all values are at or below it (for benchmarks
/// that keep every sample, like `abuse`).
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Tells the script that started a server where it listens: `LISTENING addr` on stdout,
/// flushed at once.
pub fn announce(addr: impl std::fmt::Display) {
    println!("LISTENING {addr}");
    let _ = std::io::stdout().flush();
}

fn count(text: &str) -> Result<u64, String> {
    parse_count(text)
}

fn count_usize(text: &str) -> Result<usize, String> {
    parse_count(text).and_then(|v| usize::try_from(v).map_err(|e| e.to_string()))
}

fn positive(text: &str) -> Result<usize, String> {
    match count_usize(text)? {
        0 => Err("must be at least 1".to_owned()),
        v => Ok(v),
    }
}

fn codec_letter(text: &str) -> Result<u8, String> {
    match (text.as_bytes(), text) {
        ([id], _) => Ok(*id),
        (_, "protobuf") => Ok(b'p'),
        (_, "json") => Ok(b'j'),
        (_, "plain") => Ok(b's'),
        _ => Err(format!(
            "one letter (p, j, s…) or protobuf, json, plain: {text:?}"
        )),
    }
}

/// The flags of a load generator's `client` mode, the same for every system.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "client",
    no_binary_name = true,
    about = "Runs the load against a server"
)]
pub struct ClientOpts {
    /// The server, HOST:PORT.
    #[arg(long, short = 'a')]
    pub addr: String,
    /// Timed calls (1_000_000, 100k and 1m are accepted).
    #[arg(short = 'n', default_value = "100000", value_parser = count)]
    pub n: u64,
    /// Concurrent callers, one call outstanding each.
    #[arg(short = 'c', default_value = "100", value_parser = positive)]
    pub c: usize,
    /// Connections the callers share (default: one per caller, as rpcx's benchmark does).
    #[arg(long, value_parser = positive)]
    pub conns: Option<usize>,
    /// The uri pulled (Jaunt only).
    #[arg(long, default_value = BENCH_URI)]
    pub uri: String,
    /// The body codec: p (protobuf; the default), j (JSON), s (plain; the default with
    /// --size). Jaunt only.
    #[arg(long, value_parser = codec_letter)]
    pub codec: Option<u8>,
    /// Send a raw body of this many bytes instead of the benchmark message, echoed back.
    #[arg(long, value_parser = count_usize)]
    pub size: Option<usize>,
    /// Untimed calls first (default: n / 10, at most 20000, at least 2 per caller).
    #[arg(long, value_parser = count)]
    pub warmup: Option<u64>,
    /// Print the report as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Worker threads of the client's runtime.
    #[arg(long, default_value = "2", value_parser = positive)]
    pub threads: usize,
    /// Never show the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl Default for ClientOpts {
    /// The defaults of every flag, with no address.
    fn default() -> Self {
        ClientOpts::try_parse_from(["--addr", ""]).expect("the defaults parse")
    }
}

impl ClientOpts {
    /// Parses the flags after `client`.
    pub fn parse(args: &[String]) -> Result<ClientOpts, String> {
        let opts = ClientOpts::try_parse_from(args).map_err(|e| e.to_string())?;
        if opts.n == 0 {
            return Err("-n must be at least 1".to_owned());
        }
        Ok(opts)
    }

    /// The `client` mode's usage text.
    pub fn help() -> String {
        ClientOpts::command().render_help().to_string()
    }

    /// The body codec: `--codec`, else `s` with `--size`, else `p`.
    pub fn codec(&self) -> u8 {
        self.codec
            .unwrap_or(if self.size.is_some() { b's' } else { b'p' })
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

    /// The load plan of these options (closed loop, `n` calls after the warm-up).
    pub fn plan(&self) -> LoadPlan {
        LoadPlan::new(Stop::Count(self.n))
            .warmup(self.warmup_calls())
            .progress(!self.no_progress && !self.json)
    }

    /// What a run of these options against `system` is, for its report.
    pub fn shape(&self, system: &str) -> RunShape {
        RunShape {
            system: system.to_owned(),
            c: self.c,
            conns: self.connections(),
            threads: self.threads,
            body_bytes: self.body_len(),
            warmup: self.warmup_calls(),
            rate: None,
        }
    }
}

/// The flags of a load generator's `server` mode.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "server",
    no_binary_name = true,
    about = "Serves the benchmark's echo"
)]
pub struct ServerOpts {
    /// Where to listen, HOST:PORT (port 0: a free port, printed on the `LISTENING` line).
    #[arg(long, short = 'a', default_value = "127.0.0.1:0")]
    pub addr: String,
    /// Worker threads of the server's runtime.
    #[arg(long, default_value = "2", value_parser = positive)]
    pub threads: usize,
    /// Exit after this many seconds, a safety net for scripts.
    #[arg(long = "lifetime", default_value = "3600", value_parser = seconds)]
    pub lifetime: Duration,
    /// Serve with the metrics plugin (jaunt-plugins' `Metrics`), to measure its cost.
    #[arg(long)]
    pub metrics: bool,
}

fn seconds(text: &str) -> Result<Duration, String> {
    parse_count(text).map(Duration::from_secs)
}

impl ServerOpts {
    /// Parses the flags after `server`.
    pub fn parse(args: &[String]) -> Result<ServerOpts, String> {
        ServerOpts::try_parse_from(args).map_err(|e| e.to_string())
    }

    /// The `server` mode's usage text.
    pub fn help() -> String {
        ServerOpts::command().render_help().to_string()
    }
}

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
    match SummarizeOpts::try_parse_from(args) {
        Ok(opts) => opts.run(),
        Err(e) => {
            let _ = e.print();
            e.exit_code()
        }
    }
}

/// The flags of `jaunt-bench summarize`.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "summarize",
    no_binary_name = true,
    about = "The comparison table of compare.sh, and its compare.json"
)]
pub struct SummarizeOpts {
    /// Also write the best run per system to FILE, as JSON.
    #[arg(long = "out", value_name = "FILE")]
    pub out_path: Option<String>,
    /// The reports (JSON lines, as `client --json` prints them).
    #[arg(value_name = "REPORT.json")]
    pub files: Vec<String>,
}

impl SummarizeOpts {
    /// Prints the table (and writes `--out`); returns the exit code.
    pub fn run(&self) -> i32 {
        let (out_path, files) = (self.out_path.clone(), &self.files);
        let mut reports = Vec::new();
        for file in files {
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
    fn client_flags_parse() {
        let o =
            ClientOpts::parse(&args("--addr 127.0.0.1:1 -n 1k -c 10 --conns 2 --json")).unwrap();
        assert_eq!((o.n, o.c, o.connections(), o.json), (1000, 10, 2, true));
        assert_eq!(o.codec(), b'p');
        assert_eq!(o.body_len(), MESSAGE_LEN);
        let o = ClientOpts::parse(&args("--addr=x:1 --size 64")).unwrap();
        assert_eq!((o.codec(), o.body_len(), o.connections()), (b's', 64, 100));
        let o = ClientOpts::parse(&args("--addr x:1 --size 64 --codec j")).unwrap();
        assert_eq!(o.codec(), b'j');
        let o = ClientOpts::parse(&args("--addr x:1 --codec json")).unwrap();
        assert_eq!(o.codec(), b'j');
        assert!(ClientOpts::parse(&args("-n 10")).is_err());
        assert!(ClientOpts::parse(&args("--addr x:1 --bogus")).is_err());
        assert!(ClientOpts::parse(&args("--addr x:1 -c 0")).is_err());
        assert!(ClientOpts::parse(&args("--addr x:1 -n 0")).is_err());
        assert!(ClientOpts::parse(&args("--addr x:1 --codec pb")).is_err());
        // More connections than callers is capped: a connection without a caller is idle.
        let o = ClientOpts::parse(&args("--addr x:1 -c 4 --conns 8")).unwrap();
        assert_eq!(o.connections(), 4);
        let o = ServerOpts::parse(&args("--lifetime 5 --threads 1")).unwrap();
        assert_eq!((o.addr.as_str(), o.threads), ("127.0.0.1:0", 1));
        assert_eq!(o.lifetime, Duration::from_secs(5));
        assert!(ClientOpts::help().contains("--conns"));
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
            min_ms: 0.5,
            rate: None,
            late: 0,
            percentiles: Vec::new(),
            histogram: Vec::new(),
            error_counts: BTreeMap::new(),
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
