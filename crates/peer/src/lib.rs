//! The peer layer of Jaunt: [`Peer`], [`Session`] and the handler contexts.
//!
//! A [`Peer`] is server and client at once: it [listens](Peer::listen) (TCP
//! or Unix sockets, optionally TLS), [dials](Peer::dial), or
//! [serves a stream](Peer::serve_conn) it is given. Every connection becomes
//! a [`Session`], and both ends of a session are equal: either side can
//! [pull](Session::pull) (request and await the reply, or
//! [start it](Session::async_pull) and collect the reply later),
//! [push](Session::push) (one-way), and serve the other side's pulls and
//! pushes through its [`Router`].
//!
//! ```
//! use jaunt_peer::{Peer, PullCtx, PushCtx, Router};
//! use jaunt_socket::Status;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! // The server greets, and pushes back to whoever pulls.
//! let mut server_routes = Router::new();
//! server_routes
//!     .pull("/hello", |ctx: PullCtx, name: String| async move {
//!         ctx.session().push("/notice", &format!("{name} was here")).await?;
//!         Ok::<_, Status>(format!("hello, {name}"))
//!     })
//!     .unwrap();
//! let server = Peer::new(server_routes);
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! // The client serves the push.
//! let (tx, mut rx) = tokio::sync::mpsc::channel(1);
//! let mut client_routes = Router::new();
//! client_routes
//!     .push("/notice", move |_: PushCtx, text: String| {
//!         let tx = tx.clone();
//!         async move { tx.send(text).await.ok(); }
//!     })
//!     .unwrap();
//! let client = Peer::new(client_routes);
//! let session = client.dial(&addr).await.unwrap();
//!
//! let greeting: String = session.pull("/hello", &"ann").await.unwrap().decode().unwrap();
//! assert_eq!(greeting, "hello, ann");
//! assert_eq!(rx.recv().await.unwrap(), "ann was here");
//!
//! client.close().await;
//! server.close().await;
//! # });
//! ```
#![forbid(unsafe_code)]

mod addr;
mod broadcast;
mod call;
pub mod config;
mod context;
mod data;
mod dispatch;
mod hub;
mod limits;
mod link;
mod peer;
mod plugin;
mod reader;
mod redial;
#[cfg(feature = "restart")]
pub mod restart;
mod seq_map;
mod session;
mod signal;
mod spare;
mod stats;
mod telemetry;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
mod turns;
mod wire;
mod writer;

pub use addr::{Addr, AddrParseError, ToAddr};
pub use broadcast::BroadcastReport;
pub use call::{
    PullDone, PullHandle, PullOptions, Reply, ACCEPT_BODY_CODEC, CANCEL_SEQ_META, CANCEL_URI,
    TIMEOUT_META,
};
pub use config::{
    Handling, PeerConfig, PeerConfigBuilder, RedialConfig, RedialConfigBuilder, SlowConsumer,
    TlsFiles, TlsFilesBuilder,
};
pub use context::{PullCtx, PushCtx};
pub use data::SessionData;
pub use peer::{Peer, PeerBuilder, PeerError};
pub use plugin::{
    HookFuture, Plugin, PluginGroups, PullEnd, PullOutcome, RouteKind, RoutePlugin, ServeEnd,
};
#[cfg(feature = "restart")]
pub use restart::Inherited;
pub use session::{Session, SessionState};
pub use stats::{PeerStats, SessionStats};
pub use telemetry::{TracePropagator, TRACEPARENT_META, TRACESTATE_META};
pub use timer::{TimerHandle, MIN_TIMER_PERIOD};

/// The router with this crate's contexts: handlers are
/// `async fn(PullCtx, T) -> Result<R, Status>` and `async fn(PushCtx, T)`.
pub type Router = jaunt_router::Router<PullCtx, PushCtx>;
/// A route group of [`Router`].
pub type Group<'r> = jaunt_router::Group<'r, PullCtx, PushCtx>;
