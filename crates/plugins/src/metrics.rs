//! Per-uri counts, errors and latency histograms on the [`metrics`] facade,
//! served to Prometheus at `GET /metrics` ([`MetricsEndpoint`]) and readable
//! as a [`Snapshot`].
//!
//! [`Metrics`] records, for each uri path (the query string is not part of
//! it):
//!
//! - served pulls (`jaunt_requests_total{uri,kind="pull"}`), those answered
//!   with a non-OK status by code (`jaunt_errors_total{uri,code}`: the
//!   handler's error, an undecodable body, a plugin's refusal after the route
//!   was found) and their latency (`jaunt_request_duration_seconds{uri}`),
//!   the time the peer spent on the pull as its run log reports it (from
//!   taking it up to its reply being built);
//! - served pushes (`jaunt_requests_total{uri,kind="push"}`): routed, then
//!   handed to their handler or dropped by a hook (a push has no reply; its
//!   outcome is not counted);
//! - as a peer plugin, every pull this peer sends, however it ends:
//!   `jaunt_client_requests_total{uri}` counts them all;
//!   `jaunt_client_errors_total{uri,code}` those that ended with a non-OK
//!   status, whether the other side replied with it or it came from here
//!   (408: its deadline passed; 102: the session closed or the connection
//!   was lost; a send failure's or a write hook's status);
//!   `jaunt_client_abandoned_total{uri}` those the caller gave up on (it
//!   dropped the future or aborted the `PullHandle`), which have no status;
//!   `jaunt_client_request_duration_seconds{uri}` the time from the start
//!   of each pull to its end, for all but the abandoned ones (so a timed-out
//!   pull shows as a slow one);
//! - message body bytes in and out (`jaunt_received_body_bytes_total{kind}`,
//!   `jaunt_sent_body_bytes_total{kind}`): encoded bodies after the body
//!   hooks, before transfer filters;
//! - at each scrape of a [`MetricsEndpoint`] given the peer, the peer's
//!   [`PeerStats`] ([`record_peer_stats`](Metrics::record_peer_stats)):
//!   the bytes and frames its connections carried, as on the wire (whole
//!   frames with their length prefix, after transfer filters; every session
//!   since the peer started, closed ones included) as counters
//!   `jaunt_received_bytes_total`, `jaunt_sent_bytes_total`,
//!   `jaunt_received_frames_total`, `jaunt_sent_frames_total`; its resource
//!   accounting as gauges: `jaunt_sessions`, `jaunt_handlers`,
//!   `jaunt_bytes_held` (the byte budget in use), `jaunt_bytes_read`,
//!   `jaunt_bytes_in_handlers`, `jaunt_bytes_queued`, `jaunt_pending_pulls`;
//!   and the largest of these one session has, to spot the one slow session
//!   among many: `jaunt_session_bytes_queued_max`,
//!   `jaunt_session_pending_pulls_max`, `jaunt_session_handlers_max`.
//!   Sessions are deliberately not labelled one by one: on a public server
//!   their number (and so the label set) has no bound;
//!   [`Session::stats`](jaunt_peer::Session::stats) gives one session's
//!   counts to a program that wants them.
//!
//! Latency histograms have fixed buckets ([`BUCKETS_MS`]: 0.1 ms to 1 s,
//! then +Inf). [`Metrics::new`] records into a Prometheus recorder of its own
//! (the `metrics` macros run under [`metrics::with_local_recorder`]), so two
//! peers in one process, or two tests, never mix their counts;
//! [`Metrics::global`] records into whatever global recorder the application
//! installed instead.
//!
//! Everything is recorded by the peer's completion hooks: the served side in
//! `RoutePlugin::post_serve_end` (once per routed pull, after its reply was
//! queued, with the status actually sent; once per routed push), the client
//! side in `Plugin::post_pull_end` (once per pull, however it ended, before
//! the caller gets the outcome). The plugin keeps no state per call. A
//! served pull is counted just after its reply is queued: a caller that
//! has its reply and scrapes at once may find the last pull not yet
//! counted. Served pulls that never reach a route (no
//! handler and no fallback: 404, or refused by a `post_read_pull_header`
//! hook) are not counted, nor is a served pull whose caller cancelled it
//! before its reply. The served side is a route hook, so the plugin can be
//! a peer plugin (every route, and the client side) or a group plugin (that
//! group's routes, and no client side).
//!
//! At most [`Metrics::with_max_uris`] distinct uris are tracked (1000 by
//! default); later ones are counted under [`OTHER_URI`], so a fallback route
//! cannot be made to grow the label set without bound. A known uri's
//! handles are found under a read lock without allocating.
//!
//! ```
//! use std::sync::Arc;
//!
//! use jaunt::prelude::*;
//! use jaunt::plugins::metrics::Metrics;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
//! let endpoint = metrics.serve("127.0.0.1:0", Some(server.clone())).await.unwrap();
//!
//! let client = Peer::new(Router::new());
//! let session = client.dial(&addr).await.unwrap();
//! for n in 0..4 {
//!     let _ = session.pull("/half", &n).await;
//! }
//!
//! // A served pull is counted just after its reply is queued: the last
//! // one may be a moment behind the client.
//! let counted = || metrics.snapshot().per_uri.get("/half").map_or(0, |s| s.pulls);
//! while counted() < 4 {
//!     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
//! }
//! let half = &metrics.snapshot().per_uri["/half"];
//! assert_eq!((half.pulls, half.errors), (4, 2));
//!
//! // What Prometheus scrapes:
//! let mut http = tokio::net::TcpStream::connect(endpoint.local_addr()).await.unwrap();
//! http.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").await.unwrap();
//! let mut text = String::new();
//! http.read_to_string(&mut text).await.unwrap();
//! assert!(text.contains("jaunt_requests_total{uri=\"/half\",kind=\"pull\"} 4"));
//! assert!(text.contains("jaunt_sessions 1"));
//!
//! endpoint.stop().await;
//! client.close().await;
//! server.close().await;
//! # });
//! ```

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use jaunt_peer::{
    Peer, PeerStats, Plugin, PullEnd, PullOutcome, RouteKind, RoutePlugin, ServeEnd, Session,
};
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
    with_local_recorder, Unit,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use rustc_hash::FxHashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The upper bounds of the latency buckets, in milliseconds; a last bucket
