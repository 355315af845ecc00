//! The etcd registry (feature `etcd`): a listening peer's service instances, registered
//! under a lease.
//!
//! Each instance is the key `{prefix}/{service}/{id}` whose value is the [`Instance`] as
//! JSON, attached to an etcd **lease** with a TTL ([`EtcdConfig::ttl`]) that a background
//! task keeps alive (every third of the TTL). When the process stops, the lease expires and
//! etcd deletes the key. When etcd cannot be reached the peer keeps serving and the task
//! keeps retrying with backoff; when the lease is lost (keep-alive answers TTL 0: it
//! expired during a partition, or was revoked) the instance is registered again under a
//! new lease.
//!
//! On graceful shutdown, [`EtcdRegistry::shutdown_peer`] revokes the leases **first** —
//! the keys go, and callers following the registry stop choosing this peer — and only
//! then shuts the peer down (stop accepting, drain the calls under way).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use jaunt::prelude::*;
//! use jaunt_cluster::registry::{EtcdConfig, EtcdRegistry};
//! use jaunt_cluster::Instance;
//!
//! let registry = EtcdRegistry::new(EtcdConfig::new(["http://127.0.0.1:2379"]))?;
//! // No address in the template: the plugin registers the address the peer listens on.
//! let mut template = Instance::new("kv-1", "kv", "");
//! template.addrs.clear();
//! let peer = Peer::builder(Router::new()).plugin(registry.plugin(template)).build()?;
//! peer.listen("127.0.0.1:9090").await?; // registered in etcd once listening
//! // ... on SIGTERM: deregister first, then drain.
//! registry.shutdown_peer(&peer, Duration::from_secs(10)).await;
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, PutOptions};
use jaunt_peer::{Addr, Peer, Plugin, RoutePlugin};
use jaunt_socket::{code, Status};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::etcd_conn::Backoff;
pub use crate::etcd_conn::{EtcdConfig, StartupPolicy};
use crate::{ClusterError, Instance};
/// The etcd client these are built on (for reading or writing the registry directly).
pub use etcd_client;

/// Registers instances in etcd; see the [module docs](self).
#[derive(Clone)]
pub struct EtcdRegistry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    config: EtcdConfig,
    /// The registrations the plugin made, deregistered by `deregister_all`.
    held: Mutex<Vec<Registration>>,
}

impl std::fmt::Debug for EtcdRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdRegistry")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Where a [`Registration`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RegistrationState {
    /// The key is in etcd under a lease kept alive (as far as the last keep-alive knows).
    pub registered: bool,
    /// The current lease (0 before the first registration).
    pub lease: i64,
    /// How many times the instance was (re-)registered under a new lease.
    pub leases_granted: u64,
}

