//! Plugins for Jaunt, each behind a cargo feature of the same name.
//!
//! | plugin | what it does |
//! |---|---|
//! | [`auth`] | the AUTH_PULL / AUTH_REPLY handshake of Go erpc: no route is reachable before it succeeds |
//! | [`heartbeat`] | ping idle sessions, answer pings, close sessions that stay silent |
//! | [`binder`] | validate handler arguments before the handler runs (400 naming the field) |
//! | [`ignorecase`] | case-insensitive uris |
//! | [`proxy`] | forward unknown pulls and pushes to another peer |
//! | [`overloader`] | session limit and token-bucket request-rate limits |
//! | [`secure`] | per-message body encryption requested through meta (AEAD) |
//! | [`metrics`] | per-uri counts, errors and latency histograms; Prometheus text |
//!
//! A plugin is added to a peer with `Peer::builder(router).plugin(..)`, or
//! to a route group with `PluginGroups::plugin_group` when it only has route
//! hooks.
#![forbid(unsafe_code)]

#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "binder")]
pub mod binder;
#[cfg(feature = "heartbeat")]
pub mod heartbeat;
#[cfg(feature = "ignorecase")]
pub mod ignorecase;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "overloader")]
pub mod overloader;
#[cfg(feature = "proxy")]
pub mod proxy;
#[cfg(feature = "secure")]
pub mod secure;
