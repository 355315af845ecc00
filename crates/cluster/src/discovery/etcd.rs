//! Discovery from the etcd registry (feature `etcd`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions};
use tokio::sync::watch;

use super::Discovery;
use crate::etcd_conn::{Backoff, EtcdConfig, StartupPolicy};
use crate::{ClusterError, Endpoints, Instance};

/// Follows a service's instances in etcd, as [`EtcdRegistry`](crate::registry::EtcdRegistry)
/// registers them (`{prefix}/{service}/{id}` → [`Instance`] as JSON).
///
/// **Semantics.** A watch first reads the whole prefix (one `get`, at revision R), then
/// watches it from R+1: every change after the read arrives, in order, once. After a lost
/// connection it resumes watching at the last revision it applied + 1, so the changes made
/// meanwhile arrive too — none missed, none twice, none stale. When that revision was
/// compacted away, it reads the whole prefix again (a *re-list*) and watches from there.
/// Each etcd watch response is applied as a whole: a receiver sees whole sets.
///
/// **Bad values.** A value that is not an [`Instance`] of this service whose id is the key's
/// last segment (written by another program, say) is skipped, with a warning logged at most
/// every 10 s per watch (with the count of those not logged).
///
/// **etcd down.** With [`StartupPolicy::Fail`], [`watch`](Discovery::watch) fails when the
/// first read fails; with [`StartupPolicy::Retry`] it returns an empty set at once and fills
/// it when etcd answers. Later failures are retried with backoff; the receiver keeps the last
/// known set meanwhile.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use jaunt_cluster::discovery::{Discovery, EtcdDiscovery};
/// use jaunt_cluster::registry::EtcdConfig;
///
/// let discovery = EtcdDiscovery::new(EtcdConfig::new(["http://127.0.0.1:2379"]))?;
/// let mut kv = discovery.watch("kv").await?;
/// loop {
///     println!("kv instances: {:?}", kv.borrow_and_update().keys().collect::<Vec<_>>());
///     kv.changed().await?;
/// }
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EtcdDiscovery {
    config: EtcdConfig,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    lists: AtomicU64,
    resumes: AtomicU64,
    malformed: AtomicU64,
}

impl EtcdDiscovery {
    /// Discovery from etcd with these settings (the prefix, endpoints, timeouts, backoff and
    /// start-up policy apply; the TTL does not).
    pub fn new(config: EtcdConfig) -> Result<Self, ClusterError> {
        if config.endpoints.is_empty() {
            return Err(ClusterError::Config("no etcd endpoints".into()));
        }
        Ok(EtcdDiscovery {
            config,
            counters: Arc::default(),
        })
    }

    /// How many times a watch read its whole prefix (once at start, then after each
    /// compaction that outran it), over all watches.
    pub fn lists(&self) -> u64 {
        self.counters.lists.load(Ordering::Relaxed)
    }

    /// How many times a watch resumed at its last revision after a lost connection.
    pub fn resumes(&self) -> u64 {
        self.counters.resumes.load(Ordering::Relaxed)
    }

    /// How many malformed values were skipped.
    pub fn malformed(&self) -> u64 {
        self.counters.malformed.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Discovery for EtcdDiscovery {
    async fn watch(&self, service: &str) -> Result<watch::Receiver<Endpoints>, ClusterError> {
        if service.is_empty() || service.contains('/') {
            return Err(ClusterError::Config(format!(
                "bad service name {service:?}"
            )));
        }
        let mut follower = Follower {
            config: self.config.clone(),
            counters: self.counters.clone(),
            service: service.to_owned(),
            prefix: self.config.service_prefix(service),
            entries: BTreeMap::new(),
            next_revision: 0,
            warnings: WarnLimit::default(),
        };
        let (tx, rx) = watch::channel(Endpoints::new());
        let client = match self.config.startup {
            StartupPolicy::Fail => {
                let mut client = self.config.connect().await?;
                follower.list(&mut client).await?;
                follower.publish(&tx);
                Some(client)
            }
            StartupPolicy::Retry => None,
        };
        tokio::spawn(async move {
            tokio::select! {
                () = follower.run(client, &tx) => {}
                () = tx.closed() => {}
            }
        });
        Ok(rx)
    }
}

/// The state of one watch.
struct Follower {
    config: EtcdConfig,
    counters: Arc<Counters>,
    service: String,
    prefix: String,
    /// Valid instances by key.
    entries: BTreeMap<String, Instance>,
    /// Where the watch resumes: 0 while the prefix was never read.
    next_revision: i64,
    warnings: WarnLimit,
}

impl Follower {
    async fn run(&mut self, mut client: Option<Client>, tx: &watch::Sender<Endpoints>) {
        let mut backoff = Backoff::new(&self.config);
        let mut lost = false;
        loop {
            let mut current = match client.take() {
                Some(c) => c,
                None => match self.config.connect().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(service = %self.service, error = %e, "etcd discovery: cannot connect; retrying");
                        backoff.wait().await;
                        continue;
                    }
                },
            };
            if self.next_revision == 0 {
                if let Err(e) = self.list(&mut current).await {
                    tracing::warn!(service = %self.service, error = %e, "etcd discovery: cannot list; retrying");
                    backoff.wait().await;
                    continue;
                }
                self.publish(tx);
            } else if lost {
                self.counters.resumes.fetch_add(1, Ordering::Relaxed);
            }
            lost = false;
            match self.follow(&mut current, tx, &mut backoff).await {
                Ok(()) => {
                    // Compacted: list again at once.
                    self.next_revision = 0;
                    client = Some(current);
                }
                Err(reason) => {
                    lost = true;
                    tracing::warn!(service = %self.service, %reason, resume_at = self.next_revision, "etcd watch lost; resuming");
                    backoff.wait().await;
                }
            }
        }
    }