/// One registered instance: its key stays in etcd while this lives and its lease is kept
/// alive. [`deregister`](Self::deregister) removes it at once (revokes the lease); dropping
/// it stops the keep-alives, so the key goes when the lease expires.
pub struct Registration {
    key: String,
    state: watch::Receiver<RegistrationState>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("key", &self.key)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl Registration {
    /// The etcd key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Where the registration stands now.
    pub fn state(&self) -> RegistrationState {
        *self.state.borrow()
    }

    /// Follows the state (for health reporting, tests).
    pub fn watch_state(&self) -> watch::Receiver<RegistrationState> {
        self.state.clone()
    }

    /// Waits until the instance is registered.
    pub async fn registered(&self) {
        let mut state = self.state.clone();
        let _ = state.wait_for(|s| s.registered).await;
    }

    /// Revokes the lease (the key goes at once) and stops the keep-alives. Returns when the
    /// revoke was answered, or failed (etcd unreachable: the key then goes when the lease
    /// expires), or after the connect timeout.
    pub async fn deregister(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl EtcdRegistry {
    /// A registry with these settings (checked: endpoints given, TTL at least 1 s). Nothing
    /// is connected until the first registration.
    pub fn new(config: EtcdConfig) -> Result<Self, ClusterError> {
        config.check()?;
        Ok(EtcdRegistry {
            inner: Arc::new(RegistryInner {
                config,
                held: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &EtcdConfig {
        &self.inner.config
    }

    /// Registers `instance` and keeps it registered until the [`Registration`] is
    /// deregistered or dropped.
    ///
    /// With [`StartupPolicy::Fail`], the first registration happens before this returns and
    /// its failure ([`ClusterError::Unreachable`] naming the endpoints) is returned; with
    /// [`StartupPolicy::Retry`] this returns at once and the registration is made (and
    /// retried) in the background. Either way, later failures are retried.
    pub async fn register(&self, instance: Instance) -> Result<Registration, ClusterError> {
        if instance.service.is_empty() || instance.id.is_empty() {
            return Err(ClusterError::Config(
                "an instance needs a service name and an id".into(),
            ));
        }
        if instance.service.contains('/') || instance.id.contains('/') {
            return Err(ClusterError::Config(format!(
                "service {:?} or id {:?} contains '/'",
                instance.service, instance.id
            )));
        }
        let config = self.inner.config.clone();
        let key = config.key(&instance.service, &instance.id);
        let value = serde_json::to_vec(&instance)
            .map_err(|e| ClusterError::Config(format!("instance does not serialize: {e}")))?;
        let (state_tx, state) = watch::channel(RegistrationState::default());
        let first = match config.startup {
            StartupPolicy::Fail => {
                let (client, lease) = establish(&config, &key, &value, None).await?;
                state_tx.send_modify(|s| {
                    s.registered = true;
                    s.lease = lease;
                    s.leases_granted = 1;
                });
                Some((client, lease))
            }
            StartupPolicy::Retry => None,
        };
        let (stop, stopped) = watch::channel(false);
        let keeper = Keeper {
            config,
            key: key.clone(),
            value,
            state: state_tx,
        };
        let task = tokio::spawn(keeper.run(first, stopped));
        Ok(Registration {
            key,
            state,
            stop,
            task: Some(task),
        })
    }

    /// A peer plugin that registers an instance each time the peer listens: `template`
    /// with, when its `addrs` is empty, the address listened on, and when its `id` is
    /// empty, that address as the id. The registrations are held by the registry and
    /// removed by [`deregister_all`](Self::deregister_all) or
    /// [`shutdown_peer`](Self::shutdown_peer).
    ///
    /// With [`StartupPolicy::Fail`], a failed first registration fails `listen`.
    pub fn plugin(&self, template: Instance) -> RegistryPlugin {
        RegistryPlugin {
            registry: self.clone(),
            template,
        }
    }

    /// Deregisters (revokes) every registration the plugin made.
    pub async fn deregister_all(&self) {
        let held: Vec<Registration> =
            std::mem::take(&mut *self.inner.held.lock().unwrap_or_else(|e| e.into_inner()));
        for registration in held {
            registration.deregister().await;
        }
    }

    /// Graceful shutdown in the right order: deregisters first (callers stop choosing this
    /// peer), keeps serving for [`EtcdConfig::deregister_grace`] (callers see the keys go),
    /// then [`Peer::shutdown`] (stop accepting, drain the calls under way, close) within
    /// `timeout`. Returns what `shutdown` returns.
    pub async fn shutdown_peer(&self, peer: &Peer, timeout: Duration) -> bool {
        self.deregister_all().await;
        tokio::time::sleep(self.inner.config.deregister_grace).await;
        peer.shutdown(timeout).await
    }

    /// The registrations the plugin holds: their keys and states.
    pub fn held(&self) -> Vec<(String, RegistrationState)> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| (r.key.clone(), r.state()))
            .collect()
    }
}

/// The peer plugin of [`EtcdRegistry::plugin`].
pub struct RegistryPlugin {
    registry: EtcdRegistry,
    template: Instance,
}

impl RoutePlugin for RegistryPlugin {
    fn name(&self) -> &str {
        "etcd-registry"
    }
}

#[async_trait]
impl Plugin for RegistryPlugin {
    async fn post_listen(&self, addr: &Addr) -> Result<(), Status> {
        let mut instance = self.template.clone();
        if instance.addrs.is_empty() {
            instance.addrs.push(addr.to_string());
        }
        if instance.id.is_empty() {
            instance.id = addr.to_string().replace('/', "_");
        }
        let registration = self.registry.register(instance).await.map_err(|e| {
            Status::new(code::DIAL_FAILED, "registry unreachable").with_cause(e.to_string())
        })?;
        self.registry
            .inner
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(registration);
        Ok(())
    }
}

/// Connects and puts the key under `lease` when it is still alive, else under a new one.
async fn establish(
    config: &EtcdConfig,
    key: &str,
    value: &[u8],
    lease: Option<i64>,
) -> Result<(Client, i64), ClusterError> {
    let mut client = config.connect().await?;
    let failed = |what: &str, e: etcd_client::Error| ClusterError::Unreachable {
        backend: "etcd",
        reason: format!("{}: {what}: {e}", config.endpoints.join(", ")),
    };
    let alive = match lease {
        Some(lease) => match keep_alive_once(&mut client, lease, config.connect_timeout).await {
            Ok(ttl) if ttl > 0 => Some(lease),
            _ => None,
        },
        None => None,
    };
    let lease = match alive {
        Some(lease) => lease,
        None => {
            let grant = tokio::time::timeout(
                config.connect_timeout,
                client.lease_grant(config.ttl_secs(), None),
            )
            .await
            .map_err(|_| ClusterError::Unreachable {
                backend: "etcd",
                reason: "lease grant timed out".into(),
            })?
            .map_err(|e| failed("lease grant", e))?;
            grant.id()
        }
    };
    tokio::time::timeout(
        config.connect_timeout,
        client.put(key, value, Some(PutOptions::new().with_lease(lease))),
    )
    .await
    .map_err(|_| ClusterError::Unreachable {
        backend: "etcd",
        reason: "put timed out".into(),
    })?
    .map_err(|e| failed("put", e))?;
    Ok((client, lease))
}

/// One keep-alive round trip: the lease's remaining TTL (0: it is gone).
async fn keep_alive_once(
    client: &mut Client,
    lease: i64,
    timeout: Duration,
) -> Result<i64, etcd_client::Error> {
    let round = async {
        let (mut keeper, mut stream) = client.lease_keep_alive(lease).await?;
        keeper.keep_alive().await?;
        match stream.message().await? {
            Some(answer) => Ok(answer.ttl()),
            None => Ok(0),
        }
    };
    tokio::time::timeout(timeout, round)
        .await
        .unwrap_or_else(|_| {
            Err(etcd_client::Error::InvalidArgs(
                "keep-alive timed out".into(),
            ))
        })
}

/// Returns when the registration's owner asks to deregister; never when it is dropped
/// instead (its task is aborted then).
async fn stop_requested(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Why the keep-alive loop ended.
enum KeepAliveEnd {
    /// etcd says the lease is gone (TTL 0).
    LeaseLost,
    /// etcd could not be reached; the lease may still be alive.
    Broken(String),
}

/// The background task of one registration.
struct Keeper {
    config: EtcdConfig,
    key: String,
    value: Vec<u8>,
    state: watch::Sender<RegistrationState>,
}

impl Keeper {
    async fn run(self, first: Option<(Client, i64)>, stopped: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(&self.config);
        let mut current = first;
        let mut last_lease: Option<i64> = None;
        loop {
            let (client, lease) = match current.take() {
                Some(established) => established,
                None => {
                    let attempt = tokio::select! {
                        attempt = establish(&self.config, &self.key, &self.value, last_lease) => attempt,
                        () = stop_requested(stopped.clone()) => return self.stop(None).await,
                    };
                    match attempt {
                        Ok((client, lease)) => {
                            backoff.reset();
                            self.state.send_modify(|s| {
                                s.registered = true;
                                if s.lease != lease {
                                    s.leases_granted += 1;
                                }
                                s.lease = lease;
                            });
                            tracing::info!(key = %self.key, lease, "registered in etcd");
                            (client, lease)
                        }
                        Err(e) => {
                            tracing::warn!(key = %self.key, error = %e, "etcd registration failed; retrying");
                            tokio::select! {
                                () = backoff.wait() => continue,
                                () = stop_requested(stopped.clone()) => return self.stop(None).await,
                            }
                        }
                    }
                }
            };
            let revoke_with = client.clone();
            let end = tokio::select! {
                end = self.keep_alive(client, lease) => end,
                () = stop_requested(stopped.clone()) => return self.stop(Some((revoke_with, lease))).await,
            };
            self.state.send_modify(|s| s.registered = false);
            match end {
                KeepAliveEnd::LeaseLost => {
                    tracing::warn!(key = %self.key, lease, "etcd lease lost; registering again");
                    last_lease = None;
                }
                KeepAliveEnd::Broken(reason) => {
                    tracing::warn!(key = %self.key, lease, %reason, "etcd keep-alive failed; retrying");
                    last_lease = Some(lease);
                    tokio::select! {
                        () = backoff.wait() => {}
                        () = stop_requested(stopped.clone()) => return self.stop(None).await,
                    }
                }
            }
        }
    }

    /// Keeps `lease` alive every third of the TTL until etcd fails or says it is gone.
    async fn keep_alive(&self, mut client: Client, lease: i64) -> KeepAliveEnd {
        let interval = self.config.ttl / 3;
        let (mut keeper, mut stream) = match client.lease_keep_alive(lease).await {
            Ok(pair) => pair,
            Err(e) => return KeepAliveEnd::Broken(e.to_string()),
        };
        loop {
            if let Err(e) = keeper.keep_alive().await {
                return KeepAliveEnd::Broken(e.to_string());
            }
            match tokio::time::timeout(self.config.connect_timeout, stream.message()).await {
                Ok(Ok(Some(answer))) if answer.ttl() > 0 => {}
                Ok(Ok(Some(_))) => return KeepAliveEnd::LeaseLost,
                Ok(Ok(None)) => return KeepAliveEnd::Broken("keep-alive stream ended".into()),
                Ok(Err(e)) => return KeepAliveEnd::Broken(e.to_string()),
                Err(_) => return KeepAliveEnd::Broken("no keep-alive answer in time".into()),
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Deregisters: revokes the lease (with a fresh connection when none is at hand).
    async fn stop(self, established: Option<(Client, i64)>) {
        let lease = established.as_ref().map(|(_, lease)| *lease).or_else(|| {
            let s = *self.state.borrow();
            (s.lease != 0).then_some(s.lease)
        });
        if let Some(lease) = lease {
            let revoke = async {
                let mut client = match established {
                    Some((client, _)) => client,
                    None => self.config.connect().await.map_err(|e| e.to_string())?,
                };
                client.lease_revoke(lease).await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout(self.config.connect_timeout, revoke).await {
                Ok(Ok(_)) => tracing::info!(key = %self.key, lease, "deregistered from etcd"),
                Ok(Err(e)) => {
                    tracing::warn!(key = %self.key, lease, error = %e, "lease revoke failed; the key goes when it expires")
                }
                Err(_) => {
                    tracing::warn!(key = %self.key, lease, "lease revoke timed out; the key goes when it expires")
                }
            }
        }
        self.state.send_modify(|s| s.registered = false);
    }
}
