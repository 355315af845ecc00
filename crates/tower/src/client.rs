//! The calling side: [`PullRequest`] and [`SessionService`], a session as a
//! `tower::Service`.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use jaunt_codec::{erased_serde, CodecRef, EncodeBody, MessageEncode, RawBody};
use jaunt_peer::{PullOptions, Reply, Session};
use jaunt_socket::Status;
use tower::load::Load;
use tower::Service;

/// One pull to make through a [`SessionService`]: the uri, the argument and
/// the call's [`PullOptions`] (meta, codecs, transfer filters, time budget,
/// idempotency).
///
/// The argument is kept unencoded and shared, so a request is cheap to
/// clone (tower's retry clones it for each attempt) and is encoded by the
/// session it goes out on, with that peer's codecs: the codec named in the
/// options, else the peer's default. An already-encoded body
/// ([`PullRequest::raw`]) is sent as it is.
///
/// ```
/// use std::time::Duration;
/// use jaunt_tower::PullRequest;
///
/// let req = PullRequest::new("/math/add", vec![1, 2, 3])
///     .meta("trace", "abc")
///     .codec("json")
///     .timeout(Duration::from_secs(2))
///     .idempotent();
/// assert_eq!(req.uri(), "/math/add");
/// assert!(req.is_idempotent());
/// assert_eq!(req.options().time_budget(), Some(Duration::from_secs(2)));
/// ```
#[derive(Clone)]
pub struct PullRequest {
    uri: Cow<'static, str>,
    body: SharedBody,
    options: PullOptions,
}

impl fmt::Debug for PullRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullRequest")
            .field("uri", &self.uri)
            .field("body", &self.body.0.type_name())
            .field("options", &self.options)
            .finish()
    }
}

impl PullRequest {
    /// A pull of `uri` with `body` as its argument and no options. A
    /// `&'static str` uri is kept as it is (no copy per request).
    pub fn new<T>(uri: impl Into<Cow<'static, str>>, body: T) -> Self
    where
        T: EncodeBody + Send + Sync + 'static,
    {
        Self {
            uri: uri.into(),
            body: SharedBody(Arc::new(body)),
            options: PullOptions::new(),
        }
    }

    /// A pull whose body is already encoded: the bytes and their codec id
    /// are sent as they are (a proxy forwarding what it received, say).
    pub fn raw(uri: impl Into<Cow<'static, str>>, body: RawBody) -> Self {
        Self::new(uri, body)
    }

    /// Replaces all the options.
    #[must_use]
    pub fn with_options(mut self, options: PullOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds a meta entry ([`PullOptions::meta`]).
    #[must_use]
    pub fn meta(self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.map_options(|o| o.meta(key, value))
    }

    /// Encodes the argument with this codec ([`PullOptions::codec`]).
    #[must_use]
    pub fn codec(self, codec: impl Into<CodecRef>) -> Self {
        self.map_options(|o| o.codec(codec))
    }

    /// Asks for the reply in this codec ([`PullOptions::accept_codec`]).
    #[must_use]
    pub fn accept_codec(self, codec: impl Into<CodecRef>) -> Self {
        self.map_options(|o| o.accept_codec(codec))
    }

    /// Sends the frame through this transfer filter ([`PullOptions::xfer`]).
    #[must_use]
    pub fn xfer(self, id: u8) -> Self {
        self.map_options(|o| o.xfer(id))
    }

    /// The pull's own time budget, sent to the callee
    /// ([`PullOptions::timeout`]); a tower timeout layer bounds the wait on
    /// this side only.
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map_options(|o| o.timeout(timeout))
    }

    /// Marks the pull idempotent ([`PullOptions::idempotent`]): only such
    /// pulls are retried by [`RetryOn`](crate::RetryOn).
    #[must_use]
    pub fn idempotent(self) -> Self {
        self.map_options(PullOptions::idempotent)
    }

    fn map_options(mut self, f: impl FnOnce(PullOptions) -> PullOptions) -> Self {
        self.options = f(std::mem::take(&mut self.options));
        self
    }

    /// The uri pulled.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The call's options.
    pub fn options(&self) -> &PullOptions {
        &self.options
    }

    /// The call's options, to change (a layer adding meta, say).
    pub fn options_mut(&mut self) -> &mut PullOptions {
        &mut self.options
    }

    /// Whether the pull was marked [idempotent](Self::idempotent).
    pub fn is_idempotent(&self) -> bool {
        self.options.is_idempotent()
    }
}

/// The argument of a [`PullRequest`], shared between its clones.
#[derive(Clone)]
struct SharedBody(Arc<dyn EncodeBody + Send + Sync>);

impl EncodeBody for SharedBody {
    fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    fn as_serialize(&self) -> Option<&dyn erased_serde::Serialize> {
        self.0.as_serialize()
    }

