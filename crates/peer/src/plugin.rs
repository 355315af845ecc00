//! Plugins: named hooks at every stage of a connection and of each message.
//!
//! A plugin implements [`RoutePlugin`] (the hooks around one route's
//! messages) and, to be a peer-wide plugin, [`Plugin`] (the connection-level
//! hooks as well). Every hook has a no-op default, so a plugin writes only
//! the hooks it needs. `docs/plugins.md` gives the order of every hook in the
//! life of a connection and of a pull, push and reply.
//!
//! Peer plugins are registered with [`PeerBuilder::plugin`](crate::PeerBuilder::plugin)
//! and see every hook of every session. Group plugins are attached to a
//! route group with [`PluginGroups::plugin_group`]; being [`RoutePlugin`]s,
//! they can only have route hooks, and they run for that group's routes
//! only, after the peer plugins, outer groups before inner ones.
//!
//! A hook that returns an error status stops the chain (later plugins do not
//! run that hook). What the error then does is documented on each hook.
//!
//! Two hooks are plain (not async) functions and cannot fail: the completion
//! hooks [`Plugin::post_pull_end`] (a pull this side sent ended, however it
//! ended) and [`RoutePlugin::post_serve_end`] (a pull or push this side
//! routed was answered or handed to its handler). They run on the message's
//! path, the first one also from `Drop` (a pull future the caller dropped):
//! they must be cheap and must not block (count, record, hand off to a
//! channel; no I/O, no waiting on a lock held across an await).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use jaunt_router::{GroupPlugin, RouteInfo};
use jaunt_socket::{Packet, Status};

use crate::{Addr, Group, PullCtx, PushCtx, Router, Session};

/// Whether a route serves pulls or pushes (for [`RoutePlugin::post_reg`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// A pull route.
    Pull,
    /// A push route.
    Push,
}

/// The future a per-message hook returns: what `#[async_trait]` makes of an
/// `async fn` hook. Implement the hooks as `async fn` under
/// `#[async_trait]`; this type only shows in the trait's own signatures.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'a>>;

/// The outcome of a hook a plugin does not implement: ready at once and
/// holding nothing, so boxing it does not allocate. (An `async` default
/// would box a future holding the hook's arguments: an allocation per hook
/// per message for every plugin, whether it implements the hook or not.)
struct NoOp;

impl Future for NoOp {
    type Output = Result<(), Status>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(()))
    }
}

/// The default of every per-message hook.
fn no_op<'a>() -> HookFuture<'a> {
    Box::pin(NoOp)
}

/// How a pull this side sent ended (see [`PullEnd`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum PullOutcome<'a> {
    /// Its reply came: the status it carries once the reply read hooks ran
    /// (OK, the other side's error, or a read hook's error that replaced
    /// it).
    Replied(&'a Status),
    /// It ended without a reply: its deadline passed (408), the connection
    /// was lost or the session closed (102, also for a pull started on a
    /// closed session), the frame could not be sent or a `pre_write_pull`
    /// hook refused it (that status).
    Failed(&'a Status),
    /// The caller gave up before it ended: it dropped the pull's future or
    /// the [`PullHandle`](crate::PullHandle), or aborted it.
    Abandoned,
}

impl PullOutcome<'_> {
    /// The status code of the outcome (`0` for an OK reply); `None` when
    /// the pull was abandoned.
    pub fn code(&self) -> Option<i32> {
        match self {
            PullOutcome::Replied(status) | PullOutcome::Failed(status) => Some(status.code()),
            PullOutcome::Abandoned => None,
        }
    }
}

/// The end of a pull this side sent, as [`Plugin::post_pull_end`] sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullEnd<'a> {
    /// The pull's sequence number.
    pub seq: i32,
    /// Its uri path (without the query string).
    pub uri: &'a str,
    /// How it ended.
    pub outcome: PullOutcome<'a>,
    /// The time from the start of the pull (before its write hooks) to its
    /// end.
    pub cost: Duration,
    /// Whether its frame was queued for writing (so the other side may have
    /// seen it).
    pub written: bool,
    /// The length of its body as it was queued (after the write hooks; `0`
    /// if it was not written).
    pub request_body_len: usize,
    /// The length of the reply's body as the caller gets it (`0` without a
    /// reply).
    pub reply_body_len: usize,
}

