//! [`Session`]: a connection to another peer, symmetric — either end pulls,
//! pushes and serves the other's pulls and pushes.
//!
//! The connection itself is a [`Link`] (its reader and writer tasks live in
//! `link.rs`). A dialed session with redial enabled outlives its links: when
//! one is lost, its pending pulls end with 102 and the session dials again
//! (`redial.rs`), keeping its id and data.

use std::borrow::{Borrow, BorrowMut};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use jaunt_codec::{CodecRef, EncodeBody, RawBody, Registry};
use jaunt_socket::{Packet, PacketType, Proto, Status};
use tokio::sync::{mpsc, oneshot, watch};

use crate::broadcast::Delivery;
use crate::limits::SessionLimits;
use crate::seq_map::SeqMap;
use crate::signal::Signal;
use crate::spare;
use crate::telemetry::{self, RunKind, Side};
use crate::turns::Turns;
use crate::wire::WireCount;
use futures_util::future::Either;
use tracing::{Instrument, Span};

use crate::call::{
    PullDone, PullHandle, PullOptions, Reply, ACCEPT_BODY_CODEC, CANCEL_SEQ_META, CANCEL_URI,
    TIMEOUT_META,
};
use crate::config::{Handling, SlowConsumer};
use crate::link::{in_order_worker, read_loop, Job, Link};
use crate::peer::{Conn, PeerShared};
use crate::plugin::{PullEnd, PullOutcome};
use crate::redial::{self, Redial};
use crate::{Addr, Peer, SessionData, SessionStats};

/// A connection to another peer. Cheap to clone; all clones are the same
/// session.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

pub(crate) struct SessionInner {
    id: RwLock<Arc<str>>,
    peer: Arc<PeerShared>,
    remote: Addr,
    proto: Arc<dyn Proto>,
    /// The current connection.
    link: RwLock<Arc<Link>>,
    /// Connected, reconnecting or closed; watched by senders during an outage.
    state: watch::Sender<SessionState>,
    /// How to dial again after losing the connection (dialed sessions with
    /// redial enabled).
    redial: Option<Redial>,
    pending: Mutex<SeqMap<oneshot::Sender<Box<Packet>>>>,
    /// The other side's pulls being served, by seq, so a cancel can stop them.
    /// Dropping or firing the sender stops the handler.
    serving: Mutex<SeqMap<oneshot::Sender<()>>>,
    /// Its handler slots and byte budget, in the peer's pools.
    limits: Arc<SessionLimits>,
    /// Dialed by this side (else accepted, or a given stream).
    dialed: bool,
    /// With in-order handling: the queue of the session's handler worker.
    in_order: Option<mpsc::Sender<Job>>,
    next_seq: AtomicI32,
    /// How many connections the session has had.
    generations: AtomicU64,
    /// Closed for good.
    closed: Signal,
    /// The close's last steps ran (they run once, however the close came).
    close_finished: AtomicBool,
    /// The order of the sends that finish on a task (`async_pull`,
    /// broadcasts waiting for room): see `turns.rs`.
    turns: Arc<Turns>,
    data: SessionData,
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Connected; `generation` counts connections (1 for the first, +1 per
    /// successful redial).
    Connected {
        /// How many connections the session has had.
        generation: u64,
    },
    /// The connection was lost and the session is dialing again.
    Reconnecting,
    /// Closed for good.
    Closed,
}

tokio::task_local! {
    /// Inside a connect hook: the session (by address) and the connection
    /// being set up, which `handshake_recv` and `send_packet` use.
    static HANDSHAKE: (usize, Arc<Link>);
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id())
            .field("local", &self.link().local)
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
    pub(crate) async fn start(
        peer: Arc<PeerShared>,
        conn: Conn,
        proto: Arc<dyn Proto>,
        local: Addr,
        remote: Addr,
        dialed: bool,
        redial: Option<Redial>,
    ) -> Result<Session, Status> {
        let named_after = if dialed { &local } else { &remote };
        let id: Arc<str> = match named_after {
            Addr::Unix(path) if path.as_os_str().is_empty() => {
                format!("unix:@{}", UNNAMED.fetch_add(1, Ordering::Relaxed)).into()
            }
            other => other.to_string().into(),
        };
        let config = &peer.config;
        let limits = SessionLimits::join(
            &peer.slots,
            &peer.bytes,
            config.max_handlers_per_session,
            config.max_session_memory,
            &peer.hub.gone,
        );
        let link = Link::open(conn, proto.clone(), local, config, limits.clone());
        let (in_order, worker_rx) = match config.handling {
            Handling::Concurrent => (None, None),
            Handling::InOrder => {
                let (tx, rx) = mpsc::channel(config.max_handlers_per_session.max(1));
                (Some(tx), Some(rx))
            }
        };
        let session = Session {
            inner: Arc::new(SessionInner {
                id: RwLock::new(id),
                peer,
                remote,
                proto,
                link: RwLock::new(link.clone()),
                state: watch::Sender::new(SessionState::Reconnecting),
                redial,
                pending: Mutex::new(SeqMap::default()),
                serving: Mutex::new(SeqMap::default()),
                limits,
                dialed,
                in_order,
                next_seq: AtomicI32::new(1),
                generations: AtomicU64::new(0),
                closed: Signal::new(),
                close_finished: AtomicBool::new(false),
                turns: Arc::default(),
                data: SessionData::default(),
            }),
        };
        // Register before the tasks run: a connection that ends at once must
        // find itself in the hub when its reader closes it, or it would be
        // inserted after its own removal and stay there.
        if let Some(displaced) = session.inner.peer.hub.insert(&session) {
            tracing::info!(id = %displaced.id(), "a new session took this id: closing the old one");
            displaced.close();
        }
        if let Some(worker_rx) = worker_rx {
            tokio::spawn(in_order_worker(worker_rx, session.clone()));
        }
        if let Err(status) = session.connect(link, dialed, false).await {
            tracing::debug!(id = %session.id(), %status, "a plugin refused the connection");
            session.close();
            session.run_disconnect_hooks().await;
            return Err(status);
        }
        tracing::debug!(id = %session.id(), remote = %session.inner.remote, "session started");
        if session.inner.peer.is_closed() {
            // The peer closed while this connection was being set up.
            session.close();
        }
        Ok(session)
    }

