//! Handler contexts: [`PullCtx`] and [`PushCtx`].

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use jaunt_codec::{DecodeBody, RawBody, Registry};
use jaunt_router::{BoxFuture, Query, RouteCtx, RouteInfo};

use crate::call::TIMEOUT_META;
use crate::plugin::RouteChain;
use jaunt_socket::{Meta, Packet, Status};

use crate::{Addr, Peer, Session, SessionData};

/// Decodes `body` (codec `codec`) as `T`; a failure is status 400. An empty
/// body without a codec decodes to `()`, `None` or a default protobuf
/// message (see [`Registry::decode`]).
pub(crate) fn decode_body<T: DecodeBody>(
    codecs: &Registry,
    codec: u8,
    body: &Bytes,
) -> Result<T, Status> {
    codecs
        .decode(codec, body)
        .map_err(|e| Status::bad_message(e.to_string()))
}

/// What the handler sets for its reply.
#[derive(Debug, Default)]
pub(crate) struct ReplyOut {
    pub(crate) meta: Meta,
    pub(crate) codec: Option<u8>,
    pub(crate) xfer: Option<Vec<u8>>,
}

struct Input {
    session: Session,
    packet: Packet,
    route: Option<Arc<RouteInfo>>,
    start: Instant,
    query: OnceLock<Query>,
    chain: RouteChain,
    deadline: Option<Instant>,
}

/// The deadline a pull carries in [`TIMEOUT_META`], counted from `start`.
fn deadline_of(packet: &Packet, start: Instant) -> Option<Instant> {
    let ms = packet.meta.get_str(TIMEOUT_META)?.parse::<u64>().ok()?;
    start.checked_add(Duration::from_millis(ms))
}

impl Input {
    fn query(&self) -> &Query {
        self.query.get_or_init(|| Query::from_uri(&self.packet.uri))
    }
}

macro_rules! common_ctx_methods {
    () => {
        /// The peer serving this session.
        pub fn peer(&self) -> Peer {
            self.input().session.peer()
        }

        /// The session the message came on: push or pull back to the caller
        /// through it.
        pub fn session(&self) -> &Session {
            &self.input().session
        }

        /// The full uri, query string included.
        pub fn uri(&self) -> &str {
            &self.input().packet.uri
        }

        /// The uri without its query string.
        pub fn path(&self) -> &str {
            self.input().packet.path()
        }

        /// The parsed query string.
        pub fn query(&self) -> &Query {
            self.input().query()
        }

        /// The incoming meta.
        pub fn meta(&self) -> &Meta {
            &self.input().packet.meta
        }

        /// The incoming sequence number.
        pub fn seq(&self) -> i32 {
            self.input().packet.seq
        }

        /// The incoming body's codec id.
        pub fn body_codec(&self) -> u8 {
            self.input().packet.body_codec
        }

        /// The incoming body, not decoded.
        pub fn raw_body(&self) -> RawBody {
            let p = &self.input().packet;
            RawBody::new(p.body_codec, p.body.clone())
        }

        /// Decodes the incoming body as `T` with the codec the frame names.
        pub fn decode<T: DecodeBody>(&self) -> Result<T, Status> {
            let p = &self.input().packet;
            decode_body(self.input().session.codecs(), p.body_codec, &p.body)
        }

        /// The transfer filters the message came through.
        pub fn xfer(&self) -> &[u8] {
            &self.input().packet.xfer
        }

        /// The other side's address.
        pub fn remote_addr(&self) -> &Addr {
            self.input().session.remote_addr()
        }

        /// The session's public data.
        pub fn data(&self) -> &SessionData {
            self.input().session.data()
        }

        /// Time since the message was read.
        pub fn elapsed(&self) -> Duration {
            self.input().start.elapsed()
        }

        /// The route serving the message (`None` for the unknown-uri fallback).
        pub fn route(&self) -> Option<&Arc<RouteInfo>> {
            self.input().route.as_ref()
        }
    };
}

/// The context of a pull handler. Cheap to clone.
#[derive(Clone)]
pub struct PullCtx {
    inner: Arc<PullInner>,
}

