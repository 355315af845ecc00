//! Per-uri counts, errors and latency histograms, readable as a
//! [`Snapshot`] or as Prometheus text.
//!
//! [`Metrics`] counts, for each uri path (the query string is not part of
//! it) that this peer serves:
//!
//! - pulls served, and how many of them were answered with a non-OK status
//!   (the handler's error, an undecodable body, a plugin's refusal after the
//!   route was found);
//! - pushes served: decoded and handed to their handler (a push has no
//!   reply, so its outcome and duration are not seen by plugins);
//! - the latency of pulls in a histogram with fixed buckets
//!   ([`BUCKETS_MS`]: 0.1 ms to 1 s, then +Inf), measured from the moment
//!   the route is known (`pre_read_pull_body`, before the body is decoded) to
//!   the moment the reply is about to be written (`pre_write_reply`).
//!
//! Pulls that never reach a route (no handler and no fallback: 404, or
//! refused by a `post_read_pull_header` hook) are not counted: their reply
//! cannot be told apart by uri. The plugin only has route hooks, so it can
//! be a peer plugin (every route) or a group plugin (that group's routes).
//! It sees the reply as the plugins before it left it: register it last to
//! count the status that is actually sent.
//!
//! The start of a pull is kept in its session's data, keyed by the plugin
//! instance and the pull's seq, and taken back by the reply: a session that
//! changes its id meanwhile does not lose it, and what a session leaves goes
//! with it. At most [`Metrics::with_max_uris`] distinct uris are tracked
//! (1000 by default); later ones are counted under [`OTHER_URI`], so a
//! fallback route cannot be made to grow the table without bound.
//!
//! ```
//! use std::sync::Arc;
//!
//! use jaunt::prelude::*;
//! use jaunt::plugins::metrics::Metrics;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let metrics = Arc::new(Metrics::new());
//! let mut routes = Router::new();
//! routes
//!     .pull("/half", |_: PullCtx, n: i64| async move {
//!         if n % 2 == 0 { Ok(n / 2) } else { Err(Status::new(1001, "odd")) }
//!     })
//!     .unwrap();
//! let server = Peer::builder(routes).plugin_arc(metrics.clone()).build().unwrap();
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! let client = Peer::new(Router::new());
//! let session = client.dial(&addr).await.unwrap();
//! for n in 0..4 {
//!     let _ = session.pull("/half", &n).await;
//! }
//!
//! let half = &metrics.snapshot().per_uri["/half"];
//! assert_eq!((half.pulls, half.errors), (4, 2));
//! assert!(metrics
//!     .prometheus()
//!     .contains("jaunt_requests_total{uri=\"/half\",kind=\"pull\"} 4"));
//!
//! client.close().await;
//! server.close().await;
//! # });
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jaunt_peer::{Plugin, PushCtx, RoutePlugin, Session};
use jaunt_socket::{Packet, Status};

/// The upper bounds of the latency buckets, in milliseconds; a last bucket
/// (+Inf) takes the rest.
pub const BUCKETS_MS: [f64; 9] = [0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0];

/// The uri under which messages are counted once [`Metrics::with_max_uris`]
/// distinct uris are tracked.
pub const OTHER_URI: &str = "_other";

/// A latency histogram: counts per bucket (not cumulative), their sum and
/// total.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Counts per bucket: `counts[i]` for durations up to `BUCKETS_MS[i]`
    /// (and above the previous bound), the last one for the rest (+Inf).
    pub counts: [u64; BUCKETS_MS.len() + 1],
    /// The sum of all durations.
    pub sum: Duration,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS_MS.len() + 1],
            sum: Duration::ZERO,
        }
    }
}

impl Histogram {
    /// Adds one duration.
    pub fn observe(&mut self, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let bucket = BUCKETS_MS
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(BUCKETS_MS.len());
        self.counts[bucket] += 1;
        self.sum += elapsed;
    }

    /// How many durations were observed.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Cumulative counts as Prometheus wants them: `(upper bound in ms,
    /// durations up to it)`, the last bound being infinity.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let bounds = BUCKETS_MS.iter().copied().chain([f64::INFINITY]);
        let mut total = 0;
        bounds
            .zip(self.counts)
            .map(|(bound, n)| {
                total += n;
                (bound, total)
            })
            .collect()
    }
}

/// The counts of one uri.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UriStats {
    /// Pulls answered.
    pub pulls: u64,
    /// Pushes handed to their handler.
    pub pushes: u64,
    /// Pulls answered with a non-OK status.
    pub errors: u64,
    /// Latency of the pulls.
    pub latency: Histogram,
}

/// Every uri's counts at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Counts by uri path.
    pub per_uri: BTreeMap<String, UriStats>,
}

/// The pulls of a session that are being served: start time and uri, by
/// (plugin instance, seq).
#[derive(Default)]
struct InFlight(HashMap<(u64, i32), (Instant, String)>);

