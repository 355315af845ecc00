//! The plugin container through real sessions on loopback:
//!
//! 1. hook order within one connection, pull, reply and push, on both sides;
//! 2. order between plugins: peer plugins in registration order, then group
//!    plugins (outer groups first), group plugins only for their routes;
//! 3. what each hook's error or change does.
//!
//! Most tests use [`Recorder`], a plugin that writes every hook it sees into
//! a shared log and can be told to fail at, or change the packet of, a hook.
//! `pre_read_header` runs in the read loop, concurrently with the tasks that
//! serve pulls and pushes, so where that would make the order racy it is
//! counted rather than placed.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{eventually, wait_sessions, within};
use jaunt_peer::{
    Addr, Peer, PeerError, Plugin, PluginGroups, PullCtx, PushCtx, RouteKind, RoutePlugin, Router,
    Session,
};
use jaunt_router::RouteInfo;
use jaunt_socket::{code, Packet, PacketType, Status};

// ---------------------------------------------------------------------------
// The recording plugin
// ---------------------------------------------------------------------------

/// A log shared by plugins and handlers.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The entries without `pre_read_header` (whose place is racy).
    fn ordered(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|e| !e.ends_with("pre_read_header"))
            .collect()
    }

    fn count(&self, entry: &str) -> usize {
        self.all().iter().filter(|e| *e == entry).count()
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    /// Waits (up to 5 s) until `entry` was logged `n` times.
    async fn wait_for(&self, entry: &str, n: usize) {
        let ok = eventually(Duration::from_secs(5), || self.count(entry) >= n).await;
        assert!(ok, "{entry:?} never logged {n} times: {:?}", self.all());
    }

    /// Waits (up to 5 s) until `view` of the log equals `expected`.
    async fn wait_eq(&self, view: fn(&Log) -> Vec<String>, expected: &[&str]) {
        let ok = eventually(Duration::from_secs(5), || view(self) == expected).await;
        assert!(ok, "expected {expected:#?}\ngot {:#?}", view(self));
    }
}

/// Changes a packet in a hook; an error is the hook's error.
type Edit = Box<dyn Fn(&mut Packet) -> Result<(), Status> + Send + Sync>;

/// Logs every hook as `hook` (or `tag:hook`), and optionally fails at a
/// hook or edits its packet.
struct Recorder {
    name: &'static str,
    tag: &'static str,
    log: Log,
    fail: HashMap<&'static str, Status>,
    edits: HashMap<&'static str, Edit>,
    refuse_route: Option<&'static str>,
}

impl Recorder {
    /// Named `recorder`, logging bare hook names.
    fn new(log: &Log) -> Self {
        Self::tagged("recorder", log).untagged()
    }

    /// Named and tagged `tag`: logs `tag:hook`.
    fn tagged(tag: &'static str, log: &Log) -> Self {
        Self {
            name: tag,
            tag,
            log: log.clone(),
            fail: HashMap::new(),
            edits: HashMap::new(),
            refuse_route: None,
        }
    }

    fn untagged(mut self) -> Self {
        self.tag = "";
        self
    }

    /// Fails `hook` (after logging it) with `status`.
    fn fail_at(mut self, hook: &'static str, status: Status) -> Self {
        self.fail.insert(hook, status);
        self
    }

    /// Runs `edit` on the packet of `hook`.
    fn edit(
        mut self,
        hook: &'static str,
        edit: impl Fn(&mut Packet) -> Result<(), Status> + Send + Sync + 'static,
    ) -> Self {
        self.edits.insert(hook, Box::new(edit));
        self
    }

    /// Refuses the route `uri` in `post_reg`.
    fn refuse_route(mut self, uri: &'static str) -> Self {
        self.refuse_route = Some(uri);
        self
    }

    fn hit(&self, hook: &'static str) -> Result<(), Status> {
        self.hit_as(hook, hook)
    }

    /// Logs `entry` for `hook`, then fails if told to.
    fn hit_as(&self, hook: &'static str, entry: &str) -> Result<(), Status> {
        if self.tag.is_empty() {
            self.log.push(entry);
        } else {
            self.log.push(format!("{}:{entry}", self.tag));
        }
        match self.fail.get(hook) {
            Some(status) => Err(status.clone()),
            None => Ok(()),
        }
    }

    fn hit_packet(&self, hook: &'static str, packet: &mut Packet) -> Result<(), Status> {
        self.hit(hook)?;
        match self.edits.get(hook) {
            Some(edit) => edit(packet),
            None => Ok(()),
        }
    }

    fn arc(self) -> Arc<Self> {
        Arc::new(self)
    }
}