    /// Runs the connect hooks on a new link, then makes it the session's
    /// connection and starts reading it.
    pub(crate) async fn connect(
        &self,
        link: Arc<Link>,
        dialed: bool,
        is_redial: bool,
    ) -> Result<(), Status> {
        let hooks = HANDSHAKE.scope(
            (self.key(), link.clone()),
            self.run_connect_hooks(dialed, is_redial),
        );
        // The connect hooks (an auth handshake among them) in their span.
        let span = tracing::info_span!(
            "jaunt.session.connect",
            network.peer.address = %self.inner.remote,
            jaunt.session = %self.id(),
            jaunt.dialed = dialed,
            jaunt.redial = is_redial,
            jaunt.status_code = tracing::field::Empty,
        );
        let hooks = hooks.instrument(span.clone()).await;
        if !span.is_disabled() {
            let code = hooks.as_ref().err().map_or(0, Status::code);
            span.record("jaunt.status_code", code);
        }
        if let Err(status) = hooks {
            link.down.cancel();
            return Err(status);
        }
        let Some(frames) = link.frames.lock().await.take() else {
            link.down.cancel();
            return Err(Status::conn_closed(
                "the connection ended during its handshake",
            ));
        };
        *self.inner.link.write().unwrap_or_else(|e| e.into_inner()) = link.clone();
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
        self.inner
            .state
            .send_replace(SessionState::Connected { generation });
        link.reading_starts();
        tokio::spawn(read_loop(frames, self.clone(), link));
        Ok(())
    }

    /// This session's identity within the handshake task-local.
    fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The connection being set up, inside one of this session's connect hooks.
    fn handshake_link(&self) -> Option<Arc<Link>> {
        HANDSHAKE
            .try_with(|(key, link)| (*key == self.key()).then(|| link.clone()))
            .ok()
            .flatten()
    }

    pub(crate) fn link(&self) -> Arc<Link> {
        self.inner
            .link
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The connection to send on: inside a connect hook the one being set up;
    /// otherwise the current one, waiting through a redial for the next.
    ///
    /// The wait is boxed: every pull's future holds this one, and a redial
    /// is the exception.
    async fn live_link(&self) -> Result<Arc<Link>, Status> {
        match self.link_now() {
            Some(link) => Ok(link),
            None => Box::pin(self.next_live_link()).await,
        }
    }

    /// The connection to send on, if there is one without waiting.
    fn link_now(&self) -> Option<Arc<Link>> {
        if let Some(link) = self.handshake_link() {
            return Some(link);
        }
        if self.is_closed() {
            return None;
        }
        let link = self.link();
        (!link.down.is_cancelled()).then_some(link)
    }

    /// Waits for the redial to bring a connection up (or the session to
    /// close).
    async fn next_live_link(&self) -> Result<Arc<Link>, Status> {
        let mut state = self.inner.state.subscribe();
        loop {
            if self.is_closed() {
                return Err(Status::conn_closed("session is closed"));
            }
            let link = self.link();
            if !link.down.is_cancelled() {
                return Ok(link);
            }
            if self.inner.redial.is_none() {
                return Err(Status::conn_closed("connection lost"));
            }
            tokio::select! {
                changed = state.changed() => if changed.is_err() {
                    return Err(Status::conn_closed("session is closed"));
                },
                () = self.inner.closed.cancelled() => {}
            }
        }
    }

    /// The connection ended: its pending pulls end with 102, its handlers
    /// are stopped, `post_disconnect` runs, then the session redials or
    /// closes.
    pub(crate) async fn link_lost(&self, link: &Arc<Link>) {
        link.down.cancel();
        if !Arc::ptr_eq(&self.link(), link) {
            return;
        }
        let redials = self.inner.redial.is_some() && !self.inner.peer.is_closed();
        if !redials {
            // Closed from now on, so a pull failing below sees a closed
            // session; the rest of the close follows the hooks.
            self.inner.closed.cancel();
        }
        self.pending().clear();
        // Dropping the senders stops the handlers.
        self.serving().clear();
        self.run_disconnect_hooks().await;
        if !redials {
            self.finish_close();
            return;
        }
        if self.is_closed() {
            return;
        }
        self.inner.state.send_replace(SessionState::Reconnecting);
        tracing::info!(id = %self.id(), "connection lost: redialing");
        tokio::spawn(redial::run(self.clone()));
    }

    /// One redial attempt. (Boxed: connecting starts a read loop whose end
    /// may redial, so the future type would otherwise contain itself.)
    pub(crate) fn redial_once(&self) -> BoxFuture<'_, Result<(), Status>> {
        Box::pin(async move {
            let Some(plan) = &self.inner.redial else {
                return Err(Status::invalid_operation("this session does not redial"));
            };
            let peer = self.peer();
            peer.pre_dial(&plan.addr, true).await?;
            let (conn, local) = plan.connect(&peer).await?;
            let link = Link::open(
                conn,
                self.inner.proto.clone(),
                local,
                &self.inner.peer.config,
                self.inner.limits.clone(),
            );
            self.connect(link, true, true).await
        })
    }

