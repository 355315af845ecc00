//! A run's report: what a person reads, and one line of JSON for scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::run::Outcome;

/// What a run was, for its report: who called, how, with what.
#[derive(Debug, Clone, PartialEq)]
pub struct RunShape {
    /// The system under test (`jaunt`, `tonic`, ...), or the target (`127.0.0.1:9090/echo`).
    pub system: String,
    /// Concurrent callers.
    pub c: usize,
    /// Connections the callers share.
    pub conns: usize,
    /// Worker threads of the client's runtime.
    pub threads: usize,
    /// Request body length, in bytes.
    pub body_bytes: usize,
    /// Untimed warm-up calls made first.
    pub warmup: u64,
    /// Open loop: the calls per second asked for.
    pub rate: Option<f64>,
}

/// One percentile of the latencies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Percentile {
    /// The percentile (`99.9` for p99.9).
    pub p: f64,
    /// The latency, in milliseconds.
    pub ms: f64,
}

/// One range of the latency histogram.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Bucket {
    /// The range's upper bound, in milliseconds.
    pub le_ms: f64,
    /// Calls in the range.
    pub count: u64,
}

/// A run's result, as printed and as written as JSON (one line).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// The system under test, or the target.
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
    /// Fastest correct call, in milliseconds.
    #[serde(default)]
    pub min_ms: f64,
    /// Open loop: the calls per second asked for (`None`: closed loop).
    #[serde(default)]
    pub rate: Option<f64>,
    /// Open loop: calls that started after they were due (timed from when they were due).
    #[serde(default)]
    pub late: u64,
    /// p10, p25, p50, p75, p90, p95, p99, p99.9, p99.99.
    #[serde(default)]
    pub percentiles: Vec<Percentile>,
    /// Ten equal ranges from the fastest call to the slowest.
    #[serde(default)]
    pub histogram: Vec<Bucket>,
    /// Failed calls by message.
    #[serde(default)]
    pub error_counts: BTreeMap<String, u64>,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The quantiles a report lists, as percentiles.
const QUANTILES: [f64; 9] = [0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999];

