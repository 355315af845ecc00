//! [`Link`]: one connection of a session, with its writer and reader tasks.
//!
//! A session outlives its connections when it redials: each connection is a
//! link. Frames are encoded by whoever sends them; a frame with nothing
//! queued ahead of it is written by its sender (see `writer.rs`), the others
//! go through the queue of the writer task, which writes several per system
//! call when they pile up. Frames never interleave on the wire. The read loop
//! decodes frames and dispatches them: replies to their waiting pull, pulls
//! and pushes to their handlers, whose first step runs on the read loop
//! (a handler that waits goes on as its own task). When the link goes down
//! the session decides what follows (redial, or close).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use jaunt_socket::{Packet, PacketType, Proto, ProtoError, Status};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::call::CANCEL_URI;
use crate::peer::Conn;
use crate::reader::FrameReader;
use crate::signal::Signal;
use crate::writer::{Attempt, Direct, WriteHalf};
use crate::{dispatch, Addr, Session};

/// Frames are gathered into one write up to this many bytes.
const WRITE_BATCH: usize = 64 * 1024;
/// How long a closing link may spend flushing its queue when no write
/// timeout is configured.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// One connection.
pub(crate) struct Link {
    /// The writer task's queue.
    tx: mpsc::Sender<Bytes>,
    /// Writing without the writer task (TCP and Unix sockets).
    direct: Option<Direct>,
    /// This side's address on the connection.
    pub(crate) local: Addr,
    /// Fired when the connection ends (or the session closes).
    pub(crate) down: Signal,
    /// Fired when the link is done: the writer has flushed and shut the
    /// connection down, and the read loop (if one was started) has handed
    /// the loss to its session, `post_disconnect` hooks included.
    pub(crate) finished: Signal,
    /// How many of the link's tasks have still to end before `finished`.
    tasks_left: AtomicUsize,
    /// The frame reader while the connect hooks run; the read loop takes it.
    pub(crate) frames: tokio::sync::Mutex<Option<FrameReader>>,
}

impl Link {
    /// Splits `stream`, starts its writer task, and keeps its reader for the
    /// connect hooks and then the read loop.
    pub(crate) fn open(
        conn: Conn,
        proto: Arc<dyn Proto>,
        local: Addr,
        queue_len: usize,
        write_timeout: Option<Duration>,
    ) -> Arc<Link> {
        let (reader, writer) = conn.into_halves();
        let frames = FrameReader::new(reader, proto);
        let (tx, rx) = mpsc::channel(queue_len.max(1));
        let (direct, other) = match writer {
            WriteHalf::Direct(direct) => (Some(direct), None),
            WriteHalf::Other(other) => (None, Some(other)),
        };
        let link = Arc::new(Link {
            tx,
            direct,
            local,
            down: Signal::new(),
            finished: Signal::new(),
            // The writer; the read loop counts itself in when it starts.
            tasks_left: AtomicUsize::new(1),
            frames: tokio::sync::Mutex::new(Some(frames)),
        });
        tokio::spawn(write_loop(other, rx, link.clone(), write_timeout));
        link
    }

    /// Sends an encoded frame: written at once when nothing is ahead of it,
    /// queued otherwise (waiting for room in a full queue).
    ///
    /// The wait for room is boxed: every handler's future holds this one, and
    /// a full queue is the exception.
    pub(crate) async fn send(&self, frame: Bytes) -> Result<(), Status> {
        match self.try_send(frame) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(_)) => Err(Status::conn_closed("connection lost")),
            Err(TrySendError::Full(frame)) => Box::pin(self.send_when_room(frame)).await,
        }
    }

    /// Queues `frame` once the full queue has room.
    async fn send_when_room(&self, frame: Bytes) -> Result<(), Status> {
        let slot = self
            .tx
            .reserve()
            .await
            .map_err(|_| Status::conn_closed("connection lost"))?;
        match &self.direct {
            Some(direct) => {
                let mut order = direct.lock();
                order.queued += 1;
                slot.send(owned(&frame));
            }
            None => slot.send(owned(&frame)),
        }
        Ok(())
    }

    /// Sends an encoded frame if that needs no waiting: `Full` when the
    /// queue is full, `Closed` when the connection is lost.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<(), TrySendError<Bytes>> {
        if self.down.is_cancelled() {
            return Err(TrySendError::Closed(frame));
        }
        // A queue slot first: if the frame is written only in part, its rest
        // must be queued before the lock is let go, with no waiting.
        let slot = match self.tx.try_reserve() {
            Ok(slot) => slot,
            Err(TrySendError::Full(())) => return Err(TrySendError::Full(frame)),
            Err(TrySendError::Closed(())) => return Err(TrySendError::Closed(frame)),
        };
        let Some(direct) = &self.direct else {
            slot.send(owned(&frame));
            return Ok(());
        };
        match direct.attempt(&frame) {
            // The unused slot goes back to the queue.
            Ok(Attempt::Written) => Ok(()),
            Ok(Attempt::Queue(mut order, written)) => {
                slot.send(owned(&frame[written..]));
                order.queued += 1;
                Ok(())
            }
            Err(e) => {
                tracing::debug!(error = %e, "write failed: the connection is lost");
                self.down.cancel();
                Err(TrySendError::Closed(frame))
            }
        }
    }

    /// Counts the read loop in among the tasks `finished` waits for; call
    /// before spawning it.
    pub(crate) fn reading_starts(&self) {
        self.tasks_left.fetch_add(1, Ordering::AcqRel);
    }

    /// One of the link's tasks ended; the last one fires `finished`.
    fn task_ended(&self) {
        if self.tasks_left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.finished.cancel();
        }
    }

    /// Corks the link while the read loop holds more frames of a burst (the
    /// replies of its handlers then leave together).
    pub(crate) fn cork(&self, corked: bool) {
        if let Some(direct) = &self.direct {
            direct.cork(corked);
        }
    }
}