    pub(crate) fn redial_plan(&self) -> Option<&Redial> {
        self.inner.redial.as_ref()
    }

    async fn run_connect_hooks(&self, dialed: bool, is_redial: bool) -> Result<(), Status> {
        for plugin in self.inner.peer.plugins.iter() {
            if dialed {
                plugin.post_dial(self, is_redial).await?;
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
        let Some(link) = self.handshake_link() else {
            return Err(Status::invalid_operation(
                "handshake_recv is only allowed in post_accept and post_dial hooks",
            ));
        };
        let mut guard = link.frames.lock().await;
        let Some(frames) = guard.as_mut() else {
            return Err(Status::invalid_operation(
                "the connection is already being read",
            ));
        };
        let config = &self.inner.peer.config;
        // An accepted session's handshake is bounded like its first frame.
        let limit = match self.inner.dialed {
            false => config.first_frame_timeout.or(config.read_timeout),
            true => config.read_timeout,
        };
        let next = match limit {
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

    /// This side's address on the current connection.
    pub fn local_addr(&self) -> Addr {
        self.link().local.clone()
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

    /// Whether the session is closed (or closing) for good.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// Whether the session has a live connection (not closed, not
    /// redialing).
    pub fn is_connected(&self) -> bool {
        !self.is_closed() && !self.link().down.is_cancelled()
    }

    /// Where the session stands: connected (and how many connections it has
    /// had), reconnecting, or closed.
    pub fn state(&self) -> SessionState {
        *self.inner.state.borrow()
    }

    /// A receiver that sees every change of [`state`](Self::state): how a
    /// program observes disconnects and reconnects.
    pub fn watch_state(&self) -> watch::Receiver<SessionState> {
        self.inner.state.subscribe()
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
        self.finish_close();
    }

    /// The close after the closed signal fired: the connection goes down,
    /// pending pulls end, the session leaves the hub.
    fn finish_close(&self) {
        // Both a local close and the end of the read loop come here; the
        // second finds the work done (and must not log the close again).
        if self.inner.close_finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let _span = tracing::info_span!(
            "jaunt.session.close",
            network.peer.address = %self.inner.remote,
            jaunt.session = %self.id(),
            jaunt.dialed = self.inner.dialed,
        )
        .entered();
        self.link().down.cancel();
        self.pending().clear();
        self.inner.peer.hub.remove(self);
        self.inner.limits.leave();
        // Last, so that whoever watches the state sees a finished close.
        self.inner.state.send_replace(SessionState::Closed);
        tracing::debug!(id = %self.id(), dialed = self.inner.dialed, "session closed");
    }

    /// Fires when the session closes for good (not when a redial starts).
    pub(crate) fn closing(&self) -> crate::signal::Fired<'_> {
        self.inner.closed.cancelled()
    }

    /// Waits until the session is closed for good, its connection shut down
    /// and its `post_disconnect` hooks run. (So a `post_disconnect` hook must
    /// not wait for its own session's `closed`.)
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await;
        self.link().finished.cancelled().await;
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
        let mut packet = self.build(PacketType::Pull, uri, args, opts)?;
        // Only a traced pull pays for its span (the boxed future holds it).
        if let Some(span) = self.client_span(&mut packet, timeout) {
            return Box::pin(self.pull_traced(packet, timeout, span)).await;
        }
        self.pull_packet::<false>(packet, timeout).await
    }

    /// Starts a pull and returns at once; await the handle for the reply.
    ///
    /// The pull is pending when this returns ([`pending_pulls`](Self::pending_pulls)
    /// counts it), and pulls started one after the other with `async_pull`
    /// and [`async_pull_to`](Self::async_pull_to) reach the wire in the order
    /// they were started, even when the write queue is full, the session is
    /// redialing, or plugins' write hooks take their time. When nothing is
    /// ahead of it, the pull is queued for writing before this returns.
    ///
    /// Dropping the handle cancels the pull as dropping a
    /// [`pull`](Self::pull) future does (the other side is told to stop its
    /// handler); [`PullHandle::detach`] lets it run to the end instead.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use jaunt_peer::{Peer, PullCtx, PullOptions, Router};
    /// use jaunt_socket::Status;
    ///
    /// let mut router = Router::new();
    /// router.pull("/double", |_: PullCtx, n: i64| async move { Ok::<_, Status>(n * 2) }).unwrap();
    /// let server = Peer::new(router);
    /// let addr = server.listen("127.0.0.1:0").await.unwrap();
    /// let client = Peer::new(Router::new());
    /// let session = client.dial(&addr).await.unwrap();
    ///
    /// let first = session.async_pull("/double", &1, PullOptions::new());
    /// let second = session.async_pull("/double", &2, PullOptions::new());
    /// assert!(session.pending_pulls() <= 2); // counted at once (replies may be in already)
    /// assert_eq!(first.await.unwrap().decode::<i64>().unwrap(), 2);
    /// assert_eq!(second.await.unwrap().decode::<i64>().unwrap(), 4);
    ///
    /// client.close().await;
    /// server.close().await;
    /// # });
    /// ```
    pub fn async_pull<A: EncodeBody>(&self, uri: &str, args: &A, opts: PullOptions) -> PullHandle {
        let timeout = self.pull_timeout(&opts);
        let task = match self.build(PacketType::Pull, uri, args, opts) {
            Ok(packet) => tokio::spawn(self.start_pull(packet, timeout)),
            Err(status) => tokio::spawn(async move { Err(status) }),
        };
        PullHandle::new(task)
    }

    /// Starts a pull and returns at once; its outcome is sent into `done`
    /// (teleport's AsyncPull with a done channel). Pending and ordered as
    /// with [`async_pull`](Self::async_pull); it always runs to its end.
    pub fn async_pull_to<A: EncodeBody>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
        done: mpsc::Sender<PullDone>,
    ) {
        let timeout = self.pull_timeout(&opts);
        let pull = self
            .build(PacketType::Pull, uri, args, opts)
            .map(|packet| self.start_pull(packet, timeout));
        let uri = uri.to_owned();
        tokio::spawn(async move {
            let result = match pull {
                Ok(pull) => pull.await,
                Err(status) => Err(status),
            };
            // The caller may have dropped its receiver: nothing to deliver to.
            let _ = done.send(PullDone { uri, result }).await;
        });
    }

    /// The synchronous start of an async pull: its pending entry, its turn
    /// in the session's line of background sends and, when nothing is ahead
    /// and no hooks need to run, its frame queued. The future sends it (if
    /// that is still to do) in its turn and waits for the reply.
    fn start_pull(
        &self,
        mut packet: Packet,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Reply, Status>> + Send + 'static {
        let start = Instant::now();
        let span = self.client_span(&mut packet, timeout);
        let deadline = timeout.map(|timeout| tokio::time::Instant::now() + timeout);
        let rx = self.arm_pull(&mut packet, timeout);
        let mut guard = PendingGuard::new(self.clone(), packet, start);
        let mut turn = Some(self.inner.turns.take());
        let closed = self.is_closed();
        // The fast path: nobody ahead, no hooks, room in the queue.
        let mut frame = None;
        let plugins = &self.inner.peer.plugins;
        if !closed && plugins.is_empty() && turn.as_ref().is_some_and(|t| t.is_first()) {
            if let Ok(encoded) = self.encode(&guard.packet) {
                let left = match self.link_now() {
                    Some(link) => match link.try_send(encoded) {
                        Ok(()) => None,
                        Err(
                            mpsc::error::TrySendError::Full(encoded)
                            | mpsc::error::TrySendError::Closed(encoded),
                        ) => Some(encoded),
                    },
                    None => Some(encoded),
                };
                match left {
                    None => {
                        guard.sent = true;
                        if let Some(turn) = turn.take() {
                            turn.done();
                        }
                    }
                    Some(encoded) => frame = Some(encoded),
                }
            }
        }
        let session = self.clone();
        let pull = async move {
            let mut guard = guard;
            if closed {
                return guard.fail_early(Status::conn_closed("session is closed"));
            }
            let exchange = async {
                if let Some(mut turn) = turn.take() {
                    turn.wait().await;
                    match frame.take() {
                        // Encoded on the fast path already; no hooks to run.
                        Some(frame) => session.live_link().await?.send(frame).await?,
                        None => {
                            session.send_packet(&mut guard.packet).await?;
                            guard.body_len = guard.packet.body.len();
                        }
                    }
                    turn.done();
                    guard.sent = true;
                }
                if !session.inner.peer.config.print_detail {
                    guard.packet.body = Bytes::new();
                }
                let reply = rx
                    .await
                    .map_err(|_| Status::conn_closed("connection lost before the reply"))?;
                guard.replied = true;
                Ok(reply)
            };
            let reply = match (deadline, timeout) {
                (Some(deadline), Some(timeout)) => tokio::time::timeout_at(deadline, exchange)
                    .await
                    .unwrap_or_else(|_| Err(no_reply_within(timeout))),
                _ => exchange.await,
            };
            session.finish_pull(&mut guard, reply, start.elapsed())
        };
        let Some(span) = span else {
            return Either::Left(pull);
        };
        Either::Right(async move {
            let result = pull.instrument(span.clone()).await;
            let code = result.as_ref().err().map_or(0, Status::code);
            telemetry::record_outcome(&span, code, start.elapsed());
            result
        })
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
        let packet = self.build(PacketType::Push, uri, args, opts)?;
        self.push_packet(packet).await
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
        let mut packet = self.build_raw(PacketType::Pull, uri, body, opts)?;
        if let Some(span) = self.client_span(&mut packet, timeout) {
            return Box::pin(self.pull_traced(packet, timeout, span)).await;
        }
        self.pull_packet::<false>(packet, timeout).await
    }

    /// Pushes an already-encoded body, sent as it is.
    pub async fn push_raw(
        &self,
        uri: &str,
        body: RawBody,
        opts: PullOptions,
    ) -> Result<(), Status> {
        let packet = self.build_raw(PacketType::Push, uri, body, opts)?;
        self.push_packet(packet).await
    }

    fn build_raw(
        &self,
        ptype: PacketType,
        uri: &str,
        body: RawBody,
        opts: PullOptions,
    ) -> Result<Packet, Status> {
        let accept = self.accept_id(opts.accept_codec.as_ref())?;
        let mut packet = Packet::new(ptype, self.next_seq(), uri);
        packet.meta = opts.meta;
        if let Some(accept) = accept {
            packet.meta.set(ACCEPT_BODY_CODEC, accept.to_string());
        }
        packet.body_codec = body.codec;
        packet.body = body.bytes;
        packet.xfer = opts.xfer;
        Ok(packet)
    }

    /// The id of a codec a call names; an id is taken as it is (an unknown
    /// one fails when encoding), a name must be one this peer knows.
    fn codec_id(&self, codec: &CodecRef) -> Result<u8, Status> {
        match codec {
            CodecRef::Id(id) => Ok(*id),
            named => self
                .codecs()
                .resolve(named)
                .map(|codec| codec.id())
                .map_err(|e| Status::bad_message(e.to_string())),
        }
    }

    fn accept_id(&self, accept: Option<&CodecRef>) -> Result<Option<u8>, Status> {
        accept.map(|codec| self.codec_id(codec)).transpose()
    }

    pub(crate) fn codecs(&self) -> &Arc<Registry> {
        &self.inner.peer.codecs
    }

    pub(crate) fn shared(&self) -> &Arc<PeerShared> {
        &self.inner.peer
    }

    fn pending(&self) -> MutexGuard<'_, SeqMap<oneshot::Sender<Box<Packet>>>> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn build<A: EncodeBody>(
        &self,
        ptype: PacketType,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> Result<Packet, Status> {
        let codec = match &opts.codec {
            Some(codec) => self.codec_id(codec)?,
            None => self.inner.peer.default_codec,
        };
        let accept = self.accept_id(opts.accept_codec.as_ref())?;
        let body = self
            .codecs()
            .encode(codec, args)
            .map_err(|e| Status::bad_message(e.to_string()))?;
        let mut packet = Packet::new(ptype, self.next_seq(), uri);
        packet.meta = opts.meta;
        if let Some(accept) = accept {
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

    /// A pull sent and its reply awaited, in its span when one is wanted.
    /// A pull sent and its reply awaited.
    ///
    /// `TRACED` tells the traced path's copy from the plain one's: each has
    /// one caller, so the plain one stays inlined into `pull_with`.
    async fn pull_packet<const TRACED: bool>(
        &self,
        mut packet: Packet,
        timeout: Option<Duration>,
    ) -> Result<Reply, Status> {
        let rx = self.arm_pull(&mut packet, timeout);
        // The guard borrows the packet: moving it in would make every
        // pull's future hold it twice.
        let mut guard = PendingGuard::new(self, &mut packet, Instant::now());
        if self.is_closed() {
            return guard.fail_early(Status::conn_closed("session is closed"));
        }
        let exchange = async {
            self.send_packet(guard.packet).await?;
            guard.sent = true;
            guard.body_len = guard.packet.body.len();
            // Framed and sent: the body is needed again only for the call's
            // detail log. Letting it go now means a thousand pulls in flight
            // do not keep a thousand request bodies alive (and the next
            // request reuses this one's memory while it is still in cache).
            if !self.inner.peer.config.print_detail {
                guard.packet.body = Bytes::new();
            }
            // Losing the connection or closing the session clears the
            // pending table, which drops `tx`.
            let reply = rx
                .await
                .map_err(|_| Status::conn_closed("connection lost before the reply"))?;
            // The reply took the pending entry with it.
            guard.replied = true;
            Ok(reply)
        };
        let reply = match timeout {
            // Boxed: the timer would otherwise enlarge every pull's future,
            // those without a timeout included.
            Some(timeout) => Box::pin(tokio::time::timeout(timeout, exchange))
                .await
                .unwrap_or_else(|_| Err(no_reply_within(timeout))),
            None => exchange.await,
        };
        let cost = guard.start.elapsed();
        self.finish_pull(&mut guard, reply, cost)
    }

    /// A pull in its span, with its outcome recorded on it.
    async fn pull_traced(
        &self,
        packet: Packet,
        timeout: Option<Duration>,
        span: Span,
    ) -> Result<Reply, Status> {
        let start = Instant::now();
        let result = self
            .pull_packet::<true>(packet, timeout)
            .instrument(span.clone())
            .await;
        let code = result.as_ref().err().map_or(0, Status::code);
        telemetry::record_outcome(&span, code, start.elapsed());
        result
    }

    /// The span of a call this side sends (`None` when nobody listens);
    /// the propagator writes its context into the meta.
    #[inline]
    fn client_span(&self, packet: &mut Packet, timeout: Option<Duration>) -> Option<Span> {
        // Nobody wants INFO: one load and compare, nothing else.
        if !telemetry::info_enabled() {
            return None;
        }
        let span = telemetry::call_span(Side::Client, &self.inner.remote, packet, timeout);
        if span.is_disabled() {
            return None;
        }
        if let Some(propagator) = &self.inner.peer.propagator {
            propagator.inject(&span, &mut packet.meta);
        }
        Some(span)
    }

    /// A push sent; in its span when one is wanted, and with its run log
    /// line when one is asked for.
    async fn push_packet(&self, mut packet: Packet) -> Result<(), Status> {
        let span = self.client_span(&mut packet, None);
        let config = &self.inner.peer.config;
        let logged =
            config.count_time || config.print_detail || config.slow_call_threshold.is_some();
        if span.is_none() && !logged {
            return self.send_packet(&mut packet).await;
        }
        Box::pin(self.push_traced(packet, span.unwrap_or_else(Span::none))).await
    }

    /// A push in its span (maybe [`Span::none`]), with its run log line.
    async fn push_traced(&self, mut packet: Packet, span: Span) -> Result<(), Status> {
        let start = Instant::now();
        let result = self.send_packet(&mut packet).instrument(span.clone()).await;
        let cost = start.elapsed();
        let status = result.as_ref().err().cloned().unwrap_or_else(Status::ok);
        telemetry::record_outcome(&span, status.code(), cost);
        self.inner.peer.log_call(
            RunKind::PushSent,
            &self.inner.remote,
            &packet,
            None,
            &status,
            cost,
        );
        result
    }

    /// A pull's start, however it is awaited: its time budget goes into its
    /// meta and its pending entry into the table; the receiver gets the reply.
    /// (Inlined into each kind of pull: measured, out of line it costs.)
    #[inline(always)]
    fn arm_pull(
        &self,
        packet: &mut Packet,
        timeout: Option<Duration>,
    ) -> oneshot::Receiver<Box<Packet>> {
        if let Some(timeout) = timeout {
            packet
                .meta
                .set(TIMEOUT_META, timeout.as_millis().to_string());
        }
        let (tx, rx) = oneshot::channel();
        self.pending().insert(packet.seq, tx);
        rx
    }

    /// A pull's end: logged, the plugins' `post_pull_end` run, and its reply
    /// made a [`Reply`] (or its error status the `Err`).
    #[inline(always)]
    fn finish_pull<S: Borrow<Session>, P: BorrowMut<Packet>>(
        &self,
        guard: &mut PendingGuard<S, P>,
        reply: Result<Box<Packet>, Status>,
        cost: Duration,
    ) -> Result<Reply, Status> {
        let hooked = !self.inner.peer.plugins.is_empty();
        let reply = match reply {
            Ok(reply) => reply,
            Err(status) => {
                self.inner.peer.log_call(
                    RunKind::PullSent,
                    &self.inner.remote,
                    guard.packet.borrow(),
                    None,
                    &status,
                    cost,
                );
                if hooked {
                    guard.end(PullOutcome::Failed(&status), 0, cost);
                }
                return Err(status);
            }
        };
        self.inner.peer.log_call(
            RunKind::PullSent,
            &self.inner.remote,
            guard.packet.borrow(),
            Some(&reply),
            &reply.status,
            cost,
        );
        if hooked {
            guard.end(PullOutcome::Replied(&reply.status), reply.body.len(), cost);
        }
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
        if let Ok(frame) = spare::encode_frame(|buf| self.inner.proto.encode(&cancel, buf)) {
            let _ = self.link().try_send(frame);
        }
    }

    /// Registers a pull of the other side being served; the token fires if
    /// the caller cancels it. `None` if a pull with this seq is being served
    /// already (it is refused: see `link::refuse_duplicate`).
    pub(crate) fn serving_started(&self, seq: i32) -> Option<oneshot::Receiver<()>> {
        let mut serving = self.serving();
        let std::collections::hash_map::Entry::Vacant(entry) = serving.entry(seq) else {
            return None;
        };
        let (tx, rx) = oneshot::channel();
        entry.insert(tx);
        Some(rx)
    }

    /// Forgets a served pull.
    pub(crate) fn serving_done(&self, seq: i32) {
        self.serving().remove(&seq);
    }

    fn serving(&self) -> MutexGuard<'_, SeqMap<oneshot::Sender<()>>> {
        self.inner.serving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles a cancel push: stops the named pull's handler.
    pub(crate) fn cancel_serving(&self, cancel: &Packet) {
        let seq = cancel
            .meta
            .get_str(CANCEL_SEQ_META)
            .and_then(|s| s.parse::<i32>().ok());
        if let Some(stop) = seq.and_then(|seq| self.serving().remove(&seq)) {
            let _ = stop.send(());
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

    /// One session's copy of a broadcast (the body encoded once by the
    /// caller): the write hooks run, then the frame is queued if there is
    /// room, and otherwise the slow-consumer policy decides, without waiting
    /// here (see [`BroadcastReport`](crate::BroadcastReport)).
    pub(crate) async fn broadcast_one(&self, uri: &str, codec: u8, body: &Bytes) -> Delivery {
        if self.is_closed() {
            return Delivery::Closed;
        }
        let body = RawBody::new(codec, body.clone());
        // Default options name no codec: building cannot fail.
        let Ok(mut packet) = self.build_raw(PacketType::Push, uri, body, PullOptions::default())
        else {
            return Delivery::Dropped;
        };
        for plugin in self.inner.peer.plugins.iter() {
            if let Err(status) = plugin.pre_write_push(self, &mut packet).await {
                tracing::debug!(id = %self.id(), plugin = plugin.name(), %status, "a plugin refused a broadcast push");
                return Delivery::Dropped;
            }
        }
        let Ok(frame) = self.encode(&packet) else {
            return match self.is_closed() {
                true => Delivery::Closed,
                false => Delivery::Dropped,
            };
        };
        let config = &self.inner.peer.config;
        // Under Wait a push may finish in the background: the later ones
        // queue behind it.
        let turn = (config.slow_consumer == SlowConsumer::Wait).then(|| self.inner.turns.take());
        let frame = match (turn.as_ref().is_none_or(|t| t.is_first()), self.link_now()) {
            (true, Some(link)) => match link.try_send(frame) {
                Ok(()) => {
                    drop(turn);
                    self.post_write_push(&packet).await;
                    return Delivery::Sent;
                }
                Err(mpsc::error::TrySendError::Full(frame)) => frame,
                Err(mpsc::error::TrySendError::Closed(frame)) => frame,
            },
            _ => frame,
        };
        let live = self.is_connected();
        if self.is_closed() || (!live && self.inner.redial.is_none()) {
            return Delivery::Closed;
        }
        match config.slow_consumer {
            SlowConsumer::Wait => {
                let session = self.clone();
                let wait = config.slow_consumer_wait;
                let deadline = tokio::time::Instant::now() + wait;
                tokio::spawn(async move {
                    let send = async {
                        if let Some(mut turn) = turn {
                            turn.wait().await;
                            session.live_link().await?.send(frame).await?;
                            turn.done();
                        }
                        Ok::<_, Status>(())
                    };
                    match tokio::time::timeout_at(deadline, send).await {
                        Ok(Ok(())) => session.post_write_push(&packet).await,
                        Ok(Err(status)) => {
                            tracing::debug!(id = %session.id(), %status, "broadcast push not sent");
                        }
                        Err(_) => {
                            tracing::debug!(id = %session.id(), ?wait, "broadcast push dropped: no room within slow_consumer_wait");
                        }
                    }
                });
                Delivery::Waiting
            }
            SlowConsumer::Drop => Delivery::Dropped,
            // Redialing: there is no queue to be slow on.
            SlowConsumer::Close if !live => Delivery::Dropped,
            SlowConsumer::Close => {
                tracing::warn!(id = %self.id(), "slow consumer: closing the session");
                self.close();
                Delivery::Closed
            }
        }
    }

    /// Runs the plugins' `post_write_push` hooks (an error is only logged).
    async fn post_write_push(&self, packet: &Packet) {
        for plugin in self.inner.peer.plugins.iter() {
            if let Err(status) = plugin.post_write_push(self, packet).await {
                tracing::warn!(plugin = plugin.name(), %status, "post-write hook failed");
            }
        }
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

    /// Queues a push under the slow-consumer policy. During a redial a
    /// push waits for the new connection under the same policy.
    async fn queue_push(&self, packet: &Packet) -> Result<(), Status> {
        let config = &self.inner.peer.config;
        let frame = self.encode(packet)?;
        let full = || Status::write_failed("the session's write queue is full (slow consumer)");
        match config.slow_consumer {
            SlowConsumer::Wait => {
                // Room on a live connection: no waiting, no timer.
                let frame = match self.link_now() {
                    Some(link) => match link.try_send(frame) {
                        Ok(()) => return Ok(()),
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            return Err(Status::conn_closed("connection lost"))
                        }
                        Err(mpsc::error::TrySendError::Full(frame)) => frame,
                    },
                    None => frame,
                };
                // Boxed, as the other waits on the send path: every push's
                // future would otherwise hold the timer.
                let send = async {
                    let link = self.live_link().await?;
                    link.send(frame).await
                };
                Box::pin(tokio::time::timeout(config.slow_consumer_wait, send))
                    .await
                    .unwrap_or_else(|_| Err(full()))
            }
            SlowConsumer::Drop | SlowConsumer::Close => {
                let link = match self.handshake_link() {
                    Some(link) => link,
                    None => self.link(),
                };
                if link.down.is_cancelled() {
                    return Err(Status::conn_closed("connection lost"));
                }
                link.try_send(frame).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_)
                        if config.slow_consumer == SlowConsumer::Drop =>
                    {
                        full()
                    }
                    mpsc::error::TrySendError::Full(_) => {
                        tracing::warn!(id = %self.id(), "slow consumer: closing the session");
                        self.close();
                        Status::conn_closed("session closed: slow consumer")
                    }
                    mpsc::error::TrySendError::Closed(_) => Status::conn_closed("connection lost"),
                })
            }
        }
    }

    fn encode(&self, packet: &Packet) -> Result<Bytes, Status> {
        if self.is_closed() {
            return Err(Status::conn_closed("session is closed"));
        }
        spare::encode_frame(|buf| self.inner.proto.encode(packet, buf))
            .map_err(|e| Status::bad_message(format!("cannot frame the message: {e}")))
    }

    /// Encodes and queues one packet, without hooks, on the live connection
    /// (waiting through a redial).
    pub(crate) async fn queue_packet(&self, packet: &Packet) -> Result<(), Status> {
        let frame = self.encode(packet)?;
        self.live_link().await?.send(frame).await
    }

    /// Encodes and queues one packet on a given connection (a reply goes
    /// back on the connection its pull came on, never on a newer one).
    pub(crate) async fn queue_on(&self, link: &Link, packet: &Packet) -> Result<(), Status> {
        let frame = self.encode(packet)?;
        link.send_reply(frame).await
    }

    /// The session's handler slots and byte budget.
    pub(crate) fn limits(&self) -> &Arc<SessionLimits> {
        &self.inner.limits
    }

    /// Whether this side dialed the session.
    pub(crate) fn is_dialed(&self) -> bool {
        self.inner.dialed
    }

    /// What this session holds now: its handlers, the bytes it makes the
    /// peer hold (by kind), the frames it had dropped, its pending pulls;
    /// and the bytes and frames its connections carried since it started
    /// (see [`SessionStats`] for what counts).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use jaunt_peer::{Peer, Router};
    ///
    /// let server = Peer::new(Router::new());
    /// let addr = server.listen("127.0.0.1:0").await.unwrap();
    /// let client = Peer::new(Router::new());
    /// let session = client.dial(&addr).await.unwrap();
    /// let stats = session.stats();
    /// assert_eq!((stats.handlers, stats.bytes_queued, stats.pending_pulls), (0, 0, 0));
    ///
    /// // A pull is a frame out and a reply frame back, both counted whole.
    /// let _ = session.pull("/nowhere", &()).await;
    /// let stats = session.stats();
    /// assert_eq!((stats.sent_frames, stats.received_frames), (1, 1));
    /// assert!(stats.sent_bytes > 0 && stats.received_bytes > 0);
    /// client.close().await;
    /// server.close().await;
    /// # });
    /// ```
    pub fn stats(&self) -> SessionStats {
        self.stats_with(self.inner.limits.wire.load())
    }

    /// [`stats`](Self::stats) with wire counts read already.
    pub(crate) fn stats_with(&self, wire: WireCount) -> SessionStats {
        let limits = &self.inner.limits;
        SessionStats {
            handlers: limits.slots.held(),
            bytes_held: limits.bytes.share().held(),
            bytes_read: limits.bytes.read(),
            bytes_in_handlers: limits.bytes.handlers(),
            bytes_queued: limits.bytes.queued(),
            frames_dropped: limits.dropped.total(),
            pending_pulls: self.pending_pulls(),
            received_bytes: wire.received_bytes,
            sent_bytes: wire.sent_bytes,
            received_frames: wire.received_frames,
            sent_frames: wire.sent_frames,
        }
    }

    pub(crate) fn in_order_queue(&self) -> Option<&mpsc::Sender<Job>> {
        self.inner.in_order.as_ref()
    }

    /// Runs the reply read hooks, then hands the reply to its pull.
    ///
    /// (With no plugins the read loop hands replies to `complete_pull`
    /// itself.)
    pub(crate) async fn receive_reply(&self, mut reply: Packet) {
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
        self.complete_pull(Box::new(reply));
    }

    /// Hands a reply to its waiting pull (the read hooks, if any, have run).
    pub(crate) fn complete_pull(&self, reply: Box<Packet>) {
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

/// A pull's 408 when its own time budget ran out before the reply.
fn no_reply_within(timeout: Duration) -> Status {
    Status::handle_timeout(format!("no reply within {} ms", timeout.as_millis()))
}

/// A pull from its start to its end, however it ends (reply, error, or the
/// caller dropping the future): it owns the pull's packet, removes its
/// pending entry, so no memory is kept for replies that never come, and
/// makes sure the plugins' `post_pull_end` runs exactly once: at its end
/// ([`Session::finish_pull`], or [`PendingGuard::fail_early`]) or, if the
/// pull never got there, when the guard is dropped (abandoned). `S` is
/// `&Session` for a pull awaited in place, `Session` for one running on a
/// task (`async_pull`).
struct PendingGuard<S: Borrow<Session>, P: BorrowMut<Packet>> {
    session: S,
    /// The pull (`&mut Packet` for a pull awaited in place, `Packet` for
    /// one running on a task).
    packet: P,
    start: Instant,
    /// Whether the pull went out (so the other side may be working on it).
    sent: bool,
    /// Whether the reply came (its entry is gone already).
    replied: bool,
    /// Whether the `post_pull_end` hooks ran.
    ended: bool,
    /// The body's length as it was queued (set only with plugins).
    body_len: usize,
}

impl<S: Borrow<Session>, P: BorrowMut<Packet>> PendingGuard<S, P> {
    fn new(session: S, packet: P, start: Instant) -> Self {
        Self {
            session,
            packet,
            start,
            sent: false,
            replied: false,
            ended: false,
            body_len: 0,
        }
    }

    /// Runs the plugins' `post_pull_end` hooks (once: later calls do
    /// nothing). Out of line: the plain pull never comes here.
    #[inline(never)]
    fn end(&mut self, outcome: PullOutcome<'_>, reply_body_len: usize, cost: Duration) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let session: &Session = self.session.borrow();
        let packet: &Packet = self.packet.borrow();
        let end = PullEnd {
            seq: packet.seq,
            uri: packet.path(),
            outcome,
            cost,
            written: self.sent,
            request_body_len: if self.sent { self.body_len } else { 0 },
            reply_body_len,
        };
        for plugin in session.inner.peer.plugins.iter() {
            plugin.post_pull_end(session, &end);
        }
    }

    /// The pull fails before it is sent (its session is closed).
    fn fail_early(&mut self, status: Status) -> Result<Reply, Status> {
        let session: &Session = self.session.borrow();
        if !session.inner.peer.plugins.is_empty() {
            let cost = self.start.elapsed();
            self.end(PullOutcome::Failed(&status), 0, cost);
        }
        Err(status)
    }
}

impl<S: Borrow<Session>, P: BorrowMut<Packet>> Drop for PendingGuard<S, P> {
    fn drop(&mut self) {
        if !self.replied {
            let session: &Session = self.session.borrow();
            let seq = self.packet.borrow().seq;
            let unanswered = session.pending().remove(&seq).is_some();
            if unanswered && self.sent && !session.is_closed() {
                // Abandoned (dropped or timed out): let the callee stop working.
                session.send_cancel(seq);
            }
        }
        if !self.ended && !self.session.borrow().inner.peer.plugins.is_empty() {
            let cost = self.start.elapsed();
            self.end(PullOutcome::Abandoned, 0, cost);
        }
    }
}