struct PullInner {
    input: Input,
    out: Mutex<ReplyOut>,
}

impl std::fmt::Debug for PullCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullCtx")
            .field("uri", &self.uri())
            .field("seq", &self.seq())
            .finish_non_exhaustive()
    }
}

impl PullCtx {
    pub(crate) fn new(
        session: Session,
        packet: Packet,
        route: Option<Arc<RouteInfo>>,
        start: Instant,
        chain: RouteChain,
    ) -> Self {
        Self {
            inner: Arc::new(PullInner {
                input: Input {
                    session,
                    deadline: deadline_of(&packet, start),
                    packet,
                    route,
                    start,
                    query: OnceLock::new(),
                    chain,
                },
                out: Mutex::new(ReplyOut::default()),
            }),
        }
    }

    fn input(&self) -> &Input {
        &self.inner.input
    }

    pub(crate) fn out(&self) -> MutexGuard<'_, ReplyOut> {
        self.inner.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    common_ctx_methods!();

    /// When the caller stops waiting, if it gave the pull a time budget:
    /// past it the peer replies 408 and drops the handler.
    pub fn deadline(&self) -> Option<Instant> {
        self.input().deadline
    }

    /// Adds a meta entry to the reply.
    pub fn add_reply_meta(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.out().meta.add(key, value);
    }

    /// Sets a meta entry of the reply (replacing any with that key).
    pub fn set_reply_meta(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.out().meta.set(key, value);
    }

    /// Encodes the reply with this codec (instead of the pull's, or the one
    /// it asked for).
    pub fn set_reply_codec(&self, id: u8) {
        self.out().codec = Some(id);
    }

    /// Sends the reply through these transfer filters instead of the pull's.
    pub fn set_reply_xfer(&self, ids: impl Into<Vec<u8>>) {
        self.out().xfer = Some(ids.into());
    }

    pub(crate) fn packet(&self) -> &Packet {
        &self.inner.input.packet
    }
}

impl RouteCtx for PullCtx {
    fn decode_body<T: DecodeBody>(&self) -> Result<T, Status> {
        self.decode()
    }

    fn before_handler(&self) -> Option<BoxFuture<Result<(), Status>>> {
        if self.input().chain.is_empty() {
            return None;
        }
        let ctx = self.clone();
        Some(Box::pin(async move {
            for plugin in ctx.input().chain.iter() {
                plugin.post_read_pull_body(&ctx).await?;
            }
            Ok(())
        }))
    }
}

/// The context of a push handler. Cheap to clone.
#[derive(Clone)]
pub struct PushCtx {
    inner: Arc<Input>,
}

impl std::fmt::Debug for PushCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushCtx")
            .field("uri", &self.uri())
            .field("seq", &self.seq())
            .finish_non_exhaustive()
    }
}

impl PushCtx {
    pub(crate) fn new(
        session: Session,
        packet: Packet,
        route: Option<Arc<RouteInfo>>,
        start: Instant,
        chain: RouteChain,
    ) -> Self {
        Self {
            inner: Arc::new(Input {
                session,
                deadline: None,
                packet,
                route,
                start,
                query: OnceLock::new(),
                chain,
            }),
        }
    }

    fn input(&self) -> &Input {
        &self.inner
    }

    pub(crate) fn packet(&self) -> &Packet {
        &self.inner.packet
    }

    /// The route plugins of its route.
    pub(crate) fn chain(&self) -> &RouteChain {
        &self.inner.chain
    }

    common_ctx_methods!();
}

impl RouteCtx for PushCtx {
    fn decode_body<T: DecodeBody>(&self) -> Result<T, Status> {
        self.decode()
    }

    fn before_handler(&self) -> Option<BoxFuture<Result<(), Status>>> {
        if self.input().chain.is_empty() {
            return None;
        }
        let ctx = self.clone();
        Some(Box::pin(async move {
            for plugin in ctx.input().chain.iter() {
                plugin.post_read_push_body(&ctx).await?;
            }
            Ok(())
        }))
    }
}
