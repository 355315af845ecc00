//! Serving the other side's pulls and pushes: route lookup, the handler run
//! (a panic becomes status 500 and the session survives), and the reply.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use jaunt_socket::{Packet, PacketType, Status};

use crate::call::ACCEPT_BODY_CODEC;
use crate::context::{PullCtx, PushCtx};
use crate::link::{Link, Permits};
use crate::plugin::{RouteChain, RouteKind, ServeEnd};
use crate::reader::off_the_reading_task;
use crate::telemetry::{self, RunKind, Side};
use crate::Session;
use std::sync::Arc;
use tokio::sync::oneshot;
use tracing::{Instrument, Span};

/// Runs a handler: both the call that builds its future and the future itself
/// may panic; either becomes an error status.
async fn run_caught<T, F, Fut>(make: F) -> Result<T, Status>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let fut = std::panic::catch_unwind(AssertUnwindSafe(make)).map_err(panic_status)?;
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(panic_status)?
}

fn panic_status(panic: Box<dyn Any + Send>) -> Status {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    Status::internal(format!("handler panicked: {what}"))
}

/// An error reply to the pull `seq`: the status, no body, the pull's filters.
pub(crate) fn error_reply(seq: i32, status: Status, xfer: Vec<u8>) -> Packet {
    let mut reply = Packet::new(PacketType::Reply, seq, "");
    reply.status = status;
    reply.xfer = xfer;
    reply
}

/// Serves one pull of the other side, unless the caller cancels it first
/// (then the handler's future is dropped and nothing is replied). `permits`
/// are held until the reply is sent.
///
/// This future is allocated for every served pull, so it is kept small: the
/// packet comes boxed (each async fn would otherwise keep its own copy of
/// it), and the rare paths below are boxed futures of their own.
pub(crate) async fn serve_pull(
    session: Session,
    link: Arc<Link>,
    packet: Box<Packet>,
    cancel: oneshot::Receiver<()>,
    permits: Permits,
) -> Option<i32> {
    let seq = packet.seq;
    let serve = async {
        let (reply, chain, routed) = answer_pull(&session, packet).await;
        let code = reply.status.code();
        let sent = send_reply(&session, &link, reply, &chain).await;
        if let Some(routed) = routed {
            routed.ended(&session, &chain, sent);
        }
        code
    };
    let code = tokio::select! {
        biased;
        // A cancel push fires it; losing the connection drops its sender.
        _ = cancel => {
            tracing::debug!(id = %session.id(), seq, "pull cancelled by its caller: handler dropped");
            None
        }
        code = serve => Some(code),
    };
    session.serving_done(seq);
    drop(permits);
    code
}

/// [`serve_pull`] in the pull's span (from [`server_span`]): the handler's
/// future runs in it, so its own spans and events, and the pulls it sends
/// on, are its children. A plain pull does not come here: it pays nothing
/// for spans nobody wants.
pub(crate) async fn serve_pull_traced(
    session: Session,
    link: Arc<Link>,
    packet: Box<Packet>,
    cancel: oneshot::Receiver<()>,
    permits: Permits,
    span: Span,
) -> Option<i32> {
    let start = Instant::now();
    let code = serve_pull(session, link, packet, cancel, permits)
        .instrument(span.clone())
        .await;
    if let Some(code) = code {
        telemetry::record_outcome(&span, code, start.elapsed());
    }
    code
}

/// The span of a call served (`None` when nobody listens); the propagator
/// makes the caller's context its parent.
#[inline]
pub(crate) fn server_span(session: &Session, packet: &Packet) -> Option<Span> {
    if !telemetry::info_enabled() {
        return None;
    }
    let span = telemetry::call_span(Side::Server, session.remote_addr(), packet, None);
    if span.is_disabled() {
        return None;
    }
    if let Some(propagator) = &session.shared().propagator {
        propagator.extract(&packet.meta, &span);
    }
    Some(span)
}

/// A served pull whose route was found, kept for its route plugins'
/// `post_serve_end` (only when the route has plugins).
struct Routed {
    pull: RoutedPull,
    cost: Duration,
}

