//! Typed services for Jaunt: what the code that `#[jaunt::service]`
//! generates calls through.
//!
//! - [`Stub`]: what carries a typed client's calls — one pull and one push
//!   method. A [`Session`](jaunt_peer::Session) is one (as are `&Session` and
//!   `Arc<Session>`); a balancing or retrying client implements it too, and
//!   typed clients run on top of it without being generated again.
//! - [`PullCall`] and [`PushCall`]: one typed call, with its options chained
//!   before it is awaited (`client.get(key).timeout(d).await`).
//! - [`Naming`]: which uris a client calls (HTTP- or RPC-style, under a
//!   group), resolved once per service by a [`UriTable`].
//!
//! Use it through the `jaunt` crate (`jaunt::service`):
//!
//! ```
//! use jaunt::prelude::*;
//!
//! #[jaunt::service]
//! trait Math {
//!     async fn add(&self, ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status>;
//! }
//!
//! struct Calculator;
//!
//! impl Math for Calculator {
//!     async fn add(&self, _ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status> {
//!         Ok(args.iter().sum())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let mut router = Router::new();
//! router.service(MathServer::new(Calculator)).unwrap();
//! let server = Peer::new(router);
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! let client = Peer::new(Router::new());
//! let math = MathClient::new(client.dial(&addr).await.unwrap());
//! assert_eq!(math.add(vec![1, 2, 3]).await, Ok(6));
//! assert_eq!(MathClient::<Session>::SPEC.uri(Default::default(), &MathClient::<Session>::SPEC.methods[0]), "/math/add");
//!
//! client.close().await;
//! server.close().await;
//! # });
//! ```
#![forbid(unsafe_code)]

mod call;
mod naming;
mod stub;

pub use call::{Decoded, PullCall, PushCall, SendPull, SendPush};
pub use naming::{Naming, UriTable, Uris};
pub use stub::Stub;

use jaunt_socket::Status;

/// A route's outcome with its error converted into a [`Status`] (what the
/// generated servers call on every method's result).
#[doc(hidden)]
pub fn into_status<T, E: Into<Status>>(result: Result<T, E>) -> Result<T, Status> {
    result.map_err(Into::into)
}