/// (+Inf) takes the rest.
pub const BUCKETS_MS: [f64; 9] = [0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0];

/// The uri under which messages are counted once [`Metrics::with_max_uris`]
/// distinct uris are tracked.
pub const OTHER_URI: &str = "_other";

const SERVED: &str = "jaunt_requests_total";
const SERVED_ERRORS: &str = "jaunt_errors_total";
const SERVED_DURATION: &str = "jaunt_request_duration_seconds";
const SENT: &str = "jaunt_client_requests_total";
const SENT_ERRORS: &str = "jaunt_client_errors_total";
const SENT_DURATION: &str = "jaunt_client_request_duration_seconds";
const SENT_ABANDONED: &str = "jaunt_client_abandoned_total";
const BODY_IN: &str = "jaunt_received_body_bytes_total";
const BODY_OUT: &str = "jaunt_sent_body_bytes_total";
const WIRE_IN: &str = "jaunt_received_bytes_total";
const WIRE_OUT: &str = "jaunt_sent_bytes_total";
const FRAMES_IN: &str = "jaunt_received_frames_total";
const FRAMES_OUT: &str = "jaunt_sent_frames_total";

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
    /// Served: pulls routed and answered. Sent: every pull that ended
    /// (replied, failed here, or abandoned).
    pub pulls: u64,
    /// Pushes routed to their handler (served only).
    pub pushes: u64,
    /// Pulls that ended with a non-OK status: served, the status replied;
    /// sent, the reply's status or a local failure's (408, 102, ...).
    pub errors: u64,
    /// Errors by status code.
    pub errors_by_code: BTreeMap<i32, u64>,
    /// Sent pulls the caller gave up on (dropped or aborted) before they
    /// ended (sent only; not in `errors`).
    pub abandoned: u64,
    /// Latency of the pulls (sent: all but the abandoned ones).
    pub latency: Histogram,
}