enum RoutedPull {
    /// It reached its handler (which may have refused it).
    Ran(PullCtx),
    /// A `pre_read_pull_body` hook refused it.
    Refused(Box<Packet>),
}

impl Routed {
    /// Runs the route plugins' `post_serve_end`; `sent` is the reply's
    /// status code and body length as queued.
    #[inline(never)]
    fn ended(self, session: &Session, chain: &RouteChain, (code, reply_body_len): (i32, usize)) {
        let pull = match &self.pull {
            RoutedPull::Ran(ctx) => ctx.packet(),
            RoutedPull::Refused(packet) => packet,
        };
        serve_ended(
            session,
            chain,
            RouteKind::Pull,
            pull,
            code,
            self.cost,
            reply_body_len,
        );
    }
}

/// Runs `chain`'s `post_serve_end` hooks for the message `call`.
#[inline(never)]
fn serve_ended(
    session: &Session,
    chain: &RouteChain,
    kind: RouteKind,
    call: &Packet,
    code: i32,
    cost: Duration,
    reply_body_len: usize,
) {
    let end = ServeEnd {
        kind,
        uri: call.path(),
        seq: call.seq,
        code,
        cost,
        request_body_len: call.body.len(),
        reply_body_len,
    };
    for plugin in chain.iter() {
        plugin.post_serve_end(session, &end);
    }
}

/// Runs the hooks and the handler of a pull; returns the reply, the route
/// hooks that see it written and, when the route was found and has plugins,
/// what their `post_serve_end` needs.
async fn answer_pull(
    session: &Session,
    packet: Box<Packet>,
) -> (Packet, RouteChain, Option<Routed>) {
    let start = Instant::now();
    let mut packet = *packet;
    let shared = session.shared().clone();
    let seq = packet.seq;
    for plugin in shared.plugins.iter() {
        if let Err(status) = plugin.post_read_pull_header(session, &mut packet).await {
            log_refused_pull(session, &packet, &status, start.elapsed());
            return (
                error_reply(seq, status, packet.xfer),
                shared.peer_chain.clone(),
                None,
            );
        }
    }
    let pull_xfer = packet.xfer.clone();
    let route = shared
        .router
        .find_pull(&packet.uri)
        .map(|r| (r.handler().clone(), Some(r.info().clone())))
        .or_else(|| {
            shared
                .router
                .unknown_pull_route()
                .map(|r| (r.handler().clone(), None))
        });
    let chain = shared.pull_chain(packet.path()).clone();
    let Some((handler, info)) = route else {
        let status = Status::not_found(format!("no handler for pull {}", packet.path()));
        log_refused_pull(session, &packet, &status, start.elapsed());
        return (error_reply(seq, status, pull_xfer), chain, None);
    };
    for plugin in chain.iter() {
        if let Err(status) = plugin.pre_read_pull_body(session, &mut packet).await {
            let cost = start.elapsed();
            log_refused_pull(session, &packet, &status, cost);
            let routed = Routed {
                pull: RoutedPull::Refused(Box::new(packet)),
                cost,
            };
            return (error_reply(seq, status, pull_xfer), chain, Some(routed));
        }
    }

    // A large body is decoded (in the handler's first call) off the reading
    // task, so other sessions are not held up while it is parsed.
    let heavy = packet.body.len() > shared.config.inline_body_limit;
    let ctx = PullCtx::new(session.clone(), packet, info, start, chain.clone());
    let run = run_caught(|| match heavy {
        true => off_the_reading_task(|| handler(ctx.clone())),
        false => handler(ctx.clone()),
    });
    let outcome = match ctx.deadline() {
        // Boxed: the timer would make every served pull's future larger.
        Some(deadline) => Box::pin(tokio::time::timeout_at(deadline.into(), run))
            .await
            .unwrap_or_else(|_| {
                Err(Status::handle_timeout(
                    "the handler did not finish before the pull's deadline",
                ))
            }),
        None => run.await,
    };

    let pull = ctx.packet();
    let mut reply = Packet::new(PacketType::Reply, seq, "");
    let out = std::mem::take(&mut *ctx.out());
    reply.meta = out.meta;
    reply.xfer = out.xfer.unwrap_or(pull_xfer);
    match outcome {
        Ok(value) if value.as_raw().is_some() => {
            // An already-encoded body (a proxy's) keeps its own codec.
            if let Some(raw) = value.as_raw() {
                reply.body_codec = raw.codec;
                reply.body = raw.bytes.clone();
            }
        }
        Ok(value) => {
            let accepted = pull
                .meta
                .get_str(ACCEPT_BODY_CODEC)
                .and_then(|id| id.parse::<u8>().ok());
            let codec = out
                .codec
                .or(accepted)
                .or((pull.body_codec != 0).then_some(pull.body_codec))
                .unwrap_or(shared.default_codec);
            match shared.codecs.encode(codec, &*value) {
                Ok(body) => {
                    reply.body_codec = codec;
                    reply.body = body;
                }
                // The caller chose the codec (or its body's): tell it why.
                Err(e) => {
                    reply.status = Status::standard(
                        jaunt_socket::code::INTERNAL_SERVER_ERROR,
                        format!("cannot encode the reply: {e}"),
                    )
                }
            }
        }
        Err(status) => reply.status = status,
    }
    let cost = start.elapsed();
    shared.log_call(
        RunKind::PullServed,
        session.remote_addr(),
        pull,
        Some(&reply),
        &reply.status,
        cost,
    );
    if reply.status.is_cause_private() && !shared.config.expose_internal_errors {
        tracing::warn!(uri = %pull.uri, seq, status = %reply.status, "internal error (its cause is not shown to the caller)");
        reply.status = std::mem::take(&mut reply.status).hide_private_cause();
    }
    let routed = (!chain.is_empty()).then(|| Routed {
        pull: RoutedPull::Ran(ctx),
        cost,
    });
    (reply, chain, routed)
}

