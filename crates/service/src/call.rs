//! One typed call: [`PullCall`] and [`PushCall`], its options chained before
//! it is awaited.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use jaunt_codec::{DecodeBody, EncodeBody};
use jaunt_peer::{PullOptions, Reply};
use jaunt_socket::Status;

use crate::Stub;

/// A boxed call future: what awaiting a call runs.
type CallFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>;

macro_rules! call_options {
    () => {
        /// Adds a meta entry.
        #[must_use]
        pub fn meta(mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
            self.opts = self.opts.meta(key, value);
            self
        }

        /// Encodes the argument with this codec instead of the peer's
        /// default.
        #[must_use]
        pub fn codec(mut self, id: u8) -> Self {
            self.opts = self.opts.codec(id);
            self
        }

        /// Sends the message through this transfer filter (call again to
        /// chain them).
        #[must_use]
        pub fn xfer(mut self, id: u8) -> Self {
            self.opts = self.opts.xfer(id);
            self
        }

        /// Replaces all the options at once.
        #[must_use]
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
pub struct PullCall<'a, S, A, R> {
    stub: &'a S,
    uri: &'a str,
    args: A,
    opts: PullOptions,
    reply: PhantomData<fn() -> R>,
}

impl<'a, S, A, R> PullCall<'a, S, A, R> {
    /// A pull of `uri` with `args` through `stub` (the generated clients
    /// build them).
    pub fn new(stub: &'a S, uri: &'a str, args: A) -> Self {
        Self {
            stub,
            uri,
            args,
            opts: PullOptions::new(),
            reply: PhantomData,
        }
    }

    call_options!();

    /// Gives the pull a time budget: past it the call ends with status 408
    /// and the callee is told to stop.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts = self.opts.timeout(timeout);
        self
    }

    /// Asks the callee to encode its reply with this codec.
    #[must_use]
    pub fn accept_codec(mut self, id: u8) -> Self {
        self.opts = self.opts.accept_codec(id);
        self
    }
}

impl<'a, S: Stub, A: EncodeBody + Send + Sync + 'a, R: DecodeBody + 'a> PullCall<'a, S, A, R> {
    /// Sends the pull and returns the whole reply (its meta, codec and cost
    /// too), not decoded: `reply.decode::<R>()`.
    pub async fn reply(self) -> Result<Reply, Status> {
        self.stub.pull(self.uri, &self.args, self.opts).await
    }
}

impl<'a, S: Stub, A: EncodeBody + Send + Sync + 'a, R: DecodeBody + 'a> IntoFuture
    for PullCall<'a, S, A, R>
{
    type Output = Result<R, Status>;
    type IntoFuture = CallFuture<'a, R>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            self.stub
                .pull(self.uri, &self.args, self.opts)
                .await?
                .decode()
        })
    }
}

impl<S, A, R> fmt::Debug for PullCall<'_, S, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullCall")
            .field("uri", &self.uri)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// A typed push, queued when awaited.
#[must_use = "a push is sent when it is awaited"]
pub struct PushCall<'a, S, A> {
    stub: &'a S,
    uri: &'a str,
    args: A,
    opts: PullOptions,
}

impl<'a, S, A> PushCall<'a, S, A> {
    /// A push to `uri` with `args` through `stub` (the generated clients
    /// build them).
    pub fn new(stub: &'a S, uri: &'a str, args: A) -> Self {
        Self {
            stub,
            uri,
            args,
            opts: PullOptions::new(),
        }
    }

    call_options!();
}

impl<'a, S: Stub, A: EncodeBody + Send + Sync + 'a> IntoFuture for PushCall<'a, S, A> {
    type Output = Result<(), Status>;
    type IntoFuture = CallFuture<'a, ()>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.stub.push(self.uri, &self.args, self.opts).await })
    }
}

impl<S, A> fmt::Debug for PushCall<'_, S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushCall")
            .field("uri", &self.uri)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}
