//! The load engine of Jaunt: the one piece of code that drives, times and reports every load
//! run — `jaunt bench` (the command line), `jaunt-bench` (the compare harness) and the
//! baselines of `benches/compare` all run on it, so they cannot drift apart.
//!
//! - [`Caller`]: one caller (a connection, or a share of one) making one call at a time.
//! - [`LoadPlan`]: how long a run lasts ([`Stop`]: a count or a duration), its untimed
//!   warm-up, and its pace: **closed loop** (each caller calls again as soon as its reply
//!   arrives) or **open loop** at a fixed `rate` (calls are due on a schedule, whether or not
//!   the server keeps up).
//! - [`run`]: drives the callers through the plan and measures every call; an open-loop run
//!   corrects for *coordinated omission*: a call that could not start on time because every
//!   caller was still busy is timed from when it was due, not from when it went out.
//! - [`Outcome`] and [`Report`]: counts, the latency histogram ([`Latencies`], an
//!   HdrHistogram), percentiles, the error distribution; as text for a person or as JSON.
//!
//! ```
//! use jaunt_load::{run, Caller, LoadPlan, Stop};
//!
//! struct Nop;
//! impl Caller for Nop {
//!     async fn call(&mut self) -> Result<(), String> {
//!         Ok(())
//!     }
//! }
//!
//! let rt = jaunt_load::runtime(1);
//! let plan = LoadPlan::new(Stop::Count(100));
//! let outcome = rt.block_on(run(&plan, vec![Nop, Nop]));
//! assert_eq!(outcome.ok, 100);
//! assert_eq!(outcome.errors, 0);
//! assert_eq!(outcome.latencies.len(), 100);
//! ```

mod latencies;
mod plan;
mod progress;
mod report;
mod run;

pub use latencies::Latencies;
pub use plan::{LoadPlan, Stop};
pub use report::{Bucket, Percentile, Report, RunShape};
pub use run::{run, Caller, Outcome};

/// A multi-threaded tokio runtime with `threads` workers (at least 1), timers and IO on.
pub fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime")
}

/// Parses a count: digits with optional `_` separators and an optional `k` / `m` suffix
/// (`1_000_000`, `1000k`, `1m`).
///
/// ```
/// assert_eq!(jaunt_load::parse_count("100k"), Ok(100_000));
/// assert!(jaunt_load::parse_count("ten").is_err());
/// ```
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

#[cfg(test)]
mod tests {
    use super::parse_count;

    #[test]
    fn counts_parse() {
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("100k"), Ok(100_000));
        assert_eq!(parse_count("2m"), Ok(2_000_000));
        assert_eq!(parse_count("7"), Ok(7));
        assert!(parse_count("x").is_err());
        assert!(parse_count("").is_err());
        assert!(parse_count("99999999999999999999m").is_err());
    }
}