/// Runs the reply write hooks of `chain` around sending `reply`; returns
/// the status code and body length of the reply as it was queued (or would
/// have been, had the connection not gone).
async fn send_reply(
    session: &Session,
    link: &Link,
    mut reply: Packet,
    chain: &RouteChain,
) -> (i32, usize) {
    for plugin in chain.iter() {
        if let Err(status) = plugin.pre_write_reply(session, &mut reply).await {
            let xfer = std::mem::take(&mut reply.xfer);
            reply = error_reply(reply.seq, status, xfer);
            break;
        }
    }
    let sent = (reply.status.code(), reply.body.len());
    if let Err(status) = session.queue_on(link, &reply).await {
        if session.is_closed() || link.down.is_cancelled() {
            return sent;
        }
        // Boxed, as every rare path here: each served pull's future holds
        // this one's state, and a smaller future is a cheaper allocation.
        Box::pin(send_unsendable(session, link, reply, status)).await;
        return (jaunt_socket::code::INTERNAL_SERVER_ERROR, 0);
    }
    for plugin in chain.iter() {
        if let Err(status) = plugin.post_write_reply(session, &reply).await {
            tracing::warn!(plugin = plugin.name(), %status, "post_write_reply hook failed");
        }
    }
    sent
}

/// The reply could not be framed (too large, unknown filter): tells the
/// caller rather than leaving it waiting.
async fn send_unsendable(session: &Session, link: &Link, mut reply: Packet, status: Status) {
    tracing::warn!(id = %session.id(), seq = reply.seq, %status, "reply could not be sent");
    let xfer = std::mem::take(&mut reply.xfer);
    let fallback = error_reply(reply.seq, unsendable(&status), xfer);
    if session.queue_on(link, &fallback).await.is_err() {
        // With the pull's filters it cannot be framed either: send it bare.
        let bare = error_reply(reply.seq, unsendable(&status), Vec::new());
        let _ = session.queue_on(link, &bare).await;
    }
}

/// 500 telling the caller why its reply could not be sent (a public cause:
/// the caller can ask for less).
fn unsendable(status: &Status) -> Status {
    Status::standard(
        jaunt_socket::code::INTERNAL_SERVER_ERROR,
        status.to_string(),
    )
}

