//! Jaunt: a symmetric peer-to-peer RPC framework, wire-compatible with Go
//! erpc (teleport).
//!
//! This is the crate applications depend on; it re-exports the layers:
//!
//! | layer | crate | what it holds |
//! |---|---|---|
//! | peer | [`peer`] | [`Peer`], [`Session`], [`PullCtx`], [`PushCtx`], TLS |
//! | service | [`service`](mod@service) | typed clients: the [`Stub`](service::Stub) seam, typed calls (`#[jaunt::service]`) |
//! | router | [`router`] | [`Router`] (uri → handler), groups, fallbacks |
//! | codec | [`codec`] | body codecs (JSON, protobuf, plain, form, XML) |
//! | socket | [`socket`] | [`Packet`], [`Status`], [`Meta`], framings ([`RawProto`]) |
//! | xfer | [`xfer`] | transfer filters (gzip, md5, encryption) |
//!
//! ```
//! use jaunt::prelude::*;
//!
//! async fn add(_: PullCtx, args: Vec<i64>) -> Result<i64, Status> {
//!     Ok(args.iter().sum())
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let mut router = Router::new();
//! router.group("/math").pull("/add", add).unwrap();
//! let server = Peer::new(router);
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! let client = Peer::new(Router::new());
//! let session = client.dial(&addr).await.unwrap();
//! let reply = session.pull("/math/add", &vec![1, 2, 3]).await.unwrap();
//! assert_eq!(reply.decode::<i64>().unwrap(), 6);
//!
//! client.close().await;
//! server.close().await;
//! # });
//! ```
//!
//! # Controllers
//!
//! [`macro@controller`] on an `impl` block makes each `async fn` a route
//! served by the type's shared state, grouped under the type's name:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! use jaunt::prelude::*;
//!
//! struct Math {
//!     calls: AtomicU64,
//! }
//!
//! #[jaunt::controller]
//! impl Math {
//!     /// Pull `/math/add`.
//!     async fn add(&self, _ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status> {
//!         self.calls.fetch_add(1, Ordering::Relaxed);
//!         Ok(args.iter().sum())
//!     }
//!
//!     /// Push `/math/reset`, without argument.
//!     async fn reset(&self, _ctx: &PushCtx) {
//!         self.calls.store(0, Ordering::Relaxed);
//!     }
//!
//!     /// Not a route: any method that is not one says so.
//!     #[jaunt(skip)]
//!     fn calls(&self) -> u64 {
//!         self.calls.load(Ordering::Relaxed)
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let math = Arc::new(Math { calls: AtomicU64::new(0) });
//! let mut router = Router::new();
//! router.controller_arc(math.clone()).unwrap();
//! let server = Peer::new(router);
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! let client = Peer::new(Router::new());
//! let session = client.dial(&addr).await.unwrap();
//! let reply = session.pull("/math/add", &vec![1, 2, 3]).await.unwrap();
//! assert_eq!(reply.decode::<i64>().unwrap(), 6);
//! assert_eq!(math.calls(), 1);
//!
//! client.close().await;
//! server.close().await;
//! # });
//! ```
#![forbid(unsafe_code)]

pub use jaunt_codec as codec;
pub use jaunt_peer as peer;
pub use jaunt_router as router;
pub use jaunt_service as service;
pub use jaunt_socket as socket;
pub use jaunt_xfer as xfer;

/// Plugins implement their async hooks with this attribute
/// (`#[jaunt::async_trait]`, re-exported from the `async-trait` crate).
pub use async_trait::async_trait;
/// The byte buffer of bodies (re-exported from the `bytes` crate).
pub use bytes::Bytes;
pub use jaunt_codec::{ids as codec_ids, CodecRef, Pb, RawBody};
pub use jaunt_macros::{controller, service};
#[cfg(feature = "restart")]
pub use jaunt_peer::restart;
#[cfg(feature = "tls")]
pub use jaunt_peer::tls;
pub use jaunt_peer::{
    Addr, BroadcastReport, Group, Peer, PeerBuilder, PeerConfig, PeerError, PeerStats, Plugin,
    PluginGroups, PullCtx, PullDone, PullHandle, PullOptions, PushCtx, Reply, RouteKind,
    RoutePlugin, Router, Session, SessionStats, TimerHandle, MIN_TIMER_PERIOD,
};
pub use jaunt_socket::{code, Meta, Packet, PacketType, RawProto, Status};

/// The names most programs need.
pub mod prelude {
    pub use crate::{
        code, Bytes, Pb, Peer, PluginGroups, PullCtx, PullOptions, PushCtx, Reply, Router, Session,
        Status,
    };
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
