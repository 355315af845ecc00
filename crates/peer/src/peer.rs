//! [`Peer`]: server and client at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jaunt_codec::{EncodeBody, Registry};
use jaunt_socket::{Packet, Proto, ProtoConfig, RawProto, Status};
use jaunt_xfer::XferRegistry;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::collections::HashMap;

use jaunt_router::RouteInfo;
use rustc_hash::FxBuildHasher;

use crate::hub::Hub;
use crate::limits::Pool;
use crate::plugin::{route_chain, Plugin, RouteChain, RouteKind, RoutePlugin};
use crate::reader::ReadHalf;
use crate::redial::{Dialer, Redial};
use crate::telemetry::{MessageLog, RunKind, RunLine, RunLogLimit, TracePropagator};
use crate::writer::{Direct, Socket, WriteHalf};
use crate::{
    Addr, AddrParseError, BroadcastReport, PeerConfig, PeerStats, Router, Session, ToAddr,
};

/// Why a peer could not be built or could not listen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// Binding or accepting failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The address cannot be parsed.
    #[error(transparent)]
    Addr(#[from] AddrParseError),
    /// The configured default codec is not registered.
    #[error("default body codec {0:?} is not registered")]
    UnknownCodec(String),
    /// TLS configuration failed.
    #[error("tls: {0}")]
    Tls(String),
    /// Two plugins that a route sees have the same name.
    #[error("plugin name {0:?} is used twice")]
    DuplicatePlugin(String),
    /// A plugin's `post_reg` or `post_listen` hook refused.
    #[error("plugin {plugin:?} refused {what}: {status}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// What it refused (a route, a listener).
        what: String,
        /// Its status.
        status: Status,
    },
}

/// Builds a [`Peer`] with a custom configuration, codec or filter registry.
pub struct PeerBuilder {
    config: PeerConfig,
    router: Router,
    codecs: Registry,
    xfer: XferRegistry,
    plugins: Vec<Arc<dyn Plugin>>,
    propagator: Option<Arc<dyn TracePropagator>>,
}

impl PeerBuilder {
    /// Sets the propagator that carries trace context in the meta of the
    /// calls this peer sends and serves (`jaunt-otel` has one for
    /// OpenTelemetry). Default: none.
    #[must_use]
    pub fn trace_propagator(mut self, propagator: Arc<dyn TracePropagator>) -> Self {
        self.propagator = Some(propagator);
        self
    }

