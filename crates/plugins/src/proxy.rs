//! Forwarding of unknown pulls and pushes to another peer (an upstream).
//!
//! [`routes`] installs the router's fallbacks (`unknown_pull` and
//! `unknown_push`): every pull or push whose uri has no route of its own is
//! sent on to the upstream as it came — the encoded body with its codec id
//! (it is never decoded), the whole meta, the same transfer filters — with
//! the meta key `X-Real-IP` set to the caller's IP address. A pull's reply
//! comes back the same way: the upstream's body with its codec, its meta,
//! and its status (an error status of the upstream reaches the caller
//! unchanged).
//!
//! The upstream is either a [`Session`] the program already has
//! ([`Proxy::session`]) or an address dialed on first use and dialed again
//! whenever that session has closed ([`Proxy::dial`] dials with the peer
//! that serves the proxied message, [`Proxy::dial_via`] with a peer of your
//! choice).
//!
//! When the upstream cannot be reached — the dial fails, the session is
//! closed, the connection drops before the reply — the caller gets status
//! 502 (bad gateway) with the original failure as its cause. As in Go erpc's
//! proxy, this covers every connection-level status (codes 100 to 199) that
//! the forwarded call ends with; other codes are the upstream's answer and
//! are passed through.
//!
//! ```
//! use jaunt::prelude::*;
//! use jaunt::plugins::proxy::{self, Proxy};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! // The backend serves /echo.
//! let mut backend_routes = Router::new();
//! backend_routes
//!     .pull("/echo", |ctx: PullCtx, text: String| async move {
//!         let ip = ctx.meta().get_str(proxy::REAL_IP).unwrap_or("?").to_owned();
//!         Ok::<_, Status>(format!("{text} from {ip}"))
//!     })
//!     .unwrap();
//! let backend = Peer::new(backend_routes);
//! let backend_addr = backend.listen("127.0.0.1:0").await.unwrap();
//!
//! // The proxy has no route of its own: everything goes to the backend.
//! let mut proxy_routes = Router::new();
//! proxy::routes(&mut proxy_routes, Proxy::dial(&backend_addr).unwrap()).unwrap();
//! let front = Peer::new(proxy_routes);
//! let front_addr = front.listen("127.0.0.1:0").await.unwrap();
//!
//! let client = Peer::new(Router::new());
//! let session = client.dial(&front_addr).await.unwrap();
//! let reply: String = session.pull("/echo", &"hi").await.unwrap().decode().unwrap();
//! assert_eq!(reply, "hi from 127.0.0.1");
//!
//! client.close().await;
//! front.close().await;
//! backend.close().await;
//! # });
//! ```

use std::sync::Arc;

use jaunt_codec::RawBody;
use jaunt_peer::{Addr, Peer, PullCtx, PullOptions, PushCtx, Router, Session};
use jaunt_peer::{AddrParseError, ToAddr};
use jaunt_router::RouteError;
use jaunt_socket::Status;
use tokio::sync::Mutex;

/// The meta key carrying the original caller's IP address.
pub const REAL_IP: &str = "X-Real-IP";

/// Where a [`Proxy`] forwards to.
enum Upstream {
    /// A session the program gave.
    Session(Session),
    /// An address dialed on demand, with a given peer or the serving one.
    Dial {
        via: Option<Peer>,
        addr: Addr,
        current: Mutex<Option<Session>>,
    },
}

/// Forwards pulls and pushes to an upstream peer. Cheap to clone; clones
/// share the upstream session.
///
/// Install it as the router's fallbacks with [`routes`], or call
/// [`forward_pull`](Self::forward_pull) and
/// [`forward_push`](Self::forward_push) from handlers of your own.
#[derive(Clone)]
pub struct Proxy {
    upstream: Arc<Upstream>,
    keep_real_ip: bool,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Proxy");
        match &*self.upstream {
            Upstream::Session(s) => d.field("session", &s.id()),
            Upstream::Dial { addr, .. } => d.field("addr", addr),
        };
        d.field("keep_real_ip", &self.keep_real_ip)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Forwards on `session`. Once it is closed, forwarded calls fail with
    /// 502.
    pub fn session(session: Session) -> Self {
        Self::new(Upstream::Session(session))
    }

    /// Forwards to `addr`, dialed on first use with the peer that serves the
    /// forwarded message, and dialed again whenever that session has closed.
    /// The upstream session is then one of that peer's sessions: its
    /// plugins run on it, and the upstream can pull and push back through
    /// that peer's router.
    pub fn dial(addr: impl ToAddr) -> Result<Self, AddrParseError> {
        Ok(Self::new(Upstream::Dial {
            via: None,
            addr: addr.to_addr()?,
            current: Mutex::new(None),
        }))
    }

    /// Like [`dial`](Self::dial), but dials with `peer`.
    pub fn dial_via(peer: Peer, addr: impl ToAddr) -> Result<Self, AddrParseError> {
        Ok(Self::new(Upstream::Dial {
            via: Some(peer),
            addr: addr.to_addr()?,
            current: Mutex::new(None),
        }))
    }

