//! Observability of calls: a `tracing` span for every pull and push sent
//! and served, the hook that carries trace context across peers in a
//! frame's meta, and the per-call run log (Go erpc's `PULL->` lines).
//!
//! # Spans
//!
//! Spans follow the OpenTelemetry RPC semantic conventions. Their `tracing`
//! names are fixed (`jaunt.client`, `jaunt.server`, `jaunt.session.connect`,
//! `jaunt.session.close`); the OpenTelemetry name `{service}/{method}` is
//! in the `otel.name` field (which `tracing-opentelemetry` uses as the span
//! name) and the kind in `otel.kind`. Fields of a call span:
//!
//! | field | value |
//! |---|---|
//! | `rpc.system` | `"jaunt"` |
//! | `rpc.service` | the uri path but its last segment: `/math/add` → `math` (`""` for `/ping`) |
//! | `rpc.method` | the last segment of the path: `/math/add` → `add` |
//! | `network.peer.address` | the other side's address |
//! | `jaunt.kind` | `"pull"` or `"push"` |
//! | `jaunt.uri` | the whole uri, query included |
//! | `jaunt.seq` | the message's seq |
//! | `jaunt.codec` | the body codec id |
//! | `jaunt.filters` | the transfer filter ids, comma-separated (`""`: none) |
//! | `jaunt.deadline_ms` | the pull's time budget, if it has one |
//! | `jaunt.status_code` | the outcome's status code (0: OK), recorded at the end |
//! | `jaunt.cost_us` | the call's time in microseconds, recorded at the end |
//!
//! Spans are at INFO level. A handler's future runs inside its server span,
//! so its own spans and events nest under it, and a pull it sends on is a
//! child of it. When no subscriber is interested in them a span costs one
//! callsite-interest check: nothing is formatted, no field is computed.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jaunt_socket::{Meta, Packet, PacketType, Status};
use tracing::field::Empty;
use tracing::Span;

use crate::call::TIMEOUT_META;
use crate::Addr;

/// The meta key of the W3C trace context's `traceparent`: lowercase ASCII
/// that Go erpc peers pass on untouched (meta is url-query encoded; the
/// value, hex digits and dashes, needs no escaping).
pub const TRACEPARENT_META: &str = "traceparent";
/// The meta key of the W3C trace context's `tracestate` (its `=` and `,`
/// are percent-encoded on the wire, as any meta value's).
pub const TRACESTATE_META: &str = "tracestate";

/// Carries trace context across peers in a frame's meta.
///
/// The peer calls [`inject`](Self::inject) with the span of every pull and
/// push it sends, and [`extract`](Self::extract) with the span of every one
/// it serves, before the handler runs — only when a subscriber records
/// those spans. The core has no OpenTelemetry dependency: `jaunt-otel`
/// implements this with the W3C trace context propagator; set one with
/// [`PeerBuilder::trace_propagator`](crate::PeerBuilder::trace_propagator).
///
/// ```
/// use jaunt_peer::{Peer, Router, TracePropagator, TRACEPARENT_META};
/// use jaunt_socket::Meta;
/// use std::sync::Arc;
///
/// /// Passes a fixed trace id on (a real one asks the span).
/// struct Fixed;
/// impl TracePropagator for Fixed {
///     fn inject(&self, _span: &tracing::Span, meta: &mut Meta) {
///         meta.set(TRACEPARENT_META, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
///     }
///     fn extract(&self, _meta: &Meta, _span: &tracing::Span) {}
/// }
///
/// let peer = Peer::builder(Router::new()).trace_propagator(Arc::new(Fixed)).build().unwrap();
/// # drop(peer);
/// ```
pub trait TracePropagator: Send + Sync + 'static {
    /// Writes the context of `span` (a call being sent) into its meta.
    fn inject(&self, span: &Span, meta: &mut Meta);
    /// Reads the caller's context from the meta of a call being served and
    /// makes it the parent of `span`.
    fn extract(&self, meta: &Meta, span: &Span);
}

/// Whether anyone may want INFO spans: one load and compare (the static
/// and current maximum levels; what `tracing`'s own macros check first).
#[inline(always)]
pub(crate) fn info_enabled() -> bool {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    tracing::Level::INFO <= STATIC_MAX_LEVEL && tracing::Level::INFO <= LevelFilter::current()
}

/// Which side of a call a span is.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    Client,
    Server,
}

