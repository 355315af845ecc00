//! [`DroppedFrames`]: a session's malformed frames, counted, logged at a
//! bounded rate, and the verdict when too many come in a row.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Dropped frames logged one by one before the log turns to summaries.
const LOGGED_ONE_BY_ONE: u64 = 3;
/// After that, at most one summary per this long.
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// What the read loop does after dropping a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterDrop {
    /// Go on reading.
    GoOn,
    /// Too many in a row: close the connection.
    Close,
}

/// A session's dropped frames.
#[derive(Debug, Default)]
pub(crate) struct DroppedFrames {
    total: AtomicU64,
    in_a_row: AtomicU32,
    log: Mutex<SummaryLog>,
}

#[derive(Debug, Default)]
struct SummaryLog {
    /// Dropped since the last line logged.
    unlogged: u64,
    last: Option<Instant>,
}

impl DroppedFrames {
    /// Frames dropped since the session started.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// A frame was read whole and served: the run of dropped frames ends.
    pub(crate) fn frame_ok(&self) {
        if self.in_a_row.load(Ordering::Relaxed) != 0 {
            self.in_a_row.store(0, Ordering::Relaxed);
        }
    }

    /// Counts and (rate-limited) logs a dropped frame; `max_in_a_row` is the
    /// configured limit (0: never close).
    pub(crate) fn dropped(
        &self,
        id: &str,
        error: &dyn std::fmt::Display,
        max_in_a_row: u32,
    ) -> AfterDrop {
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        let in_a_row = self.in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        if total <= LOGGED_ONE_BY_ONE {
            tracing::warn!(id, error = %error, "dropped a malformed frame");
        } else {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            log.unlogged += 1;
            let due = log.last.is_none_or(|last| last.elapsed() >= SUMMARY_EVERY);
            if due {
                tracing::warn!(
                    id,
                    dropped = log.unlogged,
                    total,
                    last_error = %error,
                    "dropped more malformed frames (logged at most every {}s)",
                    SUMMARY_EVERY.as_secs()
                );
                log.unlogged = 0;
                log.last = Some(Instant::now());
            }
        }
        if max_in_a_row > 0 && in_a_row >= max_in_a_row {
            tracing::warn!(
                id,
                in_a_row,
                "too many malformed frames in a row: closing the connection"
            );
            AfterDrop::Close
        } else {
            AfterDrop::GoOn
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_after_the_limit_in_a_row_and_a_good_frame_resets_the_run() {
        let dropped = DroppedFrames::default();
        assert_eq!(dropped.dropped("s", &"bad", 3), AfterDrop::GoOn);
        assert_eq!(dropped.dropped("s", &"bad", 3), AfterDrop::GoOn);
        dropped.frame_ok();
        assert_eq!(dropped.dropped("s", &"bad", 3), AfterDrop::GoOn);
        assert_eq!(dropped.dropped("s", &"bad", 3), AfterDrop::GoOn);
        assert_eq!(dropped.dropped("s", &"bad", 3), AfterDrop::Close);
        assert_eq!(dropped.total(), 5);
        let never = DroppedFrames::default();
        for _ in 0..100 {
            assert_eq!(never.dropped("s", &"bad", 0), AfterDrop::GoOn);
        }
    }
}