/// The end of a message this side served, as [`RoutePlugin::post_serve_end`]
/// sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeEnd<'a> {
    /// A pull or a push.
    pub kind: RouteKind,
    /// Its uri path (without the query string).
    pub uri: &'a str,
    /// Its sequence number.
    pub seq: i32,
    /// A pull: the status code of the reply it was sent (after the
    /// `pre_write_reply` hooks; 500 if the reply could not be framed). A
    /// push: its handler's outcome, or the status of the hook that dropped
    /// it.
    pub code: i32,
    /// The time the peer spent on it, as its run log line reports it: from
    /// the moment the message was taken up (before its header hooks) to its
    /// reply being built (a push: its handler returning).
    pub cost: Duration,
    /// The length of its body as the handler saw it (after the body hooks
    /// and transfer filters, before decoding).
    pub request_body_len: usize,
    /// The length of the reply's body as it was queued (`0` for a push).
    pub reply_body_len: usize,
}

/// The hooks around the messages of a route. A group plugin implements only
/// this trait; a peer plugin implements it and [`Plugin`].
#[async_trait]
pub trait RoutePlugin: Send + Sync + 'static {
    /// The plugin's name, unique among the plugins a route sees.
    fn name(&self) -> &str;

    /// Once per route when the peer is built. An error fails the build.
    fn post_reg(&self, route: &RouteInfo, kind: RouteKind) -> Result<(), Status> {
        let _ = (route, kind);
        Ok(())
    }

    /// A pull's route is known; its body is not decoded yet and may be
    /// replaced (`packet.body`, `packet.body_codec`). An error is replied and
    /// the handler does not run.
    fn pre_read_pull_body<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        packet: &'life2 mut Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, packet);
        no_op()
    }

    /// A pull's argument was decoded; the handler runs next. An error is
    /// replied and the handler does not run.
    fn post_read_pull_body<'life0, 'life1, 'async_trait>(
        &'life0 self,
        ctx: &'life1 PullCtx,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let _ = ctx;
        no_op()
    }

    /// A reply is about to be written (it may be changed). An error replaces
    /// it with an error reply carrying that status.
    fn pre_write_reply<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        reply: &'life2 mut Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, reply);
        no_op()
    }

    /// A reply was queued for writing. An error is only logged.
    fn post_write_reply<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        reply: &'life2 Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, reply);
        no_op()
    }

    /// A push's route is known; its body may be replaced. An error drops the
    /// push (logged) and the handler does not run.
    fn pre_read_push_body<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        packet: &'life2 mut Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, packet);
        no_op()
    }

    /// A push's argument was decoded; the handler runs next. An error drops
    /// the push (logged).
    fn post_read_push_body<'life0, 'life1, 'async_trait>(
        &'life0 self,
        ctx: &'life1 PushCtx,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let _ = ctx;
        no_op()
    }

    /// A message this route's plugins saw is done: once for every served
    /// pull whose route was found (its own or the unknown-pull fallback),
    /// after its reply was queued, whatever the reply says (the handler's
    /// value or error, an undecodable body, a hook's refusal after routing,
    /// a panic); once for every routed push, after its handler returned or
    /// a hook dropped it. Not called for messages no route took (404, or
    /// refused by a `post_read_*_header` hook), nor for a pull whose caller
    /// cancelled it (or whose connection was lost) before its reply. (The
    /// caller may hold the reply a moment before this hook has run.)
    ///
    /// A plain function (not async): it must be cheap and must not block.
    fn post_serve_end(&self, session: &Session, end: &ServeEnd<'_>) {
        let _ = (session, end);
    }
}

