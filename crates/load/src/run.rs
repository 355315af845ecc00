//! The engine: callers, tickets, the clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Barrier;
// tokio's clock (the system's, unless a test pauses it): a test can then run a timed plan
// in virtual time and get exact figures.
use tokio::time::Instant;

use crate::latencies::Latencies;
use crate::plan::{LoadPlan, Stop};
use crate::progress::Progress;

/// One caller of a load run: a connection (or a share of one) and the request it sends.
///
/// `call` makes one call and checks its reply; an `Err` (with a message) counts as an
/// error, grouped with the errors of the same message, and its latency is not recorded.
pub trait Caller: Send + 'static {
    /// Makes one call and waits for its reply.
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Calls answered correctly.
    pub ok: u64,
    /// Calls that failed (an error status, a lost connection, a wrong reply).
    pub errors: u64,
    /// Errors during the warm-up (not counted in `errors`).
    pub warmup_errors: u64,
    /// The first error's message.
    pub first_error: Option<String>,
    /// Timed errors by message: at most [`Outcome::DISTINCT_ERRORS`] messages, the rest
    /// counted under [`Outcome::OTHER_ERRORS`].
    pub error_counts: BTreeMap<String, u64>,
    /// Open loop only: calls that could not start when they were due (more than 1 ms after)
    /// because every caller was still busy (their latency counts from when they were due).
    pub late: u64,
    /// From the start of the timed calls until the last of them returned.
    pub elapsed: Duration,
    /// The latency of every successful timed call.
    pub latencies: Latencies,
}

impl Outcome {
    /// How many distinct error messages are kept apart in [`Outcome::error_counts`].
    pub const DISTINCT_ERRORS: usize = 32;

    /// The key of [`Outcome::error_counts`] that counts the messages past the first
    /// [`Outcome::DISTINCT_ERRORS`].
    pub const OTHER_ERRORS: &'static str = "(other errors)";

    /// Counts `n` errors of `message`, apart from the others while fewer than
    /// [`Outcome::DISTINCT_ERRORS`] messages are.
    fn count_error(counts: &mut BTreeMap<String, u64>, message: &str, n: u64) {
        let distinct = counts.len() - usize::from(counts.contains_key(Self::OTHER_ERRORS));
        if let Some(total) = counts.get_mut(message) {
            *total += n;
        } else if distinct < Self::DISTINCT_ERRORS {
            counts.insert(message.to_owned(), n);
        } else {
            *counts.entry(Self::OTHER_ERRORS.to_owned()).or_default() += n;
        }
    }

    /// Timed calls made (correct or not).
    pub fn calls(&self) -> u64 {
        self.ok + self.errors
    }
}

/// Latencies a caller keeps before adding them to the run's histogram (one lock per batch).
const BATCH: usize = 256;

/// An open-loop call that starts more than this after it was due counts as late (less is
/// the timer's own resolution).
const LATE: Duration = Duration::from_millis(1);

/// What the callers share.
struct Shared {
    plan: LoadPlan,
    warm_tickets: AtomicU64,
    tickets: AtomicU64,
    done: AtomicU64,
    late: AtomicU64,
    latencies: Mutex<Latencies>,
    warm_done: Barrier,
    go: Barrier,
}

/// What one caller reports at its end.
struct CallerEnd {
    errors: u64,
    warmup_errors: u64,
    first_error: Option<String>,
    error_counts: BTreeMap<String, u64>,
    finished: Instant,
}