/// `/math/add?x=1` → (`math`, `add`); `/ping` → (``, `ping`).
fn service_method(uri: &str) -> (&str, &str) {
    let path = uri.split_once('?').map_or(uri, |(path, _)| path);
    let path = path.trim_start_matches('/');
    match path.rsplit_once('/') {
        Some((service, method)) => (service, method),
        None => ("", path),
    }
}

/// The span of a call sent or served; [`Span::none`] when nobody listens.
/// `budget` is the client's time budget (a server reads its meta).
#[inline(never)]
pub(crate) fn call_span(
    side: Side,
    peer_addr: &Addr,
    packet: &Packet,
    budget: Option<Duration>,
) -> Span {
    let span = match side {
        Side::Client => tracing::info_span!(
            "jaunt.client",
            otel.name = Empty,
            otel.kind = "client",
            rpc.system = "jaunt",
            rpc.service = Empty,
            rpc.method = Empty,
            network.peer.address = Empty,
            jaunt.kind = Empty,
            jaunt.uri = Empty,
            jaunt.seq = Empty,
            jaunt.codec = Empty,
            jaunt.filters = Empty,
            jaunt.deadline_ms = Empty,
            jaunt.status_code = Empty,
            jaunt.cost_us = Empty,
        ),
        Side::Server => tracing::info_span!(
            "jaunt.server",
            otel.name = Empty,
            otel.kind = "server",
            rpc.system = "jaunt",
            rpc.service = Empty,
            rpc.method = Empty,
            network.peer.address = Empty,
            jaunt.kind = Empty,
            jaunt.uri = Empty,
            jaunt.seq = Empty,
            jaunt.codec = Empty,
            jaunt.filters = Empty,
            jaunt.deadline_ms = Empty,
            jaunt.status_code = Empty,
            jaunt.cost_us = Empty,
        ),
    };
    if span.is_disabled() {
        return span;
    }
    fill_call_span(&span, side, peer_addr, packet, budget);
    span
}

/// The fields of an enabled call span (out of line: the disabled path is
/// only the check above).
#[cold]
#[inline(never)]
fn fill_call_span(
    span: &Span,
    side: Side,
    peer_addr: &Addr,
    packet: &Packet,
    budget: Option<Duration>,
) {
    let (service, method) = service_method(&packet.uri);
    span.record("otel.name", format!("{service}/{method}"));
    span.record("rpc.service", service);
    span.record("rpc.method", method);
    span.record("network.peer.address", tracing::field::display(peer_addr));
    let kind = match packet.ptype {
        PacketType::Push => "push",
        _ => "pull",
    };
    span.record("jaunt.kind", kind);
    span.record("jaunt.uri", packet.uri.as_str());
    span.record("jaunt.seq", packet.seq);
    span.record("jaunt.codec", packet.body_codec);
    span.record(
        "jaunt.filters",
        tracing::field::display(Filters(&packet.xfer)),
    );
    let deadline = match side {
        Side::Client => budget.map(|budget| u64::try_from(budget.as_millis()).unwrap_or(u64::MAX)),
        Side::Server => packet
            .meta
            .get_str(TIMEOUT_META)
            .and_then(|ms| ms.parse::<u64>().ok()),
    };
    if let Some(ms) = deadline {
        span.record("jaunt.deadline_ms", ms);
    }
}

/// Records a call's outcome on its span (nothing if it is disabled).
pub(crate) fn record_outcome(span: &Span, code: i32, cost: Duration) {
    if span.is_disabled() {
        return;
    }
    span.record("jaunt.status_code", code);
    span.record(
        "jaunt.cost_us",
        u64::try_from(cost.as_micros()).unwrap_or(u64::MAX),
    );
}

/// Transfer filter ids, comma-separated.
struct Filters<'a>(&'a [u8]);

impl fmt::Display for Filters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

/// What a run log line is about: Go erpc's `PULL->`, `PULL<-`, `PUSH->`,
/// `PUSH<-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunKind {
    /// A pull this side sent (and its reply).
    PullSent,
    /// A pull this side served (and its reply).
    PullServed,
    /// A push this side sent.
    PushSent,
    /// A push this side served.
    PushServed,
}

impl RunKind {
    fn arrow(self) -> &'static str {
        match self {
            Self::PullSent => "PULL->",
            Self::PullServed => "PULL<-",
            Self::PushSent => "PUSH->",
            Self::PushServed => "PUSH<-",
        }
    }
}

/// One message of a run log line: `seq`, `status` and `codec`, and with
/// `print_detail` its meta and body.
pub(crate) struct MessageLog<'a> {
    pub(crate) packet: Option<&'a Packet>,
    pub(crate) status: Option<&'a Status>,
    pub(crate) detail: bool,
}

