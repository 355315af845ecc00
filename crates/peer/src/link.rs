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
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use crate::call::CANCEL_URI;
use crate::limits::{AfterDrop, Held, SessionLimits};
use crate::peer::Conn;
use crate::reader::FrameReader;
use crate::signal::Signal;
use crate::writer::{Attempt, Direct, WriteHalf};
use crate::{dispatch, Addr, Session};

/// Frames are gathered into one write up to this many bytes.
const WRITE_BATCH: usize = 64 * 1024;
/// How long a closing link may spend flushing its queue (or less, with a
/// shorter write timeout).
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// The flush time of a closing link.
fn close_flush(write_timeout: Option<Duration>) -> Duration {
    write_timeout.map_or(CLOSE_FLUSH, |limit| limit.min(CLOSE_FLUSH))
}

/// A frame in the writer task's queue, counted in its session's byte budget
/// until it is written (or dropped with the connection).
pub(crate) struct Queued {
    frame: Bytes,
    limits: Arc<SessionLimits>,
}

impl Queued {
    fn new(frame: Bytes, limits: &Arc<SessionLimits>) -> Queued {
        limits.bytes.add_queued(frame.len());
        Queued {
            frame,
            limits: limits.clone(),
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.limits.bytes.queued_done(self.frame.len());
    }
}

/// A reply waiting for room in the write queue, counted with its handler's
/// bytes until it is queued (or dropped).
struct WaitingReply<'a> {
    limits: &'a SessionLimits,
    bytes: usize,
}

impl<'a> WaitingReply<'a> {
    fn new(limits: &'a SessionLimits, bytes: usize) -> Self {
        limits.bytes.add_handler_bytes(bytes);
        WaitingReply { limits, bytes }
    }
}

impl Drop for WaitingReply<'_> {
    fn drop(&mut self) {
        self.limits.bytes.handler_done(self.bytes);
    }
}