/// Every uri's counts at one moment, read back from the recorder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// What this peer served, by uri path.
    pub per_uri: BTreeMap<String, UriStats>,
    /// Every pull this peer sent, however it ended, by uri path.
    pub sent: BTreeMap<String, UriStats>,
}

/// One uri's handles, each registered on first use (a series nobody
/// touched does not appear).
#[derive(Default)]
struct UriHandles {
    label: String,
    served_pulls: OnceLock<metrics::Counter>,
    served_pushes: OnceLock<metrics::Counter>,
    served_duration: OnceLock<metrics::Histogram>,
    served_errors: ErrorCounters,
    sent_pulls: OnceLock<metrics::Counter>,
    sent_duration: OnceLock<metrics::Histogram>,
    sent_errors: ErrorCounters,
    sent_abandoned: OnceLock<metrics::Counter>,
}

/// One uri's error counters by status code, registered on first use.
#[derive(Default)]
struct ErrorCounters(RwLock<Vec<(i32, metrics::Counter)>>);

impl ErrorCounters {
    /// The counter of `code`, registered by `make` the first time.
    fn get(&self, code: i32, make: impl FnOnce() -> metrics::Counter) -> metrics::Counter {
        let find = |codes: &[(i32, metrics::Counter)]| {
            codes
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, n)| n.clone())
        };
        if let Some(counter) = find(&self.0.read().unwrap_or_else(|e| e.into_inner())) {
            return counter;
        }
        let mut codes = self.0.write().unwrap_or_else(|e| e.into_inner());
        if let Some(counter) = find(&codes) {
            return counter;
        }
        let counter = make();
        codes.push((code, counter.clone()));
        counter
    }
}

/// The metrics plugin (name `metrics`). Share it with an `Arc` to read it
/// while the peer runs.
pub struct Metrics {
    max_uris: usize,
    /// Each uri's handles, registered once: a call then touches atomics,
    /// not the recorder's registry. (A fast hash is safe here: the table
    /// holds at most `max_uris` entries.)
    uris: RwLock<FxHashMap<String, Arc<UriHandles>>>,
    /// Body bytes: pulls received, replies sent, pulls sent, replies
    /// received.
    body: [OnceLock<metrics::Counter>; 4],
    sink: Sink,
}

