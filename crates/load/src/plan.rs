//! What a load run does: how long, after what warm-up, at what pace.

use std::time::Duration;

/// When a run's timed part ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many calls (shared among the callers).
    Count(u64),
    /// After this long: no call starts later (calls under way are awaited and counted).
    Duration(Duration),
}

/// How a load run goes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LoadPlan {
    /// When the timed calls end.
    pub stop: Stop,
    /// Untimed calls made first, shared among the callers (default 0).
    pub warmup: u64,
    /// Open loop: calls per second, on a fixed schedule that does not wait for the server.
    /// `None` (the default): closed loop, each caller calls again as soon as it has its reply.
    pub rate: Option<f64>,
    /// Show a progress bar on stderr (drawn only when stderr is a terminal).
    pub progress: bool,
}

impl LoadPlan {
    /// A closed-loop plan without warm-up or progress bar.
    pub fn new(stop: Stop) -> LoadPlan {
        LoadPlan {
            stop,
            warmup: 0,
            rate: None,
            progress: false,
        }
    }

    /// Sets the untimed warm-up calls.
    pub fn warmup(mut self, calls: u64) -> LoadPlan {
        self.warmup = calls;
        self
    }

    /// Makes the run open-loop at `calls_per_s` (`None`: closed loop).
    pub fn rate(mut self, calls_per_s: Option<f64>) -> LoadPlan {
        self.rate = calls_per_s;
        self
    }

    /// Shows (or not) the progress bar.
    pub fn progress(mut self, show: bool) -> LoadPlan {
        self.progress = show;
        self
    }

    /// Checks the plan: a rate must be a positive finite number, a count or duration above 0.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!(
                    "the rate must be a positive number of calls/s: {rate}"
                ));
            }
        }
        match self.stop {
            Stop::Count(0) => Err("a run needs at least one call".to_owned()),
            Stop::Duration(d) if d.is_zero() => Err("a run needs a duration above 0".to_owned()),
            _ => Ok(()),
        }
    }

    /// When call number `index` (from 0) of an open-loop run is due, counted from the start;
    /// `None` in a closed loop.
    pub(crate) fn due(&self, index: u64) -> Option<Duration> {
        self.rate
            .map(|rate| Duration::from_secs_f64(index as f64 / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_loop_schedules_calls_evenly() {
        let plan = LoadPlan::new(Stop::Count(10)).rate(Some(200.0));
        assert_eq!(plan.due(0), Some(Duration::ZERO));
        assert_eq!(plan.due(1), Some(Duration::from_millis(5)));
        assert_eq!(plan.due(200), Some(Duration::from_secs(1)));
        assert_eq!(LoadPlan::new(Stop::Count(10)).due(3), None);
    }

    #[test]
    fn bad_plans_are_refused() {
        assert!(LoadPlan::new(Stop::Count(0)).validate().is_err());
        assert!(LoadPlan::new(Stop::Duration(Duration::ZERO))
            .validate()
            .is_err());
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(LoadPlan::new(Stop::Count(1))
                .rate(Some(rate))
                .validate()
                .is_err());
        }
        assert!(LoadPlan::new(Stop::Count(1))
            .rate(Some(0.5))
            .validate()
            .is_ok());
    }
}
