//! Serving the other side's pulls and pushes: route lookup, the handler run
//! (a panic becomes status 500 and the session survives), and the reply.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures_util::FutureExt;
use jaunt_socket::{Packet, PacketType, Status};

use crate::call::ACCEPT_BODY_CODEC;
use crate::context::{PullCtx, PushCtx};
use crate::Session;

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

pub(crate) async fn serve_pull(session: Session, packet: Packet) {
    let start = Instant::now();
    let shared = session.shared().clone();
    let seq = packet.seq;
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
    let Some((handler, info)) = route else {
        let status = Status::not_found(format!("no handler for pull {}", packet.path()));
        shared.log_call("serve pull", &packet, &status, start.elapsed());
        let mut reply = Packet::new(PacketType::Reply, seq, "");
        reply.status = status;
        reply.xfer = pull_xfer;
        send_reply(&session, reply).await;
        return;
    };

    let ctx = PullCtx::new(session.clone(), packet, info, start);
    let outcome = run_caught(|| handler(ctx.clone())).await;

    let pull = ctx.packet();
    let mut reply = Packet::new(PacketType::Reply, seq, "");
    let out = std::mem::take(&mut *ctx.out());
    reply.meta = out.meta;
    reply.xfer = out.xfer.unwrap_or(pull_xfer);
    match outcome {
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
                Err(e) => reply.status = Status::internal(format!("cannot encode the reply: {e}")),
            }
        }
        Err(status) => reply.status = status,
    }
    shared.log_call("serve pull", pull, &reply.status, start.elapsed());
    send_reply(&session, reply).await;
}

async fn send_reply(session: &Session, mut reply: Packet) {
    if let Err(status) = session.send_packet(&reply).await {
        if session.is_closed() {
            return;
        }
        // The reply could not be framed (too large, unknown filter): tell the
        // caller rather than leaving it waiting.
        tracing::warn!(id = %session.id(), seq = reply.seq, %status, "reply could not be sent");
        reply.status = Status::internal(status.to_string());
        reply.body_codec = 0;
        reply.body = bytes::Bytes::new();
        reply.meta.clear();
        let _ = session.send_packet(&reply).await;
    }
}

pub(crate) async fn serve_push(session: Session, packet: Packet) {
    let start = Instant::now();
    let shared = session.shared().clone();
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
        shared.log_call("serve push", &packet, &status, start.elapsed());
        return;
    };
    let ctx = PushCtx::new(session, packet, info, start);
    let status = match run_caught(|| handler(ctx.clone())).await {
        Ok(()) => Status::ok(),
        Err(status) => status,
    };
    shared.log_call("serve push", ctx.packet(), &status, start.elapsed());
}