/// Where the plugin records.
enum Sink {
    /// Its own Prometheus recorder.
    Own(PrometheusRecorder),
    /// Whatever recorder is installed with `metrics::set_global_recorder`.
    Global,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("max_uris", &self.max_uris)
            .field("own_recorder", &matches!(self.sink, Sink::Own(_)))
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Gives the current recorder each metric's help text and unit.
fn describe() {
    describe_counter!(SERVED, "Messages served, by uri and kind (pull or push).");
    describe_counter!(
        SERVED_ERRORS,
        "Pulls served with a non-OK status, by uri and status code."
    );
    describe_histogram!(
        SERVED_DURATION,
        Unit::Seconds,
        "Time from routing a served pull to writing its reply."
    );
    describe_counter!(SENT, "Pulls sent by this peer, however they ended, by uri.");
    describe_counter!(
        SENT_ERRORS,
        "Pulls sent by this peer that ended with a non-OK status (replied, or local: 408 deadline, 102 connection lost), by uri and status code."
    );
    describe_histogram!(
        SENT_DURATION,
        Unit::Seconds,
        "Time from starting a pull to its end (abandoned pulls left out)."
    );
    describe_counter!(
        SENT_ABANDONED,
        "Pulls sent by this peer that the caller gave up on before they ended, by uri."
    );
    describe_counter!(
        BODY_IN,
        Unit::Bytes,
        "Message body bytes received, by kind (pull or reply)."
    );
    describe_counter!(
        BODY_OUT,
        Unit::Bytes,
        "Message body bytes sent, by kind (pull or reply)."
    );
    describe_gauge!("jaunt_sessions", "Live sessions.");
    describe_gauge!("jaunt_handlers", "Handlers running.");
    describe_gauge!(
        "jaunt_bytes_held",
        Unit::Bytes,
        "All bytes held on the sessions' behalf (the peer's byte budget in use)."
    );
    describe_gauge!(
        "jaunt_bytes_read",
        Unit::Bytes,
        "Bytes read and not yet decoded."
    );
    describe_gauge!(
        "jaunt_bytes_in_handlers",
        Unit::Bytes,
        "Bodies held by running handlers."
    );
    describe_gauge!(
        "jaunt_bytes_queued",
        Unit::Bytes,
        "Frames waiting in write queues."
    );
    describe_counter!(
        "jaunt_frames_dropped_total",
        "Malformed frames dropped since the peer started."
    );
    describe_counter!(
        WIRE_IN,
        Unit::Bytes,
        "Bytes received as on the wire (whole frames, after transfer filters), every session since the peer started."
    );
    describe_counter!(
        WIRE_OUT,
        Unit::Bytes,
        "Bytes sent as on the wire (whole frames, after transfer filters), every session since the peer started."
    );
    describe_counter!(
        FRAMES_IN,
        "Frames received (malformed ones included), every session since the peer started."
    );
    describe_counter!(
        FRAMES_OUT,
        "Frames sent, every session since the peer started."
    );
    describe_gauge!(
        "jaunt_pending_pulls",
        "Pulls sent by this peer waiting for their reply."
    );
    describe_gauge!(
        "jaunt_session_bytes_queued_max",
        Unit::Bytes,
        "The most bytes one session has waiting in its write queue."
    );
    describe_gauge!(
        "jaunt_session_pending_pulls_max",
        "The most pulls one session has waiting for their reply."
    );
    describe_gauge!(
        "jaunt_session_handlers_max",
        "The most handlers one session has running."
    );
}

/// The exporter's settings: our bucket bounds (in seconds) for both latency
/// histograms.
fn prometheus_builder() -> PrometheusBuilder {
    let bounds: Vec<f64> = BUCKETS_MS.iter().map(|ms| ms / 1000.0).collect();
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), &bounds)
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

impl Metrics {
    /// Metrics with a Prometheus recorder of their own (no global state),
    /// tracking up to 1000 uris.
    pub fn new() -> Self {
        let recorder = prometheus_builder().build_recorder();
        with_local_recorder(&recorder, describe);
        Self {
            max_uris: 1000,
            uris: RwLock::default(),
            body: Default::default(),
            sink: Sink::Own(recorder),
        }
    }

    /// Metrics that record through the `metrics` crate's global recorder
    /// (whatever the application installed; this describes the metrics to
    /// it; install it before the peer's first call: the plugin registers
    /// each series once and keeps its handle): [`prometheus`](Self::prometheus),
    /// [`snapshot`](Self::snapshot) and [`MetricsEndpoint`] then have
    /// nothing to show; the application exports them its own way.
    pub fn global() -> Self {
        describe();
        Self {
            max_uris: 1000,
            uris: RwLock::default(),
            body: Default::default(),
            sink: Sink::Global,
        }
    }

    /// Tracks at most `max` distinct uris; later ones are counted together
    /// under [`OTHER_URI`].
    #[must_use]
    pub fn with_max_uris(mut self, max: usize) -> Self {
        self.max_uris = max;
        self
    }

    /// The handle that renders this plugin's recorder (`None` for
    /// [`Metrics::global`]).
    pub fn handle(&self) -> Option<PrometheusHandle> {
        match &self.sink {
            Sink::Own(recorder) => Some(recorder.handle()),
            Sink::Global => None,
        }
    }

