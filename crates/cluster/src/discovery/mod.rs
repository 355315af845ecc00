//! Discovery: where a balanced client learns a service's current instances.
//!
//! A [`Discovery`] backend answers [`Discovery::watch`] with a
//! [`tokio::sync::watch::Receiver`] that always holds the **whole current set** of a
//! service's instances ([`Endpoints`]), replaced as it changes: a client never sees a
//! half-applied change, a duplicate or a stale entry, only successive sets.
//!
//! Backends: [`StaticList`] (a fixed list: simple deployments, tests), DNS, and (feature
//! `etcd`) etcd.

use std::collections::BTreeMap;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{ClusterError, Endpoints, Instance};

/// A source of a service's instances.
#[async_trait]
pub trait Discovery: Send + Sync + 'static {
    /// Starts following `service`'s instances. The receiver holds the current set and is
    /// updated until every clone of it is dropped (then the backend stops watching).
    ///
    /// Fails when the backend cannot give a first answer and is configured to fail fast;
    /// a backend that retries instead returns at once with an empty set.
    async fn watch(&self, service: &str) -> Result<watch::Receiver<Endpoints>, ClusterError>;
}

/// A fixed list of instances.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use jaunt_cluster::discovery::{Discovery, StaticList};
/// use jaunt_cluster::Instance;
///
/// let list = StaticList::new([
///     Instance::new("a", "kv", "127.0.0.1:9001"),
///     Instance::new("b", "kv", "127.0.0.1:9002"),
///     Instance::new("c", "other", "127.0.0.1:9003"),
/// ]);
/// let kv = list.watch("kv").await.unwrap();
/// assert_eq!(kv.borrow().len(), 2);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticList {
    instances: Vec<Instance>,
}

impl StaticList {
    /// These instances (of any services).
    pub fn new(instances: impl IntoIterator<Item = Instance>) -> Self {
        StaticList {
            instances: instances.into_iter().collect(),
        }
    }
}

#[async_trait]
impl Discovery for StaticList {
    async fn watch(&self, service: &str) -> Result<watch::Receiver<Endpoints>, ClusterError> {
        let set: BTreeMap<String, Instance> = self
            .instances
            .iter()
            .filter(|i| i.service == service)
            .map(|i| (i.id.clone(), i.clone()))
            .collect();
        let (tx, rx) = watch::channel(set);
        // Nothing will change: the sender may go; receivers keep the last value.
        drop(tx);
        Ok(rx)
    }
}
