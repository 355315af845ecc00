//! tower for Jaunt: sessions as `tower::Service`s, routes served by tower
//! services, and tower layers on routes and groups — so tower's timeout,
//! retry, rate and concurrency limits, load-shed and balance middleware
//! apply to Jaunt calls on both sides.
//!
//! Calling: a [`SessionService`] wraps a `Session`; a [`PullRequest`] (uri,
//! argument, `PullOptions`) goes in and a `Reply` comes out, failing with a
//! `Status`. It implements `tower::load::Load` (the session's pending
//! pulls), so `tower::balance::p2c` can spread calls over several sessions.
//! tower's own errors (timeout elapsed, overloaded, ...) become statuses
//! with [`StatusLayer`] / [`into_status`]; [`RetryOn`] is a retry policy for
//! idempotent pulls.
//!
//! Serving: [`RoutesExt::route_service`] serves a route with any
//! `tower::Service<PullCtx>`, [`layered`] wraps a handler in a layer, and
//! [`RoutesExt::layered_group`] wraps every pull route of a group.
//!
//! ```
//! use std::time::Duration;
//! use jaunt_peer::{Peer, PullCtx, Router};
//! use jaunt_socket::{code, Status};
//! use jaunt_tower::{layered, PullRequest, RetryOn, SessionService, StatusLayer};
//! use tower::timeout::TimeoutLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! // Server: a handler cut off by a tower timeout after 50ms.
//! let mut router = Router::new();
//! let sleep = |_: PullCtx, ms: u64| async move {
//!     tokio::time::sleep(Duration::from_millis(ms)).await;
//!     Ok::<_, Status>(ms)
//! };
//! router.pull("/sleep", layered(TimeoutLayer::new(Duration::from_millis(50)), sleep)).unwrap();
//! let server = Peer::new(router);
//! let addr = server.listen("127.0.0.1:0").await.unwrap();
//!
//! // Client: a session behind a timeout, retrying idempotent pulls on 408.
//! let client = Peer::new(Router::new());
//! let session = client.dial(&addr).await.unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(StatusLayer)
//!     .retry(RetryOn::new([code::HANDLE_TIMEOUT], 1))
//!     .timeout(Duration::from_secs(5))
//!     .service(SessionService::new(session));
//!
//! let reply = svc.clone().oneshot(PullRequest::new("/sleep", 1u64).idempotent()).await.unwrap();
//! assert_eq!(reply.decode::<u64>().unwrap(), 1);
//! let err = svc.oneshot(PullRequest::new("/sleep", 500u64)).await.unwrap_err();
//! assert_eq!(err.code(), code::HANDLE_TIMEOUT);
//!
//! client.close().await;
//! server.close().await;
//! # });
//! ```
#![forbid(unsafe_code)]

mod client;
mod retry;
mod server;
mod status;

pub use client::{PullFuture, PullRequest, SessionService};
pub use retry::{RetryOn, RetryWait};
pub use server::{
    layered, HandlerService, LayeredGroup, ReplyBody, RoutesExt, ServiceRoute, ServiceShape,
};
pub use status::{
    into_status, status_of, StatusFuture, StatusLayer, StatusService, OVERLOADED_CAUSE,
    TIMEOUT_CAUSE,
};
