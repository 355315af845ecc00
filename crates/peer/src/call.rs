//! Per-call options and results: [`PullOptions`], [`Reply`], [`PullHandle`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use jaunt_codec::{CodecRef, DecodeBody, Registry};
use jaunt_socket::{Meta, Packet, Status};
use tokio::task::JoinHandle;

/// The meta key with which a pull asks for its reply's codec (a decimal id).
pub const ACCEPT_BODY_CODEC: &str = "X-Accept-Body-Codec";

/// The meta key carrying a pull's time budget: the milliseconds left when it
/// was sent. The callee's handler gets that deadline
/// ([`PullCtx::deadline`](crate::PullCtx::deadline)) and the callee answers
/// 408 if its handler cannot finish in time. Peers that do not know the key
/// ignore it.
pub const TIMEOUT_META: &str = "X-Timeout";

/// The uri of the push that tells the callee a pull was abandoned (its
/// future dropped, or its deadline passed): meta [`CANCEL_SEQ_META`] names
/// the pull's seq, and the callee drops that pull's handler. A peer that does
/// not know it logs an unknown push and goes on.
pub const CANCEL_URI: &str = "/_jaunt/cancel";

/// The meta key of a cancel push naming the abandoned pull's seq.
pub const CANCEL_SEQ_META: &str = "X-Cancel-Seq";

/// Options of one pull or push.
///
/// Codecs are named by id (`b'p'`) or by name (`"protobuf"`, as in
/// `PeerConfig::default_body_codec`); a name is resolved against the peer's
/// codecs when the call is made, and one the peer does not know fails the
/// call with status 400.
///
/// ```
/// use jaunt_peer::PullOptions;
///
/// let opts = PullOptions::new()
///     .meta("trace", "abc")
///     .codec(b'p')
///     .xfer(b'g')
///     .accept_codec(b'j');
/// let same = PullOptions::new().codec("protobuf").accept_codec("json");
/// ```
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub(crate) meta: Meta,
    pub(crate) codec: Option<CodecRef>,
    pub(crate) xfer: Vec<u8>,
    pub(crate) accept_codec: Option<CodecRef>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) idempotent: bool,
}

impl PullOptions {
    /// No options: the peer's default codec, no meta, no filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a meta entry.
    #[must_use]
    pub fn meta(mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.meta.add(key, value);
        self
    }

    /// Encodes the argument with this codec: an id (`b'j'`) or a name
    /// (`"json"`).
    #[must_use]
    pub fn codec(mut self, codec: impl Into<CodecRef>) -> Self {
        self.codec = Some(codec.into());
        self
    }

    /// Sends the frame through this transfer filter (call again to chain;
    /// the first one named is the outer-most).
    #[must_use]
    pub fn xfer(mut self, id: u8) -> Self {
        self.xfer.push(id);
        self
    }

    /// Asks the other side to encode its reply with this codec: an id
    /// (`b'j'`) or a name (`"json"`, resolved against this peer's codecs;
    /// the other side is sent the id).
    #[must_use]
    pub fn accept_codec(mut self, codec: impl Into<CodecRef>) -> Self {
        self.accept_codec = Some(codec.into());
        self
    }

    /// Gives the pull a time budget (instead of the peer's
    /// `pull_timeout`): past it the pull ends with status 408, its pending
    /// entry is removed, and the callee is told to stop. The budget travels
    /// to the callee in meta [`TIMEOUT_META`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Marks the pull idempotent: making it twice does no harm. A session
    /// sends it like any other; a stub that can resend (the balanced client
    /// of `jaunt-cluster`) may retry it on another connection when its own
    /// was lost before the reply. Typed services mark routes with
    /// `#[jaunt(idempotent)]`.
    #[must_use]
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Whether the pull was marked [idempotent](Self::idempotent).
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The time budget set with [`timeout`](Self::timeout), if any.
    pub fn time_budget(&self) -> Option<Duration> {
        self.timeout
    }
}

