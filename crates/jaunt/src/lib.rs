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
//! | plugins | `plugins` | auth, heartbeat, binder, ignorecase, proxy, overloader, secure, metrics (features of the same names) |
//! | cluster | `cluster` | discovery, the balanced client, the etcd registry (features `cluster`, `etcd`) |
//! | tower | `tower` | sessions as `tower::Service`s, routes served by tower services (feature `tower`) |
//! | otel | `otel` | W3C trace context across peers, through OpenTelemetry (feature `otel`) |
//!
//! Every type that a signature of these layers names is public in its layer's
//! crate, so it can be named through the module above (for example
//! `jaunt::peer::config::opt_duration`); the ones applications name most
//! are also at the root of this crate (see [Types at the root](#types-at-the-root)).
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
//!
//! # Types at the root
//!
//! | what | types |
//! |---|---|
//! | peers and sessions | [`Peer`], [`PeerBuilder`], [`PeerError`], [`Session`], [`SessionState`], [`SessionData`], [`PeerStats`], [`SessionStats`], [`BroadcastReport`], [`TimerHandle`] |
//! | configuration | [`PeerConfig`] ([`PeerConfigBuilder`]), [`RedialConfig`] ([`RedialConfigBuilder`]), [`SlowConsumer`], [`Handling`], [`TlsFiles`] ([`TlsFilesBuilder`]) |
//! | addresses | [`Addr`], [`ToAddr`], [`AddrParseError`] |
//! | calls | [`PullOptions`], [`PullHandle`], [`PullDone`], [`Reply`] |
//! | handlers | [`Router`], [`Group`], [`PullCtx`], [`PushCtx`], [`RouteError`], [`RouteInfo`] |
//! | plugins | [`Plugin`], [`RoutePlugin`], [`PluginGroups`], [`RouteKind`], [`PullEnd`], [`PullOutcome`], [`ServeEnd`], [`HookFuture`] |
//! | messages | [`Packet`], [`PacketType`], [`Meta`], [`Status`], [`code`], [`Bytes`] |
//! | bodies | [`CodecRef`], [`CodecError`], [`RawBody`], `Pb` (feature `protobuf`), [`codec_ids`] |
//! | framings and filters | [`Proto`], [`ProtoConfig`], [`RawProto`], `JsonProto` (feature `json-proto`), `PbProto` (feature `pb-proto`), [`XferRegistry`], [`XferFilter`] |
//! | typed services | [`Stub`](service::Stub), [`macro@service`], [`macro@controller`] |
//!
//! # Cargo features
//!
//! Each optional part is a feature, and turning it off removes its
//! dependencies from the build. Every feature is on by default but `binder`
//! and `anyhow`.
//!
//! | feature | what it adds | dependencies it brings |
//! |---|---|---|
//! | `tls` | `Peer::listen_tls`, `Peer::dial_tls`, `jaunt::tls` | rustls (tokio-rustls, ring) |
//! | `restart` | graceful restart: `jaunt::restart`, `Inherited` | nix, command-fds, listenfd |
//! | `protobuf` | the protobuf body codec, `Pb` | prost |
//! | `form` | the URL-encoded form body codec | serde_urlencoded |
//! | `xml` | the XML body codec | quick-xml |
//! | `json-proto` | `JsonProto`, the JSON framing of Go erpc | serde_json |
//! | `pb-proto` | `PbProto`, the protobuf framing of Go erpc | prost |
//! | `gzip` | the gzip transfer filter (`g`) in every peer's registry | flate2 |
//! | `md5` | the MD5 checksum transfer filter (`m`) in every peer's registry | md-5 |
//! | `aead` | the ChaCha20-Poly1305 transfer filter `xfer::AeadFilter` | chacha20poly1305 |
//! | `anyhow` | `From<anyhow::Error> for Status` | anyhow (off by default) |
//! | `plugins` | the commonly used plugins: all below but `binder` | |
//! | `auth`, `heartbeat`, `binder`, `ignorecase`, `proxy`, `overloader`, `secure`, `metrics` | `jaunt::plugins::<name>` | jaunt-plugins; binder: validator; auth: sha2, subtle; secure: chacha20poly1305; metrics: metrics, metrics-exporter-prometheus |
//! | `cluster` | `jaunt::cluster`: static and DNS discovery, the balanced client | jaunt-cluster (off by default) |
//! | `etcd` | `jaunt::cluster` with the etcd registry and discovery; **its build needs `protoc`** | etcd-client (tonic, prost) (off by default) |
//! | `tower` | `jaunt::tower`: tower adapters | jaunt-tower, tower (off by default) |
//! | `otel` | `jaunt::otel`: OpenTelemetry trace context | jaunt-otel, opentelemetry (off by default) |
//!
//! The JSON body codec (the default one) and the raw framing are always built in.
//!
//! ```toml
//! # Only the core: no TLS, no restart, no XML, no filters, no plugins.
//! jaunt = { version = "0.1", default-features = false }
//! # The core with the auth and heartbeat plugins.
//! jaunt = { version = "0.1", default-features = false, features = ["auth", "heartbeat"] }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The cluster layer (feature `cluster`; the etcd backend with `etcd`): discovery, the
/// balanced client, the registry.
#[cfg(feature = "cluster")]
pub use jaunt_cluster as cluster;
pub use jaunt_codec as codec;
/// OpenTelemetry trace context across peers (feature `otel`).
#[cfg(feature = "otel")]
pub use jaunt_otel as otel;
pub use jaunt_peer as peer;
/// The plugins, each behind the feature of its name (`plugins` turns on all
/// but `binder`).
#[cfg(any(
    feature = "auth",
    feature = "heartbeat",
    feature = "binder",
    feature = "ignorecase",
    feature = "proxy",
    feature = "overloader",
    feature = "secure",
    feature = "metrics"
))]
pub use jaunt_plugins as plugins;
pub use jaunt_router as router;
pub use jaunt_service as service;
pub use jaunt_socket as socket;
/// tower adapters (feature `tower`).
#[cfg(feature = "tower")]
pub use jaunt_tower as tower;
pub use jaunt_xfer as xfer;

