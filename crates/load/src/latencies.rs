//! The latencies of a run: an HdrHistogram in nanoseconds, three significant digits, from
//! 1 ns to one hour (longer calls count as one hour). Its size does not grow with the number
//! of calls, so a run of any length holds the same memory.

use std::time::Duration;

use hdrhistogram::Histogram;

const LONGEST_NS: u64 = 3_600 * 1_000_000_000;

/// Recorded call latencies (see the module docs for range and precision).
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// No latencies yet.
    pub fn new() -> Latencies {
        Latencies {
            histogram: Histogram::new_with_bounds(1, LONGEST_NS, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// Records one call of `nanos` nanoseconds.
    pub fn record_ns(&mut self, nanos: u64) {
        self.histogram.saturating_record(nanos.clamp(1, LONGEST_NS));
    }

    /// Records one call of `took`.
    pub fn record(&mut self, took: Duration) {
        self.record_ns(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms of the same bounds always add");
    }

    /// How many calls were recorded.
    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    /// Whether no call was recorded.
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// The latency at quantile `q` (0..=1), in nanoseconds: the smallest recorded value such
    /// that at least `q` of all calls took no longer (within the histogram's precision);
    /// 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.is_empty() {
            return 0;
        }
        self.histogram.value_at_quantile(q.clamp(0.0, 1.0))
    }

    /// The mean, in nanoseconds (0 when empty).
    pub fn mean_ns(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.histogram.mean()
        }
    }

    /// The fastest call, in nanoseconds (0 when empty).
    pub fn min_ns(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.histogram.min()
        }
    }

    /// The slowest call, in nanoseconds (0 when empty).
    pub fn max_ns(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.histogram.max()
        }
    }

    /// Counts per range: `bins` equal ranges from the fastest to the slowest call, as
    /// `(upper bound in ns, count)`; empty without calls.
    pub fn bins(&self, bins: usize) -> Vec<(u64, u64)> {
        if self.is_empty() || bins == 0 {
            return Vec::new();
        }
        let (lo, hi) = (self.min_ns(), self.max_ns());
        let width = ((hi - lo) / bins as u64).max(1);
        let mut out: Vec<(u64, u64)> = (1..=bins as u64)
            .map(|i| (if i == bins as u64 { hi } else { lo + width * i }, 0))
            .collect();
        for value in self.histogram.iter_recorded() {
            let at = value.value_iterated_to();
            let slot = out
                .iter()
                .position(|&(upper, _)| at <= upper)
                .unwrap_or(out.len() - 1);
            out[slot].1 += value.count_at_value();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_what_was_recorded() {
        let mut l = Latencies::new();
        assert_eq!((l.quantile_ns(0.5), l.max_ns(), l.min_ns()), (0, 0, 0));
        for v in 1..=1000u64 {
            l.record_ns(v * 1000);
        }
        assert_eq!(l.len(), 1000);
        let close = |got: u64, want: u64| got.abs_diff(want) <= want / 500;
        assert!(close(l.quantile_ns(0.5), 500_000), "{}", l.quantile_ns(0.5));
        assert!(
            close(l.quantile_ns(0.99), 990_000),
            "{}",
            l.quantile_ns(0.99)
        );
        assert!(close(l.max_ns(), 1_000_000));
        assert!(close(l.min_ns(), 1000));
        assert!((l.mean_ns() - 500_500.0).abs() < 1000.0, "{}", l.mean_ns());
    }

    #[test]
    fn merging_adds_counts_and_bins_hold_them_all() {
        let mut a = Latencies::new();
        let mut b = Latencies::new();
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(9));
        b.record(Duration::from_secs(7200)); // over the range: counted as one hour
        a.merge(&b);
        assert_eq!(a.len(), 3);
        assert!(a.max_ns() >= LONGEST_NS - LONGEST_NS / 1000);
        let bins = a.bins(4);
        assert_eq!(bins.len(), 4);
        assert_eq!(bins.iter().map(|b| b.1).sum::<u64>(), 3);
        assert_eq!(bins[0].1, 2);
        assert_eq!(bins[3].1, 1);
    }
}