/// A successful pull's reply: its body (still encoded), meta, codec and how
/// long the call took.
#[derive(Debug, Clone)]
pub struct Reply {
    // Boxed: a reply is handed from the reading task to its caller through
    // a oneshot and then into the caller's future; a pointer moves in one
    // cache line where the packet would take three.
    pub(crate) packet: Box<Packet>,
    pub(crate) codecs: Arc<Registry>,
    pub(crate) cost: Duration,
}

impl Reply {
    /// Decodes the body with the codec it names.
    pub fn decode<T: DecodeBody>(&self) -> Result<T, Status> {
        crate::context::decode_body(&self.codecs, self.packet.body_codec, &self.packet.body)
    }

    /// The encoded body.
    pub fn body(&self) -> &Bytes {
        &self.packet.body
    }

    /// The body's codec id.
    pub fn codec(&self) -> u8 {
        self.packet.body_codec
    }

    /// The reply's meta.
    pub fn meta(&self) -> &Meta {
        &self.packet.meta
    }

    /// The transfer filters the reply came through.
    pub fn xfer(&self) -> &[u8] {
        &self.packet.xfer
    }

    /// Time from sending the pull to receiving this reply.
    pub fn cost(&self) -> Duration {
        self.cost
    }

    /// The whole reply packet.
    pub fn into_packet(self) -> Packet {
        *self.packet
    }
}

/// A pull started with [`Session::async_pull`](crate::Session::async_pull):
/// await it for the result.
///
/// Dropping the handle cancels the pull, as dropping a
/// [`pull`](crate::Session::pull) future does: its pending entry is removed
/// and, if it went out, the other side is told to stop its handler (the
/// push [`CANCEL_URI`]). [`detach`](Self::detach) lets the pull run to its
/// end with its result discarded.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use jaunt_peer::{Peer, PullCtx, PullOptions, Router};
/// use jaunt_socket::Status;
///
/// let mut router = Router::new();
/// router.pull("/echo", |_: PullCtx, s: String| async move { Ok::<_, Status>(s) }).unwrap();
/// let server = Peer::new(router);
/// let addr = server.listen("127.0.0.1:0").await.unwrap();
/// let client = Peer::new(Router::new());
/// let session = client.dial(&addr).await.unwrap();
///
/// let handle = session.async_pull("/echo", &"hi", PullOptions::new());
/// assert_eq!(handle.await.unwrap().decode::<String>().unwrap(), "hi");
/// // Fire and forget: runs to its end, nobody waits for the reply.
/// session.async_pull("/echo", &"later", PullOptions::new()).detach();
///
/// client.close().await;
/// server.close().await;
/// # });
/// ```
#[derive(Debug)]
#[must_use = "dropping a PullHandle cancels the pull; call .detach() to let it run"]
pub struct PullHandle {
    /// `None` once detached.
    task: Option<JoinHandle<Result<Reply, Status>>>,
}

impl PullHandle {
    pub(crate) fn new(task: JoinHandle<Result<Reply, Status>>) -> Self {
        Self { task: Some(task) }
    }

    /// Abandons the pull (as dropping the handle does); awaiting the handle
    /// afterwards gives an error status.
    pub fn abort(&self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }

    /// Lets the pull run to its end without waiting for it: its reply (or
    /// error) is discarded, and the other side is not told to stop.
    pub fn detach(mut self) {
        // Dropping a JoinHandle detaches its task.
        drop(self.task.take());
    }
}

impl Drop for PullHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            // Dropping the pull's future removes its pending entry and sends
            // the cancel (see `PendingGuard`); a finished task is unaffected.
            task.abort();
        }
    }
}

impl Future for PullHandle {
    type Output = Result<Reply, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(Err(Status::invalid_operation("the pull was detached")));
        };
        Pin::new(task).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| match e.is_cancelled() {
                true => Err(Status::invalid_operation("the pull was aborted")),
                false => Err(Status::unknown_error(format!("pull task ended: {e}"))),
            })
        })
    }
}

/// A finished pull delivered into a channel by
/// [`Session::async_pull_to`](crate::Session::async_pull_to) (teleport's done
/// channel).
#[derive(Debug)]
pub struct PullDone {
    /// The uri that was pulled.
    pub uri: String,
    /// The outcome.
    pub result: Result<Reply, Status>,
}