/// The connection-level hooks of a peer-wide plugin.
#[async_trait]
pub trait Plugin: RoutePlugin {
    /// The peer listens on `addr`. An error stops that listener and is
    /// returned by `listen`.
    async fn post_listen(&self, addr: &Addr) -> Result<(), Status> {
        let _ = addr;
        Ok(())
    }

    /// A dial (or redial) to `addr` is about to start. An error fails the
    /// dial with status 105 carrying it as the cause.
    async fn pre_dial(&self, addr: &Addr, is_redial: bool) -> Result<(), Status> {
        let _ = (addr, is_redial);
        Ok(())
    }

    /// A dialed connection is up; no message has been read yet. The hook may
    /// talk on the session first ([`Session::handshake_recv`] reads a
    /// frame, [`Session::send_packet`] writes one). An error closes the
    /// session and the dial fails with status 105 carrying the error.
    async fn post_dial(&self, session: &Session, is_redial: bool) -> Result<(), Status> {
        let _ = (session, is_redial);
        Ok(())
    }

    /// An accepted connection is up; no message has been read yet (the hook
    /// may use [`Session::handshake_recv`]). An error closes the session.
    async fn post_accept(&self, session: &Session) -> Result<(), Status> {
        let _ = session;
        Ok(())
    }

    /// A pull is about to be written (it may be changed). An error fails the
    /// pull with that status; nothing is sent.
    fn pre_write_pull<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        pull: &'life2 mut Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, pull);
        no_op()
    }

    /// A pull was queued for writing. An error is only logged.
    fn post_write_pull<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        pull: &'life2 Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, pull);
        no_op()
    }

    /// A push is about to be written (it may be changed). An error fails the
    /// push with that status; nothing is sent.
    fn pre_write_push<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        push: &'life2 mut Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, push);
        no_op()
    }

    /// A push was queued for writing. An error is only logged.
    fn post_write_push<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        push: &'life2 Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, push);
        no_op()
    }

    /// The session is about to wait for its next frame. An error closes the
    /// session.
    fn pre_read_header<'life0, 'life1, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let _ = session;
        no_op()
    }

    /// A pull arrived; it is not routed yet, so the uri and meta may be
    /// rewritten. An error is replied and no handler runs.
    fn post_read_pull_header<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        pull: &'life2 mut Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, pull);
        no_op()
    }

    /// A push arrived; not routed yet. An error drops the push (logged).
    fn post_read_push_header<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        push: &'life2 mut Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, push);
        no_op()
    }

    /// A reply arrived, not yet handed to its pull. An error becomes the
    /// pull's outcome.
    fn post_read_reply_header<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        reply: &'life2 mut Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, reply);
        no_op()
    }

    /// A reply's body may be replaced before the puller decodes it. An error
    /// becomes the pull's outcome.
    fn pre_read_reply_body<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        reply: &'life2 mut Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, reply);
        no_op()
    }

    /// A reply is about to be handed to its pull. An error becomes the
    /// pull's outcome.
    fn post_read_reply_body<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        session: &'life1 Session,
        reply: &'life2 Packet,
    ) -> HookFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let _ = (session, reply);
        no_op()
    }

    /// The session closed (for any reason). Runs once per session.
    async fn post_disconnect(&self, session: &Session) {
        let _ = session;
    }

    /// A pull this side started on `session` ended: called exactly once for
    /// every pull that got a sequence number (`pull`, `pull_with`,
    /// `async_pull`, `async_pull_to`, `pull_raw` and the typed clients built
    /// on them), however it ended (see [`PullOutcome`]): after the reply
    /// read hooks when a reply came, before the caller gets the outcome; or
    /// when the caller drops the pull's future or handle, from that drop.
    /// A pull whose arguments could not be encoded never started and is not
    /// seen.
    ///
    /// A plain function (not async), since it also runs from `Drop`: it
    /// must be cheap and must not block.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// use jaunt_peer::{Peer, Plugin, PullCtx, PullEnd, PullOptions, PullOutcome, RoutePlugin, Router, Session};
    ///
    /// /// Counts the pulls that failed: an error reply, no reply in time (the
    /// /// caller's own 408 or the server's, whichever comes first), a lost
    /// /// connection, or a caller that gave up.
    /// #[derive(Default)]
    /// struct Unanswered(AtomicU64);
    ///
    /// impl RoutePlugin for Unanswered {
    ///     fn name(&self) -> &str {
    ///         "unanswered"
    ///     }
    /// }
    ///
    /// impl Plugin for Unanswered {
    ///     fn post_pull_end(&self, _: &Session, end: &PullEnd<'_>) {
    ///         if !matches!(end.outcome, PullOutcome::Replied(status) if status.is_ok()) {
    ///             self.0.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// let mut routes = Router::new();
    /// routes
    ///     .pull("/slow", |_: PullCtx, ms: u64| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         Ok::<_, jaunt_socket::Status>(ms)
    ///     })
    ///     .unwrap();
    /// let server = Peer::new(routes);
    /// let addr = server.listen("127.0.0.1:0").await.unwrap();
    ///
    /// let unanswered = Arc::new(Unanswered::default());
    /// let client = Peer::builder(Router::new()).plugin_arc(unanswered.clone()).build().unwrap();
    /// let session = client.dial(&addr).await.unwrap();
    /// session.pull("/slow", &1u64).await.unwrap();
    /// let late = PullOptions::new().timeout(Duration::from_millis(20));
    /// assert_eq!(session.pull_with("/slow", &500u64, late).await.unwrap_err().code(), 408);
    /// assert_eq!(unanswered.0.load(Ordering::Relaxed), 1);
    /// client.close().await;
    /// server.close().await;
    /// # });
    /// ```
    fn post_pull_end(&self, session: &Session, end: &PullEnd<'_>) {
        let _ = (session, end);
    }
}