    /// Sets the configuration.
    #[must_use]
    pub fn config(mut self, config: PeerConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the body codecs (default: every built-in codec).
    #[must_use]
    pub fn codecs(mut self, codecs: Registry) -> Self {
        self.codecs = codecs;
        self
    }

    /// Sets the transfer filters (default: gzip as `g`, md5 as `m`).
    #[must_use]
    pub fn xfer(mut self, xfer: XferRegistry) -> Self {
        self.xfer = xfer;
        self
    }

    /// Adds a peer-wide plugin; plugins run in the order they are added.
    #[must_use]
    pub fn plugin(self, plugin: impl Plugin) -> Self {
        self.plugin_arc(Arc::new(plugin))
    }

    /// Adds a shared peer-wide plugin.
    #[must_use]
    pub fn plugin_arc(mut self, plugin: Arc<dyn Plugin>) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Builds the peer. Fails if the default codec is not registered, if two
    /// plugins a route sees share a name, or if a plugin's `post_reg` hook
    /// refuses a route.
    pub fn build(self) -> Result<Peer, PeerError> {
        let named = jaunt_codec::CodecRef::from(self.config.default_body_codec.clone());
        let default_codec = self
            .codecs
            .resolve(&named)
            .map_err(|_| PeerError::UnknownCodec(self.config.default_body_codec.clone()))?
            .id();
        self.build_with_codec(default_codec)
    }

    fn build_with_codec(self, default_codec: u8) -> Result<Peer, PeerError> {
        let peer_chain = check_chain(route_chain(&self.plugins, &RouteInfo::fallback()))?;
        let mut pull_chains = HashMap::default();
        let mut push_chains = HashMap::default();
        for (kind, uris, chains) in [
            (RouteKind::Pull, self.router.pull_uris(), &mut pull_chains),
            (RouteKind::Push, self.router.push_uris(), &mut push_chains),
        ] {
            for uri in uris {
                let route = match kind {
                    RouteKind::Pull => self.router.find_pull(uri).map(|r| r.info().clone()),
                    RouteKind::Push => self.router.find_push(uri).map(|r| r.info().clone()),
                };
                let Some(route) = route else { continue };
                let chain = check_chain(route_chain(&self.plugins, &route))?;
                for plugin in chain.iter() {
                    plugin
                        .post_reg(&route, kind)
                        .map_err(|status| PeerError::Plugin {
                            plugin: plugin.name().to_owned(),
                            what: format!("route {uri}"),
                            status,
                        })?;
                }
                chains.insert(uri.to_owned(), chain);
            }
        }
        let tls = TlsSetup::load(self.config.tls.as_ref())?;
        let proto_config = ProtoConfig::default()
            .with_xfer(Arc::new(self.xfer))
            .with_max_frame_len(self.config.max_frame_len);
        Ok(Peer::from_shared(Arc::new(PeerShared {
            tls,
            plugins: self.plugins.into(),
            peer_chain,
            pull_chains,
            push_chains,
            default_proto: Arc::new(RawProto::new(proto_config.clone())),
            proto_config,
            default_codec,
            codecs: Arc::new(self.codecs),
            router: self.router,
            slots: Pool::new(self.config.max_handlers),
            bytes: Pool::new(self.config.max_peer_memory),
            frames_dropped: std::sync::atomic::AtomicU64::new(0),
            propagator: self.propagator,
            run_log: RunLogLimit::new(self.config.run_log_per_second),
            config: self.config,
            hub: Hub::default(),
            accepting: CancellationToken::new(),
            closed: CancellationToken::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            listeners: Mutex::new(Vec::new()),
            #[cfg(feature = "restart")]
            handover: crate::restart::Handover::default(),
        })))
    }
}

/// The TLS configs built from [`PeerConfig::tls`].
#[derive(Default)]
struct TlsSetup {
    #[cfg(feature = "tls")]
    server: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    #[cfg(feature = "tls")]
    client: Option<(Arc<tokio_rustls::rustls::ClientConfig>, Option<String>)>,
}

impl TlsSetup {
    #[cfg(feature = "tls")]
    fn load(files: Option<&crate::TlsFiles>) -> Result<Self, PeerError> {
        let Some(files) = files else {
            return Ok(Self::default());
        };
        let server = match (&files.cert, &files.key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config_from_pem(
                cert,
                key,
                files.client_ca.as_deref(),
            )?),
            (None, None) => None,
            _ => return Err(PeerError::Tls("tls.cert and tls.key go together".into())),
        };
        let client = match &files.ca {
            Some(ca) => {
                let identity = files.cert.as_deref().zip(files.key.as_deref());
                let config = crate::tls::client_config_from_pem(ca, identity)?;
                Some((config, files.server_name.clone()))
            }
            None => None,
        };
        Ok(Self { server, client })
    }

    #[cfg(not(feature = "tls"))]
    fn load(files: Option<&crate::TlsFiles>) -> Result<Self, PeerError> {
        match files {
            Some(_) => Err(PeerError::Tls("built without the `tls` feature".into())),
            None => Ok(Self::default()),
        }
    }
}

/// Refuses a chain in which two plugins share a name.
fn check_chain(chain: Vec<Arc<dyn RoutePlugin>>) -> Result<RouteChain, PeerError> {
    for (i, plugin) in chain.iter().enumerate() {
        if chain[..i].iter().any(|p| p.name() == plugin.name()) {
            return Err(PeerError::DuplicatePlugin(plugin.name().to_owned()));
        }
    }
    Ok(chain.into())
}

pub(crate) struct PeerShared {
    /// TLS from the configuration, if any.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    tls: TlsSetup,
    /// Peer-wide plugins, in order.
    pub(crate) plugins: Arc<[Arc<dyn Plugin>]>,
    /// The route hooks of messages with no route (the peer plugins).
    pub(crate) peer_chain: RouteChain,
    // Fx hashing, as the router's tables: looked up by every incoming message.
    pub(crate) pull_chains: HashMap<String, RouteChain, FxBuildHasher>,
    pub(crate) push_chains: HashMap<String, RouteChain, FxBuildHasher>,
    pub(crate) config: PeerConfig,
    pub(crate) router: Router,
    pub(crate) codecs: Arc<Registry>,
    pub(crate) default_codec: u8,
    pub(crate) proto_config: ProtoConfig,
    pub(crate) default_proto: Arc<dyn Proto>,
    pub(crate) hub: Hub,
    /// Cancelled when the peer stops accepting (close, shutdown, or a
    /// graceful restart handing its sockets over).
    accepting: CancellationToken,
    /// Cancelled when the peer is closed: sessions still starting close.
    closed: CancellationToken,
    /// Set by [`Peer::shutdown`]: new pulls are refused while in-flight ones
    /// finish.
    draining: std::sync::atomic::AtomicBool,
    /// Handler slots, shared fairly by the sessions.
    pub(crate) slots: Arc<Pool>,
    /// Bytes held on the sessions' behalf, shared fairly.
    pub(crate) bytes: Arc<Pool>,
    /// Malformed frames dropped, every session's.
    frames_dropped: std::sync::atomic::AtomicU64,
    /// Carries trace context in meta, if set.
    pub(crate) propagator: Option<Arc<dyn TracePropagator>>,
    /// The run log's rate limit.
    run_log: RunLogLimit,
    listeners: Mutex<Vec<JoinHandle<()>>>,
    /// The listening sockets a graceful restart hands to the new process.
    #[cfg(feature = "restart")]
    pub(crate) handover: crate::restart::Handover,
}