static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// The metrics plugin (name `metrics`). Share it with an `Arc` to read it
/// while the peer runs.
#[derive(Debug)]
pub struct Metrics {
    instance: u64,
    max_uris: usize,
    stats: Mutex<BTreeMap<String, UriStats>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics, tracking up to 1000 uris.
    pub fn new() -> Self {
        Self {
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            max_uris: 1000,
            stats: Mutex::new(BTreeMap::new()),
        }
    }

    /// Tracks at most `max` distinct uris; later ones are counted together
    /// under [`OTHER_URI`].
    #[must_use]
    pub fn with_max_uris(mut self, max: usize) -> Self {
        self.max_uris = max;
        self
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, UriStats>> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the stats of `uri` (or of [`OTHER_URI`] when the table is
    /// full).
    fn with_uri(&self, uri: &str, f: impl FnOnce(&mut UriStats)) {
        let mut stats = self.lock();
        if let Some(entry) = stats.get_mut(uri) {
            return f(entry);
        }
        let key = if stats.len() < self.max_uris {
            uri
        } else {
            OTHER_URI
        };
        f(stats.entry(key.to_owned()).or_default());
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            per_uri: self.lock().clone(),
        }
    }

    /// Forgets every count.
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// The counts in the Prometheus text exposition format (version 0.0.4):
    /// `jaunt_requests_total{uri,kind}`, `jaunt_errors_total{uri}` and the
    /// histogram `jaunt_request_duration_seconds{uri}` (`_bucket` with
    /// cumulative counts per `le`, `_sum`, `_count`).
    pub fn prometheus(&self) -> String {
        let snapshot = self.snapshot();
        let mut out = String::new();
        out.push_str(
            "# HELP jaunt_requests_total Messages served, by uri and kind (pull or push).\n",
        );
        out.push_str("# TYPE jaunt_requests_total counter\n");
        for (uri, stats) in &snapshot.per_uri {
            let uri = escape_label(uri);
            for (kind, n) in [("pull", stats.pulls), ("push", stats.pushes)] {
                let _ = writeln!(
                    out,
                    "jaunt_requests_total{{uri=\"{uri}\",kind=\"{kind}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP jaunt_errors_total Pulls answered with a non-OK status, by uri.\n");
        out.push_str("# TYPE jaunt_errors_total counter\n");
        for (uri, stats) in &snapshot.per_uri {
            let _ = writeln!(
                out,
                "jaunt_errors_total{{uri=\"{}\"}} {}",
                escape_label(uri),
                stats.errors
            );
        }
        out.push_str(
            "# HELP jaunt_request_duration_seconds Time from routing a pull to writing its reply.\n",
        );
        out.push_str("# TYPE jaunt_request_duration_seconds histogram\n");
        for (uri, stats) in &snapshot.per_uri {
            let uri = escape_label(uri);
            let hist = &stats.latency;
            for (bound_ms, n) in hist.cumulative() {
                let le = if bound_ms.is_infinite() {
                    "+Inf".to_owned()
                } else {
                    format!("{}", bound_ms / 1000.0)
                };
                let _ = writeln!(
                    out,
                    "jaunt_request_duration_seconds_bucket{{uri=\"{uri}\",le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "jaunt_request_duration_seconds_sum{{uri=\"{uri}\"}} {}",
                hist.sum.as_secs_f64()
            );
            let _ = writeln!(
                out,
                "jaunt_request_duration_seconds_count{{uri=\"{uri}\"}} {}",
                hist.count()
            );
        }
        out
    }
}

/// A label value as Prometheus quotes it: `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[async_trait]
impl RoutePlugin for Metrics {
    fn name(&self) -> &str {
        "metrics"
    }

    async fn pre_read_pull_body(
        &self,
        session: &Session,
        packet: &mut Packet,
    ) -> Result<(), Status> {
        let start = (Instant::now(), packet.path().to_owned());
        let key = (self.instance, packet.seq);
        session
            .data()
            .update(|f: &mut InFlight| f.0.insert(key, start));
        Ok(())
    }

    async fn pre_write_reply(&self, session: &Session, reply: &mut Packet) -> Result<(), Status> {
        let key = (self.instance, reply.seq);
        let Some((start, uri)) = session.data().update(|f: &mut InFlight| f.0.remove(&key)) else {
            // Never routed (404, refused by a header hook): not counted.
            return Ok(());
        };
        let failed = !reply.status.is_ok();
        self.with_uri(&uri, |stats| {
            stats.pulls += 1;
            stats.errors += u64::from(failed);
            stats.latency.observe(start.elapsed());
        });
        Ok(())
    }

    async fn post_read_push_body(&self, ctx: &PushCtx) -> Result<(), Status> {
        self.with_uri(ctx.path(), |stats| stats.pushes += 1);
        Ok(())
    }
}

/// No connection hooks: the peer-plugin form of the same route hooks.
impl Plugin for Metrics {}
