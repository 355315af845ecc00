//! Routing for Jaunt: which handler serves a pull or push uri.
//!
//! A [`Router`] maps uri paths to handlers — plain async functions or
//! closures taking a context and a typed argument decoded with the codec the
//! frame names — with nestable [`Group`]s (a prefix, and later their own
//! plugins), fallbacks for unknown uris, and teleport's two naming styles
//! ([`UriMapper`]). The peer crate supplies the context types; users write
//! `jaunt::Router`.
//!
//! ```
//! use jaunt_codec::DecodeBody;
//! use jaunt_router::{RouteCtx, Router};
//! use jaunt_socket::Status;
//!
//! // A stand-in context whose body is always `[1, 2, 3]`.
//! struct Ctx;
//! impl RouteCtx for Ctx {
//!     fn decode_body<T: DecodeBody>(&self) -> Result<T, Status> {
//!         jaunt_codec::Registry::with_defaults()
//!             .decode(b'j', &bytes::Bytes::from_static(b"[1,2,3]"))
//!             .map_err(|e| Status::bad_message(e.to_string()))
//!     }
//! }
//!
//! async fn add(_: Ctx, args: Vec<i64>) -> Result<i64, Status> {
//!     Ok(args.iter().sum())
//! }
//!
//! let mut router: Router<Ctx, Ctx> = Router::new();
//! router.group("/math").pull("/add", add).unwrap();
//! assert!(router.find_pull("/math/add?x=1").is_some());
//! assert!(router.pull("/math/add", add).is_err()); // registered twice
//! ```
#![forbid(unsafe_code)]

mod controller;
mod error;
mod handler;
mod mapper;
mod query;
mod router;

pub use controller::{Controller, ControllerRoutes, MethodKind, MethodSpec, ServiceSpec};
pub use error::RouteError;
pub use handler::{
    BoxFuture, ErasedPull, ErasedPush, IntoPushOutput, PullHandler, PullOutput, PushHandler,
    PushOutput, RouteCtx,
};
pub use mapper::{to_camel, to_snake, UriMapper};
pub use query::Query;
pub use router::{path_of, Group, GroupInfo, GroupPlugin, Route, RouteInfo, Router};