impl PeerShared {
    /// The route hooks of a pull route (the peer's for unknown uris).
    pub(crate) fn pull_chain(&self, path: &str) -> &RouteChain {
        self.pull_chains.get(path).unwrap_or(&self.peer_chain)
    }

    /// The route hooks of a push route (the peer's for unknown uris).
    pub(crate) fn push_chain(&self, path: &str) -> &RouteChain {
        self.push_chains.get(path).unwrap_or(&self.peer_chain)
    }

    /// Counts a dropped malformed frame.
    pub(crate) fn frame_dropped(&self) {
        self.frames_dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether [`Peer::shutdown`] is draining the peer.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Cancelled when the peer is closed.
    pub(crate) fn closed_token(&self) -> &CancellationToken {
        &self.closed
    }

    /// Whether [`Peer::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Logs one finished call: its run log line when `count_time` or
    /// `print_detail` ask for one or it was slow (rate-limited), and a
    /// failure at DEBUG.
    ///
    /// `sent` is the message this side sent (the pull, or the reply it
    /// served), `received` the other; either may be missing (a push has no
    /// reply; a pull refused before it was answered has only its status).
    #[inline]
    pub(crate) fn log_call(
        &self,
        kind: RunKind,
        addr: &Addr,
        call: &Packet,
        answer: Option<&Packet>,
        status: &Status,
        cost: Duration,
    ) {
        let config = &self.config;
        let quiet =
            !config.count_time && !config.print_detail && config.slow_call_threshold.is_none();
        if quiet && status.is_ok() {
            return;
        }
        self.log_call_out_of_line(kind, addr, call, answer, status, cost);
    }

    #[inline(never)]
    fn log_call_out_of_line(
        &self,
        kind: RunKind,
        addr: &Addr,
        call: &Packet,
        answer: Option<&Packet>,
        status: &Status,
        cost: Duration,
    ) {
        let config = &self.config;
        let slow = config.slow_call_threshold.is_some_and(|limit| cost > limit);
        if !status.is_ok() {
            tracing::debug!(kind = ?kind, uri = %call.uri, seq = call.seq, %status, ?cost, "call failed");
        }
        if !(slow || config.count_time || config.print_detail) {
            return;
        }
        let Some(suppressed) = self.run_log.admit() else {
            return;
        };
        let detail = config.print_detail;
        let call_log = MessageLog {
            packet: Some(call),
            status: None,
            detail,
        };
        let answer_log = match kind {
            RunKind::PushSent | RunKind::PushServed => None,
            RunKind::PullSent | RunKind::PullServed => Some(MessageLog {
                packet: answer,
                status: Some(status),
                detail,
            }),
        };
        RunLine {
            kind,
            addr,
            cost,
            slow,
            count_time: config.count_time,
            uri: &call.uri,
            first: call_log,
            second: answer_log,
        }
        .emit(suppressed);
    }
}

/// A peer: it listens, dials, or serves a stream it is given, and every
/// connection becomes a [`Session`] on which both sides pull and push.
///
/// ```
/// use jaunt_peer::{Peer, PullCtx, Router};
/// use jaunt_socket::Status;
///
/// async fn add(_: PullCtx, args: Vec<i64>) -> Result<i64, Status> {
///     Ok(args.iter().sum())
/// }
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let mut router = Router::new();
/// router.pull("/math/add", add).unwrap();
/// let server = Peer::new(router);
/// let addr = server.listen("127.0.0.1:0").await.unwrap();
///
/// let client = Peer::new(Router::new());
/// let session = client.dial(&addr).await.unwrap();
/// let sum: i64 = session.pull("/math/add", &vec![1, 2, 3]).await.unwrap().decode().unwrap();
/// assert_eq!(sum, 6);
///
/// client.close().await;
/// server.close().await;
/// # });
/// ```
#[derive(Clone)]
pub struct Peer {
    shared: Arc<PeerShared>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("sessions", &self.session_count())
            .field("router", &self.shared.router)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// A peer with the default configuration, every codec built in (JSON and
    /// plain always; protobuf, form and XML with the features of those names)
    /// and the gzip (`g`) and md5 (`m`) filters when their features are on
    /// (all of them are with the `jaunt` crate's default features).
    pub fn new(router: Router) -> Self {
        // The default configuration names JSON, which this crate always builds
        // in, and has no plugins, so nothing can refuse it.
        match Self::builder(router).build_with_codec(jaunt_codec::ids::JSON) {
            Ok(peer) => peer,
            Err(e) => unreachable!("a peer without plugins always builds: {e}"),
        }
    }