/// A queued frame's own copy. Frames are cut from a buffer shared by every
/// session of the thread (`spare.rs`): a frame that waits in a queue would
/// otherwise keep the whole buffer alive, and a slow reader's queue could pin
/// many times its own size. Only frames that wait are copied.
fn owned(frame: &[u8]) -> Bytes {
    Bytes::copy_from_slice(frame)
}

async fn write_loop(
    mut other: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    mut rx: mpsc::Receiver<Bytes>,
    link: Arc<Link>,
    write_timeout: Option<Duration>,
) {
    // Awaited in every turn: made once (each new one would take and release
    // the token's lock).
    let down = link.down.cancelled();
    tokio::pin!(down);
    // Allocated on first use: an idle session holds no write buffer.
    let mut batch = BytesMut::new();
    let mut broken = false;
    loop {
        let first = tokio::select! {
            biased;
            frame = rx.recv() => frame,
            () = &mut down => None,
        };
        let Some(first) = first else { break };
        batch.extend_from_slice(&first);
        let mut frames = 1;
        // Coalesce whatever else is already queued into the same write.
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(frame) => {
                    batch.extend_from_slice(&frame);
                    frames += 1;
                }
                Err(_) => break,
            }
        }
        let written = {
            // Boxed, so that an idle session's writer task stays small (the
            // common case, a frame with nothing ahead, never comes here).
            let mut write = Box::pin(write_batch(
                &link,
                &mut other,
                &batch,
                frames,
                write_timeout,
            ));
            tokio::select! {
                biased;
                result = &mut write => result,
                // Closing while a write is stuck (the other side stopped
                // reading): it gets the flush time, no more, or closing would
                // wait forever when no write timeout is set.
                () = &mut down => tokio::time::timeout(write_timeout.unwrap_or(CLOSE_FLUSH), &mut write)
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
            }
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "write failed: the connection is lost");
            link.down.cancel();
            // A frame may be half written: nothing more can go on this stream.
            broken = true;
            break;
        }
        batch.clear();
    }
    // Flush what was queued before the close (replies of finished handlers),
    // then shut the connection down.
    rx.close();
    if !broken {
        batch.clear();
        let mut frames = 0;
        while let Ok(frame) = rx.try_recv() {
            batch.extend_from_slice(&frame);
            frames += 1;
        }
        if !batch.is_empty() {
            let limit = Some(write_timeout.unwrap_or(CLOSE_FLUSH));
            let _ = write_batch(&link, &mut other, &batch, frames, limit).await;
        }
        match (&link.direct, &mut other) {
            (Some(direct), _) => {
                // Under the lock: a sender's write is never cut in half.
                let _order = direct.lock();
                let _ = direct.shutdown();
            }
            (None, Some(other)) => {
                let _ = tokio::time::timeout(CLOSE_FLUSH, other.shutdown()).await;
            }
            (None, None) => {}
        }
    }
    link.task_ended();
}

/// Writes a batch of `frames` queued frames, within `limit`.
async fn write_batch(
    link: &Link,
    other: &mut Option<Box<dyn AsyncWrite + Send + Unpin>>,
    batch: &[u8],
    frames: usize,
    limit: Option<Duration>,
) -> std::io::Result<()> {
    let write = async {
        match (&link.direct, other) {
            (Some(direct), _) => direct.write_queued(batch, frames).await,
            (None, Some(other)) => write_all(other, batch).await,
            (None, None) => Ok(()),
        }
    };
    match limit {
        Some(limit) => tokio::time::timeout(limit, write)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
        None => write.await,
    }
}

