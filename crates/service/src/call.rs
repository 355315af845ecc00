//! One typed call: [`PullCall`] and [`PushCall`], its options chained before
//! it is awaited.
//!
//! A call holds what sends it (a closure the generated client builds: it
//! owns the argument and borrows the stub) and its options; awaiting it runs
//! the stub's own future, unboxed, so a typed pull costs what a raw
//! `Session::pull_with` costs (docs/benchmarks.md, "Typed services").

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use jaunt_codec::DecodeBody;
use jaunt_peer::{PullOptions, Reply};
use jaunt_socket::Status;

/// What sends a pull once its options are known: implemented by every
/// `FnOnce(PullOptions) -> impl Future<Output = Result<Reply, Status>>`
/// (the closures the generated clients build).
pub trait SendPull {
    /// The pull in flight.
    type Future: Future<Output = Result<Reply, Status>> + Send;

    /// Sends the pull with these options.
    fn send(self, opts: PullOptions) -> Self::Future;
}

impl<F, Fut> SendPull for F
where
    F: FnOnce(PullOptions) -> Fut,
    Fut: Future<Output = Result<Reply, Status>> + Send,
{
    type Future = Fut;

    fn send(self, opts: PullOptions) -> Fut {
        self(opts)
    }
}

/// What sends a push once its options are known.
pub trait SendPush {
    /// The push being queued.
    type Future: Future<Output = Result<(), Status>> + Send;

    /// Sends the push with these options.
    fn send(self, opts: PullOptions) -> Self::Future;
}

impl<F, Fut> SendPush for F
where
    F: FnOnce(PullOptions) -> Fut,
    Fut: Future<Output = Result<(), Status>> + Send,
{
    type Future = Fut;

    fn send(self, opts: PullOptions) -> Fut {
        self(opts)
    }
}

macro_rules! call_options {
    () => {
        /// Adds a meta entry.
        pub fn meta(mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
            self.opts = self.opts.meta(key, value);
            self
        }

        /// Encodes the argument with this codec instead of the peer's
        /// default: an id (`b'j'`) or a name (`"json"`), as in `PeerConfig`.
        pub fn codec(mut self, id: impl Into<jaunt_codec::CodecRef>) -> Self {
            self.opts = self.opts.codec(id);
            self
        }

        /// Sends the message through this transfer filter (call again to
        /// chain them).
        pub fn xfer(mut self, id: u8) -> Self {
            self.opts = self.opts.xfer(id);
            self
        }

        /// Replaces all the options at once.
        pub fn options(mut self, opts: PullOptions) -> Self {
            self.opts = opts;
            self
        }

        /// The uri called.
        pub fn uri(&self) -> &str {
            self.uri
        }
    };
}

/// A typed pull, sent when awaited: the reply decoded as `R`, or the error
/// status.
///
/// ```
/// # use jaunt::prelude::*;
/// # #[jaunt::service]
/// # trait Kv { async fn get(&self, ctx: &PullCtx, key: String) -> Result<Option<String>, Status>; }
/// # async fn demo(kv: KvClient) -> Result<(), Status> {
/// use std::time::Duration;
///
/// let value = kv
///     .get("colour".to_owned())
///     .timeout(Duration::from_millis(200))
///     .meta("trace", "abc")
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a call is sent when it is awaited"]
pub struct PullCall<'a, F, R> {
    uri: &'a str,
    send: F,
    opts: PullOptions,
    reply: PhantomData<fn() -> R>,
}

impl<'a, F: SendPull, R> PullCall<'a, F, R> {
    /// A pull of `uri` that `send` sends (the generated clients build
    /// them).
    pub fn new(uri: &'a str, send: F) -> Self {
        Self {
            uri,
            send,
            opts: PullOptions::new(),
            reply: PhantomData,
        }
    }

    call_options!();

    /// Gives the pull a time budget: past it the call ends with status 408
    /// and the callee is told to stop.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts = self.opts.timeout(timeout);
        self
    }

    /// Marks this call idempotent: a stub that can resend (a balanced
    /// client) may retry it on another connection if its own is lost before
    /// the reply. Routes declared `#[jaunt(idempotent)]` are marked already.
    pub fn idempotent(mut self) -> Self {
        self.opts = self.opts.idempotent();
        self
    }

    /// Asks the callee to encode its reply with this codec (an id or a
    /// name).
    pub fn accept_codec(mut self, id: impl Into<jaunt_codec::CodecRef>) -> Self {
        self.opts = self.opts.accept_codec(id);
        self
    }

    /// Sends the pull and returns the whole reply (its meta, codec and cost
    /// too), not decoded: `reply.decode::<R>()`.
    pub fn reply(self) -> F::Future {
        self.send.send(self.opts)
    }
}

impl<F: SendPull, R: DecodeBody> IntoFuture for PullCall<'_, F, R> {
    type Output = Result<R, Status>;
    type IntoFuture = Decoded<F::Future, R>;

    fn into_future(self) -> Self::IntoFuture {
        Decoded {
            pull: self.send.send(self.opts),
            reply: PhantomData,
        }
    }
}

impl<F, R> fmt::Debug for PullCall<'_, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullCall")
            .field("uri", &self.uri)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// An awaited [`PullCall`]: the pull in flight, then its reply decoded.
    #[must_use = "futures do nothing unless polled"]
    pub struct Decoded<P, R> {
        #[pin]
        pull: P,
        reply: PhantomData<fn() -> R>,
    }
}

impl<P, R> Future for Decoded<P, R>
where
    P: Future<Output = Result<Reply, Status>>,
    R: DecodeBody,
{
    type Output = Result<R, Status>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let reply = ready!(self.project().pull.poll(cx))?;
        Poll::Ready(reply.decode())
    }
}

impl<P, R> fmt::Debug for Decoded<P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoded").finish_non_exhaustive()
    }
}

/// A typed push, queued when awaited.
#[must_use = "a push is sent when it is awaited"]
pub struct PushCall<'a, F> {
    uri: &'a str,
    send: F,
    opts: PullOptions,
}

impl<'a, F: SendPush> PushCall<'a, F> {
    /// A push to `uri` that `send` sends (the generated clients build
    /// them).
    pub fn new(uri: &'a str, send: F) -> Self {
        Self {
            uri,
            send,
            opts: PullOptions::new(),
        }
    }

    call_options!();
}

impl<F: SendPush> IntoFuture for PushCall<'_, F> {
    type Output = Result<(), Status>;
    type IntoFuture = F::Future;

    fn into_future(self) -> F::Future {
        self.send.send(self.opts)
    }
}

impl<F> fmt::Debug for PushCall<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushCall")
            .field("uri", &self.uri)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}