    /// A builder for a peer with custom settings.
    pub fn builder(router: Router) -> PeerBuilder {
        PeerBuilder {
            config: PeerConfig::default(),
            router,
            codecs: Registry::with_defaults(),
            xfer: XferRegistry::with_defaults(),
            plugins: Vec::new(),
            propagator: None,
        }
    }

    pub(crate) fn from_shared(shared: Arc<PeerShared>) -> Self {
        Self { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<PeerShared> {
        &self.shared
    }

    /// The configuration.
    pub fn config(&self) -> &PeerConfig {
        &self.shared.config
    }

    /// The body codecs.
    pub fn codecs(&self) -> &Arc<Registry> {
        &self.shared.codecs
    }

    /// Filters and size limit, for building another [`Proto`] for this peer.
    pub fn proto_config(&self) -> &ProtoConfig {
        &self.shared.proto_config
    }

    #[cfg_attr(not(any(feature = "tls", feature = "restart")), allow(dead_code))]
    pub(crate) fn proto_config_default(&self) -> Arc<dyn Proto> {
        self.shared.default_proto.clone()
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.shared.router
    }

    /// Listens on a TCP address or `unix:/path` with the default framing and
    /// serves every connection; returns the bound address (port 0 picks a
    /// free port).
    pub async fn listen(&self, addr: impl ToAddr) -> Result<Addr, PeerError> {
        self.listen_with(addr, self.shared.default_proto.clone())
            .await
    }

    /// [`listen`](Self::listen) with another framing.
    pub async fn listen_with(
        &self,
        addr: impl ToAddr,
        proto: Arc<dyn Proto>,
    ) -> Result<Addr, PeerError> {
        #[cfg(feature = "tls")]
        if let Some(server) = &self.shared.tls.server {
            let upgrade = Upgrade::TlsServer(tokio_rustls::TlsAcceptor::from(server.clone()));
            return self.listen_inner(addr.to_addr()?, proto, upgrade).await;
        }
        self.listen_inner(addr.to_addr()?, proto, Upgrade::None)
            .await
    }

    pub(crate) async fn listen_inner(
        &self,
        addr: Addr,
        proto: Arc<dyn Proto>,
        upgrade: Upgrade,
    ) -> Result<Addr, PeerError> {
        let backlog = self
            .shared
            .config
            .listen_backlog
            .unwrap_or_else(system_backlog);
        let listener = match &addr {
            Addr::Tcp(sa) => Listener::Tcp(bind_tcp(*sa, backlog)?),
            Addr::Host(host, port) => {
                let sa = tokio::net::lookup_host((host.as_str(), *port))
                    .await?
                    .next()
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::AddrNotAvailable,
                            format!("{host} resolves to no address"),
                        )
                    })?;
                Listener::Tcp(bind_tcp(sa, backlog)?)
            }
            Addr::Unix(path) => Listener::Unix(bind_unix(path, backlog)?),
        };
        self.serve_listener(addr, listener, proto, upgrade).await
    }