#[async_trait]
impl RoutePlugin for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn post_reg(&self, route: &RouteInfo, kind: RouteKind) -> Result<(), Status> {
        self.hit_as("post_reg", &format!("post_reg({},{kind:?})", route.uri()))?;
        if self.refuse_route == Some(route.uri()) {
            return Err(Status::new(1900, "route refused"));
        }
        Ok(())
    }

    async fn pre_read_pull_body(&self, _: &Session, packet: &mut Packet) -> Result<(), Status> {
        self.hit_packet("pre_read_pull_body", packet)
    }

    async fn post_read_pull_body(&self, _: &PullCtx) -> Result<(), Status> {
        self.hit("post_read_pull_body")
    }

    async fn pre_write_reply(&self, _: &Session, reply: &mut Packet) -> Result<(), Status> {
        self.hit_packet("pre_write_reply", reply)
    }

    async fn post_write_reply(&self, _: &Session, _: &Packet) -> Result<(), Status> {
        self.hit("post_write_reply")
    }

    async fn pre_read_push_body(&self, _: &Session, packet: &mut Packet) -> Result<(), Status> {
        self.hit_packet("pre_read_push_body", packet)
    }

    async fn post_read_push_body(&self, _: &PushCtx) -> Result<(), Status> {
        self.hit("post_read_push_body")
    }
}

#[async_trait]
impl Plugin for Recorder {
    async fn post_listen(&self, _: &Addr) -> Result<(), Status> {
        self.hit("post_listen")
    }

    async fn pre_dial(&self, _: &Addr, is_redial: bool) -> Result<(), Status> {
        self.hit_as("pre_dial", &format!("pre_dial(is_redial={is_redial})"))
    }

    async fn post_dial(&self, _: &Session, is_redial: bool) -> Result<(), Status> {
        self.hit_as("post_dial", &format!("post_dial(is_redial={is_redial})"))
    }

    async fn post_accept(&self, _: &Session) -> Result<(), Status> {
        self.hit("post_accept")
    }

    async fn pre_write_pull(&self, _: &Session, pull: &mut Packet) -> Result<(), Status> {
        self.hit_packet("pre_write_pull", pull)
    }

    async fn post_write_pull(&self, _: &Session, _: &Packet) -> Result<(), Status> {
        self.hit("post_write_pull")
    }

    async fn pre_write_push(&self, _: &Session, push: &mut Packet) -> Result<(), Status> {
        self.hit_packet("pre_write_push", push)
    }

    async fn post_write_push(&self, _: &Session, _: &Packet) -> Result<(), Status> {
        self.hit("post_write_push")
    }

    async fn pre_read_header(&self, _: &Session) -> Result<(), Status> {
        self.hit("pre_read_header")
    }

    async fn post_read_pull_header(&self, _: &Session, pull: &mut Packet) -> Result<(), Status> {
        self.hit_packet("post_read_pull_header", pull)
    }

    async fn post_read_push_header(&self, _: &Session, push: &mut Packet) -> Result<(), Status> {
        self.hit_packet("post_read_push_header", push)
    }

    async fn post_read_reply_header(&self, _: &Session, reply: &mut Packet) -> Result<(), Status> {
        self.hit_packet("post_read_reply_header", reply)
    }

    async fn pre_read_reply_body(&self, _: &Session, reply: &mut Packet) -> Result<(), Status> {
        self.hit_packet("pre_read_reply_body", reply)
    }

    async fn post_read_reply_body(&self, _: &Session, _: &Packet) -> Result<(), Status> {
        self.hit("post_read_reply_body")
    }

    async fn post_disconnect(&self, _: &Session) {
        let _ = self.hit("post_disconnect");
    }
}

// ---------------------------------------------------------------------------
// Peers and routes
// ---------------------------------------------------------------------------

/// A peer with `router` and `plugins` (in order).
fn peer_with(router: Router, plugins: Vec<Arc<dyn Plugin>>) -> Peer {
    plugins
        .into_iter()
        .fold(Peer::builder(router), |b, p| b.plugin_arc(p))
        .build()
        .expect("the peer builds")
}

/// Like [`peer_with`], listening on a free loopback port.
async fn server_with(router: Router, plugins: Vec<Arc<dyn Plugin>>) -> (Peer, Addr) {
    let peer = peer_with(router, plugins);
    let addr = peer.listen("127.0.0.1:0").await.expect("listen");
    (peer, addr)
}

/// Counts handler runs and logs `handler` into a log.
#[derive(Clone, Default)]
struct Handled {
    count: Arc<AtomicUsize>,
    log: Option<Log>,
}

impl Handled {
    fn logging(log: &Log) -> Self {
        Self {
            count: Arc::default(),
            log: Some(log.clone()),
        }
    }