    fn as_message(&self) -> Option<&dyn MessageEncode> {
        self.0.as_message()
    }

    fn as_raw(&self) -> Option<&RawBody> {
        self.0.as_raw()
    }
}

/// A [`Session`] as a `tower::Service`: [`PullRequest`] in, [`Reply`] out,
/// error [`Status`]. tower's middleware then applies to Jaunt calls —
/// timeout, retry ([`RetryOn`](crate::RetryOn)), rate and concurrency
/// limits, load-shed, and `balance::p2c` over several sessions, which reads
/// [`Load`]: the session's [pending pulls](Session::pending_pulls).
///
/// The service is always ready while the session is open (a session being
/// redialed is open: its pulls wait for the new connection, or fail 102);
/// once the session is closed, `poll_ready` fails with 102, which makes a
/// balancer drop it. Clones share the session.
///
/// ```
/// use jaunt_peer::{Peer, PullCtx, Router};
/// use jaunt_socket::Status;
/// use jaunt_tower::{PullRequest, SessionService};
/// use tower::ServiceExt;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let mut router = Router::new();
/// router.pull("/double", |_: PullCtx, n: i64| async move { Ok::<_, Status>(n * 2) }).unwrap();
/// let server = Peer::new(router);
/// let addr = server.listen("127.0.0.1:0").await.unwrap();
/// let client = Peer::new(Router::new());
///
/// let svc = SessionService::new(client.dial(&addr).await.unwrap());
/// let reply = svc.clone().oneshot(PullRequest::new("/double", 21)).await.unwrap();
/// assert_eq!(reply.decode::<i64>().unwrap(), 42);
///
/// client.close().await;
/// server.close().await;
/// # });
/// ```
#[derive(Clone)]
pub struct SessionService {
    session: Session,
}

impl fmt::Debug for SessionService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("session", &self.session.id())
            .field("remote", &self.session.remote_addr())
            .finish()
    }
}

impl SessionService {
    /// Serves calls through `session`.
    pub fn new(session: Session) -> Self {
        Self { session }
    }

    /// The session calls go through.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, unwrapped.
    pub fn into_session(self) -> Session {
        self.session
    }
}

impl From<Session> for SessionService {
    fn from(session: Session) -> Self {
        Self::new(session)
    }
}

impl Service<PullRequest> for SessionService {
    type Response = Reply;
    type Error = Status;
    type Future = PullFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        if self.session.is_closed() {
            Poll::Ready(Err(Status::conn_closed("session is closed")))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, request: PullRequest) -> PullFuture {
        let session = self.session.clone();
        PullFuture {
            inner: Box::pin(async move {
                let PullRequest { uri, body, options } = request;
                session.pull_with(&uri, &body, options).await
            }),
        }
    }
}

/// The load a balancer reads: the session's pulls waiting for their reply
/// ([`Session::pending_pulls`], every pull on the session, whether made
/// through this service or not). A pull counts from the first poll of its
/// future until its reply, error or cancellation.
impl Load for SessionService {
    type Metric = usize;

    fn load(&self) -> usize {
        self.session.pending_pulls()
    }
}

/// The response future of [`SessionService`]: the pull. Dropping it cancels
/// the pull (the other side is told to stop its handler).
#[must_use = "a pull does nothing until awaited; dropping it cancels it"]
pub struct PullFuture {
    inner: Pin<Box<dyn Future<Output = Result<Reply, Status>> + Send + 'static>>,
}

impl fmt::Debug for PullFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullFuture").finish_non_exhaustive()
    }
}

impl Future for PullFuture {
    type Output = Result<Reply, Status>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}