    /// Reads the whole prefix: the entries and the revision to watch from.
    async fn list(&mut self, client: &mut Client) -> Result<(), ClusterError> {
        let read = tokio::time::timeout(
            self.config.connect_timeout,
            client.get(
                self.prefix.as_bytes(),
                Some(GetOptions::new().with_prefix()),
            ),
        )
        .await
        .map_err(|_| ClusterError::Unreachable {
            backend: "etcd",
            reason: format!("{}: list timed out", self.config.endpoints.join(", ")),
        })?
        .map_err(|e| ClusterError::Unreachable {
            backend: "etcd",
            reason: format!("{}: {e}", self.config.endpoints.join(", ")),
        })?;
        let revision = read.header().map_or(0, |h| h.revision());
        self.entries.clear();
        for kv in read.kvs() {
            self.put(kv);
        }
        self.next_revision = revision + 1;
        self.counters.lists.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Watches from `next_revision` until the connection is lost (`Err`) or the revision
    /// was compacted (`Ok`: list again).
    async fn follow(
        &mut self,
        client: &mut Client,
        tx: &watch::Sender<Endpoints>,
        backoff: &mut Backoff,
    ) -> Result<(), String> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(self.next_revision);
        let mut stream = client
            .watch(self.prefix.as_bytes(), Some(options))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let answer = match stream.message().await {
                Ok(Some(answer)) => answer,
                Ok(None) => return Err("watch stream ended".into()),
                Err(e) => return Err(e.to_string()),
            };
            if answer.compact_revision() > 0 {
                tracing::info!(
                    service = %self.service,
                    compacted_to = answer.compact_revision(),
                    wanted = self.next_revision,
                    "etcd history compacted past the watch: listing again"
                );
                return Ok(());
            }
            if answer.canceled() {
                return Err(format!("watch canceled: {}", answer.cancel_reason()));
            }
            backoff.reset();
            if answer.events().is_empty() {
                continue;
            }
            for event in answer.events() {
                let Some(kv) = event.kv() else { continue };
                match event.event_type() {
                    EventType::Put => self.put(kv),
                    EventType::Delete => {
                        self.entries
                            .remove(&String::from_utf8_lossy(kv.key()).into_owned());
                    }
                }
                self.next_revision = self.next_revision.max(kv.mod_revision() + 1);
            }
            self.publish(tx);
        }
    }

    /// Applies a put: a valid instance replaces the key's entry, an invalid one removes it
    /// (and is reported).
    fn put(&mut self, kv: &KeyValue) {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        match self.parse(&key, kv.value()) {
            Ok(instance) => {
                self.entries.insert(key, instance);
            }
            Err(e) => {
                self.entries.remove(&key);
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                self.warnings.warn(&e);
            }
        }
    }

    fn parse(&self, key: &str, value: &[u8]) -> Result<Instance, ClusterError> {
        let malformed = |reason: String| ClusterError::Malformed {
            key: key.to_owned(),
            reason,
        };
        let id = key.strip_prefix(&self.prefix).unwrap_or(key);
        let instance: Instance =
            serde_json::from_slice(value).map_err(|e| malformed(e.to_string()))?;
        if instance.service != self.service || instance.id != id {
            return Err(malformed(format!(
                "it says service {:?} id {:?}, the key says {:?} {id:?}",
                instance.service, instance.id, self.service
            )));
        }
        if instance.addrs.is_empty() {
            return Err(malformed("no address".into()));
        }
        Ok(instance)
    }

    fn publish(&self, tx: &watch::Sender<Endpoints>) {
        let set: Endpoints = self
            .entries
            .values()
            .map(|i| (i.id.clone(), i.clone()))
            .collect();
        tx.send_if_modified(|current| {
            let modified = *current != set;
            *current = set;
            modified
        });
    }
}

/// Logs at most one warning per period, counting the others.
#[derive(Default)]
struct WarnLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimit {
    const PERIOD: Duration = Duration::from_secs(10);

    fn warn(&mut self, error: &ClusterError) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < Self::PERIOD)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(error = %error, not_logged_since_last = self.suppressed, "skipping a malformed registry value");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_about_malformed_values_are_rate_limited() {
        let error = ClusterError::Malformed {
            key: "/jaunt/services/kv/x".into(),
            reason: "not json".into(),
        };
        let mut limit = WarnLimit::default();
        limit.warn(&error);
        let first = limit.last.expect("the first is logged");
        for _ in 0..5 {
            limit.warn(&error);
        }
        assert_eq!(
            limit.suppressed, 5,
            "the next ones within the period are counted"
        );
        assert_eq!(limit.last, Some(first));
        // After the period, one is logged again (with the count) and the count restarts.
        limit.last = Some(first - WarnLimit::PERIOD);
        limit.warn(&error);
        assert_eq!(limit.suppressed, 0);
        assert!(limit.last.unwrap() > first);
    }
}