impl fmt::Display for MessageLog<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(packet) = self.packet {
            write!(f, "seq={}", packet.seq)?;
            sep = " ";
        }
        if let Some(status) = self.status {
            write!(f, "{sep}status={}", status.code())?;
            if !status.is_ok() {
                write!(f, " msg={:?}", status.to_string())?;
            }
            sep = " ";
        }
        if let Some(packet) = self.packet {
            if packet.body_codec != 0 {
                write!(f, "{sep}codec={}", packet.body_codec)?;
            }
            if self.detail {
                write!(f, " meta={:?}", packet.meta)?;
                write!(f, " body={:?}", String::from_utf8_lossy(&packet.body))?;
            }
        }
        Ok(())
    }
}

/// At most `per_second` run log lines a second for a peer; the lines left
/// out are counted and the next line says how many.
pub(crate) struct RunLogLimit {
    per_second: u32,
    start: Instant,
    window: AtomicU64,
    lines: AtomicU32,
    suppressed: AtomicU64,
}

impl RunLogLimit {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            start: Instant::now(),
            window: AtomicU64::new(0),
            lines: AtomicU32::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines suppressed since the last one)` if a line may be written
    /// now; `None` (and the line counted as suppressed) if not.
    pub(crate) fn admit(&self) -> Option<u64> {
        if self.per_second == 0 {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        let now = self.start.elapsed().as_secs();
        let window = self.window.load(Ordering::Relaxed);
        if window != now
            && self
                .window
                .compare_exchange(window, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.lines.store(0, Ordering::Relaxed);
        }
        if self.lines.fetch_add(1, Ordering::Relaxed) < self.per_second {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// One finished call's run log line, Go erpc style:
/// `PULL-> 127.0.0.1:9090 1.2ms(fast) /math/add SEND(seq=2 codec=106) RECV(seq=2 status=0 codec=106)`.
/// Cost reads `(-)` without `count_time`, and `(slow)` past the
/// `slow_call_threshold` (then at WARN, else at DEBUG).
pub(crate) struct RunLine<'a> {
    pub(crate) kind: RunKind,
    pub(crate) addr: &'a Addr,
    pub(crate) cost: Duration,
    pub(crate) slow: bool,
    pub(crate) count_time: bool,
    pub(crate) uri: &'a str,
    pub(crate) first: MessageLog<'a>,
    pub(crate) second: Option<MessageLog<'a>>,
}

impl RunLine<'_> {
    /// Writes the line as an event of target `jaunt::runlog`.
    pub(crate) fn emit(&self, suppressed: u64) {
        let (first, second) = match self.kind {
            RunKind::PullSent | RunKind::PushSent => ("SEND", "RECV"),
            RunKind::PullServed | RunKind::PushServed => ("RECV", "SEND"),
        };
        let cost = match (self.count_time, self.slow) {
            (_, true) => format!("{:?}(slow)", self.cost),
            (true, false) => format!("{:?}(fast)", self.cost),
            (false, false) => "(-)".to_owned(),
        };
        let mut line = format!(
            "{} {} {} {:?} {first}({})",
            self.kind.arrow(),
            self.addr,
            cost,
            self.uri,
            self.first
        );
        if let Some(reply) = &self.second {
            line.push_str(&format!(" {second}({reply})"));
        }
        let arrow = self.kind.arrow();
        if self.slow {
            tracing::warn!(target: "jaunt::runlog", kind = arrow, suppressed, "{line}");
        } else {
            tracing::debug!(target: "jaunt::runlog", kind = arrow, suppressed, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_and_method_come_from_the_uri_path() {
        assert_eq!(service_method("/math/add"), ("math", "add"));
        assert_eq!(service_method("/math/add?x=1&y=/z"), ("math", "add"));
        assert_eq!(service_method("/a/b/c"), ("a/b", "c"));
        assert_eq!(service_method("/ping"), ("", "ping"));
        assert_eq!(service_method(""), ("", ""));
    }

    #[test]
    fn the_run_log_admits_per_second_and_counts_what_it_leaves_out() {
        let limit = RunLogLimit::new(3);
        assert_eq!(limit.admit(), Some(0));
        assert_eq!(limit.admit(), Some(0));
        assert_eq!(limit.admit(), Some(0));
        assert_eq!(limit.admit(), None);
        assert_eq!(limit.admit(), None);
        // The next second's first line says two were left out.
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(limit.admit(), Some(2));
        assert_eq!(limit.admit(), Some(0));
    }
}
