//! Outlier detection: an endpoint whose connections keep failing is ejected — left out of
//! the choice — for a backoff period that doubles with each ejection in a row, and comes
//! back on its own when the period ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When an endpoint is ejected, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ejection {
    /// Connection failures in a row (failed dials, connections lost under a call) that eject
    /// an endpoint. Default 3.
    pub failures: u32,
    /// The first ejection's length; each ejection in a row doubles it. Default 1 s.
    pub base: Duration,
    /// The longest ejection. Default 30 s.
    pub max: Duration,
}

impl Default for Ejection {
    fn default() -> Self {
        Ejection {
            failures: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// One endpoint's health.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Whether `state` holds anything (a failure or an ejection): while it does not — the
    /// usual case — a call asks one atomic, not the lock and the clock.
    marked: AtomicBool,
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    failures_in_a_row: u32,
    ejections_in_a_row: u32,
    ejected_until: Option<Instant>,
}

impl Health {
    /// Whether the endpoint may be chosen now.
    pub(crate) fn is_available(&self, now: Instant) -> bool {
        self.is_available_at(|| now)
    }

    /// Like [`is_available`](Self::is_available), reading the clock only when an ejection
    /// is on record.
    pub(crate) fn is_available_at(&self, now: impl FnOnce() -> Instant) -> bool {
        if !self.marked.load(Ordering::Acquire) {
            return true;
        }
        let state = self.state.lock().expect("not poisoned");
        state.ejected_until.is_none_or(|until| now() >= until)
    }

    /// A call or dial through the endpoint worked.
    pub(crate) fn success(&self) {
        if !self.marked.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state.lock().expect("not poisoned");
        state.failures_in_a_row = 0;
        state.ejections_in_a_row = 0;
        state.ejected_until = None;
        self.marked.store(false, Ordering::Release);
    }

    /// A connection through the endpoint failed. Returns the ejection's length when this
    /// failure ejects it.
    pub(crate) fn failure(&self, rule: &Ejection, now: Instant) -> Option<Duration> {
        let mut state = self.state.lock().expect("not poisoned");
        self.marked.store(true, Ordering::Release);
        if state.ejected_until.is_some_and(|until| now < until) {
            return None;
        }
        state.failures_in_a_row += 1;
        if state.failures_in_a_row < rule.failures.max(1) {
            return None;
        }
        state.failures_in_a_row = 0;
        let doublings = state.ejections_in_a_row.min(16);
        state.ejections_in_a_row += 1;
        let length = rule.base.saturating_mul(1 << doublings).min(rule.max);
        state.ejected_until = Some(now + length);
        Some(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_eject_for_a_doubling_period() {
        let rule = Ejection {
            failures: 2,
            base: Duration::from_secs(1),
            max: Duration::from_secs(3),
        };
        let health = Health::default();
        let t = Instant::now();
        assert_eq!(health.failure(&rule, t), None);
        assert!(health.is_available(t));
        assert_eq!(health.failure(&rule, t), Some(Duration::from_secs(1)));
        assert!(!health.is_available(t));
        // Back on its own when the period ends; failing again ejects for twice as long.
        let t = t + Duration::from_secs(1);
        assert!(health.is_available(t));
        health.failure(&rule, t);
        assert_eq!(health.failure(&rule, t), Some(Duration::from_secs(2)));
        let t = t + Duration::from_secs(2);
        health.failure(&rule, t);
        assert_eq!(
            health.failure(&rule, t),
            Some(Duration::from_secs(3)),
            "capped"
        );
        // A success forgets it all.
        health.success();
        assert!(health.is_available(t));
        assert_eq!(health.failure(&rule, t), None);
        assert_eq!(health.failure(&rule, t), Some(Duration::from_secs(1)));
    }

    #[test]
    fn failures_while_ejected_do_not_count() {
        let rule = Ejection {
            failures: 2,
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
        };
        let health = Health::default();
        let t = Instant::now();
        health.failure(&rule, t);
        assert!(health.failure(&rule, t).is_some());
        // Calls that were under way fail too: they neither lengthen the ejection nor
        // count towards the next one.
        for _ in 0..5 {
            assert_eq!(health.failure(&rule, t + Duration::from_millis(500)), None);
        }
        let t = t + Duration::from_secs(1);
        assert!(health.is_available(t));
        assert_eq!(
            health.failure(&rule, t),
            None,
            "a fresh count after the period"
        );
    }

    #[test]
    fn a_success_between_failures_keeps_the_endpoint_in() {
        let rule = Ejection::default();
        let health = Health::default();
        let t = Instant::now();
        for _ in 0..10 {
            health.failure(&rule, t);
            health.failure(&rule, t);
            health.success();
        }
        assert!(health.is_available(t));
    }
}