/// One connection.
pub(crate) struct Link {
    /// The writer task's queue.
    tx: mpsc::Sender<Queued>,
    /// The session's accounting (the queue's bytes count there).
    limits: Arc<SessionLimits>,
    /// When the connection was opened (the first-frame deadline's clock).
    pub(crate) opened: tokio::time::Instant,
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
        config: &crate::PeerConfig,
        limits: Arc<SessionLimits>,
    ) -> Arc<Link> {
        let (queue_len, write_timeout) = (config.write_queue_len, config.write_timeout);
        let (reader, writer) = conn.into_halves();
        let frames = FrameReader::new(reader, proto, limits.clone(), config.inline_body_limit);
        let (tx, rx) = mpsc::channel(queue_len.max(1));
        let (direct, other) = match writer {
            WriteHalf::Direct(direct) => (Some(direct), None),
            WriteHalf::Other(other) => (None, Some(other)),
        };
        let link = Arc::new(Link {
            tx,
            limits,
            opened: tokio::time::Instant::now(),
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

    /// Sends an encoded reply as [`send`](Self::send) does. While it waits
    /// for room its bytes count as its handler's: the reading of the
    /// session then stops at its budget, so a client that does not read its
    /// replies cannot make a thousand handlers each hold one.
    pub(crate) async fn send_reply(&self, frame: Bytes) -> Result<(), Status> {
        match self.try_send(frame) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(_)) => Err(Status::conn_closed("connection lost")),
            Err(TrySendError::Full(frame)) => {
                let _waiting = WaitingReply::new(&self.limits, frame.len());
                Box::pin(self.send_when_room(frame)).await
            }
        }
    }

    /// Queues `frame` once the full queue has room, in frames and in bytes.
    async fn send_when_room(&self, frame: Bytes) -> Result<(), Status> {
        let budget = &self.limits.bytes;
        let down = self.down.cancelled();
        tokio::pin!(down);
        tokio::select! {
            biased;
            () = &mut down => return Err(Status::conn_closed("connection lost")),
            () = budget.wait_queue_room(frame.len()) => {}
        }
        let slot = self
            .tx
            .reserve()
            .await
            .map_err(|_| Status::conn_closed("connection lost"))?;
        match &self.direct {
            Some(direct) => {
                let mut order = direct.lock();
                order.queued += 1;
                slot.send(Queued::new(owned(&frame), &self.limits));
            }
            None => slot.send(Queued::new(owned(&frame), &self.limits)),
        }
        Ok(())
    }

    /// Sends an encoded frame if that needs no waiting: `Full` when the
    /// queue is full (in frames, or in bytes: `max_session_memory`),
    /// `Closed` when the connection is lost.
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
            if !self.limits.bytes.queue_room(frame.len()) {
                return Err(TrySendError::Full(frame));
            }
            slot.send(Queued::new(owned(&frame), &self.limits));
            return Ok(());
        };
        match direct.attempt(&frame, &self.limits.wire) {
            // The unused slot goes back to the queue.
            Ok(Attempt::Written) => Ok(()),
            // Nothing of it went out and the queue has no room for its bytes.
            Ok(Attempt::Queue(_, 0)) if !self.limits.bytes.queue_room(frame.len()) => {
                Err(TrySendError::Full(frame))
            }
            Ok(Attempt::Queue(mut order, written)) => {
                // (Partly written: the rest must follow at once, room or not.)
                slot.send(Queued::new(owned(&frame[written..]), &self.limits));
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
            // What a closed session wrote while closing joins the peer's
            // totals now.
            self.limits.wire.settle();
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
    mut rx: mpsc::Receiver<Queued>,
    link: Arc<Link>,
    write_timeout: Option<Duration>,
) {
    // Awaited in every turn: made once (each new one would take and release
    // the token's lock).
    let down = link.down.cancelled();
    tokio::pin!(down);
    // Allocated on first use: an idle session holds no write buffer.
    let mut batch = BytesMut::new();
    // The batch's frames: they stay counted in the budget until written.
    let mut in_batch: Vec<Queued> = Vec::new();
    let mut broken = false;
    loop {
        let first = tokio::select! {
            biased;
            frame = rx.recv() => frame,
            () = &mut down => None,
        };
        let Some(first) = first else { break };
        batch.extend_from_slice(&first.frame);
        in_batch.push(first);
        let mut frames = 1;
        // Coalesce whatever else is already queued into the same write.
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(queued) => {
                    batch.extend_from_slice(&queued.frame);
                    in_batch.push(queued);
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
                () = &mut down => tokio::time::timeout(close_flush(write_timeout), &mut write)
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
        in_batch.clear();
        // A batch grown for one large frame is not kept for the link's life.
        if batch.capacity() > 2 * WRITE_BATCH {
            batch = BytesMut::new();
        }
    }
    in_batch.clear();
    // Flush what was queued before the close (replies of finished handlers),
    // then shut the connection down.
    rx.close();
    if !broken {
        batch.clear();
        let mut frames = 0;
        while let Ok(queued) = rx.try_recv() {
            batch.extend_from_slice(&queued.frame);
            in_batch.push(queued);
            frames += 1;
        }
        if !batch.is_empty() {
            let limit = Some(close_flush(write_timeout));
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
    let wire = &link.limits.wire;
    let write = async {
        match (&link.direct, other) {
            (Some(direct), _) => direct.write_queued(batch, frames, wire).await,
            (None, Some(other)) => {
                write_all(other, batch).await?;
                // A stream that is not a socket (TLS) is counted once it
                // took the whole batch.
                wire.sent_bytes(batch.len());
                wire.sent_frames(frames);
                Ok(())
            }
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
///
/// Deadlines, all on one timer that is checked now and then rather than
/// reset per frame (a frame costs no clock reading and no timer update):
/// an accepted session's first whole frame must arrive within
/// `first_frame_timeout` of the connection; a frame in progress must be
/// complete within `frame_timeout`; a session silent for `read_timeout` is
/// closed. The timer fires every half of the shorter of the last two, so a
/// session is closed between one and one and a half times its limit.
pub(crate) async fn read_loop(mut frames: FrameReader, session: Session, link: Arc<Link>) {
    let config = &session.shared().config;
    let mut first_frame_due = match (session.is_dialed(), config.first_frame_timeout) {
        (false, Some(limit)) => Some(link.opened + limit),
        _ => None,
    };
    let period = [config.read_timeout, config.frame_timeout]
        .into_iter()
        .flatten()
        .min()
        .map(|limit| (limit / 2).max(Duration::from_millis(5)));
    // `max_session_age` shares the timer too (one timer per session: an idle
    // session's task stays small).
    let too_old_at = config.max_session_age.map(|age| link.opened + age);
    let next_check = |now: Instant, first_frame_due: Option<Instant>| {
        let periodic = period.map_or_else(far_future, |period| now + period);
        [first_frame_due, too_old_at]
            .into_iter()
            .flatten()
            .fold(periodic, Instant::min)
    };
    // Items read (frames, dropped frames) and, at the last check, how many
    // there were and when the session was last seen active.
    let mut items: u64 = 0;
    let mut checked_items: u64 = 0;
    let mut active_at = Instant::now();
    let deadline = tokio::time::sleep_until(next_check(active_at, first_frame_due));
    tokio::pin!(deadline);
    let down = link.down.cancelled();
    tokio::pin!(down);
    'frames: loop {
        if let Err(status) = pre_read_header(&session).await {
            tracing::debug!(id = %session.id(), %status, "a plugin closed the session");
            session.close();
            break;
        }
        let next = loop {
            tokio::select! {
                // In this order: the deadline is polled (and its waker
                // registered) only when no frame is ready, once per wake-up
                // rather than once per frame of a burst. (So a session whose
                // frames never stop coming is not closed for its age until
                // it pauses.)
                biased;
                () = &mut down => break 'frames,
                next = frames.next() => break next,
                () = &mut deadline => {
                    let now = Instant::now();
                    if items != checked_items {
                        checked_items = items;
                        active_at = now;
                    }
                    let overdue = if too_old_at.is_some_and(|at| now >= at) {
                        Some("the session reached its maximum age (max_session_age)")
                    } else if first_frame_due.is_some_and(|due| now >= due) {
                        Some("no first frame in time (first_frame_timeout)")
                    } else if config.frame_timeout.zip(frames.frame_started()).is_some_and(|(limit, started)| now >= started + limit) {
                        Some("a frame was not completed in time (frame_timeout)")
                    } else if config.read_timeout.is_some_and(|limit| now >= active_at + limit) {
                        Some("silent for too long (read_timeout)")
                    } else {
                        None
                    };
                    if let Some(why) = overdue {
                        tracing::debug!(id = %session.id(), why, "closing the session");
                        session.close();
                        break 'frames;
                    }
                    deadline.as_mut().reset(next_check(now, first_frame_due));
                }
            }
        };
        items += 1;
        let limits = session.limits();
        match next {
            None => break,
            Some(Ok(Ok(packet))) => {
                first_frame_due = None;
                limits.dropped.frame_ok();
                // More of the burst to come: let the replies gather.
                link.cork(frames.has_buffered());
                // A reply with no hooks to run goes to its caller at once,
                // without passing through the dispatching future's state.
                if packet.ptype == PacketType::Reply && session.shared().plugins.is_empty() {
                    session.complete_pull(Box::new(packet));
                } else if !dispatch_packet(&session, &link, &mut frames, packet).await {
                    break;
                }
                // A cooperative budget per wake-up: a session whose frames are
                // all buffered already yields to the others now and then.
                tokio::task::consume_budget().await;
            }
            Some(Ok(Err(ProtoError::UnknownPacketType(t)))) => {
                tracing::warn!(id = %session.id(), mtype = t, "unknown message type (405): closing the connection");
                break;
            }
            Some(Ok(Err(e))) => {
                session.shared().frame_dropped();
                let verdict = limits
                    .dropped
                    .dropped(&session.id(), &e, config.max_dropped_frames);
                if verdict == AfterDrop::Close {
                    break;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(id = %session.id(), error = %e, "unreadable stream: closing the connection");
                break;
            }
        }
    }
    drop(frames);
    session.link_lost(&link).await;
    link.task_ended();
}

/// A deadline that never comes (about 30 years away: tokio's timer wheel
/// takes no `Instant::MAX`).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

async fn pre_read_header(session: &Session) -> Result<(), Status> {
    for plugin in session.shared().plugins.iter() {
        plugin.pre_read_header(session).await?;
    }
    Ok(())
}

/// What a handler holds while it runs: a handler slot and the bytes of its
/// message, given back when it finishes.
pub(crate) type Permits = Held;

/// What the in-order worker runs: a message, the link it came on (its reply
/// goes back there), and the handler's permits.
pub(crate) type Job = (Packet, Arc<Link>, Permits);

/// Runs a session's handlers one at a time, in arrival order.
pub(crate) async fn in_order_worker(mut rx: mpsc::Receiver<Job>, session: Session) {
    while let Some((packet, link, permits)) = rx.recv().await {
        match packet.ptype {
            PacketType::Pull => match session.serving_started(packet.seq) {
                Some(cancel) => {
                    let packet = Box::new(packet);
                    match dispatch::server_span(&session, &packet) {
                        None => {
                            dispatch::serve_pull(session.clone(), link, packet, cancel, permits)
                                .await;
                        }
                        Some(span) => {
                            Box::pin(dispatch::serve_pull_traced(
                                session.clone(),
                                link,
                                packet,
                                cancel,
                                permits,
                                span,
                            ))
                            .await;
                        }
                    }
                }
                None => refuse_duplicate(&session, &link, &packet).await,
            },
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
async fn run_handler<F>(mut handler: Pin<Box<F>>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let first = poll_fn(|cx| Poll::Ready(handler.as_mut().poll(cx))).await;
    if first.is_pending() {
        tokio::spawn(handler);
    }
}

/// Routes one incoming packet; false means the link must close.
async fn dispatch_packet(
    session: &Session,
    link: &Arc<Link>,
    frames: &mut FrameReader,
    packet: Packet,
) -> bool {
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
            let limits = session.limits();
            let mut held = match limits.try_slot() {
                Some(held) => held,
                // Backpressure: the session is not read until a slot frees.
                None => match Box::pin(wait_for_slot(limits, link)).await {
                    Some(held) => held,
                    None => return false,
                },
            };
            frames.hand_to(&mut held, &packet);
            if let Some(worker) = session.in_order_queue() {
                return worker.send((packet, link.clone(), held)).await.is_ok();
            }
            let session = session.clone();
            if packet.ptype == PacketType::Pull {
                let Some(cancel) = session.serving_started(packet.seq) else {
                    refuse_duplicate(&session, link, &packet).await;
                    return true;
                };
                let link = link.clone();
                let packet = Box::new(packet);
                // Only a traced pull pays for its span.
                match dispatch::server_span(&session, &packet) {
                    None => {
                        run_handler(Box::pin(dispatch::serve_pull(
                            session, link, packet, cancel, held,
                        )))
                        .await;
                    }
                    Some(span) => {
                        run_handler(Box::pin(dispatch::serve_pull_traced(
                            session, link, packet, cancel, held, span,
                        )))
                        .await;
                    }
                }
            } else {
                run_handler(Box::pin(async move {
                    dispatch::serve_push(session, packet).await;
                    drop(held);
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

/// Waits for a handler slot; `None` if the connection goes down first.
async fn wait_for_slot(limits: &Arc<SessionLimits>, link: &Link) -> Option<Held> {
    tokio::select! {
        biased;
        () = link.down.cancelled() => None,
        held = limits.take_slot() => Some(held),
    }
}

/// A pull whose seq is already being served on this session is refused
/// with status 400 (its handler does not run): a seq names one pull, so that
/// its reply and its cancel reach the right one. The pull in flight goes on.
async fn refuse_duplicate(session: &Session, link: &Link, packet: &Packet) {
    tracing::debug!(id = %session.id(), seq = packet.seq, "pull refused: its seq is already being served");
    let status = Status::bad_message(format!(
        "a pull with seq {} is already being served on this session",
        packet.seq
    ));
    let reply = dispatch::error_reply(packet.seq, status, packet.xfer.clone());
    let _ = session.queue_on(link, &reply).await;
}
