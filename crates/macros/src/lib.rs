//! Procedural macros for Jaunt. Use them through the `jaunt` crate
//! (`#[jaunt::service]`, `#[jaunt::controller]`), not by depending on this
//! crate: the code they generate names `::jaunt::` paths.
//!
//! - [`macro@service`] on a trait: the definition client and server share.
//!   It generates the trait servers implement, a `…Server` that registers an
//!   implementation on a router, and a typed `…Client`.
//! - [`macro@controller`] on an inherent `impl` block: its `async fn`s are
//!   routes served by the type's shared state (the server half of a service,
//!   without a shared definition).
//!
//! Both check the methods and generate the routes with one code generator
//! (`routes.rs`), so the two cannot drift apart.
//!
//! The example is not compiled here (a proc-macro crate cannot use its own
//! macros in doc tests); the `jaunt` crate's documentation runs the same one.
//!
//! ```text
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use jaunt::{PullCtx, PushCtx, Router, Status};
//!
//! struct Math {
//!     calls: AtomicU64,
//! }
//!
//! #[jaunt::controller]
//! impl Math {
//!     /// Pull `/math/add` (`Math.Add` with RPC-style names).
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
//!     /// Not a route.
//!     #[jaunt(skip)]
//!     fn calls(&self) -> u64 {
//!         self.calls.load(Ordering::Relaxed)
//!     }
//! }
//!
//! let mut router = Router::new();
//! router.controller(Math { calls: AtomicU64::new(0) }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod controller;
mod routes;
mod service;

use proc_macro::TokenStream;

/// Makes the `async fn`s of an inherent `impl` block routes, and implements
/// `jaunt::router::Controller` for the type.
///
/// ```text
/// #[jaunt::controller]
/// impl Math {
///     async fn add(&self, ctx: &PullCtx, args: Vec<i64>) -> Result<i64, Status> { .. }
///     async fn ping(&self, ctx: &PullCtx) -> Result<String, Status> { .. }
///     async fn notify(&self, ctx: &PushCtx, msg: String) { .. }
///     async fn log(&self, ctx: &PushCtx, msg: String) -> Result<(), Status> { .. }
///     #[jaunt(skip)]
///     fn helper(&self) -> u32 { .. }
/// }
/// ```
///
/// Every method of the block is a route, unless marked `#[jaunt(skip)]`
/// (which any other method, async or not, must be). A route method
///
/// - is an `async fn`, not generic, not `unsafe`;
/// - takes `&self`: the controller is shared by all its routes (each holds an
///   `Arc` of it) and calls may run concurrently, so state that changes needs
///   interior mutability (atomics, a `Mutex`, a channel sender, ...);
/// - then takes `&PullCtx` (a pull route) or `&PushCtx` (a push route): the
///   last segment of the type's path decides;
/// - then takes at most one argument, decoded from the message body with the
///   codec its frame names (an owned type: wrap several values in a struct or
///   tuple);
/// - returns `Result<T, Status>` if it serves pulls (`T` is encoded as the
///   reply body), and nothing or `Result<(), Status>` if it serves pushes.
///
/// The routes are named by the router's `UriMapper`: the type's name (the last
/// segment of the `impl`'s self type) is the group, the method's name the
/// route, so `Math::add` serves `/math/add` with HTTP-style names and
/// `Math.Add` with RPC-style names. `router.group("/api").controller(..)`
/// nests it: `/api/math/add`.
///
/// The block itself is emitted unchanged (less the `#[jaunt(..)]`
/// attributes), so the methods stay callable directly. Generic `impl`s and
/// generic types are not supported yet. Mistakes are compile errors pointing
/// at the offending method, receiver, parameter or return type.
///
/// `#[jaunt::controller(uri = "/calc")]` names the group explicitly, and
/// `#[jaunt(uri = "/plus")]` on a method its route, as for services. A method
/// may return `Result<T, E>` for any `E` that converts into `Status`.
///
/// The generated code names `::jaunt::` paths: depend on `jaunt`.
#[proc_macro_attribute]
pub fn controller(attr: TokenStream, item: TokenStream) -> TokenStream {
    controller::expand(attr.into(), item.into()).into()
}

/// Makes a trait a service definition that servers implement and clients
/// call, with one method per route.
///
/// ```text
/// #[jaunt::service]                       // or #[jaunt::service(uri = "/kv")]
/// pub trait Kv {
///     /// A pull: `/kv/get` (`Kv.Get` with RPC-style names).
///     async fn get(&self, ctx: &PullCtx, key: String) -> Result<Option<String>, Status>;
///     /// A pull with an explicit uri: `/kv/set`.
///     #[jaunt(uri = "/set")]
///     async fn put(&self, ctx: &PullCtx, entry: (String, String)) -> Result<(), Status>;
///     /// A push.
///     async fn forget(&self, ctx: &PushCtx, key: String);
/// }
/// ```
///
/// Each method is an `async fn` taking `&self`, then `&PullCtx` (a pull) or
/// `&PushCtx` (a push), then at most one argument (an owned type decoded from
/// the body); a pull returns `Result<T, E>` (`E` is `Status` or converts into
/// it), a push `()` or `Result<(), E>`. From the trait come
///
/// - the trait itself, for servers: `impl Kv for MyKv { async fn get(..) .. }`
///   (its futures must be `Send`: the router runs them on any thread);
/// - `KvServer<T>`: `router.service(KvServer::new(MyKv { .. }))` registers
///   every route (shared state through `&self`);
/// - `KvClient<S = Session>`: `KvClient::new(session).get("a".into()).await`
///   returns `Result<Option<String>, Status>`; per-call options are chained
///   before the await (`.timeout(d)`, `.meta(k, v)`, `.codec(..)`). `S` is any
///   `jaunt::service::Stub`: a session today, a balancing client later.
///
/// Uris follow the router's naming style (HTTP-style `/kv/get` by default,
/// RPC-style `Kv.Get`), with the trait's name as the group and the method's as
/// the route, unless `uri = ".."` gives them. Either side of a connection may
/// serve a service and either may call it. Mistakes are compile errors
/// pointing at the method, receiver, parameter or return type.
///
/// The generated code names `::jaunt::` paths: depend on `jaunt`.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    service::expand(attr.into(), item.into()).into()
}
