//! Discovery: where a balanced client learns a service's current instances.
//!
//! A [`Discovery`] backend answers [`Discovery::watch`] with a
//! [`tokio::sync::watch::Receiver`] that always holds the **whole current set** of a
//! service's instances ([`Endpoints`]), replaced as it changes: a client never sees a
//! half-applied change, a duplicate or a stale entry, only successive sets.
//!
//! Backends: [`StaticList`] (a fixed list: simple deployments, tests), [`Manual`],
//! [`DnsDiscovery`], and (feature `etcd`) `EtcdDiscovery`.

mod dns;
#[cfg(feature = "etcd")]
mod etcd;

pub use dns::DnsDiscovery;
#[cfg(feature = "etcd")]
pub use etcd::EtcdDiscovery;

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
        let (tx, rx) = watch::channel(of_service(&self.instances, service));
        // Nothing will change: the sender may go; receivers keep the last value.
        drop(tx);
        Ok(rx)
    }
}

/// A list of instances the program changes itself (from its own configuration, say):
/// every [`set`](Manual::set) replaces the set its watchers see.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use jaunt_cluster::discovery::{Discovery, Manual};
/// use jaunt_cluster::Instance;
///
/// let manual = Manual::new();
/// let mut kv = manual.watch("kv").await.unwrap();
/// assert!(kv.borrow().is_empty());
/// manual.set([Instance::new("a", "kv", "127.0.0.1:9001")]);
/// kv.changed().await.unwrap(); // the watcher sees every new set
/// assert_eq!(kv.borrow().len(), 1);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Manual {
    all: watch::Sender<Vec<Instance>>,
}

impl Default for Manual {
    fn default() -> Self {
        Manual::new()
    }
}

impl Manual {
    /// No instances yet.
    pub fn new() -> Self {
        Manual {
            all: watch::channel(Vec::new()).0,
        }
    }

    /// Replaces the instances (of any services).
    pub fn set(&self, instances: impl IntoIterator<Item = Instance>) {
        self.all.send_replace(instances.into_iter().collect());
    }
}

fn of_service(all: &[Instance], service: &str) -> Endpoints {
    all.iter()
        .filter(|i| i.service == service)
        .map(|i| (i.id.clone(), i.clone()))
        .collect()
}

#[async_trait]
impl Discovery for Manual {
    async fn watch(&self, service: &str) -> Result<watch::Receiver<Endpoints>, ClusterError> {
        let mut all = self.all.subscribe();
        let (tx, rx) = watch::channel(of_service(&all.borrow_and_update(), service));
        let service = service.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = all.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let set = of_service(&all.borrow_and_update(), &service);
                        tx.send_if_modified(|current| {
                            let modified = *current != set;
                            *current = set;
                            modified
                        });
                    }
                    () = tx.closed() => break,
                }
            }
        });
        Ok(rx)
    }
}
