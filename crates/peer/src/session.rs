//! [`Session`]: one connection, symmetric — either end pulls, pushes and
//! serves the other's pulls and pushes.
//!
//! Each session runs two tasks: a reader that decodes frames and dispatches
//! them (replies to their waiting pull, pulls and pushes to handler tasks),
//! and a writer that owns the write half and writes queued frames, several
//! per system call when they pile up. Frames are encoded by whoever sends
//! them, so they never interleave on the wire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use futures_util::StreamExt;
use jaunt_codec::{EncodeBody, RawBody, Registry};
use jaunt_socket::{Packet, PacketCodec, PacketType, Proto, ProtoError, Status};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::sync::CancellationToken;

use crate::call::{
    PullDone, PullHandle, PullOptions, Reply, ACCEPT_BODY_CODEC, CANCEL_SEQ_META, CANCEL_URI,
    TIMEOUT_META,
};
use crate::dispatch;
use crate::peer::PeerShared;
use crate::config::{Handling, SlowConsumer};
use crate::{Addr, Peer, SessionData};

/// Frames are gathered into one write up to this many bytes.
const WRITE_BATCH: usize = 64 * 1024;
/// How long a closing session may spend flushing its queue when no write
/// timeout is configured.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// A connection to another peer. Cheap to clone; all clones are the same
/// session.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

pub(crate) struct SessionInner {
    id: RwLock<Arc<str>>,
    peer: Arc<PeerShared>,
    local: Addr,
    remote: Addr,
    tx: mpsc::Sender<Bytes>,
    pending: Mutex<HashMap<i32, oneshot::Sender<Packet>>>,
    /// The other side's pulls being served, by seq, so a cancel can stop them.
    serving: Mutex<HashMap<i32, CancellationToken>>,
    /// One permit per running handler of this session.
    handlers: Arc<Semaphore>,
    /// With in-order handling: the queue of the session's handler worker.
    in_order: Option<mpsc::Sender<(Packet, Permits)>>,
    next_seq: AtomicI32,
    closed: CancellationToken,
    finished: CancellationToken,
    data: SessionData,
    proto: Arc<dyn Proto>,
    /// The frame reader while the connect hooks run; the read loop takes it.
    handshake: tokio::sync::Mutex<Option<Frames>>,
}

/// The decoded frames of a connection: a malformed but whole frame is an
/// inner `Err` (drop it and go on); an outer `Err` ends the stream.
type Frames = Box<dyn Stream<Item = Result<Result<Packet, ProtoError>, ProtoError>> + Send + Unpin>;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id())
            .field("local", &self.inner.local)
            .field("remote", &self.inner.remote)
            .field("closed", &self.is_closed())
            .finish()
    }
}

static UNNAMED: AtomicU64 = AtomicU64::new(1);