    fn new(upstream: Upstream) -> Self {
        Self {
            upstream: Arc::new(upstream),
            keep_real_ip: false,
        }
    }

    /// Whether an `X-Real-IP` that the caller already sent is kept (the
    /// caller is itself a proxy you trust, as Go erpc's proxy always
    /// assumes) instead of being replaced by the caller's own address.
    /// Default `false`: a client could otherwise claim any address.
    #[must_use]
    pub fn keep_real_ip(mut self, keep: bool) -> Self {
        self.keep_real_ip = keep;
        self
    }

    /// The upstream session: the given one, or the dialed one (dialing it
    /// now if there is none or it has closed, with `serving` unless the
    /// proxy was given a peer). Fails with 502 carrying the cause.
    pub async fn upstream(&self, serving: &Peer) -> Result<Session, Status> {
        match &*self.upstream {
            Upstream::Session(session) if session.is_closed() => {
                Err(Status::bad_gateway("the upstream session is closed"))
            }
            Upstream::Session(session) => Ok(session.clone()),
            Upstream::Dial { via, addr, current } => {
                // Holding the lock while dialing: concurrent calls wait for
                // one dial instead of each opening a connection.
                let mut current = current.lock().await;
                if let Some(session) = current.as_ref().filter(|s| !s.is_closed()) {
                    return Ok(session.clone());
                }
                let peer = via.as_ref().unwrap_or(serving);
                let session = peer.dial(addr).await.map_err(|status| {
                    Status::bad_gateway(format!("dialing the upstream {addr}: {status}"))
                })?;
                *current = Some(session.clone());
                Ok(session)
            }
        }
    }

    /// Forwards the pull of `ctx` and returns the upstream's reply body with
    /// its codec; the reply's meta is added to `ctx`'s reply. Return it from
    /// a pull handler as it is.
    pub async fn forward_pull(&self, ctx: &PullCtx) -> Result<RawBody, Status> {
        let upstream = self.upstream(&ctx.peer()).await?;
        let opts = self.options(ctx.meta(), ctx.xfer(), ctx.remote_addr());
        let reply = upstream
            .pull_raw(ctx.uri(), ctx.raw_body(), opts)
            .await
            .map_err(gateway_status)?;
        for (key, value) in reply.meta().iter() {
            ctx.add_reply_meta(key, value);
        }
        Ok(RawBody::new(reply.codec(), reply.body().clone()))
    }

    /// Forwards the push of `ctx`.
    pub async fn forward_push(&self, ctx: &PushCtx) -> Result<(), Status> {
        let upstream = self.upstream(&ctx.peer()).await?;
        let opts = self.options(ctx.meta(), ctx.xfer(), ctx.remote_addr());
        upstream
            .push_raw(ctx.uri(), ctx.raw_body(), opts)
            .await
            .map_err(gateway_status)
    }

    /// The forwarded message's options: the incoming meta (with `X-Real-IP`
    /// set) and filters.
    fn options(&self, meta: &jaunt_socket::Meta, xfer: &[u8], remote: &Addr) -> PullOptions {
        let mut opts = PullOptions::new();
        let mut real_ip = None;
        for (key, value) in meta.iter() {
            if key.eq_ignore_ascii_case(REAL_IP.as_bytes()) {
                if real_ip.is_none() {
                    real_ip = Some(value.to_vec());
                }
                continue;
            }
            opts = opts.meta(key, value);
        }
        let real_ip = match real_ip {
            Some(ip) if self.keep_real_ip => ip,
            _ => ip_of(remote).into_bytes(),
        };
        opts = opts.meta(REAL_IP, real_ip);
        for &id in xfer {
            opts = opts.xfer(id);
        }
        opts
    }
}

/// The IP part of an address (the host for a named one, the path for a
/// Unix socket).
fn ip_of(addr: &Addr) -> String {
    match addr {
        Addr::Tcp(sa) => sa.ip().to_string(),
        Addr::Host(host, _) => host.clone(),
        Addr::Unix(path) => path.display().to_string(),
    }
}

/// A connection-level failure of the forwarded call (codes 100–199: wrong
/// connection, closed, write failed, dial failed) becomes 502 carrying it;
/// anything else is the upstream's own answer.
fn gateway_status(status: Status) -> Status {
    if (100..200).contains(&status.code()) {
        Status::bad_gateway(format!("upstream: {status}"))
    } else {
        status
    }
}

/// Makes `router` forward every pull and push it has no route for through
/// `proxy` (installs its `unknown_pull` and `unknown_push` fallbacks). Fails
/// if the router already has a fallback.
pub fn routes(router: &mut Router, proxy: Proxy) -> Result<(), RouteError> {
    let for_pulls = proxy.clone();
    router.unknown_pull(move |ctx: PullCtx| {
        let proxy = for_pulls.clone();
        async move { proxy.forward_pull(&ctx).await }
    })?;
    router.unknown_push(move |ctx: PushCtx| {
        let proxy = proxy.clone();
        async move { proxy.forward_push(&ctx).await }
    })?;
    Ok(())
}
