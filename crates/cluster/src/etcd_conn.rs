//! What the etcd registry and discovery share: their settings, the connection, the key
//! layout, retry backoff.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::ClusterError;

/// What to do when etcd cannot be reached at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StartupPolicy {
    /// Fail with [`ClusterError::Unreachable`] naming the endpoints.
    #[default]
    Fail,
    /// Return at once and keep trying in the background (with backoff).
    Retry,
}

/// How to reach etcd, and where the services live in it.
///
/// ```
/// use std::time::Duration;
/// use jaunt_cluster::registry::{EtcdConfig, StartupPolicy};
///
/// let config = EtcdConfig::new(["http://127.0.0.1:2379"])
///     .prefix("/prod/services")
///     .ttl(Duration::from_secs(5))
///     .startup(StartupPolicy::Retry);
/// assert_eq!(config.key("kv", "kv-1"), "/prod/services/kv/kv-1");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EtcdConfig {
    /// etcd client URLs (`http://host:2379`).
    pub endpoints: Vec<String>,
    /// The key prefix: an instance is at `{prefix}/{service}/{id}`. Default
    /// `/jaunt/services`.
    pub prefix: String,
    /// The lease's time to live: how long an instance stays registered after its process
    /// stops keeping the lease alive. Whole seconds, at least 1. Default 10 s.
    pub ttl: Duration,
    /// How long connecting (and each request) may take. Default 3 s.
    pub connect_timeout: Duration,
    /// What to do when etcd is unreachable at start-up. Default [`StartupPolicy::Fail`].
    pub startup: StartupPolicy,
    /// The first wait before retrying after a failure; it doubles up to `max_backoff`.
    /// Default 200 ms.
    pub min_backoff: Duration,
    /// The longest wait between retries. Default 5 s.
    pub max_backoff: Duration,
    /// On graceful shutdown, how long the peer keeps accepting after its keys are gone, so
    /// that callers watching the registry see them go before connections are refused.
    /// Default 500 ms.
    pub deregister_grace: Duration,
}

impl EtcdConfig {
    /// etcd at these client URLs, with the defaults.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: "/jaunt/services".to_owned(),
            ttl: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            startup: StartupPolicy::Fail,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            deregister_grace: Duration::from_millis(500),
        }
    }

    /// Sets the key prefix (a trailing `/` is dropped).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sets the lease's time to live.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the connect (and request) timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets what to do when etcd is down at start-up.
    pub fn startup(mut self, policy: StartupPolicy) -> Self {
        self.startup = policy;
        self
    }

    /// Sets the retry backoff bounds.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// Sets the time between deregistering and closing the listeners on graceful shutdown.
    pub fn deregister_grace(mut self, grace: Duration) -> Self {
        self.deregister_grace = grace;
        self
    }

    /// The key of instance `id` of `service`.
    pub fn key(&self, service: &str, id: &str) -> String {
        format!("{}/{service}/{id}", self.prefix)
    }

    /// The prefix of `service`'s keys (ends with `/`).
    pub fn service_prefix(&self, service: &str) -> String {
        format!("{}/{service}/", self.prefix)
    }

    pub(crate) fn check(&self) -> Result<(), ClusterError> {
        if self.endpoints.is_empty() {
            return Err(ClusterError::Config("no etcd endpoints".into()));
        }
        if self.ttl < Duration::from_secs(1) {
            return Err(ClusterError::Config(format!(
                "the lease ttl is {:?}; etcd needs at least 1 s",
                self.ttl
            )));
        }
        Ok(())
    }

    /// The TTL in whole seconds (at least 1).
    pub(crate) fn ttl_secs(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX).max(1)
    }

    /// Connects and proves etcd answers (a connection alone is lazy).
    pub(crate) async fn connect(&self) -> Result<Client, ClusterError> {
        let unreachable = |reason: String| ClusterError::Unreachable {
            backend: "etcd",
            reason: format!("{}: {reason}", self.endpoints.join(", ")),
        };
        let options = ConnectOptions::new()
            .with_connect_timeout(self.connect_timeout)
            .with_timeout(self.connect_timeout)
            .with_keep_alive(Duration::from_secs(2), self.connect_timeout);
        let attempt = async {
            let mut client = Client::connect(&self.endpoints, Some(options))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            client
                .get(
                    self.prefix.as_bytes(),
                    Some(etcd_client::GetOptions::new().with_count_only()),
                )
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            Ok(client)
        };
        tokio::time::timeout(self.connect_timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(unreachable(format!(
                    "no answer within {:?}",
                    self.connect_timeout
                )))
            })
    }
}

/// Doubling waits between retries, with jitter.
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &EtcdConfig) -> Self {
        Backoff {
            next: config.min_backoff,
            min: config.min_backoff,
            max: config.max_backoff,
        }
    }

    /// Waits the current delay (±20 %) and doubles it.
    pub(crate) async fn wait(&mut self) {
        let jitter = 0.8 + fastrand::f64() * 0.4;
        tokio::time::sleep(self.next.mul_f64(jitter)).await;
        self.next = (self.next * 2).min(self.max);
    }

    /// After a success: the next failure waits the shortest delay again.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}