/// A route's plugins: the peer's, then its groups', outer first.
pub(crate) type RouteChain = Arc<[Arc<dyn RoutePlugin>]>;

/// Attaching group plugins to routers and groups.
pub trait PluginGroups {
    /// A group under `prefix` whose routes also run `plugins` (route hooks
    /// only), after the peer's plugins and the enclosing groups'.
    fn plugin_group(&mut self, prefix: &str, plugins: Vec<Arc<dyn RoutePlugin>>) -> Group<'_>;
}

fn wrap(plugins: Vec<Arc<dyn RoutePlugin>>) -> Vec<GroupPlugin> {
    plugins
        .into_iter()
        .map(|p| Arc::new(p) as GroupPlugin)
        .collect()
}

impl PluginGroups for Router {
    fn plugin_group(&mut self, prefix: &str, plugins: Vec<Arc<dyn RoutePlugin>>) -> Group<'_> {
        self.group_with(prefix, wrap(plugins))
    }
}

impl PluginGroups for Group<'_> {
    fn plugin_group(&mut self, prefix: &str, plugins: Vec<Arc<dyn RoutePlugin>>) -> Group<'_> {
        self.group_with(prefix, wrap(plugins))
    }
}

/// The route plugins of a route: `peer` then its groups' plugins.
pub(crate) fn route_chain(
    peer: &[Arc<dyn Plugin>],
    route: &RouteInfo,
) -> Vec<Arc<dyn RoutePlugin>> {
    let mut chain: Vec<Arc<dyn RoutePlugin>> = peer.iter().map(|p| upcast(p.clone())).collect();
    if let Some(group) = route.group() {
        chain.extend(
            group
                .plugin_chain()
                .iter()
                .filter_map(|p| p.downcast_ref::<Arc<dyn RoutePlugin>>().cloned()),
        );
    }
    chain
}

/// `Arc<dyn Plugin>` as `Arc<dyn RoutePlugin>`.
pub(crate) fn upcast(plugin: Arc<dyn Plugin>) -> Arc<dyn RoutePlugin> {
    plugin
}
