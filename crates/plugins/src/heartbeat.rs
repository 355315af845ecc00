//! Heartbeats, compatible with Go erpc's heartbeat plugin: [`Ping`] keeps
//! idle sessions alive, [`Pong`] answers pings and closes sessions whose
//! other side went silent.
//!
//! On the wire a heartbeat is a PULL (or a PUSH) to `/heartbeat` with the
//! meta `hb_=<rate in whole seconds>`, codec `j`, an empty body and a seq
//! from the sender's ordinary counter. A heartbeat PULL is answered with a
//! REPLY echoing its seq, status `code=0` and the JSON body `null`.
//!
//! - [`Ping`] sends a heartbeat on every session (dialed or accepted) that
//!   has been idle — nothing read, nothing written — for at least `rate`.
//!   With `use_pull`, a heartbeat that gets no reply (of any status) within
//!   twice the rate closes the session: the other side is gone.
//! - [`Pong`] watches a session once it has received a heartbeat with
//!   `hb_` > 0, and closes it when it stays silent (no message read or
//!   written) for more than twice that rate. `hb_=0` stops the watch.
//!
//! **The `/heartbeat` routes.** Plugins cannot answer a pull by themselves,
//! so the side that receives heartbeats (the one with the [`Pong`]) must
//! register the two heartbeat handlers (pull and push `/heartbeat`) with
//! [`routes`]. Without them a Jaunt [`Ping`]
//! still counts the 404 reply as a sign of life, but a Go ping closes the
//! session when its heartbeat pull fails; the pong logs a warning the first
//! time it sees a heartbeat that has no route.
//!
//! Add [`Ping`] after an [`auth`](crate::auth) plugin, so that its timer
//! starts once the handshake is done.
//!
//! Both plugins record the time of the last message read or written in the
//! session's data ([`LastActivity`]); the rate the other side announced is
//! there too ([`PeerRate`]).
//!
//! ```
//! use std::time::Duration;
//!
//! use jaunt::prelude::*;
//! use jaunt::plugins::heartbeat::{self, Ping, Pong};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! // The server answers heartbeats and drops clients silent for 2 × their rate.
//! let mut routes = Router::new();
//! heartbeat::routes(&mut routes).unwrap();
//! let server = Peer::builder(routes).plugin(Pong::new()).build().unwrap();
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! // The client pings when it has been idle for 30 s.
//! let client = Peer::builder(Router::new())
//!     .plugin(Ping::new(Duration::from_secs(30)))
//!     .build()
//!     .unwrap();
//! let session = client.dial(&addr).await.unwrap();
//! # drop(session);
//! client.close().await;
//! server.close().await;
//! # });
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use jaunt_codec::ids as codec_ids;
use jaunt_codec::RawBody;
use jaunt_peer::{Plugin, PullCtx, PullOptions, PushCtx, RoutePlugin, Router, Session};
use jaunt_router::RouteError;
use jaunt_socket::{Packet, Status};

/// The uri of heartbeat pulls and pushes.
pub const HEARTBEAT_URI: &str = "/heartbeat";
/// The meta key carrying the sender's heartbeat rate, in whole seconds.
pub const RATE_META_KEY: &str = "hb_";

/// When the session last read or wrote a message (pull, push or reply), kept
/// in its [`data`](Session::data) by [`Ping`] and [`Pong`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastActivity(pub Instant);

impl Default for LastActivity {
    fn default() -> Self {
        Self(Instant::now())
    }
}

/// The heartbeat rate the other side announced (its last `hb_` > 0), kept in
/// the session's [`data`](Session::data) by [`Pong`] while it watches the
/// session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerRate(pub Duration);

/// Registers the heartbeat handlers the [`Pong`] side needs: pull
/// `/heartbeat` (replies `null`) and push `/heartbeat` (does nothing). The
/// pong plugin does the bookkeeping in its hooks; the handlers only answer.
pub fn routes(router: &mut Router) -> Result<(), RouteError> {
    router.pull(HEARTBEAT_URI, |_: PullCtx| async {
        Ok::<Option<()>, Status>(None)
    })?;
    router.push(HEARTBEAT_URI, |_: PushCtx| async {})?;
    Ok(())
}

/// The `hb_` value for `rate`: whole seconds, rounded up, at least 1 (a rate
/// announced larger than the real one never gets a session closed early).
pub fn rate_secs(rate: Duration) -> u64 {
    let secs = rate.as_secs() + u64::from(rate.subsec_nanos() > 0);
    secs.max(1)
}