    /// Runs `f` with this plugin's recorder as the current one.
    fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.sink {
            Sink::Own(recorder) => with_local_recorder(recorder, f),
            Sink::Global => f(),
        }
    }

    /// Runs `f` with the handles of `uri` (or of [`OTHER_URI`] when the
    /// table is full): a known uri is found under the read lock, without
    /// allocating or cloning.
    fn with_uri<T>(&self, uri: &str, f: impl FnOnce(&UriHandles) -> T) -> T {
        {
            let known = self.uris.read().unwrap_or_else(|e| e.into_inner());
            if let Some(handles) = known.get(uri) {
                return f(handles);
            }
        }
        f(&self.new_uri(uri))
    }

    /// Adds `uri` to the table (or finds it there, or [`OTHER_URI`] when
    /// the table is full).
    #[cold]
    fn new_uri(&self, uri: &str) -> Arc<UriHandles> {
        let mut known = self.uris.write().unwrap_or_else(|e| e.into_inner());
        let label = if known.len() < self.max_uris || known.contains_key(uri) {
            uri
        } else {
            OTHER_URI
        };
        known
            .entry(label.to_owned())
            .or_insert_with(|| {
                Arc::new(UriHandles {
                    label: label.to_owned(),
                    ..UriHandles::default()
                })
            })
            .clone()
    }

    /// The handle in `cell`, registered by `make` under this plugin's
    /// recorder the first time.
    fn registered<'a, T>(&self, cell: &'a OnceLock<T>, make: impl FnOnce() -> T) -> &'a T {
        cell.get_or_init(|| self.record(make))
    }

    /// Counts `n` body bytes: `which` indexes [`Metrics::body`].
    fn body_bytes(&self, which: usize, n: u64) {
        let (name, kind) = [
            (BODY_IN, "pull"),
            (BODY_OUT, "reply"),
            (BODY_OUT, "pull"),
            (BODY_IN, "reply"),
        ][which];
        self.registered(&self.body[which], || counter!(name, "kind" => kind))
            .increment(n);
    }

    /// Records the peer's [`PeerStats`]. [`MetricsEndpoint`] calls it before
    /// each scrape when it is given the peer.
    ///
    /// - counters (set to the peer's totals, which never go backwards):
    ///   `jaunt_received_bytes_total`, `jaunt_sent_bytes_total` (whole frames
    ///   as on the wire, length prefix included, after transfer filters),
    ///   `jaunt_received_frames_total` (malformed frames included),
    ///   `jaunt_sent_frames_total`, `jaunt_frames_dropped_total`;
    /// - gauges of the resource accounting: `jaunt_sessions`,
    ///   `jaunt_handlers`, `jaunt_bytes_held`, `jaunt_bytes_read`,
    ///   `jaunt_bytes_in_handlers`, `jaunt_bytes_queued`,
    ///   `jaunt_pending_pulls`;
    /// - gauges of the largest value one live session has:
    ///   `jaunt_session_bytes_queued_max`, `jaunt_session_pending_pulls_max`,
    ///   `jaunt_session_handlers_max` (no per-session labels: their number
    ///   has no bound on a public server).
    pub fn record_peer_stats(&self, stats: &PeerStats) {
        #[allow(clippy::cast_precision_loss)] // gauges are f64
        self.record(|| {
            gauge!("jaunt_sessions").set(stats.sessions as f64);
            gauge!("jaunt_handlers").set(stats.handlers as f64);
            gauge!("jaunt_bytes_held").set(stats.bytes_held as f64);
            gauge!("jaunt_bytes_read").set(stats.bytes_read as f64);
            gauge!("jaunt_bytes_in_handlers").set(stats.bytes_in_handlers as f64);
            gauge!("jaunt_bytes_queued").set(stats.bytes_queued as f64);
            counter!("jaunt_frames_dropped_total").absolute(stats.frames_dropped);
            counter!(WIRE_IN).absolute(stats.received_bytes);
            counter!(WIRE_OUT).absolute(stats.sent_bytes);
            counter!(FRAMES_IN).absolute(stats.received_frames);
            counter!(FRAMES_OUT).absolute(stats.sent_frames);
            gauge!("jaunt_pending_pulls").set(stats.pending_pulls as f64);
            gauge!("jaunt_session_bytes_queued_max").set(stats.max_session_bytes_queued as f64);
            gauge!("jaunt_session_pending_pulls_max").set(stats.max_session_pending_pulls as f64);
            gauge!("jaunt_session_handlers_max").set(stats.max_session_handlers as f64);
        });
    }

    /// The metrics in the Prometheus text exposition format (empty for
    /// [`Metrics::global`]):
    ///
    /// - served: `jaunt_requests_total{uri,kind}` (kind `pull` or `push`),
    ///   `jaunt_errors_total{uri,code}`, the histogram
    ///   `jaunt_request_duration_seconds{uri}`;
    /// - sent: `jaunt_client_requests_total{uri}`,
    ///   `jaunt_client_errors_total{uri,code}`,
    ///   `jaunt_client_abandoned_total{uri}`,
    ///   `jaunt_client_request_duration_seconds{uri}`;
    /// - `jaunt_received_body_bytes_total{kind}`,
    ///   `jaunt_sent_body_bytes_total{kind}` (message bodies as the hooks
    ///   see them);
    /// - the counters and gauges of
    ///   [`record_peer_stats`](Self::record_peer_stats) (whole frames as on
    ///   the wire, resource accounting, per-session maxima).
    pub fn prometheus(&self) -> String {
        self.handle().map(|h| h.render()).unwrap_or_default()
    }

    /// The per-uri counts so far, read back from the recorder.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        for sample in parse_samples(&self.prometheus()) {
            let Some(uri) = sample.label("uri") else {
                continue;
            };
            let (table, name) = match sample.name.strip_prefix("jaunt_client_") {
                Some(rest) => (&mut snap.sent, rest),
                None => match sample.name.strip_prefix("jaunt_") {
                    Some(rest) => (&mut snap.per_uri, rest),
                    None => continue,
                },
            };
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = sample.value as u64;
            let stats = table.entry(uri.to_owned()).or_default();
            match name {
                "requests_total" if sample.label("kind") == Some("push") => stats.pushes += n,
                "requests_total" => stats.pulls += n,
                "abandoned_total" => stats.abandoned += n,
                "errors_total" => {
                    stats.errors += n;
                    let code = sample.label("code").and_then(|c| c.parse().ok());
                    *stats.errors_by_code.entry(code.unwrap_or(0)).or_default() += n;
                }
                "request_duration_seconds_sum" => {
                    stats.latency.sum = Duration::from_secs_f64(sample.value.max(0.0));
                }
                "request_duration_seconds_bucket" => {
                    let le = sample.label("le").unwrap_or("+Inf");
                    let i = BUCKETS_MS
                        .iter()
                        .position(|ms| le.parse::<f64>().ok() == Some(ms / 1000.0))
                        .unwrap_or(BUCKETS_MS.len());
                    stats.latency.counts[i] = n; // cumulative for now
                }
                _ => {}
            }
        }
        for stats in snap.per_uri.values_mut().chain(snap.sent.values_mut()) {
            let cumulative = stats.latency.counts;
            for i in (1..cumulative.len()).rev() {
                stats.latency.counts[i] = cumulative[i].saturating_sub(cumulative[i - 1]);
            }
        }
        snap
    }

    /// Starts serving `GET /metrics` on `addr` (see [`MetricsEndpoint`]).
    pub async fn serve(
        self: &std::sync::Arc<Self>,
        addr: &str,
        peer: Option<Peer>,
    ) -> io::Result<MetricsEndpoint> {
        MetricsEndpoint::bind(addr, self.clone(), peer).await
    }
}