/// Plugins implement their async hooks with this attribute
/// (`#[jaunt::async_trait]`, re-exported from the `async-trait` crate).
pub use async_trait::async_trait;
/// The byte buffer of bodies (re-exported from the `bytes` crate).
pub use bytes::Bytes;
#[cfg(feature = "protobuf")]
pub use jaunt_codec::Pb;
pub use jaunt_codec::{ids as codec_ids, CodecError, CodecRef, RawBody};
pub use jaunt_macros::{controller, service};
#[cfg(feature = "restart")]
pub use jaunt_peer::restart;
#[cfg(feature = "tls")]
pub use jaunt_peer::tls;
#[cfg(feature = "restart")]
pub use jaunt_peer::Inherited;
pub use jaunt_peer::{
    Addr, AddrParseError, BroadcastReport, Group, Handling, HookFuture, Peer, PeerBuilder,
    PeerConfig, PeerConfigBuilder, PeerError, PeerStats, Plugin, PluginGroups, PullCtx, PullDone,
    PullEnd, PullHandle, PullOptions, PullOutcome, PushCtx, RedialConfig, RedialConfigBuilder,
    Reply, RouteKind, RoutePlugin, Router, ServeEnd, Session, SessionData, SessionState,
    SessionStats, SlowConsumer, TimerHandle, TlsFiles, TlsFilesBuilder, ToAddr, MIN_TIMER_PERIOD,
};
pub use jaunt_router::{RouteError, RouteInfo};
#[cfg(feature = "json-proto")]
pub use jaunt_socket::JsonProto;
#[cfg(feature = "pb-proto")]
pub use jaunt_socket::PbProto;
pub use jaunt_socket::{code, Meta, Packet, PacketType, Proto, ProtoConfig, RawProto, Status};
pub use jaunt_xfer::{XferFilter, XferRegistry};

/// The names most programs need.
pub mod prelude {
    #[cfg(feature = "protobuf")]
    pub use crate::Pb;
    pub use crate::{
        code, Bytes, Peer, PluginGroups, PullCtx, PullOptions, PushCtx, Reply, Router, Session,
        Status,
    };
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// This crate's own README (the one crates.io shows), compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;