fn touch(session: &Session) {
    session
        .data()
        .update(|last: &mut LastActivity| last.0 = Instant::now());
}

fn last_activity(session: &Session) -> Option<Instant> {
    session.data().get::<LastActivity>().map(|last| last.0)
}

/// Sends heartbeats on idle sessions (see the [module docs](self)).
///
/// Every session of the peer, dialed or accepted, gets a timer: when nothing
/// has been read or written on it for `rate`, a heartbeat goes out with
/// `hb_` = `rate` in whole seconds (rounded up, at least 1). The timer ends
/// with the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// How long a session may stay idle before a heartbeat is sent. Rates
    /// under a second are allowed (for tests) but announced as `hb_=1`.
    pub rate: Duration,
    /// Send heartbeats as PULLs (the Go default), whose missing reply closes
    /// the session; as PUSHes otherwise.
    pub use_pull: bool,
}

impl Ping {
    /// Heartbeat PULLs every `rate` of idleness.
    pub fn new(rate: Duration) -> Self {
        Self {
            rate,
            use_pull: true,
        }
    }

    /// Sends PUSHes instead of PULLs.
    #[must_use]
    pub fn use_push(mut self) -> Self {
        self.use_pull = false;
        self
    }

    /// The options of a heartbeat message: meta `hb_=<secs>`.
    fn options(&self) -> PullOptions {
        PullOptions::new().meta(RATE_META_KEY, rate_secs(self.rate).to_string())
    }

    fn body() -> RawBody {
        RawBody::new(codec_ids::JSON, Bytes::new())
    }

    /// Sends one heartbeat on `session` and, for a pull, waits for the reply.
    /// Ok: the other side is (or may be) alive; Err: it is not.
    async fn beat(&self, session: &Session) -> Result<(), Status> {
        if !self.use_pull {
            return session
                .push_raw(HEARTBEAT_URI, Self::body(), self.options())
                .await;
        }
        let pull = session.pull_raw(HEARTBEAT_URI, Self::body(), self.options());
        match tokio::time::timeout(self.rate * 2, pull).await {
            // Any reply, even an error status (no route), is a sign of life.
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) if status.code() == jaunt_socket::code::CONN_CLOSED => Err(status),
            Ok(Err(status)) => {
                tracing::debug!(id = %session.id(), %status, "heartbeat answered with an error");
                Ok(())
            }
            Err(_) => Err(Status::conn_closed("no heartbeat reply in time")),
        }
    }

    async fn run(self, session: Session) {
        let rate = self.rate.max(Duration::from_millis(1));
        let started = Instant::now();
        loop {
            let last = last_activity(&session).unwrap_or(started);
            let due = last + rate;
            let now = Instant::now();
            if now < due {
                tokio::select! {
                    () = session.closed() => return,
                    () = tokio::time::sleep_until(due.into()) => continue,
                }
            }
            let beat = tokio::select! {
                () = session.closed() => return,
                beat = self.beat(&session) => beat,
            };
            if let Err(status) = beat {
                if !session.is_closed() {
                    tracing::info!(id = %session.id(), %status, "heartbeat failed: closing the session");
                    session.close();
                }
                return;
            }
            // A push (or a reply that came at once) counts as activity; make
            // sure the loop waits a full rate even if the hooks did not run.
            if last_activity(&session).is_none_or(|last| last < now) {
                session.data().insert(LastActivity(now));
            }
        }
    }

    fn start(&self, session: &Session) {
        touch(session);
        tokio::spawn(self.run(session.clone()));
    }
}

#[async_trait]
impl RoutePlugin for Ping {
    fn name(&self) -> &str {
        "heartbeat-ping"
    }

    async fn post_write_reply(&self, session: &Session, _: &Packet) -> Result<(), Status> {
        touch(session);
        Ok(())
    }
}

#[async_trait]
impl Plugin for Ping {
    async fn post_dial(&self, session: &Session, _is_redial: bool) -> Result<(), Status> {
        self.start(session);
        Ok(())
    }

    async fn post_accept(&self, session: &Session) -> Result<(), Status> {
        self.start(session);
        Ok(())
    }

    async fn post_write_pull(&self, session: &Session, _: &Packet) -> Result<(), Status> {
        touch(session);
        Ok(())
    }

    async fn post_write_push(&self, session: &Session, _: &Packet) -> Result<(), Status> {
        touch(session);
        Ok(())
    }

