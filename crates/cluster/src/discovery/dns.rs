//! Discovery by DNS: a host name's addresses, resolved again periodically.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::Discovery;
use crate::{ClusterError, Endpoints, Instance};

/// A service's instances are the addresses a host name resolves to (each at the same
/// port), resolved again every `interval` (default 30 s) with the system resolver.
///
/// The first resolution happens in [`watch`](Discovery::watch), which fails when it does
/// ([`ClusterError::Unreachable`] with backend `dns`); later failures keep the last set (and
/// are logged). Each address becomes an [`Instance`] whose id is `ip:port`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use jaunt_cluster::discovery::{Discovery, DnsDiscovery};
///
/// let dns = DnsDiscovery::new("localhost", 9090);
/// let kv = dns.watch("kv").await.unwrap();
/// assert!(kv.borrow().values().any(|i| i.addr() == Some("127.0.0.1:9090")));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct DnsDiscovery {
    host: String,
    port: u16,
    interval: Duration,
}

impl DnsDiscovery {
    /// The addresses of `host`, at `port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        DnsDiscovery {
            host: host.into(),
            port,
            interval: Duration::from_secs(30),
        }
    }

    /// Resolves again every `interval` (at least 10 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    async fn resolve(&self, service: &str) -> Result<Endpoints, ClusterError> {
        let addrs: BTreeSet<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| ClusterError::Unreachable {
                backend: "dns",
                reason: format!("{}: {e}", self.host),
            })?
            .collect();
        Ok(addrs
            .into_iter()
            .map(|addr| {
                let id = addr.to_string();
                (id.clone(), Instance::new(id.clone(), service, id))
            })
            .collect())
    }
}

#[async_trait]
impl Discovery for DnsDiscovery {
    async fn watch(&self, service: &str) -> Result<watch::Receiver<Endpoints>, ClusterError> {
        let first = self.resolve(service).await?;
        let (tx, rx) = watch::channel(first);
        let this = self.clone();
        let service = service.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(this.interval) => {}
                    () = tx.closed() => return,
                }
                match this.resolve(&service).await {
                    Ok(set) => {
                        tx.send_if_modified(|current| {
                            let modified = *current != set;
                            *current = set;
                            modified
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "dns discovery: keeping the last addresses")
                    }
                }
            }
        });
        Ok(rx)
    }
}