impl Session {
    /// Starts serving `stream`: registers it in the peer's hub, starts its
    /// writer, runs the plugins' `post_accept` (or `post_dial`) hooks, which
    /// may talk on the connection first, then starts its reader.
    ///
    /// As in Go erpc, a dialed session is named after its local address and an
    /// accepted one after the remote address: both are unique per connection,
    /// so dialing the same server twice does not displace the first session.
    pub(crate) async fn start<S>(
        peer: Arc<PeerShared>,
        stream: S,
        proto: Arc<dyn Proto>,
        local: Addr,
        remote: Addr,
        dialed: bool,
    ) -> Result<Session, Status>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let named_after = if dialed { &local } else { &remote };
        let id: Arc<str> = match named_after {
            Addr::Unix(path) if path.as_os_str().is_empty() => {
                format!("unix:@{}", UNNAMED.fetch_add(1, Ordering::Relaxed)).into()
            }
            other => other.to_string().into(),
        };
        let (reader, writer) = tokio::io::split(stream);
        let frames: Frames = Box::new(FramedRead::new(
            reader,
            ReadCodec(PacketCodec::from_arc(proto.clone())),
        ));
        let (tx, rx) = mpsc::channel(peer.config.write_queue_len.max(1));
        let (in_order, worker_rx) = match peer.config.handling {
            Handling::Concurrent => (None, None),
            Handling::InOrder => {
                let (tx, rx) = mpsc::channel(peer.config.max_handlers_per_session.max(1));
                (Some(tx), Some(rx))
            }
        };
        let handlers = Arc::new(Semaphore::new(peer.config.max_handlers_per_session.max(1)));
        let session = Session {
            inner: Arc::new(SessionInner {
                id: RwLock::new(id),
                peer,
                local,
                remote,
                tx,
                pending: Mutex::new(HashMap::new()),
                serving: Mutex::new(HashMap::new()),
                handlers,
                in_order,
                next_seq: AtomicI32::new(1),
                closed: CancellationToken::new(),
                finished: CancellationToken::new(),
                data: SessionData::default(),
                proto,
                handshake: tokio::sync::Mutex::new(Some(frames)),
            }),
        };
        // Register before the tasks run: a connection that ends at once must
        // find itself in the hub when its reader closes it, or it would be
        // inserted after its own removal and stay there.
        if let Some(displaced) = session.inner.peer.hub.insert(&session) {
            tracing::info!(id = %displaced.id(), "a new session took this id: closing the old one");
            displaced.close();
        }
        tokio::spawn(write_loop(
            writer,
            rx,
            session.clone(),
            session.inner.peer.config.write_timeout,
        ));
        if let Some(worker_rx) = worker_rx {
            tokio::spawn(in_order_worker(worker_rx, session.clone()));
        }
        if let Err(status) = session.run_connect_hooks(dialed).await {
            tracing::debug!(id = %session.id(), %status, "a plugin refused the connection");
            session.close();
            session.run_disconnect_hooks().await;
            return Err(status);
        }
        let frames = session.inner.handshake.lock().await.take();
        match frames {
            Some(frames) => {
                tokio::spawn(read_loop(frames, session.clone()));
            }
            None => {
                session.close();
                return Err(Status::conn_closed(
                    "the connection ended during its handshake",
                ));
            }
        }
        tracing::debug!(id = %session.id(), remote = %session.inner.remote, "session started");
        if session.inner.peer.is_closed() {
            // The peer closed while this connection was being set up.
            session.close();
        }
        Ok(session)
    }

    async fn run_connect_hooks(&self, dialed: bool) -> Result<(), Status> {
        for plugin in self.inner.peer.plugins.iter() {
            if dialed {
                plugin.post_dial(self, false).await?;
            } else {
                plugin.post_accept(self).await?;
            }
        }
        Ok(())
    }

    async fn run_disconnect_hooks(&self) {
        for plugin in self.inner.peer.plugins.iter() {
            plugin.post_disconnect(self).await;
        }
    }

    /// Reads the next frame before the session starts serving: only inside a
    /// plugin's `post_accept` or `post_dial` hook (an authentication
    /// handshake, say). Elsewhere it fails with status 1 (invalid operation).
    pub async fn handshake_recv(&self) -> Result<Packet, Status> {
        let mut guard = self.inner.handshake.lock().await;
        let Some(frames) = guard.as_mut() else {
            return Err(Status::invalid_operation(
                "handshake_recv is only allowed in post_accept and post_dial hooks",
            ));
        };
        let next = match self.inner.peer.config.read_timeout {
            Some(limit) => tokio::time::timeout(limit, frames.next())
                .await
                .map_err(|_| Status::conn_closed("handshake read timed out"))?,
            None => frames.next().await,
        };
        match next {
            Some(Ok(Ok(packet))) => Ok(packet),
            Some(Ok(Err(e))) => Err(Status::bad_message(e.to_string())),
            Some(Err(e)) => Err(Status::conn_closed(e.to_string())),
            None => Err(Status::conn_closed(
                "connection closed during the handshake",
            )),
        }
    }

    /// The session's id: by default the remote address for an accepted
    /// session and the local address for a dialed one (as in Go erpc).
    pub fn id(&self) -> Arc<str> {
        self.inner
            .id
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the id. A session of this peer that had the new id is closed.
    pub fn set_id(&self, id: impl Into<Arc<str>>) {
        let id = id.into();
        let displaced = self.inner.peer.hub.rename(self, id.clone(), || {
            *self.inner.id.write().unwrap_or_else(|e| e.into_inner()) = id.clone();
        });
        if let Some(displaced) = displaced {
            displaced.close();
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> &Addr {
        &self.inner.local
    }

    /// The other side's address.
    pub fn remote_addr(&self) -> &Addr {
        &self.inner.remote
    }

    /// Typed public data, shared by every handler of this session.
    pub fn data(&self) -> &SessionData {
        &self.inner.data
    }

    /// The peer this session belongs to.
    pub fn peer(&self) -> Peer {
        Peer::from_shared(self.inner.peer.clone())
    }

    /// Whether the session is closed (or closing).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// Whether two handles are the same session.
    pub fn ptr_eq(&self, other: &Session) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Closes the session: queued frames are flushed (within the write
    /// timeout), pending pulls end with status 102, and the session leaves
    /// the hub. Returns at once; await [`closed`](Self::closed) to wait for
    /// the connection to be shut down.
    pub fn close(&self) {
        if self.inner.closed.is_cancelled() {
            return;
        }
        self.inner.closed.cancel();
        self.pending().clear();
        self.inner.peer.hub.remove(self);
        tracing::debug!(id = %self.id(), "session closed");
    }

    /// Waits until the session is closed and its connection shut down.
    pub async fn closed(&self) {
        self.inner.finished.cancelled().await;
    }

    /// Pulls `uri` with `args` (encoded with the peer's default codec) and
    /// waits for the reply. An error status from the other side, or a local
    /// failure, is the `Err`.
    pub async fn pull<A: EncodeBody>(&self, uri: &str, args: &A) -> Result<Reply, Status> {
        self.pull_with(uri, args, PullOptions::default()).await
    }

    /// [`pull`](Self::pull) with per-call options.
    pub async fn pull_with<A: EncodeBody>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> Result<Reply, Status> {
        let timeout = self.pull_timeout(&opts);
        let packet = self.build(PacketType::Pull, uri, args, opts)?;
        self.pull_packet(packet, timeout).await
    }

    /// Starts a pull and returns at once; await the handle for the reply.
    pub fn async_pull<A: EncodeBody>(&self, uri: &str, args: &A, opts: PullOptions) -> PullHandle {
        let timeout = self.pull_timeout(&opts);
        let built = self.build(PacketType::Pull, uri, args, opts);
        let session = self.clone();
        PullHandle {
            task: tokio::spawn(async move { session.pull_packet(built?, timeout).await }),
        }
    }

    /// Starts a pull and returns at once; its outcome is sent into `done`
    /// (teleport's AsyncPull with a done channel).
    pub fn async_pull_to<A: EncodeBody>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
        done: mpsc::Sender<PullDone>,
    ) {
        let timeout = self.pull_timeout(&opts);
        let built = self.build(PacketType::Pull, uri, args, opts);
        let session = self.clone();
        let uri = uri.to_owned();
        tokio::spawn(async move {
            let result = match built {
                Ok(packet) => session.pull_packet(packet, timeout).await,
                Err(status) => Err(status),
            };
            // The caller may have dropped its receiver: nothing to deliver to.
            let _ = done.send(PullDone { uri, result }).await;
        });
    }

    /// Sends a one-way message. Returns once the frame is queued for writing.
    pub async fn push<A: EncodeBody>(&self, uri: &str, args: &A) -> Result<(), Status> {
        self.push_with(uri, args, PullOptions::default()).await
    }

    /// [`push`](Self::push) with per-call options.
    pub async fn push_with<A: EncodeBody>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> Result<(), Status> {
        let mut packet = self.build(PacketType::Push, uri, args, opts)?;
        self.send_packet(&mut packet).await
    }

    /// Pulls with an already-encoded body (a proxy forwarding what it
    /// received, say): the body and its codec id are sent as they are.
    pub async fn pull_raw(
        &self,
        uri: &str,
        body: RawBody,
        opts: PullOptions,
    ) -> Result<Reply, Status> {
        let timeout = self.pull_timeout(&opts);
        let packet = self.build_raw(PacketType::Pull, uri, body, opts);
        self.pull_packet(packet, timeout).await
    }

    /// Pushes an already-encoded body, sent as it is.
    pub async fn push_raw(
        &self,
        uri: &str,
        body: RawBody,
        opts: PullOptions,
    ) -> Result<(), Status> {
        let mut packet = self.build_raw(PacketType::Push, uri, body, opts);
        self.send_packet(&mut packet).await
    }

    fn build_raw(&self, ptype: PacketType, uri: &str, body: RawBody, opts: PullOptions) -> Packet {
        let mut packet = Packet::new(ptype, self.next_seq(), uri);
        packet.meta = opts.meta;
        if let Some(accept) = opts.accept_codec {
            packet.meta.set(ACCEPT_BODY_CODEC, accept.to_string());
        }
        packet.body_codec = body.codec;
        packet.body = body.bytes;
        packet.xfer = opts.xfer;
        packet
    }

    pub(crate) fn codecs(&self) -> &Arc<Registry> {
        &self.inner.peer.codecs
    }

    pub(crate) fn shared(&self) -> &Arc<PeerShared> {
        &self.inner.peer
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<i32, oneshot::Sender<Packet>>> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn build<A: EncodeBody>(
        &self,
        ptype: PacketType,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> Result<Packet, Status> {
        let codec = opts.codec.unwrap_or(self.inner.peer.default_codec);
        let body = self
            .codecs()
            .encode(codec, args)
            .map_err(|e| Status::bad_message(e.to_string()))?;
        let mut packet = Packet::new(ptype, self.next_seq(), uri);
        packet.meta = opts.meta;
        if let Some(accept) = opts.accept_codec {
            packet.meta.set(ACCEPT_BODY_CODEC, accept.to_string());
        }
        packet.body_codec = codec;
        packet.body = body;
        packet.xfer = opts.xfer;
        Ok(packet)
    }

    fn pull_timeout(&self, opts: &PullOptions) -> Option<Duration> {
        opts.timeout.or(self.inner.peer.config.pull_timeout)
    }

    async fn pull_packet(
        &self,
        mut packet: Packet,
        timeout: Option<Duration>,
    ) -> Result<Reply, Status> {
        let start = Instant::now();
        let seq = packet.seq;
        if let Some(timeout) = timeout {
            packet
                .meta
                .set(TIMEOUT_META, timeout.as_millis().to_string());
        }
        let (tx, rx) = oneshot::channel();
        self.pending().insert(seq, tx);
        let mut guard = PendingGuard {
            session: self,
            seq,
            sent: false,
        };
        if self.is_closed() {
            return Err(Status::conn_closed("session is closed"));
        }
        let exchange = async {
            self.send_packet(&mut packet).await?;
            guard.sent = true;
            tokio::select! {
                biased;
                reply = rx => reply.map_err(|_| Status::conn_closed("connection lost before the reply")),
                () = self.inner.closed.cancelled() => Err(Status::conn_closed("connection lost before the reply")),
            }
        };
        let reply = match timeout {
            Some(timeout) => tokio::time::timeout(timeout, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(Status::handle_timeout(format!(
                        "no reply within {} ms",
                        timeout.as_millis()
                    )))
                }),
            None => exchange.await,
        };
        let cost = start.elapsed();
        let reply = match reply {
            Ok(reply) => reply,
            Err(status) => {
                self.inner.peer.log_call("pull", &packet, &status, cost);
                return Err(status);
            }
        };
        self.inner
            .peer
            .log_call("pull", &packet, &reply.status, cost);
        if !reply.status.is_ok() {
            return Err(reply.status);
        }
        Ok(Reply {
            packet: reply,
            codecs: self.codecs().clone(),
            cost,
        })
    }

    /// Tells the other side that pull `seq` was abandoned (best effort: if
    /// the write queue is full the notice is skipped).
    fn send_cancel(&self, seq: i32) {
        let mut cancel = Packet::new(PacketType::Push, self.next_seq(), CANCEL_URI);
        cancel.meta.add(CANCEL_SEQ_META, seq.to_string());
        let mut frame = BytesMut::new();
        if self.inner.proto.encode(&cancel, &mut frame).is_ok() {
            let _ = self.inner.tx.try_send(frame.freeze());
        }
    }

    /// Registers a pull of the other side being served; the token fires if
    /// the caller cancels it.
    pub(crate) fn serving_started(&self, seq: i32) -> CancellationToken {
        let token = CancellationToken::new();
        self.serving().insert(seq, token.clone());
        token
    }

    /// Forgets a served pull.
    pub(crate) fn serving_done(&self, seq: i32) {
        self.serving().remove(&seq);
    }

    fn serving(&self) -> MutexGuard<'_, HashMap<i32, CancellationToken>> {
        self.inner.serving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles a cancel push: stops the named pull's handler.
    fn cancel_serving(&self, cancel: &Packet) {
        let seq = cancel
            .meta
            .get_str(CANCEL_SEQ_META)
            .and_then(|s| s.parse::<i32>().ok());
        if let Some(token) = seq.and_then(|seq| self.serving().remove(&seq)) {
            token.cancel();
        }
    }

    /// Sends a packet as it is: no seq is taken, no codec applied. For
    /// plugins and proxies; applications use [`pull`](Self::pull) and
    /// [`push`](Self::push). The plugins' write hooks run for pulls and
    /// pushes (`pre_write_*` may change the packet or refuse it). Returns
    /// once the frame is queued for writing.
    pub async fn send_packet(&self, packet: &mut Packet) -> Result<(), Status> {
        let plugins = &self.inner.peer.plugins;
        if !plugins.is_empty() {
            for plugin in plugins.iter() {
                match packet.ptype {
                    PacketType::Pull => plugin.pre_write_pull(self, packet).await?,
                    PacketType::Push => plugin.pre_write_push(self, packet).await?,
                    _ => {}
                }
            }
        }
        if packet.ptype == PacketType::Push {
            self.queue_push(packet).await?;
        } else {
            self.queue_packet(packet).await?;
        }
        for plugin in plugins.iter() {
            let result = match packet.ptype {
                PacketType::Pull => plugin.post_write_pull(self, packet).await,
                PacketType::Push => plugin.post_write_push(self, packet).await,
                _ => Ok(()),
            };
            if let Err(status) = result {
                tracing::warn!(plugin = plugin.name(), %status, "post-write hook failed");
            }
        }
        Ok(())
    }

    /// How many of this side's pulls are waiting for their reply.
    pub fn pending_pulls(&self) -> usize {
        self.pending().len()
    }

    /// The next sequence number of this side (pulls and pushes share it).
    pub fn next_seq(&self) -> i32 {
        // Wraps around after i32::MAX, as Go erpc's counter does.
        self.inner.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a push under the slow-consumer policy.
    async fn queue_push(&self, packet: &Packet) -> Result<(), Status> {
        let config = &self.inner.peer.config;
        let frame = self.encode(packet)?;
        let full = || Status::write_failed("the session's write queue is full (slow consumer)");
        match config.slow_consumer {
            SlowConsumer::Wait => {
                match tokio::time::timeout(config.slow_consumer_wait, self.inner.tx.send(frame)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(Status::conn_closed("session is closed")),
                    Err(_) => Err(full()),
                }
            }
            SlowConsumer::Drop => self.inner.tx.try_send(frame).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => full(),
                mpsc::error::TrySendError::Closed(_) => Status::conn_closed("session is closed"),
            }),
            SlowConsumer::Close => self.inner.tx.try_send(frame).map_err(|e| {
                if matches!(e, mpsc::error::TrySendError::Full(_)) {
                    tracing::warn!(id = %self.id(), "slow consumer: closing the session");
                    self.close();
                }
                Status::conn_closed("session closed: slow consumer")
            }),
        }
    }

    fn encode(&self, packet: &Packet) -> Result<Bytes, Status> {
        if self.is_closed() {
            return Err(Status::conn_closed("session is closed"));
        }
        let mut frame = BytesMut::new();
        self.inner
            .proto
            .encode(packet, &mut frame)
            .map_err(|e| Status::bad_message(format!("cannot frame the message: {e}")))?;
        Ok(frame.freeze())
    }

    /// Encodes and queues one packet, without hooks.
    pub(crate) async fn queue_packet(&self, packet: &Packet) -> Result<(), Status> {
        let frame = self.encode(packet)?;
        self.inner
            .tx
            .send(frame)
            .await
            .map_err(|_| Status::conn_closed("session is closed"))
    }

    /// Runs the reply read hooks, then hands the reply to its pull.
    async fn receive_reply(&self, mut reply: Packet) {
        for plugin in self.inner.peer.plugins.iter() {
            let hooked = async {
                plugin.post_read_reply_header(self, &mut reply).await?;
                plugin.pre_read_reply_body(self, &mut reply).await?;
                plugin.post_read_reply_body(self, &reply).await
            };
            if let Err(status) = hooked.await {
                reply.status = status;
                reply.body_codec = 0;
                reply.body = Bytes::new();
                break;
            }
        }
        self.complete_pull(reply);
    }

    fn complete_pull(&self, reply: Packet) {
        let waiter = self.pending().remove(&reply.seq);
        match waiter {
            // The caller may have given up (dropped its future): fine.
            Some(waiter) => drop(waiter.send(reply)),
            None => {
                tracing::debug!(id = %self.id(), seq = reply.seq, "reply to no pending pull: dropped")
            }
        }
    }
}

/// Removes a pull's pending entry however the pull ends (reply, error, or the
/// caller dropping the future), so no memory is kept for replies that never
/// come.
struct PendingGuard<'a> {
    session: &'a Session,
    seq: i32,
    /// Whether the pull went out (so the other side may be working on it).
    sent: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let unanswered = self.session.pending().remove(&self.seq).is_some();
        if unanswered && self.sent && !self.session.is_closed() {
            // Abandoned (dropped or timed out): let the callee stop working.
            self.session.send_cancel(self.seq);
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::Receiver<Bytes>,
    session: Session,
    write_timeout: Option<Duration>,
) {
    let closed = session.inner.closed.clone();
    let mut batch = BytesMut::with_capacity(WRITE_BATCH);
    let mut broken = false;
    loop {
        let first = tokio::select! {
            biased;
            frame = rx.recv() => frame,
            () = closed.cancelled() => None,
        };
        let Some(first) = first else { break };
        batch.extend_from_slice(&first);
        // Coalesce whatever else is already queued into the same write.
        while batch.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        let written = {
            let write = write_all(&mut writer, &batch, write_timeout);
            tokio::pin!(write);
            tokio::select! {
                biased;
                result = &mut write => result,
                // Closing while a write is stuck (the other side stopped
                // reading): it gets the flush time, no more, or closing would
                // wait forever when no write timeout is set.
                () = closed.cancelled() => tokio::time::timeout(write_timeout.unwrap_or(CLOSE_FLUSH), &mut write)
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
            }
        };
        if let Err(e) = written {
            tracing::debug!(id = %session.id(), error = %e, "write failed: closing the session");
            session.close();
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
        while let Ok(frame) = rx.try_recv() {
            batch.extend_from_slice(&frame);
        }
        if !batch.is_empty() {
            let _ = write_all(
                &mut writer,
                &batch,
                Some(write_timeout.unwrap_or(CLOSE_FLUSH)),
            )
            .await;
        }
        let _ = tokio::time::timeout(CLOSE_FLUSH, writer.shutdown()).await;
    }
    session.inner.finished.cancel();
}

async fn write_all<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
    limit: Option<Duration>,
) -> std::io::Result<()> {
    let write = async {
        writer.write_all(bytes).await?;
        writer.flush().await
    };
    match limit {
        Some(limit) => tokio::time::timeout(limit, write)
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
        None => write.await,
    }
}

async fn read_loop(mut frames: Frames, session: Session) {
    let shared = session.inner.peer.clone();
    let read_timeout = shared.config.read_timeout;
    let closed = session.inner.closed.clone();
    let too_old = async {
        match shared.config.max_session_age {
            Some(age) => tokio::time::sleep(age).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(too_old);
    loop {
        if let Err(status) = pre_read_header(&session).await {
            tracing::debug!(id = %session.id(), %status, "a plugin closed the session");
            break;
        }
        let next = async {
            match read_timeout {
                Some(limit) => tokio::time::timeout(limit, frames.next()).await.ok(),
                None => Some(frames.next().await),
            }
        };
        let next = tokio::select! {
            () = closed.cancelled() => break,
            () = &mut too_old => {
                tracing::debug!(id = %session.id(), "session reached its maximum age: closing it");
                break;
            }
            next = next => next,
        };
        match next {
            None => {
                tracing::debug!(id = %session.id(), "read timeout: closing the session");
                break;
            }
            Some(None) => break,
            Some(Some(Ok(Ok(packet)))) => {
                if !dispatch_packet(&session, packet).await {
                    break;
                }
            }
            Some(Some(Ok(Err(ProtoError::UnknownPacketType(t))))) => {
                tracing::warn!(id = %session.id(), mtype = t, "unknown message type (405): closing the session");
                break;
            }
            Some(Some(Ok(Err(e)))) => {
                tracing::warn!(id = %session.id(), error = %e, "dropped a malformed frame");
            }
            Some(Some(Err(e))) => {
                tracing::warn!(id = %session.id(), error = %e, "unreadable stream: closing the session");
                break;
            }
        }
    }
    session.close();
    session.run_disconnect_hooks().await;
}

async fn pre_read_header(session: &Session) -> Result<(), Status> {
    for plugin in session.inner.peer.plugins.iter() {
        plugin.pre_read_header(session).await?;
    }
    Ok(())
}

/// The read loop's framing: a frame that is malformed but was consumed whole
/// ([`ProtoError::is_stream_intact`]: failed filter, bad field) is an item,
/// so the loop can drop it and go on. Returned as a decoder error, it would
/// end the stream: tokio-util's `FramedRead` yields `None` after any decoder
/// error, which the loop would take for the connection closing.
struct ReadCodec(PacketCodec);

impl ReadCodec {
    fn lenient(
        decoded: Result<Option<Packet>, ProtoError>,
    ) -> Result<Option<Result<Packet, ProtoError>>, ProtoError> {
        match decoded {
            Ok(packet) => Ok(packet.map(Ok)),
            Err(e) if e.is_stream_intact() => Ok(Some(Err(e))),
            Err(e) => Err(e),
        }
    }
}

impl Decoder for ReadCodec {
    type Item = Result<Packet, ProtoError>;
    type Error = ProtoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ProtoError> {
        Self::lenient(self.0.decode(src))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ProtoError> {
        Self::lenient(self.0.decode_eof(src))
    }
}

/// The permits a handler holds while it runs: one of its session's, one of
/// the peer's.
pub(crate) type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

/// Waits for room to run one more handler (the read loop stops reading
/// meanwhile: backpressure instead of unbounded spawning).
async fn handler_permits(session: &Session) -> Option<Permits> {
    let own = session.inner.handlers.clone().acquire_owned().await.ok()?;
    let peer = session.inner.peer.handlers.clone().acquire_owned().await.ok()?;
    Some((own, peer))
}

/// Runs a session's handlers one at a time, in arrival order.
async fn in_order_worker(mut rx: mpsc::Receiver<(Packet, Permits)>, session: Session) {
    while let Some((packet, permits)) = rx.recv().await {
        match packet.ptype {
            PacketType::Pull => {
                let cancel = session.serving_started(packet.seq);
                dispatch::serve_pull(session.clone(), packet, cancel).await;
            }
            _ => dispatch::serve_push(session.clone(), packet).await,
        }
        drop(permits);
    }
}

/// Routes one incoming packet; false means the session must close.
async fn dispatch_packet(session: &Session, packet: Packet) -> bool {
    match packet.ptype {
        PacketType::Reply if session.inner.peer.plugins.is_empty() => session.complete_pull(packet),
        PacketType::Reply => session.receive_reply(packet).await,
        PacketType::Push if packet.uri == CANCEL_URI => session.cancel_serving(&packet),
        PacketType::Pull if session.inner.peer.is_draining() => {
            let mut reply = Packet::new(PacketType::Reply, packet.seq, "");
            reply.status = Status::conn_closed("the peer is shutting down");
            reply.xfer = packet.xfer;
            let _ = session.queue_packet(&reply).await;
        }
        PacketType::Push if session.inner.peer.is_draining() => {
            tracing::debug!(id = %session.id(), uri = %packet.uri, "push dropped: the peer is shutting down");
        }
        PacketType::Pull | PacketType::Push => {
            let Some(permits) = handler_permits(session).await else {
                return false;
            };
            if let Some(worker) = &session.inner.in_order {
                return worker.send((packet, permits)).await.is_ok();
            }
            if packet.ptype == PacketType::Pull {
                let cancel = session.serving_started(packet.seq);
                let session = session.clone();
                tokio::spawn(async move {
                    dispatch::serve_pull(session, packet, cancel).await;
                    drop(permits);
                });
            } else {
                let session = session.clone();
                tokio::spawn(async move {
                    dispatch::serve_push(session, packet).await;
                    drop(permits);
                });
            }
        }
        PacketType::AuthPull | PacketType::AuthReply => {
            tracing::warn!(id = %session.id(), "auth message on a session without auth: closing it");
            return false;
        }
    }
    true
}