/// Runs `plan.warmup` untimed calls, then the timed calls, spread over `callers` (one task
/// per caller, each with one call outstanding at a time).
///
/// In a **closed loop** a caller takes the next call as soon as it has its reply (fast
/// callers make more calls). In an **open loop** (`plan.rate`) call *i* is due at
/// `start + i / rate`: a free caller waits until it is due, then starts it, and the call is
/// timed from its start; when every caller was busy past that moment, the call starts late
/// and is timed **from when it was due** — the time it waited for a caller is time a real
/// client would have waited too (correction for coordinated omission). Give an open-loop run
/// enough callers (`c`) that they are rarely all busy: [`Outcome::late`] counts the calls that
/// started late.
///
/// The clock starts once every caller has finished its share of the warm-up and stops when
/// the last timed call returns.
///
/// # Panics
///
/// With no caller, or a plan that [`LoadPlan::validate`] refuses.
pub async fn run<C: Caller>(plan: &LoadPlan, callers: Vec<C>) -> Outcome {
    assert!(!callers.is_empty(), "a load run needs at least one caller");
    if let Err(e) = plan.validate() {
        panic!("invalid load plan: {e}");
    }
    let c = callers.len();
    let shared = Arc::new(Shared {
        plan: *plan,
        warm_tickets: AtomicU64::new(0),
        tickets: AtomicU64::new(0),
        done: AtomicU64::new(0),
        late: AtomicU64::new(0),
        latencies: Mutex::new(Latencies::new()),
        warm_done: Barrier::new(c + 1),
        go: Barrier::new(c + 1),
    });
    // The start is set by the driver after the warm-up, and read by every caller after `go`.
    let start_cell = Arc::new(std::sync::OnceLock::<Instant>::new());

    let tasks: Vec<_> = callers
        .into_iter()
        .map(|caller| tokio::spawn(drive(caller, shared.clone(), start_cell.clone())))
        .collect();

    shared.warm_done.wait().await;
    let start = *start_cell.get_or_init(Instant::now);
    shared.go.wait().await;
    let progress = plan
        .progress
        .then(|| Progress::start(plan.stop, shared.clone_done(), start.into_std()));

    let mut outcome = Outcome::default();
    let mut last = start;
    for task in tasks {
        match task.await {
            Ok(end) => {
                outcome.errors += end.errors;
                outcome.warmup_errors += end.warmup_errors;
                if outcome.first_error.is_none() {
                    outcome.first_error = end.first_error;
                }
                for (message, n) in end.error_counts {
                    Outcome::count_error(&mut outcome.error_counts, &message, n);
                }
                last = last.max(end.finished);
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
        progress.finish().await;
    }
    outcome.latencies = std::mem::take(&mut *shared.latencies.lock().expect("not poisoned"));
    outcome.ok = outcome.latencies.len();
    outcome.late = shared.late.load(Ordering::Relaxed);
    outcome
}

impl Shared {
    fn clone_done(self: &Arc<Self>) -> Arc<dyn Fn() -> u64 + Send + Sync> {
        let shared = self.clone();
        Arc::new(move || shared.done.load(Ordering::Relaxed))
    }

    /// The next timed call to make: `None` when the run is over. In an open loop, also the
    /// moment it is due.
    fn next_ticket(&self, start: Instant) -> Option<Option<Instant>> {
        let index = self.tickets.fetch_add(1, Ordering::Relaxed);
        let due = self.plan.due(index).map(|offset| start + offset);
        let more = match self.plan.stop {
            Stop::Count(n) => index < n,
            Stop::Duration(d) => match due {
                Some(due) => due < start + d,
                None => start.elapsed() < d,
            },
        };
        more.then_some(due)
    }

    fn add_latencies(&self, batch: &mut Vec<u64>) {
        let mut all = self.latencies.lock().expect("not poisoned");
        for &ns in batch.iter() {
            all.record_ns(ns);
        }
        batch.clear();
    }
}

async fn drive<C: Caller>(
    mut caller: C,
    shared: Arc<Shared>,
    start_cell: Arc<std::sync::OnceLock<Instant>>,
) -> CallerEnd {
    let mut end = CallerEnd {
        errors: 0,
        warmup_errors: 0,
        first_error: None,
        error_counts: BTreeMap::new(),
        finished: Instant::now(),
    };
    while shared.warm_tickets.fetch_add(1, Ordering::Relaxed) < shared.plan.warmup {
        if let Err(e) = caller.call().await {
            end.warmup_errors += 1;
            end.first_error.get_or_insert(format!("(warm-up) {e}"));
        }
    }
    shared.warm_done.wait().await;
    shared.go.wait().await;
    let start = *start_cell.get().expect("set before the callers go");

    let mut batch = Vec::with_capacity(BATCH);
    while let Some(due) = shared.next_ticket(start) {
        let origin = match due {
            Some(due) if Instant::now() < due => {
                tokio::time::sleep_until(due).await;
                Instant::now()
            }
            Some(due) => {
                if due.elapsed() > LATE {
                    shared.late.fetch_add(1, Ordering::Relaxed);
                }
                due
            }
            None => Instant::now(),
        };
        let result = caller.call().await;
        let took = origin.elapsed();
        match result {
            Ok(()) => {
                batch.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                if batch.len() == BATCH {
                    shared.add_latencies(&mut batch);
                }
            }
            Err(e) => {
                end.errors += 1;
                Outcome::count_error(&mut end.error_counts, &e, 1);
                end.first_error.get_or_insert(e);
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
    end.finished = Instant::now();
    shared.add_latencies(&mut batch);
    // The caller (and its connection) is dropped here, after the clock stopped.
    drop(caller);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_count_run_makes_every_call_once() {
        let rt = crate::runtime(2);
        let plan = LoadPlan::new(Stop::Count(1000)).warmup(30);
        let out = rt.block_on(run(&plan, vec![Flaky(0), Flaky(0), Flaky(0)]));
        assert_eq!(out.calls(), 1000);
        assert!(out.errors >= 90 && out.errors <= 100, "{}", out.errors);
        assert_eq!(out.latencies.len(), out.ok);
        assert_eq!(out.first_error.as_deref(), Some("(warm-up) every tenth"));
        assert_eq!(out.error_counts.get("every tenth"), Some(&out.errors));
        assert_eq!(out.warmup_errors, 3);
    }

    /// A caller whose calls take `took`.
    struct Slow(Duration);
    impl Caller for Slow {
        async fn call(&mut self) -> Result<(), String> {
            tokio::time::sleep(self.0).await;
            Ok(())
        }
    }

    /// A runtime on a paused clock: time moves only when every task waits for a timer, and
    /// then straight to the next one, so timed plans give exact figures however busy the
    /// machine is.
    fn virtual_clock() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    }

    #[test]
    fn a_duration_run_stops_on_time() {
        let rt = virtual_clock();
        let plan = LoadPlan::new(Stop::Duration(Duration::from_millis(300)));
        let out = rt.block_on(run(&plan, vec![Slow(Duration::from_millis(10))]));
        // Calls start at 0, 10, .. 290 ms; at 300 ms the run is over.
        assert_eq!(out.elapsed, Duration::from_millis(300));
        assert_eq!(out.ok, 30);
    }

    #[test]
    fn an_open_loop_keeps_its_rate_when_the_server_keeps_up() {
        let rt = virtual_clock();
        // 100 calls/s for 0.5 s: 50 calls, each of 2 ms, on 4 callers.
        let plan = LoadPlan::new(Stop::Duration(Duration::from_millis(500))).rate(Some(100.0));
        let callers = (0..4).map(|_| Slow(Duration::from_millis(2))).collect();
        let out = rt.block_on(run(&plan, callers));
        assert_eq!(out.ok, 50);
        assert_eq!(out.late, 0);
        // Timed from their start: 2 ms each, not their wait for the schedule.
        let max_us = out.latencies.max_ns() / 1000;
        assert!((2000..=2002).contains(&max_us), "{max_us} us");
        // The last call was due at 490 ms and took 2.
        assert_eq!(out.elapsed, Duration::from_millis(492));
    }

    #[test]
    fn an_open_loop_counts_the_wait_of_calls_that_could_not_start_on_time() {
        let rt = virtual_clock();
        // One caller, calls of 50 ms, due every 10 ms: a closed loop would report 50 ms for
        // each; the calls really waited longer and longer for their turn.
        let plan = LoadPlan::new(Stop::Count(10)).rate(Some(100.0));
        let out = rt.block_on(run(&plan, vec![Slow(Duration::from_millis(50))]));
        assert_eq!(out.ok, 10);
        // Call i is due at 10·i ms and starts at 50·i: all but the first start late.
        assert_eq!(out.late, 9);
        // ... and each is timed from when it was due: 50 + 40·i ms, up to 410 ms.
        let max_ms = out.latencies.max_ns() / 1_000_000;
        assert!((410..=411).contains(&max_ms), "{max_ms} ms");
        assert_eq!(out.latencies.quantile_ns(0.1) / 1_000_000, 50);
    }

    #[test]
    fn a_call_at_most_a_millisecond_behind_its_schedule_is_not_late() {
        let rt = virtual_clock();
        // Calls of 11 ms due every 10 ms: the second starts exactly 1 ms after it was due
        // (the timer's resolution, not lateness), the third 2 ms after.
        let plan = LoadPlan::new(Stop::Count(2)).rate(Some(100.0));
        let out = rt.block_on(run(&plan, vec![Slow(Duration::from_millis(11))]));
        assert_eq!((out.ok, out.late), (2, 0));
        let plan = LoadPlan::new(Stop::Count(3)).rate(Some(100.0));
        let out = rt.block_on(run(&plan, vec![Slow(Duration::from_millis(11))]));
        assert_eq!((out.ok, out.late), (3, 1));
    }

    #[test]
    fn every_callers_warm_up_errors_are_added_up() {
        /// Fails every call, and lets the other callers run between calls.
        struct Refused;
        impl Caller for Refused {
            async fn call(&mut self) -> Result<(), String> {
                tokio::task::yield_now().await;
                Err("refused".to_owned())
            }
        }
        let rt = virtual_clock();
        let plan = LoadPlan::new(Stop::Count(3)).warmup(30);
        let out = rt.block_on(run(&plan, vec![Refused, Refused, Refused]));
        // The three callers took turns: 10 warm-up calls each, all failed.
        assert_eq!(out.warmup_errors, 30);
        assert_eq!(out.errors, 3);
    }

    #[test]
    fn a_caller_that_panics_counts_as_an_error() {
        struct Panics;
        impl Caller for Panics {
            async fn call(&mut self) -> Result<(), String> {
                panic!("a broken caller");
            }
        }
        let rt = virtual_clock();
        let out = rt.block_on(run(&LoadPlan::new(Stop::Count(1)), vec![Panics]));
        assert_eq!((out.ok, out.errors), (0, 1));
        let first = out.first_error.unwrap_or_default();
        assert!(first.starts_with("caller task failed"), "{first}");
    }

    #[test]
    fn distinct_errors_are_capped() {
        struct Numbered(u64);
        impl Caller for Numbered {
            async fn call(&mut self) -> Result<(), String> {
                self.0 += 1;
                Err(format!("error {}", self.0))
            }
        }
        let rt = crate::runtime(1);
        let out = rt.block_on(run(&LoadPlan::new(Stop::Count(100)), vec![Numbered(0)]));
        assert_eq!(out.errors, 100);
        assert_eq!(out.error_counts.len(), Outcome::DISTINCT_ERRORS + 1);
        assert_eq!(out.error_counts.values().sum::<u64>(), 100);
        assert_eq!(out.error_counts[Outcome::OTHER_ERRORS], 100 - 32);
    }
}
