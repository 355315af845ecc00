//! Procedural macros for Jaunt. Use them through the `jaunt` crate
//! (`#[jaunt::controller]`), not by depending on this crate: the code they
//! generate names `::jaunt::` paths.
//!
//! There is one so far, [`macro@controller`]: on an inherent `impl` block it
//! turns every `async fn` into a route served by the type's shared state and
//! implements `jaunt::router::Controller`, so that
//! `router.controller(Math { .. })` registers them all under a group named
//! after the type.
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
/// The generated code names `::jaunt::` paths: depend on `jaunt`.
#[proc_macro_attribute]
pub fn controller(attr: TokenStream, item: TokenStream) -> TokenStream {
    controller::expand(attr.into(), item.into()).into()
}