async fn write_all<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// Reads and dispatches the link's frames until it goes down, then tells
/// the session.
pub(crate) async fn read_loop(mut frames: FrameReader, session: Session, link: Arc<Link>) {
    let config = &session.shared().config;
    let read_timeout = config.read_timeout;
    let too_old = async {
        match config.max_session_age {
            Some(age) => tokio::time::sleep(age).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(too_old);
    let down = link.down.cancelled();
    tokio::pin!(down);
    loop {
        if let Err(status) = pre_read_header(&session).await {
            tracing::debug!(id = %session.id(), %status, "a plugin closed the session");
            session.close();
            break;
        }
        let next = async {
            match read_timeout {
                Some(limit) => tokio::time::timeout(limit, frames.next()).await.ok(),
                None => Some(frames.next().await),
            }
        };
        let next = tokio::select! {
            () = &mut down => break,
            () = &mut too_old => {
                tracing::debug!(id = %session.id(), "session reached its maximum age: closing it");
                session.close();
                break;
            }
            next = next => next,
        };
        match next {
            None => {
                tracing::debug!(id = %session.id(), "read timeout: closing the session");
                session.close();
                break;
            }
            Some(None) => break,
            Some(Some(Ok(Ok(packet)))) => {
                // More of the burst to come: let the replies gather.
                link.cork(frames.has_buffered());
                // A reply with no hooks to run goes to its caller at once,
                // without passing through the dispatching future's state.
                if packet.ptype == PacketType::Reply && session.shared().plugins.is_empty() {
                    session.complete_pull(Box::new(packet));
                    continue;
                }
                if !dispatch_packet(&session, &link, packet).await {
                    break;
                }
            }
            Some(Some(Ok(Err(ProtoError::UnknownPacketType(t))))) => {
                tracing::warn!(id = %session.id(), mtype = t, "unknown message type (405): closing the connection");
                break;
            }
            Some(Some(Ok(Err(e)))) => {
                tracing::warn!(id = %session.id(), error = %e, "dropped a malformed frame");
            }
            Some(Some(Err(e))) => {
                tracing::warn!(id = %session.id(), error = %e, "unreadable stream: closing the connection");
                break;
            }
        }
    }
    session.link_lost(&link).await;
    link.task_ended();
}

async fn pre_read_header(session: &Session) -> Result<(), Status> {
    for plugin in session.shared().plugins.iter() {
        plugin.pre_read_header(session).await?;
    }
    Ok(())
}

/// The permits a handler holds while it runs: one of its session's, one of
/// the peer's.
pub(crate) type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// What the in-order worker runs: a message, the link it came on (its reply
/// goes back there), and the handler's permits.
pub(crate) type Job = (Packet, Arc<Link>, Permits);

/// Runs a session's handlers one at a time, in arrival order.
pub(crate) async fn in_order_worker(mut rx: mpsc::Receiver<Job>, session: Session) {
    while let Some((packet, link, permits)) = rx.recv().await {
        match packet.ptype {
            PacketType::Pull => {
                let cancel = session.serving_started(packet.seq);
                dispatch::serve_pull(session.clone(), link, Box::new(packet), cancel, permits)
                    .await;
            }
            _ => {
                dispatch::serve_push(session.clone(), packet).await;
                drop(permits);
            }
        }
    }
}

/// Runs a handler's first step here, on the reading task; a handler that
/// then waits (for I/O, a timer, a lock) goes on as a task of its own.
///
/// Most handlers finish in that first step: running it in place spares the
/// task a spawn would cost (allocation, scheduling, bookkeeping), about a
/// tenth of the framework's time per call. Wakers the first step registered
/// point at the reading task; the spawned task's first poll registers its
/// own, so at worst the reader wakes once for nothing.
///
/// The handler comes boxed: the read loop's own state then holds a pointer,
/// not the handler (which would make every idle session's reading task as
/// large as the largest handler future).
async fn run_handler<F: Future<Output = ()> + Send + 'static>(mut handler: Pin<Box<F>>) {
    let first = poll_fn(|cx| Poll::Ready(handler.as_mut().poll(cx))).await;
    if first.is_pending() {
        tokio::spawn(handler);
    }
}

/// Routes one incoming packet; false means the link must close.
async fn dispatch_packet(session: &Session, link: &Arc<Link>, packet: Packet) -> bool {
    match packet.ptype {
        PacketType::Reply => session.receive_reply(packet).await,
        PacketType::Push if packet.uri == CANCEL_URI => session.cancel_serving(&packet),
        PacketType::Pull if session.shared().is_draining() => {
            let mut reply = Packet::new(PacketType::Reply, packet.seq, "");
            reply.status = Status::conn_closed("the peer is shutting down");
            reply.xfer = packet.xfer;
            let _ = session.queue_on(link, &reply).await;
        }
        PacketType::Push if session.shared().is_draining() => {
            tracing::debug!(id = %session.id(), uri = %packet.uri, "push dropped: the peer is shutting down");
        }
        PacketType::Pull | PacketType::Push => {
            let Some(permits) = session.handler_permits().await else {
                return false;
            };
            if let Some(worker) = session.in_order_queue() {
                return worker.send((packet, link.clone(), permits)).await.is_ok();
            }
            let session = session.clone();
            if packet.ptype == PacketType::Pull {
                let cancel = session.serving_started(packet.seq);
                let link = link.clone();
                let packet = Box::new(packet);
                run_handler(Box::pin(dispatch::serve_pull(
                    session, link, packet, cancel, permits,
                )))
                .await;
            } else {
                run_handler(Box::pin(async move {
                    dispatch::serve_push(session, packet).await;
                    drop(permits);
                }))
                .await;
            }
        }
        PacketType::AuthPull | PacketType::AuthReply => {
            tracing::warn!(id = %session.id(), "auth message on a session without auth: closing it");
            return false;
        }
    }
    true
}