/// One sample line of the text format.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples of a Prometheus text exposition (comments skipped, lines it
/// cannot read skipped).
fn parse_samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(parse_sample)
        .collect()
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (name, mut rest) = match line.find(['{', ' ']) {
        Some(i) => (&line[..i], &line[i..]),
        None => return None,
    };
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    rest = &body[i + 1..];
                    break;
                }
                ',' => {}
                '=' => {
                    chars.next().filter(|&(_, q)| q == '"')?;
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            c => value.push(c),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

#[async_trait]
impl RoutePlugin for Metrics {
    fn name(&self) -> &str {
        "metrics"
    }

    /// The served side: one routed pull answered, or one routed push.
    fn post_serve_end(&self, _: &Session, end: &ServeEnd<'_>) {
        self.with_uri(end.uri, |uri| {
            let label = || uri.label.clone();
            if end.kind == RouteKind::Push {
                self.registered(
                    &uri.served_pushes,
                    || counter!(SERVED, "uri" => label(), "kind" => "push"),
                )
                .increment(1);
                return;
            }
            self.registered(
                &uri.served_pulls,
                || counter!(SERVED, "uri" => label(), "kind" => "pull"),
            )
            .increment(1);
            if end.code != 0 {
                let code = end.code;
                uri.served_errors
                    .get(code, || {
                        self.record(
                            || counter!(SERVED_ERRORS, "uri" => label(), "code" => code.to_string()),
                        )
                    })
                    .increment(1);
            }
            self.registered(
                &uri.served_duration,
                || histogram!(SERVED_DURATION, "uri" => label()),
            )
            .record(end.cost.as_secs_f64());
        });
        if end.kind == RouteKind::Pull {
            self.body_bytes(0, end.request_body_len as u64);
            self.body_bytes(1, end.reply_body_len as u64);
        }
    }
}

/// The client side: every pull this peer sends, at its end.
#[async_trait]
impl Plugin for Metrics {
    fn post_pull_end(&self, _: &Session, end: &PullEnd<'_>) {
        self.with_uri(end.uri, |uri| {
            let label = || uri.label.clone();
            self.registered(&uri.sent_pulls, || counter!(SENT, "uri" => label()))
                .increment(1);
            let code = match end.outcome {
                PullOutcome::Abandoned => {
                    self.registered(
                        &uri.sent_abandoned,
                        || counter!(SENT_ABANDONED, "uri" => label()),
                    )
                    .increment(1);
                    return;
                }
                other => other.code().unwrap_or(0),
            };
            if code != 0 {
                uri.sent_errors
                    .get(code, || {
                        self.record(
                            || counter!(SENT_ERRORS, "uri" => label(), "code" => code.to_string()),
                        )
                    })
                    .increment(1);
            }
            self.registered(
                &uri.sent_duration,
                || histogram!(SENT_DURATION, "uri" => label()),
            )
            .record(end.cost.as_secs_f64());
        });
        if end.written {
            self.body_bytes(2, end.request_body_len as u64);
        }
        if matches!(end.outcome, PullOutcome::Replied(_)) {
            self.body_bytes(3, end.reply_body_len as u64);
        }
    }
}

/// An HTTP listener serving a [`Metrics`]' Prometheus text at `GET
/// /metrics` (anything else: 404). If it was given the peer, each scrape
/// first records the peer's [`PeerStats`] as gauges. It answers one
/// request per connection (`Connection: close`), which is what Prometheus
/// needs; [`stop`](Self::stop) (or dropping it) ends it.
#[derive(Debug)]
pub struct MetricsEndpoint {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MetricsEndpoint {
    /// Listens on `addr` (`"127.0.0.1:0"` picks a port; see
    /// [`local_addr`](Self::local_addr)).
    pub async fn bind(
        addr: &str,
        metrics: std::sync::Arc<Metrics>,
        peer: Option<Peer>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((conn, _)) = accepted else { continue };
                        let metrics = metrics.clone();
                        let peer = peer.clone();
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(
                                Duration::from_secs(10),
                                answer(conn, &metrics, peer.as_ref()),
                            )
                            .await;
                        });
                    }
                }
            }
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and waits for the listener to be closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Reads one request head (up to 8 KiB) and answers it.
async fn answer(
    mut conn: tokio::net::TcpStream,
    metrics: &Metrics,
    peer: Option<&Peer>,
) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 || head.len() + n > 8192 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    let (status, body) = if method == Some(b"GET") && path == Some(b"/metrics") {
        if let Some(peer) = peer {
            metrics.record_peer_stats(&peer.stats());
        }
        ("200 OK", metrics.prometheus())
    } else {
        ("404 Not Found", "only GET /metrics is served\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(response.as_bytes()).await?;
    conn.shutdown().await
}