    fn hit(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        if let Some(log) = &self.log {
            log.push("handler");
        }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// A pull route at `uri` that echoes its string argument.
fn echo(router: &mut Router, uri: &str, handled: &Handled) {
    let handled = handled.clone();
    router
        .pull(uri, move |_: PullCtx, text: String| {
            handled.hit();
            async move { Ok::<_, Status>(text) }
        })
        .unwrap();
}

/// A push route at `uri` that counts.
fn sink(router: &mut Router, uri: &str, handled: &Handled) {
    let handled = handled.clone();
    router
        .push(uri, move |_: PushCtx, _: String| {
            handled.hit();
            async {}
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// 1. Hook order
// ---------------------------------------------------------------------------

/// Dial and accept: the listener's hook, the dial hooks on the client, the
/// accept hook on the server, then each read loop asks before reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_hooks_run_in_order() {
    within(async {
        let (slog, clog) = (Log::default(), Log::default());
        let mut router = Router::new();
        echo(&mut router, "/echo", &Handled::default());
        let (server, addr) = server_with(router, vec![Recorder::new(&slog).arc()]).await;
        let client = peer_with(Router::new(), vec![Recorder::new(&clog).arc()]);
        let _session = client.dial(&addr).await.unwrap();

        clog.wait_eq(
            Log::all,
            &[
                "pre_dial(is_redial=false)",
                "post_dial(is_redial=false)",
                "pre_read_header",
            ],
        )
        .await;
        slog.wait_eq(
            Log::all,
            &[
                "post_reg(/echo,Pull)",
                "post_listen",
                "post_accept",
                "pre_read_header",
            ],
        )
        .await;

        client.close().await;
        server.close().await;
    })
    .await;
}

/// One pull and its reply, on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_and_reply_hooks_run_in_order() {
    within(async {
        let (slog, clog) = (Log::default(), Log::default());
        let handled = Handled::logging(&slog);
        let mut router = Router::new();
        let h = handled.clone();
        router
            .pull("/slow-echo", move |_: PullCtx, text: String| {
                h.hit();
                async move {
                    // Lets the caller's post_write_pull come before the reply.
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Ok::<_, Status>(text)
                }
            })
            .unwrap();
        let (server, addr) = server_with(router, vec![Recorder::new(&slog).arc()]).await;
        let client = peer_with(Router::new(), vec![Recorder::new(&clog).arc()]);
        let session = client.dial(&addr).await.unwrap();
        clog.wait_for("pre_read_header", 1).await;
        slog.wait_for("pre_read_header", 1).await;
        clog.clear();
        slog.clear();

        let reply = session.pull("/slow-echo", &"hi").await.unwrap();
        assert_eq!(reply.decode::<String>().unwrap(), "hi");

        clog.wait_eq(
            Log::all,
            &[
                "pre_write_pull",
                "post_write_pull",
                "post_read_reply_header",
                "pre_read_reply_body",
                "post_read_reply_body",
                "pre_read_header",
            ],
        )
        .await;
        slog.wait_eq(
            Log::ordered,
            &[
                "post_read_pull_header",
                "pre_read_pull_body",
                "post_read_pull_body",
                "handler",
                "pre_write_reply",
                "post_write_reply",
            ],
        )
        .await;
        // The server's read loop asked once more, after reading the pull.
        assert_eq!(slog.count("pre_read_header"), 1);
        assert_eq!(handled.count(), 1);

        client.close().await;
        server.close().await;
    })
    .await;
}

/// One push, on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_hooks_run_in_order() {
    within(async {
        let (slog, clog) = (Log::default(), Log::default());
        let handled = Handled::logging(&slog);
        let mut router = Router::new();
        sink(&mut router, "/note", &handled);
        let (server, addr) = server_with(router, vec![Recorder::new(&slog).arc()]).await;
        let client = peer_with(Router::new(), vec![Recorder::new(&clog).arc()]);
        let session = client.dial(&addr).await.unwrap();
        clog.wait_for("pre_read_header", 1).await;
        slog.wait_for("pre_read_header", 1).await;
        clog.clear();
        slog.clear();

        session.push("/note", &"hi").await.unwrap();

        clog.wait_eq(Log::all, &["pre_write_push", "post_write_push"])
            .await;
        slog.wait_eq(
            Log::ordered,
            &[
                "post_read_push_header",
                "pre_read_push_body",
                "post_read_push_body",
                "handler",
            ],
        )
        .await;
        assert_eq!(slog.count("pre_read_header"), 1);

        client.close().await;
        server.close().await;
    })
    .await;
}

/// `post_disconnect` runs once per session on each side, however many
/// times it is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_disconnect_runs_once_per_session() {
    within(async {
        let (slog, clog) = (Log::default(), Log::default());
        let (server, addr) = server_with(Router::new(), vec![Recorder::new(&slog).arc()]).await;
        let client = peer_with(Router::new(), vec![Recorder::new(&clog).arc()]);
        let first = client.dial(&addr).await.unwrap();
        let second = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 2).await;

        first.close();
        first.close();
        first.closed().await;
        clog.wait_for("post_disconnect", 1).await;
        slog.wait_for("post_disconnect", 1).await;
        assert!(!second.is_closed());

        client.close().await;
        server.close().await;
        clog.wait_for("post_disconnect", 2).await;
        slog.wait_for("post_disconnect", 2).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(clog.count("post_disconnect"), 2);
        assert_eq!(slog.count("post_disconnect"), 2);
        // Nothing runs on a session after its post_disconnect.
        assert_eq!(
            clog.all().last().map(String::as_str),
            Some("post_disconnect")
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// 2. Order between plugins
// ---------------------------------------------------------------------------

/// Peer plugins run in registration order; a group plugin runs after them,
/// and only for its group's routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_plugins_in_order_then_group_plugins() {
    within(async {
        let log = Log::default();
        let handled = Handled::logging(&log);
        let mut router = Router::new();
        echo(&mut router, "/plain", &handled);
        let group_plugin: Arc<dyn RoutePlugin> = Recorder::tagged("g", &log).arc();
        {
            let mut grp = router.plugin_group("/grp", vec![group_plugin]);
            let h = handled.clone();
            grp.pull("/x", move |_: PullCtx, text: String| {
                h.hit();
                async move { Ok::<_, Status>(text) }
            })
            .unwrap();
        }
        let plugins: Vec<Arc<dyn Plugin>> = vec![
            Recorder::tagged("a", &log).arc(),
            Recorder::tagged("b", &log).arc(),
        ];
        let (server, addr) = server_with(router, plugins).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        log.wait_for("b:pre_read_header", 1).await;

        // post_reg: each route's chain, peer plugins first.
        let regs: Vec<String> = log
            .all()
            .into_iter()
            .filter(|e| e.contains("post_reg"))
            .collect();
        assert_eq!(
            regs,
            [
                "a:post_reg(/grp/x,Pull)",
                "b:post_reg(/grp/x,Pull)",
                "g:post_reg(/grp/x,Pull)",
                "a:post_reg(/plain,Pull)",
                "b:post_reg(/plain,Pull)",
            ]
        );

        log.clear();
        session.pull("/grp/x", &"1").await.unwrap();
        log.wait_eq(
            Log::ordered,
            &[
                "a:post_read_pull_header",
                "b:post_read_pull_header",
                "a:pre_read_pull_body",
                "b:pre_read_pull_body",
                "g:pre_read_pull_body",
                "a:post_read_pull_body",
                "b:post_read_pull_body",
                "g:post_read_pull_body",
                "handler",
                "a:pre_write_reply",
                "b:pre_write_reply",
                "g:pre_write_reply",
                "a:post_write_reply",
                "b:post_write_reply",
                "g:post_write_reply",
            ],
        )
        .await;

        log.clear();
        session.pull("/plain", &"2").await.unwrap();
        log.wait_eq(
            Log::ordered,
            &[
                "a:post_read_pull_header",
                "b:post_read_pull_header",
                "a:pre_read_pull_body",
                "b:pre_read_pull_body",
                "a:post_read_pull_body",
                "b:post_read_pull_body",
                "handler",
                "a:pre_write_reply",
                "b:pre_write_reply",
                "a:post_write_reply",
                "b:post_write_reply",
            ],
        )
        .await;
        assert_eq!(handled.count(), 2);

        client.close().await;
        server.close().await;
    })
    .await;
}

/// Nested plugin groups: the outer group's plugins before the inner's; a
/// route of the outer group only sees the outer plugins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_group_plugins_run_outer_first() {
    within(async {
        let log = Log::default();
        let handled = Handled::logging(&log);
        let mut router = Router::new();
        {
            let outer_plugin: Arc<dyn RoutePlugin> = Recorder::tagged("outer", &log).arc();
            let inner_plugin: Arc<dyn RoutePlugin> = Recorder::tagged("inner", &log).arc();
            let mut outer = router.plugin_group("/o", vec![outer_plugin]);
            let h = handled.clone();
            outer
                .pull("/y", move |_: PullCtx| {
                    h.hit();
                    async { Ok::<_, Status>(()) }
                })
                .unwrap();
            let mut inner = outer.plugin_group("/i", vec![inner_plugin]);
            let h = handled.clone();
            inner
                .pull("/x", move |_: PullCtx| {
                    h.hit();
                    async { Ok::<_, Status>(()) }
                })
                .unwrap();
            let h = handled.clone();
            inner
                .push("/p", move |_: PushCtx| {
                    h.hit();
                    async {}
                })
                .unwrap();
        }
        let (server, addr) = server_with(router, vec![]).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        log.clear();

        session.pull("/o/i/x", &()).await.unwrap();
        log.wait_eq(
            Log::all,
            &[
                "outer:pre_read_pull_body",
                "inner:pre_read_pull_body",
                "outer:post_read_pull_body",
                "inner:post_read_pull_body",
                "handler",
                "outer:pre_write_reply",
                "inner:pre_write_reply",
                "outer:post_write_reply",
                "inner:post_write_reply",
            ],
        )
        .await;

        log.clear();
        session.push("/o/i/p", &()).await.unwrap();
        log.wait_eq(
            Log::all,
            &[
                "outer:pre_read_push_body",
                "inner:pre_read_push_body",
                "outer:post_read_push_body",
                "inner:post_read_push_body",
                "handler",
            ],
        )
        .await;

        log.clear();
        session.pull("/o/y", &()).await.unwrap();
        log.wait_eq(
            Log::all,
            &[
                "outer:pre_read_pull_body",
                "outer:post_read_pull_body",
                "handler",
                "outer:pre_write_reply",
                "outer:post_write_reply",
            ],
        )
        .await;

        client.close().await;
        server.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// 3. Effects of hook errors and changes: serving a pull
// ---------------------------------------------------------------------------

/// A server with `/echo` (and `/old`, `/new`) and one recorder built by
/// `plugin`; a connected client. Returns the handler counter too.
async fn echo_setup(plugin: Recorder) -> (Peer, Peer, Session, Handled) {
    let handled = Handled::default();
    let mut router = Router::new();
    echo(&mut router, "/echo", &handled);
    router
        .pull("/old", |_: PullCtx| async { Ok::<_, Status>("old") })
        .unwrap()
        .pull("/new", |_: PullCtx| async { Ok::<_, Status>("new") })
        .unwrap();
    let (server, addr) = server_with(router, vec![plugin.arc()]).await;
    let client = Peer::new(Router::new());
    let session = client.dial(&addr).await.unwrap();
    (server, client, session, handled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_read_pull_header_error_is_replied_and_no_handler_runs() {
    within(async {
        let log = Log::default();
        let refused = Status::new(1234, "refused").with_cause("by the header hook");
        let plugin = Recorder::new(&log).fail_at("post_read_pull_header", refused.clone());
        let (server, client, session, handled) = echo_setup(plugin).await;

        let err = session.pull("/echo", &"x").await.unwrap_err();
        assert_eq!(err, refused);
        assert_eq!(handled.count(), 0);
        // The error reply still went through the reply hooks; no body hook ran.
        log.wait_for("post_write_reply", 1).await;
        assert_eq!(
            log.ordered(),
            [
                "post_reg(/echo,Pull)",
                "post_reg(/new,Pull)",
                "post_reg(/old,Pull)",
                "post_listen",
                "post_accept",
                "post_read_pull_header",
                "pre_write_reply",
                "post_write_reply"
            ]
        );

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_read_pull_header_can_rewrite_the_uri() {
    within(async {
        let log = Log::default();
        let plugin = Recorder::new(&log).edit("post_read_pull_header", |pull| {
            if pull.path() == "/old" {
                pull.uri = pull.uri.replacen("/old", "/new", 1);
            }
            Ok(())
        });
        let (server, client, session, _) = echo_setup(plugin).await;

        let got: String = session.pull("/old", &()).await.unwrap().decode().unwrap();
        assert_eq!(got, "new");
        let got: String = session
            .pull("/old?q=1", &())
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(got, "new");

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_read_pull_body_can_replace_the_body() {
    within(async {
        let log = Log::default();
        let plugin = Recorder::new(&log).edit("pre_read_pull_body", |pull| {
            pull.body = Bytes::from_static(b"replaced");
            pull.body_codec = b's';
            Ok(())
        });
        let (server, client, session, handled) = echo_setup(plugin).await;

        let reply = session.pull("/echo", &"original").await.unwrap();
        // The handler decoded the new body; the reply keeps the pull's new codec.
        assert_eq!(reply.codec(), b's');
        assert_eq!(reply.decode::<String>().unwrap(), "replaced");
        assert_eq!(handled.count(), 1);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_read_pull_body_error_is_replied_and_no_handler_runs() {
    within(async {
        let log = Log::default();
        let refused = Status::new(1235, "body refused");
        let plugin = Recorder::new(&log).fail_at("pre_read_pull_body", refused.clone());
        let (server, client, session, handled) = echo_setup(plugin).await;

        assert_eq!(session.pull("/echo", &"x").await.unwrap_err(), refused);
        assert_eq!(handled.count(), 0);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_read_pull_body_error_is_replied_and_no_handler_runs() {
    within(async {
        let log = Log::default();
        let refused = Status::new(1236, "argument refused");
        let plugin = Recorder::new(&log).fail_at("post_read_pull_body", refused.clone());
        let (server, client, session, handled) = echo_setup(plugin).await;

        assert_eq!(session.pull("/echo", &"x").await.unwrap_err(), refused);
        assert_eq!(handled.count(), 0);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_write_reply_can_change_the_reply() {
    within(async {
        let log = Log::default();
        let plugin = Recorder::new(&log).edit("pre_write_reply", |reply| {
            reply.meta.add("x-served-by", "plugin");
            Ok(())
        });
        let (server, client, session, _) = echo_setup(plugin).await;

        let reply = session.pull("/echo", &"x").await.unwrap();
        assert_eq!(reply.meta().get_str("x-served-by"), Some("plugin"));
        assert_eq!(reply.decode::<String>().unwrap(), "x");

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_write_reply_error_replaces_the_reply() {
    within(async {
        let log = Log::default();
        let replaced = Status::new(1237, "reply replaced");
        let plugin = Recorder::new(&log).fail_at("pre_write_reply", replaced.clone());
        let (server, client, session, handled) = echo_setup(plugin).await;

        assert_eq!(session.pull("/echo", &"x").await.unwrap_err(), replaced);
        assert_eq!(
            handled.count(),
            1,
            "the handler ran; its reply was replaced"
        );

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_header_and_body_errors_drop_the_push() {
    within(async {
        let log = Log::default();
        let handled = Handled::default();
        let mut router = Router::new();
        sink(&mut router, "/keep", &handled);
        sink(&mut router, "/drop-header", &handled);
        sink(&mut router, "/drop-body", &handled);
        let plugin = Recorder::new(&log)
            .edit("post_read_push_header", |push| match push.path() {
                "/drop-header" => Err(Status::new(1240, "no")),
                _ => Ok(()),
            })
            .edit("pre_read_push_body", |push| match push.path() {
                "/drop-body" => Err(Status::new(1241, "no")),
                _ => Ok(()),
            });
        let (server, addr) = server_with(router, vec![plugin.arc()]).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        session.push("/drop-header", &"1").await.unwrap();
        session.push("/drop-body", &"2").await.unwrap();
        session.push("/keep", &"3").await.unwrap();
        log.wait_for("post_read_push_body", 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(handled.count(), 1, "only /keep was handled");
        assert_eq!(log.count("post_read_push_header"), 3);
        assert_eq!(log.count("pre_read_push_body"), 2);
        assert_eq!(log.count("post_read_push_body"), 1);

        client.close().await;
        server.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// 3. Effects: the calling side
// ---------------------------------------------------------------------------

/// A server with `/echo`, and a client with `plugin`, connected.
async fn client_setup(plugin: Recorder) -> (Peer, Peer, Session, Handled) {
    let handled = Handled::default();
    let mut router = Router::new();
    echo(&mut router, "/echo", &handled);
    sink(&mut router, "/note", &handled);
    let (server, addr) = server_with(router, vec![]).await;
    let client = peer_with(Router::new(), vec![plugin.arc()]);
    let session = client.dial(&addr).await.unwrap();
    (server, client, session, handled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_write_pull_error_fails_the_pull_and_sends_nothing() {
    within(async {
        let log = Log::default();
        let refused = Status::new(1250, "not sent");
        let plugin = Recorder::new(&log).fail_at("pre_write_pull", refused.clone());
        let (server, client, session, handled) = client_setup(plugin).await;

        assert_eq!(session.pull("/echo", &"x").await.unwrap_err(), refused);
        // A push written after it is handled; the pull, had it been sent
        // first on the same connection, would have been served first.
        session.push("/note", &"after").await.unwrap();
        assert!(eventually(Duration::from_secs(5), || handled.count() == 1).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(handled.count(), 1, "only the push arrived");
        assert_eq!(log.count("post_write_pull"), 0);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_write_push_error_fails_the_push() {
    within(async {
        let log = Log::default();
        let refused = Status::new(1251, "not pushed");
        let plugin = Recorder::new(&log).fail_at("pre_write_push", refused.clone());
        let (server, client, session, handled) = client_setup(plugin).await;

        assert_eq!(session.push("/note", &"x").await.unwrap_err(), refused);
        session.pull("/echo", &"after").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(handled.count(), 1, "only the pull arrived");
        assert_eq!(log.count("post_write_push"), 0);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_hooks_can_fail_or_change_the_pulls_outcome() {
    within(async {
        // An error in a reply hook is the pull's outcome.
        let log = Log::default();
        let refused = Status::new(1252, "reply refused");
        let plugin = Recorder::new(&log).fail_at("post_read_reply_header", refused.clone());
        let (server, client, session, handled) = client_setup(plugin).await;
        assert_eq!(session.pull("/echo", &"x").await.unwrap_err(), refused);
        assert_eq!(handled.count(), 1);
        assert_eq!(log.count("pre_read_reply_body"), 0, "the chain stopped");
        client.close().await;
        server.close().await;

        // pre_read_reply_body may replace the body the caller decodes.
        let plugin = Recorder::new(&log).edit("pre_read_reply_body", |reply| {
            reply.body = Bytes::from_static(br#""swapped""#);
            Ok(())
        });
        let (server, client, session, _) = client_setup(plugin).await;
        let got: String = session.pull("/echo", &"x").await.unwrap().decode().unwrap();
        assert_eq!(got, "swapped");
        client.close().await;
        server.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// 3. Effects: connections
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_accept_error_closes_the_session() {
    within(async {
        let log = Log::default();
        let plugin = Recorder::new(&log).fail_at("post_accept", Status::new(1260, "go away"));
        let (server, addr) = server_with(Router::new(), vec![plugin.arc()]).await;
        let client = Peer::new(Router::new());
        // Without a handshake the dial itself succeeds...
        let session = client.dial(&addr).await.unwrap();
        // ...but the server drops the connection at once.
        log.wait_for("post_disconnect", 1).await;
        wait_sessions(&server, 0).await;
        let err = session.pull("/echo", &"x").await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        wait_sessions(&client, 0).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            log.all(),
            ["post_listen", "post_accept", "post_disconnect"],
            "no read loop ran; post_disconnect once"
        );

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_dial_error_fails_the_dial_with_105() {
    within(async {
        let (server, addr) = server_with(Router::new(), vec![]).await;
        let log = Log::default();
        let plugin = Recorder::new(&log).fail_at("post_dial", Status::new(1261, "not this one"));
        let client = peer_with(Router::new(), vec![plugin.arc()]);

        let err = client.dial(&addr).await.unwrap_err();
        assert_eq!(err.code(), code::DIAL_FAILED);
        let cause = err.cause().unwrap_or_default();
        assert!(
            cause.contains("1261") && cause.contains("not this one"),
            "{cause}"
        );
        assert_eq!(client.session_count(), 0);
        wait_sessions(&server, 0).await;
        assert_eq!(
            log.all(),
            [
                "pre_dial(is_redial=false)",
                "post_dial(is_redial=false)",
                "post_disconnect"
            ]
        );

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_dial_error_fails_the_dial_before_connecting() {
    within(async {
        let slog = Log::default();
        let (server, addr) = server_with(Router::new(), vec![Recorder::new(&slog).arc()]).await;
        let log = Log::default();
        let plugin = Recorder::new(&log).fail_at("pre_dial", Status::new(1262, "no dialing"));
        let client = peer_with(Router::new(), vec![plugin.arc()]);

        let err = client.dial(&addr).await.unwrap_err();
        assert_eq!(err.code(), code::DIAL_FAILED);
        assert!(
            err.cause().unwrap_or_default().contains("no dialing"),
            "{err}"
        );
        assert_eq!(log.all(), ["pre_dial(is_redial=false)"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(slog.all(), ["post_listen"], "no connection was made");

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_read_header_error_closes_the_session() {
    within(async {
        let log = Log::default();
        let plugin = Recorder::new(&log).fail_at("pre_read_header", Status::new(1263, "stop"));
        let (server, addr) = server_with(Router::new(), vec![plugin.arc()]).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        log.wait_for("post_disconnect", 1).await;
        wait_sessions(&server, 0).await;
        let err = session.pull("/echo", &"x").await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        assert_eq!(
            log.all(),
            [
                "post_listen",
                "post_accept",
                "pre_read_header",
                "post_disconnect"
            ]
        );

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_listen_error_fails_listen() {
    within(async {
        let log = Log::default();
        let plugin = Recorder::new(&log).fail_at("post_listen", Status::new(1264, "not here"));
        let peer = peer_with(Router::new(), vec![plugin.arc()]);

        match peer.listen("127.0.0.1:0").await {
            Err(PeerError::Plugin {
                plugin,
                what,
                status,
            }) => {
                assert_eq!(plugin, "recorder");
                assert!(what.contains("127.0.0.1"), "{what}");
                assert_eq!(status, Status::new(1264, "not here"));
            }
            other => panic!("expected a plugin error, got {other:?}"),
        }
        peer.close().await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// 3. Effects: building the peer
// ---------------------------------------------------------------------------

#[test]
fn post_reg_refusing_a_route_fails_the_build() {
    let routes = || {
        let mut router = Router::new();
        let handled = Handled::default();
        echo(&mut router, "/a", &handled);
        echo(&mut router, "/bad", &handled);
        sink(&mut router, "/p", &handled);
        router
    };

    let log = Log::default();
    let refusing = Recorder::new(&log).refuse_route("/bad");
    match Peer::builder(routes()).plugin(refusing).build() {
        Err(PeerError::Plugin {
            plugin,
            what,
            status,
        }) => {
            assert_eq!(plugin, "recorder");
            assert!(what.contains("/bad"), "{what}");
            assert_eq!(status.code(), 1900);
        }
        other => panic!("expected a plugin error, got {:?}", other.map(|_| ())),
    }
    assert_eq!(log.all(), ["post_reg(/a,Pull)", "post_reg(/bad,Pull)"]);

    // Every route is offered once, with its kind.
    let log = Log::default();
    Peer::builder(routes())
        .plugin(Recorder::new(&log))
        .build()
        .unwrap();
    assert_eq!(
        log.all(),
        [
            "post_reg(/a,Pull)",
            "post_reg(/bad,Pull)",
            "post_reg(/p,Push)"
        ]
    );
}

#[test]
fn duplicate_plugin_names_fail_the_build() {
    let log = Log::default();

    // Two peer plugins.
    let built = Peer::builder(Router::new())
        .plugin(Recorder::tagged("same", &log))
        .plugin(Recorder::tagged("same", &log))
        .build();
    assert!(
        matches!(&built, Err(PeerError::DuplicatePlugin(name)) if name == "same"),
        "{:?}",
        built.map(|_| ())
    );

    // A group plugin named like a peer plugin.
    let mut router = Router::new();
    let dup: Arc<dyn RoutePlugin> = Recorder::tagged("same", &log).arc();
    router
        .plugin_group("/g", vec![dup])
        .pull("/x", |_: PullCtx| async { Ok::<_, Status>(()) })
        .unwrap();
    let built = Peer::builder(router)
        .plugin(Recorder::tagged("same", &log))
        .build();
    assert!(matches!(built, Err(PeerError::DuplicatePlugin(_))));

    // Sibling groups may reuse a name: no route sees both.
    let mut router = Router::new();
    for prefix in ["/g1", "/g2"] {
        let plugin: Arc<dyn RoutePlugin> = Recorder::tagged("same", &log).arc();
        router
            .plugin_group(prefix, vec![plugin])
            .pull("/x", |_: PullCtx| async { Ok::<_, Status>(()) })
            .unwrap();
    }
    assert!(Peer::builder(router).build().is_ok());
}

// ---------------------------------------------------------------------------
// 3. Effects: handshakes in connect hooks
// ---------------------------------------------------------------------------

/// What the greeting frame carried, stored in the session's data.
#[derive(Clone, Debug, PartialEq)]
struct Greeting(String);

/// The dialing side greets first: in `post_dial` it sends a push frame by
/// hand before the session starts.
struct Greeter;

#[async_trait]
impl RoutePlugin for Greeter {
    fn name(&self) -> &str {
        "greeter"
    }
}

#[async_trait]
impl Plugin for Greeter {
    async fn post_dial(&self, session: &Session, _: bool) -> Result<(), Status> {
        let mut hello = Packet::new(PacketType::Push, session.next_seq(), "/hello");
        hello.body_codec = b's';
        hello.body = Bytes::from_static(b"ann");
        session.send_packet(&mut hello).await
    }
}

/// The accepting side reads the greeting in `post_accept` with
/// `handshake_recv`, before its read loop starts.
struct Doorman;

#[async_trait]
impl RoutePlugin for Doorman {
    fn name(&self) -> &str {
        "doorman"
    }
}

#[async_trait]
impl Plugin for Doorman {
    async fn post_accept(&self, session: &Session) -> Result<(), Status> {
        let hello = session.handshake_recv().await?;
        if hello.uri != "/hello" {
            return Err(Status::unauthorized("no greeting"));
        }
        let name = String::from_utf8_lossy(&hello.body).into_owned();
        session.data().insert(Greeting(name));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_hooks_can_talk_with_handshake_recv() {
    within(async {
        let mut router = Router::new();
        router
            .pull("/who", |ctx: PullCtx| async move {
                let greeting = ctx.data().get::<Greeting>();
                Ok::<_, Status>(greeting.map(|g| g.0))
            })
            .unwrap()
            .pull("/handshake-now", |ctx: PullCtx| async move {
                // Outside the connect hooks handshake_recv is refused.
                let err = ctx.session().handshake_recv().await.unwrap_err();
                Err::<(), _>(err)
            })
            .unwrap();
        let (server, addr) = server_with(router, vec![Arc::new(Doorman)]).await;
        let client = peer_with(Router::new(), vec![Arc::new(Greeter)]);
        let session = client.dial(&addr).await.unwrap();

        // The greeting was consumed by the hook, not routed (no /hello route).
        let who: Option<String> = session.pull("/who", &()).await.unwrap().decode().unwrap();
        assert_eq!(who.as_deref(), Some("ann"));

        let err = session.pull("/handshake-now", &()).await.unwrap_err();
        assert_eq!(err.code(), code::INVALID_OPERATION, "{err}");
        // The same on the dialing side once the session runs.
        let err = session.handshake_recv().await.unwrap_err();
        assert_eq!(err.code(), code::INVALID_OPERATION);

        client.close().await;
        server.close().await;
    })
    .await;
}

/// A `post_disconnect` that takes its time before it counts.
struct SlowFarewell(Arc<AtomicUsize>);

#[async_trait]
impl RoutePlugin for SlowFarewell {
    fn name(&self) -> &str {
        "slow-farewell"
    }
}

#[async_trait]
impl Plugin for SlowFarewell {
    async fn post_disconnect(&self, _: &Session) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `Session::closed` and `Peer::close` return once the `post_disconnect`
/// hooks have run, even slow ones (a metrics or limits plugin counts its
/// sessions there, and a program that closed its peer reads the count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_waits_for_the_disconnect_hooks() {
    within(async {
        let farewells = Arc::new(AtomicUsize::new(0));
        let plugin: Arc<dyn Plugin> = Arc::new(SlowFarewell(farewells.clone()));
        let (server, addr) = server_with(Router::new(), vec![plugin]).await;
        let client = Peer::new(Router::new());
        let first = client.dial(&addr).await.unwrap();
        let _second = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 2).await;

        let served = server.sessions();
        let one = served.first().expect("a served session").clone();
        one.close();
        one.closed().await;
        assert_eq!(
            farewells.load(Ordering::SeqCst),
            1,
            "closed() returned before the hook ran"
        );

        server.close().await;
        assert_eq!(
            farewells.load(Ordering::SeqCst),
            2,
            "close() returned before the hooks ran"
        );
        first.closed().await;
        client.close().await;
    })
    .await;
}