impl Report {
    /// Sums up `outcome` of a run shaped as `shape`.
    pub fn new(shape: &RunShape, outcome: &Outcome) -> Report {
        let lat = &outcome.latencies;
        let secs = outcome.elapsed.as_secs_f64();
        Report {
            system: shape.system.clone(),
            n: outcome.calls(),
            c: shape.c,
            conns: shape.conns,
            body_bytes: shape.body_bytes,
            ok: outcome.ok,
            errors: outcome.errors,
            warmup_errors: outcome.warmup_errors,
            warmup: shape.warmup,
            secs,
            calls_per_s: if secs > 0.0 {
                outcome.ok as f64 / secs
            } else {
                0.0
            },
            mean_ms: lat.mean_ns() / 1e6,
            p50_ms: ms(lat.quantile_ns(0.5)),
            p99_ms: ms(lat.quantile_ns(0.99)),
            p999_ms: ms(lat.quantile_ns(0.999)),
            max_ms: ms(lat.max_ns()),
            threads: shape.threads,
            min_ms: ms(lat.min_ns()),
            rate: shape.rate,
            late: outcome.late,
            percentiles: QUANTILES
                .iter()
                .map(|&q| Percentile {
                    p: (q * 1e4).round() / 100.0,
                    ms: ms(lat.quantile_ns(q)),
                })
                .collect(),
            histogram: lat
                .bins(10)
                .into_iter()
                .map(|(le, count)| Bucket {
                    le_ms: ms(le),
                    count,
                })
                .collect(),
            error_counts: outcome.error_counts.clone(),
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// The report as text, for a person: a summary, the latency histogram, the percentiles
    /// and the errors by message.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let pace = match self.rate {
            Some(rate) => format!("open loop at {rate} calls/s"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(out, "Summary:");
        let _ = writeln!(out, "  Target:     {}", self.system);
        let _ = writeln!(
            out,
            "  Shape:      {}-byte request, {} callers on {} connections, {} client threads, {pace}",
            self.body_bytes, self.c, self.conns, self.threads
        );
        let _ = writeln!(
            out,
            "  Calls:      {} timed in {:.3} s after {} untimed warm-up calls; {} ok, {} errors",
            self.n, self.secs, self.warmup, self.ok, self.errors
        );
        if self.rate.is_some() {
            let _ = writeln!(
                out,
                "  Late:       {} calls started after they were due (timed from when they were due)",
                self.late
            );
        }
        let _ = writeln!(out, "  Throughput: {:.0} calls/s", self.calls_per_s);
        let _ = writeln!(
            out,
            "  Latency:    mean {:.3} ms, fastest {:.3} ms, median {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, slowest {:.3} ms",
            self.mean_ms, self.min_ms, self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        );
        if !self.histogram.is_empty() {
            let _ = writeln!(out, "\nLatency histogram (ms):");
            let most = self
                .histogram
                .iter()
                .map(|b| b.count)
                .max()
                .unwrap_or(1)
                .max(1);
            for b in &self.histogram {
                let bar = "■".repeat((b.count * 40).div_ceil(most) as usize);
                let _ = writeln!(out, "  {:>10.3} [{:>8}] |{bar}", b.le_ms, b.count);
            }
        }
        if !self.percentiles.is_empty() {
            let _ = writeln!(out, "\nLatency distribution:");
            for p in &self.percentiles {
                let _ = writeln!(out, "  {:>6}% in {:.3} ms", p.p, p.ms);
            }
        }
        if !self.error_counts.is_empty() {
            let _ = writeln!(out, "\nErrors:");
            for (message, n) in &self.error_counts {
                let _ = writeln!(out, "  [{n}] {message}");
            }
        }
        out
    }

    /// Prints the report (text, or one JSON line) to stdout and the first error, if any, to
    /// stderr. Returns the process exit code: 0 without errors, 1 with.
    pub fn print(&self, outcome: &Outcome, json: bool) -> i32 {
        if json {
            println!("{}", self.to_json());
        } else {
            print!("{}", self.to_text());
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn shape() -> RunShape {
        RunShape {
            system: "test".to_owned(),
            c: 2,
            conns: 1,
            threads: 1,
            body_bytes: 10,
            warmup: 0,
            rate: None,
        }
    }

    #[test]
    fn a_report_sums_up_its_outcome() {
        let mut outcome = Outcome::default();
        for v in 1..=100u64 {
            outcome.latencies.record(Duration::from_millis(v));
        }
        outcome.ok = 100;
        outcome.errors = 2;
        outcome.error_counts.insert("404 not found".to_owned(), 2);
        outcome.elapsed = Duration::from_secs(2);
        let r = Report::new(&shape(), &outcome);
        assert_eq!((r.n, r.ok, r.errors), (102, 100, 2));
        assert_eq!(r.calls_per_s, 50.0);
        assert!((r.p50_ms - 50.0).abs() < 0.1, "{}", r.p50_ms);
        assert!((r.p99_ms - 99.0).abs() < 0.1, "{}", r.p99_ms);
        assert!((r.max_ms - 100.0).abs() < 0.1);
        assert!((r.min_ms - 1.0).abs() < 0.01);
        assert_eq!(r.percentiles.len(), QUANTILES.len());
        let p999 = r.percentiles.iter().find(|p| p.p == 99.9).unwrap();
        assert_eq!(p999.ms, r.p999_ms);
        assert_eq!(r.histogram.iter().map(|b| b.count).sum::<u64>(), 100);
        let text = r.to_text();
        assert!(text.contains("102 timed"), "{text}");
        assert!(text.contains("[2] 404 not found"), "{text}");
        assert!(text.contains("99.9% in"), "{text}");
        // The JSON line reads back, and so does an older report without the newer fields.
        assert_eq!(serde_json::from_str::<Report>(&r.to_json()).unwrap(), r);
        let mut old: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in [
            "min_ms",
            "rate",
            "late",
            "percentiles",
            "histogram",
            "error_counts",
        ] {
            old.as_object_mut().unwrap().remove(key);
        }
        let old: Report = serde_json::from_value(old).unwrap();
        assert_eq!(old.calls_per_s, 50.0);
    }
}
