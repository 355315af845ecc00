//! The cluster layer of Jaunt: how a fleet of services finds and uses its peers.
//!
//! - [`Instance`]: one running instance of a service, as it is registered (its addresses,
//!   the services it serves, weight, version, metadata).
//! - [`discovery`]: where a client learns a service's current instances — the
//!   [`Discovery`](discovery::Discovery) trait, with a static list, DNS and (feature `etcd`)
//!   an etcd watch behind it.
//! - `registry` (feature `etcd`): a plugin that registers a listening peer's services in etcd
//!   under a lease, and revokes it first on shutdown.
//! - `client`: a balanced client that calls a service by name over a pool of sessions per
//!   instance, with failover for idempotent pulls.
//!
//! The `etcd` feature (the registry and `EtcdDiscovery`) needs `protoc` at build time, for
//! the etcd gRPC client; the rest builds without it. The key layout, the lease lifecycle and
//! the discovery semantics are in `docs/cluster.md`.

pub mod client;
pub mod discovery;
mod error;
#[cfg(feature = "etcd")]
mod etcd_conn;
mod instance;
#[cfg(feature = "etcd")]
pub mod registry;

pub use error::ClusterError;
pub use instance::{Endpoints, Instance};