    /// Serves a bound listener: runs `post_listen`, starts the accept loop.
    pub(crate) async fn serve_listener(
        &self,
        addr: Addr,
        listener: Listener,
        proto: Arc<dyn Proto>,
        upgrade: Upgrade,
    ) -> Result<Addr, PeerError> {
        #[cfg(feature = "restart")]
        self.shared.handover.keep(&addr, &listener)?;
        let local = match &listener {
            Listener::Tcp(l) => Addr::Tcp(l.local_addr()?),
            Listener::Unix(_) => addr.clone(),
        };
        for plugin in self.shared.plugins.iter() {
            plugin
                .post_listen(&local)
                .await
                .map_err(|status| PeerError::Plugin {
                    plugin: plugin.name().to_owned(),
                    what: format!("listening on {local}"),
                    status,
                })?;
        }
        let peer = self.clone();
        let bound = local.clone();
        let task =
            tokio::spawn(async move { peer.accept_loop(listener, bound, proto, upgrade).await });
        self.listeners().push(task);
        tracing::info!(addr = %local, "listening");
        Ok(local)
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.shared
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    async fn accept_loop(
        self,
        listener: Listener,
        local: Addr,
        proto: Arc<dyn Proto>,
        upgrade: Upgrade,
    ) {
        let stop = self.shared.accepting.clone();
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((_, remote))
                    if self
                        .shared
                        .config
                        .max_sessions
                        .is_some_and(|max| self.session_count() >= max) =>
                {
                    // Dropping the connection closes it.
                    tracing::warn!(%remote, "session limit reached: connection closed");
                }
                Ok((conn, remote)) => {
                    let peer = self.clone();
                    let (local, proto, upgrade) = (local.clone(), proto.clone(), upgrade.clone());
                    tokio::spawn(async move {
                        if let Err(e) = peer
                            .serve_accepted(conn, local, remote.clone(), proto, upgrade)
                            .await
                        {
                            tracing::warn!(%remote, error = %e, "connection refused");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        #[cfg(feature = "restart")]
        let handed_over = self.shared.handover.is_handed_over();
        #[cfg(not(feature = "restart"))]
        let handed_over = false;
        if let (Listener::Unix(_), Addr::Unix(path), false) = (&listener, &local, handed_over) {
            // (After a graceful restart the new process serves this socket.)
            let _ = std::fs::remove_file(path);
        }
    }

    async fn serve_accepted(
        &self,
        conn: Conn,
        local: Addr,
        remote: Addr,
        proto: Arc<dyn Proto>,
        upgrade: Upgrade,
    ) -> Result<Session, Status> {
        match (conn, upgrade) {
            (conn, Upgrade::None) => self.start(conn, proto, local, remote).await,
            #[cfg(feature = "tls")]
            (Conn::Tcp(tcp), Upgrade::TlsServer(acceptor)) => {
                let tls =
                    tokio::time::timeout(self.shared.config.dial_timeout, acceptor.accept(tcp))
                        .await
                        .map_err(|_| Status::wrong_conn("tls handshake timed out"))?
                        .map_err(|e| Status::wrong_conn(format!("tls handshake failed: {e}")))?;
                self.start(Conn::Other(Box::new(tls)), proto, local, remote)
                    .await
            }
            #[cfg(feature = "tls")]
            (Conn::Unix(unix), Upgrade::TlsServer(acceptor)) => {
                let tls = acceptor
                    .accept(unix)
                    .await
                    .map_err(|e| Status::wrong_conn(format!("tls handshake failed: {e}")))?;
                self.start(Conn::Other(Box::new(tls)), proto, local, remote)
                    .await
            }
            #[cfg(feature = "tls")]
            (Conn::Other(_), Upgrade::TlsServer(_)) => Err(Status::wrong_conn(
                "tls over this connection is not supported",
            )),
        }
    }

    /// Dials a TCP address or `unix:/path` with the default framing. Fails
    /// with status 105 (dial failed) carrying the cause.
    pub async fn dial(&self, addr: impl ToAddr) -> Result<Session, Status> {
        self.dial_with(addr, self.shared.default_proto.clone())
            .await
    }

    /// [`dial`](Self::dial) with another framing.
    pub async fn dial_with(
        &self,
        addr: impl ToAddr,
        proto: Arc<dyn Proto>,
    ) -> Result<Session, Status> {
        let addr = addr
            .to_addr()
            .map_err(|e| Status::dial_failed(e.to_string()))?;
        #[cfg(feature = "tls")]
        if let Some((client, name)) = &self.shared.tls.client {
            let name = name.clone().unwrap_or_else(|| match &addr {
                Addr::Tcp(sa) => sa.ip().to_string(),
                Addr::Host(host, _) => host.clone(),
                Addr::Unix(_) => "localhost".to_owned(),
            });
            return self.dial_tls(addr, &name, client.clone()).await;
        }
        self.pre_dial(&addr, false).await?;
        let (conn, local) = self.connect(&addr).await?;
        let redial = self.redial_plan(&addr, Dialer::Plain);
        self.start_dialed(conn, proto, local, addr, redial).await
    }

    /// How a session dialed to `addr` redials, if the configuration asks
    /// for it.
    pub(crate) fn redial_plan(&self, addr: &Addr, dialer: Dialer) -> Option<Redial> {
        self.shared.config.redial.clone().map(|config| Redial {
            addr: addr.clone(),
            dialer,
            config,
        })
    }

    /// Runs the plugins' `pre_dial` hooks; an error is a failed dial (105).
    pub(crate) async fn pre_dial(&self, addr: &Addr, is_redial: bool) -> Result<(), Status> {
        for plugin in self.shared.plugins.iter() {
            plugin
                .pre_dial(addr, is_redial)
                .await
                .map_err(|status| Status::dial_failed(status.to_string()))?;
        }
        Ok(())
    }

    pub(crate) async fn connect(&self, addr: &Addr) -> Result<(Conn, Addr), Status> {
        let connect = async {
            match addr {
                Addr::Tcp(sa) => TcpStream::connect(sa).await.map(Conn::Tcp),
                Addr::Host(host, port) => TcpStream::connect((host.as_str(), *port))
                    .await
                    .map(Conn::Tcp),
                Addr::Unix(path) => UnixStream::connect(path).await.map(Conn::Unix),
            }
        };
        let conn = tokio::time::timeout(self.shared.config.dial_timeout, connect)
            .await
            .map_err(|_| Status::dial_failed(format!("dialing {addr} timed out")))?
            .map_err(|e| Status::dial_failed(format!("dialing {addr}: {e}")))?;
        let local = match &conn {
            Conn::Tcp(tcp) => {
                let _ = tcp.set_nodelay(true);
                tcp.local_addr()
                    .map(Addr::Tcp)
                    .unwrap_or_else(|_| addr.clone())
            }
            Conn::Unix(_) | Conn::Other(_) => Addr::Unix(Default::default()),
        };
        Ok((conn, local))
    }

    /// Serves a stream the caller already has (a pipe, an in-memory duplex,
    /// a stream from another library) with the default framing, as an
    /// accepted connection (the `post_accept` hooks run). Fails if a hook
    /// refuses the connection.
    pub async fn serve_conn<S>(&self, stream: S, remote: Addr) -> Result<Session, Status>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.serve_conn_with(stream, remote, self.shared.default_proto.clone())
            .await
    }

    /// [`serve_conn`](Self::serve_conn) with another framing.
    pub async fn serve_conn_with<S>(
        &self,
        stream: S,
        remote: Addr,
        proto: Arc<dyn Proto>,
    ) -> Result<Session, Status>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let conn = Conn::Other(Box::new(stream));
        self.start(conn, proto, Addr::Unix(Default::default()), remote)
            .await
    }

    /// Starts a session on an accepted (or given) stream: named after the
    /// remote address; the `post_accept` hooks run before it reads.
    pub(crate) async fn start(
        &self,
        conn: Conn,
        proto: Arc<dyn Proto>,
        local: Addr,
        remote: Addr,
    ) -> Result<Session, Status> {
        Session::start(self.shared.clone(), conn, proto, local, remote, false, None).await
    }

    /// Starts a session on a dialed stream: named after the local address;
    /// the `post_dial` hooks run before it reads, and their error is a failed
    /// dial (105).
    pub(crate) async fn start_dialed(
        &self,
        conn: Conn,
        proto: Arc<dyn Proto>,
        local: Addr,
        remote: Addr,
        redial: Option<Redial>,
    ) -> Result<Session, Status> {
        Session::start(
            self.shared.clone(),
            conn,
            proto,
            local,
            remote,
            true,
            redial,
        )
        .await
        .map_err(|status| Status::dial_failed(status.to_string()))
    }

    /// The session with this id.
    pub fn get_session(&self, id: &str) -> Option<Session> {
        self.shared.hub.get(id)
    }

    /// Every live session.
    pub fn sessions(&self) -> Vec<Session> {
        self.shared.hub.all()
    }

    /// How many sessions are live.
    pub fn session_count(&self) -> usize {
        self.shared.hub.len()
    }

    /// What the peer holds now, from its resource accounting: sessions,
    /// handlers running, bytes held on the sessions' behalf (by kind, and
    /// the peak), frames dropped, pending pulls, the largest of these one
    /// session has; and the bytes and frames every session carried since the
    /// peer started (these totals never go backwards). See
    /// `PeerConfig::max_peer_memory` and [`PeerStats`].
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use jaunt_peer::{Peer, Router};
    ///
    /// let server = Peer::new(Router::new());
    /// let stats = server.stats();
    /// assert_eq!((stats.sessions, stats.handlers, stats.bytes_held), (0, 0, 0));
    ///
    /// let addr = server.listen("127.0.0.1:0").await.unwrap();
    /// let client = Peer::new(Router::new());
    /// let session = client.dial(&addr).await.unwrap();
    /// let _ = session.pull("/nowhere", &()).await;
    /// session.close();
    /// session.closed().await;
    /// // The closed session's frames stay in the totals.
    /// assert_eq!((client.stats().sent_frames, client.stats().received_frames), (1, 1));
    /// client.close().await;
    /// server.close().await;
    /// # });
    /// ```
    pub fn stats(&self) -> PeerStats {
        let (sessions, wire) = self.shared.hub.all_with_wire();
        let mut stats = PeerStats {
            sessions: sessions.len(),
            received_bytes: wire.received_bytes,
            sent_bytes: wire.sent_bytes,
            received_frames: wire.received_frames,
            sent_frames: wire.sent_frames,
            handlers: self.shared.slots.used(),
            peak_handlers: self.shared.slots.peak(),
            bytes_held: self.shared.bytes.used(),
            peak_bytes_held: self.shared.bytes.peak(),
            frames_dropped: self
                .shared
                .frames_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            ..PeerStats::default()
        };
        for (session, wire) in &sessions {
            let one = session.stats_with(*wire);
            stats.bytes_read += one.bytes_read;
            stats.bytes_in_handlers += one.bytes_in_handlers;
            stats.bytes_queued += one.bytes_queued;
            stats.pending_pulls += one.pending_pulls;
            stats.max_session_bytes_queued = stats.max_session_bytes_queued.max(one.bytes_queued);
            stats.max_session_pending_pulls =
                stats.max_session_pending_pulls.max(one.pending_pulls);
            stats.max_session_handlers = stats.max_session_handlers.max(one.handlers);
        }
        stats
    }

    /// Pushes `args` to `uri` on every live session, without waiting for
    /// any of them: the body is encoded once, each session's push is queued
    /// if its write queue has room, and otherwise the slow-consumer policy
    /// (`PeerConfig::slow_consumer`) applies to that session alone — `Wait`
    /// lets the push wait for room in the background (at most
    /// `slow_consumer_wait`), `Drop` drops it, `Close` closes the session.
    /// The plugins' `pre_write_push` and `post_write_push` hooks run for
    /// each session. Fails only if the body cannot be encoded.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use jaunt_peer::{Peer, PushCtx, Router};
    ///
    /// let server = Peer::new(Router::new());
    /// let addr = server.listen("127.0.0.1:0").await.unwrap();
    /// let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    /// let mut routes = Router::new();
    /// routes
    ///     .push("/news", move |_: PushCtx, text: String| {
    ///         let tx = tx.clone();
    ///         async move { tx.send(text).await.ok(); }
    ///     })
    ///     .unwrap();
    /// let client = Peer::new(routes);
    /// let _session = client.dial(&addr).await.unwrap();
    /// while server.session_count() < 1 {
    ///     tokio::task::yield_now().await;
    /// }
    ///
    /// let report = server.broadcast_push("/news", &"hello").await.unwrap();
    /// assert_eq!((report.sent, report.sessions()), (1, 1));
    /// assert_eq!(rx.recv().await.unwrap(), "hello");
    ///
    /// client.close().await;
    /// server.close().await;
    /// # });
    /// ```
    pub async fn broadcast_push<A: EncodeBody>(
        &self,
        uri: &str,
        args: &A,
    ) -> Result<BroadcastReport, Status> {
        let codec = self.shared.default_codec;
        let body = self
            .shared
            .codecs
            .encode(codec, args)
            .map_err(|e| Status::bad_message(e.to_string()))?;
        let sessions = self.sessions();
        let mut report = BroadcastReport::default();
        if self.shared.plugins.is_empty() {
            // Nothing to await: each session's step finishes at once.
            for session in &sessions {
                report.count(session.broadcast_one(uri, codec, &body).await);
            }
        } else {
            // Hooks may wait: the sessions' hooks run side by side.
            let sends = sessions
                .iter()
                .map(|session| session.broadcast_one(uri, codec, &body));
            for delivery in futures_util::future::join_all(sends).await {
                report.count(delivery);
            }
        }
        Ok(report)
    }

    /// Stops listening and closes every session, waiting until their
    /// connections are shut down.
    pub async fn close(&self) {
        self.stop_listening().await;
        self.shared.closed.cancel();
        let sessions = self.sessions();
        for session in &sessions {
            session.close();
        }
        for session in &sessions {
            session.closed().await;
        }
    }

    /// Shuts down gracefully: stops accepting, lets the handlers in flight
    /// finish and their replies flush (new pulls arriving meanwhile are
    /// answered with status 102, "shutting down"), then closes every session
    /// — pending pulls of this side end with status 102 and `post_disconnect`
    /// runs — and returns. Handlers still running after `timeout` are
    /// abandoned: their callers get status 102 when the sessions close.
    /// Returns whether everything finished within `timeout`.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        self.shared
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
        self.stop_listening().await;
        let drained = tokio::time::timeout_at(deadline, self.shared.slots.drained())
            .await
            .is_ok();
        self.shared.closed.cancel();
        let sessions = self.sessions();
        for session in &sessions {
            session.close();
        }
        let closed = tokio::time::timeout_at(deadline, async {
            for session in &sessions {
                session.closed().await;
            }
        })
        .await
        .is_ok();
        tracing::info!(drained, "peer shut down");
        drained && closed
    }

    /// Registers for SIGINT and SIGTERM now (so a signal sent after this
    /// call is not lost) and returns a future that waits for either, then
    /// [`shutdown`](Self::shutdown)s and yields its result.
    pub fn shutdown_on_signal(
        &self,
        timeout: Duration,
    ) -> std::io::Result<impl std::future::Future<Output = bool> + Send + 'static> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let peer = self.clone();
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::info!("signal received: shutting down");
            peer.shutdown(timeout).await
        })
    }

    /// Stops accepting; sessions already accepted go on.
    pub(crate) async fn stop_listening(&self) {
        self.shared.accepting.cancel();
        let listeners: Vec<_> = self.listeners().drain(..).collect();
        for task in listeners {
            let _ = task.await;
        }
        // The duplicates kept for a graceful restart would keep the sockets
        // listening: connections would still be queued, and never served.
        #[cfg(feature = "restart")]
        self.shared.handover.release();
    }
}