    async fn post_read_pull_header(&self, session: &Session, _: &mut Packet) -> Result<(), Status> {
        touch(session);
        Ok(())
    }

    async fn post_read_push_header(&self, session: &Session, _: &mut Packet) -> Result<(), Status> {
        touch(session);
        Ok(())
    }

    async fn post_read_reply_header(
        &self,
        session: &Session,
        _: &mut Packet,
    ) -> Result<(), Status> {
        touch(session);
        Ok(())
    }
}

/// Per-session watch state of the pong.
#[derive(Debug, Default)]
struct Watch {
    rate: Option<Duration>,
    running: bool,
}

/// Watches sessions that announced a heartbeat rate and closes those that
/// stay silent for more than twice it (see the [module docs](self)).
///
/// Register the heartbeat handlers with [`routes`] on the same peer.
#[derive(Debug, Default)]
pub struct Pong {
    warned: AtomicBool,
}

impl Pong {
    /// A pong.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a message read on `session`: activity, and the rate if it is a
    /// heartbeat.
    fn on_read(&self, session: &Session, packet: &Packet, is_pull: bool) {
        touch(session);
        if packet.path() != HEARTBEAT_URI {
            return;
        }
        let router = session.peer();
        let router = router.router();
        let routed = if is_pull {
            router.find_pull(HEARTBEAT_URI).is_some()
        } else {
            router.find_push(HEARTBEAT_URI).is_some()
        };
        if !routed && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "a heartbeat arrived but /heartbeat has no route: call jaunt_plugins::heartbeat::routes(&mut router)"
            );
        }
        let Some(secs) = packet
            .meta
            .get_str(RATE_META_KEY)
            .and_then(|v| v.trim().parse::<u64>().ok())
        else {
            return;
        };
        let rate = (secs > 0).then(|| Duration::from_secs(secs));
        match rate {
            Some(rate) => {
                session.data().insert(PeerRate(rate));
            }
            None => {
                session.data().remove::<PeerRate>();
            }
        }
        let start = session.data().update(|watch: &mut Watch| {
            watch.rate = rate;
            let start = rate.is_some() && !watch.running;
            watch.running |= start;
            start
        });
        if start {
            tokio::spawn(watch(session.clone()));
        }
    }
}

/// Closes `session` once it has been silent for more than twice the
/// announced rate; ends when the session closes or the watch is stopped.
async fn watch(session: Session) {
    loop {
        let rate = session.data().update(|watch: &mut Watch| {
            if watch.rate.is_none() {
                watch.running = false;
            }
            watch.rate
        });
        let Some(rate) = rate else { return };
        let last = last_activity(&session).unwrap_or_else(Instant::now);
        let deadline = last + rate * 2;
        if Instant::now() > deadline {
            tracing::info!(
                id = %session.id(),
                rate_secs = rate.as_secs(),
                "no heartbeat for twice the rate: closing the session"
            );
            session.close();
            return;
        }
        tokio::select! {
            () = session.closed() => return,
            () = tokio::time::sleep_until((deadline + Duration::from_millis(1)).into()) => {}
        }
    }
}

#[async_trait]
impl RoutePlugin for Pong {
    fn name(&self) -> &str {
        "heartbeat-pong"
    }

    async fn post_write_reply(&self, session: &Session, _: &Packet) -> Result<(), Status> {
        touch(session);
        Ok(())
    }
}

#[async_trait]
impl Plugin for Pong {
    async fn post_dial(&self, session: &Session, _is_redial: bool) -> Result<(), Status> {
        touch(session);
        Ok(())
    }

    async fn post_accept(&self, session: &Session) -> Result<(), Status> {
        touch(session);
        Ok(())
    }

    async fn post_write_pull(&self, session: &Session, _: &Packet) -> Result<(), Status> {
        touch(session);
        Ok(())
    }

    async fn post_write_push(&self, session: &Session, _: &Packet) -> Result<(), Status> {
        touch(session);
        Ok(())
    }

    async fn post_read_pull_header(
        &self,
        session: &Session,
        pull: &mut Packet,
    ) -> Result<(), Status> {
        self.on_read(session, pull, true);
        Ok(())
    }

    async fn post_read_push_header(
        &self,
        session: &Session,
        push: &mut Packet,
    ) -> Result<(), Status> {
        self.on_read(session, push, false);
        Ok(())
    }

    async fn post_read_reply_header(
        &self,
        session: &Session,
        _: &mut Packet,
    ) -> Result<(), Status> {
        touch(session);
        Ok(())
    }
}