/// Serves one push of the other side, in its span when one is wanted.
pub(crate) async fn serve_push(session: Session, packet: Packet) {
    let Some(span) = server_span(&session, &packet) else {
        answer_push(session, packet).await;
        return;
    };
    let start = Instant::now();
    let status = Box::pin(answer_push(session, packet).instrument(span.clone())).await;
    telemetry::record_outcome(&span, status.code(), start.elapsed());
}

/// The run log line of a served pull refused before its handler answered
/// (a header or body hook's error, no route): no reply to show.
#[inline]
fn log_refused_pull(session: &Session, packet: &Packet, status: &Status, cost: Duration) {
    session.shared().log_call(
        RunKind::PullServed,
        session.remote_addr(),
        packet,
        None,
        status,
        cost,
    );
}

/// The run log line of a served push (no reply: its outcome is the
/// status).
#[inline]
fn log_push(session: &Session, packet: &Packet, status: &Status, cost: Duration) {
    session.shared().log_call(
        RunKind::PushServed,
        session.remote_addr(),
        packet,
        None,
        status,
        cost,
    );
}

/// Runs the hooks and the handler of a push; returns the outcome.
async fn answer_push(session: Session, mut packet: Packet) -> Status {
    let start = Instant::now();
    let shared = session.shared().clone();
    for plugin in shared.plugins.iter() {
        if let Err(status) = plugin.post_read_push_header(&session, &mut packet).await {
            log_push(&session, &packet, &status, start.elapsed());
            return status;
        }
    }
    let route = shared
        .router
        .find_push(&packet.uri)
        .map(|r| (r.handler().clone(), Some(r.info().clone())))
        .or_else(|| {
            shared
                .router
                .unknown_push_route()
                .map(|r| (r.handler().clone(), None))
        });
    let Some((handler, info)) = route else {
        let status = Status::not_found(format!("no handler for push {}", packet.path()));
        log_push(&session, &packet, &status, start.elapsed());
        return status;
    };
    let chain = shared.push_chain(packet.path()).clone();
    for plugin in chain.iter() {
        if let Err(status) = plugin.pre_read_push_body(&session, &mut packet).await {
            let cost = start.elapsed();
            log_push(&session, &packet, &status, cost);
            serve_ended(
                &session,
                &chain,
                RouteKind::Push,
                &packet,
                status.code(),
                cost,
                0,
            );
            return status;
        }
    }
    let heavy = packet.body.len() > shared.config.inline_body_limit;
    let ctx = PushCtx::new(session, packet, info, start, chain);
    let run = run_caught(|| match heavy {
        true => off_the_reading_task(|| handler(ctx.clone())),
        false => handler(ctx.clone()),
    });
    let status = match run.await {
        Ok(()) => Status::ok(),
        Err(status) => status,
    };
    let cost = start.elapsed();
    log_push(ctx.session(), ctx.packet(), &status, cost);
    if !ctx.chain().is_empty() {
        serve_ended(
            ctx.session(),
            ctx.chain(),
            RouteKind::Push,
            ctx.packet(),
            status.code(),
            cost,
            0,
        );
    }
    status
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Peer, Router};

    /// Every served pull's future is boxed once (`link::run_handler`). Up to
    /// 1,024 bytes the allocator serves it from its per-thread cache; above,
    /// it costs about a thousand instructions more per call (measured:
    /// docs/benchmarks.md). A change that grows the future past that shows
    /// here rather than as a slower benchmark.
    #[tokio::test]
    async fn a_served_pulls_future_stays_within_the_allocators_fast_sizes() {
        let server = Peer::new(Router::new());
        let addr = server.listen("127.0.0.1:0").await.expect("listen");
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.expect("dial");

        let permits = session.limits().take_slot().await;
        let (_cancel, cancel_rx) = oneshot::channel();
        let packet = Box::new(Packet::new(PacketType::Pull, 1, "/size"));
        let serving = serve_pull(session.clone(), session.link(), packet, cancel_rx, permits);
        let size = std::mem::size_of_val(&serving);
        drop(serving);
        assert!(
            size <= 1024,
            "a served pull's future is {size} bytes: over the 1,024 the allocator caches"
        );

        assert!(client.shutdown(Duration::from_secs(5)).await);
        assert!(server.shutdown(Duration::from_secs(5)).await);
    }
}