/// The accept backlog when none is configured: the system's limit, as Go
/// uses (Linux caps any backlog at `net.core.somaxconn`); 4096 where it
/// cannot be read.
fn system_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(4096)
        .clamp(1024, 65535)
}

/// A TCP listener with `backlog` (tokio's `bind` always asks for 128, and a
/// burst of connections beyond it waits for SYN retries).
fn bind_tcp(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(socket.into())
}

/// A Unix listener with `backlog`.
fn bind_unix(path: &std::path::Path, backlog: u32) -> std::io::Result<UnixListener> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    UnixListener::from_std(socket.into())
}

pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A connection of any kind (TCP, Unix, TLS over either, a user's stream).
pub(crate) trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

/// A connection to serve. TCP and Unix streams split into independent
/// halves; other streams share one behind a lock.
pub(crate) enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
    Other(Box<dyn AsyncStream>),
}

impl Conn {
    /// Splits the connection for the reader and writer tasks.
    pub(crate) fn into_halves(self) -> (ReadHalf, WriteHalf) {
        match self {
            Self::Tcp(tcp) => {
                let (r, w) = tcp.into_split();
                (
                    ReadHalf::Tcp(r),
                    WriteHalf::Direct(Direct::new(Socket::Tcp(Arc::new(w)))),
                )
            }
            Self::Unix(unix) => {
                let (r, w) = unix.into_split();
                (
                    ReadHalf::Unix(r),
                    WriteHalf::Direct(Direct::new(Socket::Unix(Arc::new(w)))),
                )
            }
            Self::Other(stream) => {
                let (r, w) = tokio::io::split(stream);
                (ReadHalf::Other(Box::new(r)), WriteHalf::Other(Box::new(w)))
            }
        }
    }
}

impl Listener {
    async fn accept(&self) -> std::io::Result<(Conn, Addr)> {
        match self {
            Self::Tcp(l) => {
                let (tcp, remote) = l.accept().await?;
                let _ = tcp.set_nodelay(true);
                Ok((Conn::Tcp(tcp), Addr::Tcp(remote)))
            }
            Self::Unix(l) => {
                let (unix, remote) = l.accept().await?;
                let path = remote.as_pathname().map(Into::into).unwrap_or_default();
                Ok((Conn::Unix(unix), Addr::Unix(path)))
            }
        }
    }
}

/// What happens to an accepted connection before it becomes a session.
#[derive(Clone)]
pub(crate) enum Upgrade {
    None,
    #[cfg(feature = "tls")]
    TlsServer(tokio_rustls::TlsAcceptor),
}
