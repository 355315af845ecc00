//! The balanced client: call a service by name, not by address.
//!
//! [`Balanced`] follows a service's instances through a [`Discovery`] backend, keeps a pool
//! of sessions dialed to each, and sends every call to one of them:
//!
//! - **power of two choices** (the default): two different instances drawn at random (by
//!   weight), the one with fewer calls in flight wins (when a draw cannot be used — its
//!   instance down or ejected — the least loaded usable instance); or **round-robin**;
//! - **consistent hashing** for affinity: calls through [`Balanced::keyed`] go to the
//!   instance that owns the key on a hash ring (the next one on the ring while it is
//!   unavailable), so the same key reaches the same instance while the set stays the same.
//!
//! [`Balanced`] is a [`Stub`]: typed clients (`KvClient::new(balanced)`) run on it unchanged.
//!
//! **Failover.** A pull whose connection is lost before its reply (status 102, 104, 105) is
//! sent again to another instance only when it is idempotent (`#[jaunt(idempotent)]` on the
//! route, or `.idempotent()` on the call), only within its deadline, and only while the
//! retry budget allows (retries stay under `retry_ratio` — 20 % by default — of the
//! idempotent pulls made,
//! plus a few per second). Other pulls fail with the status, whose cause says why they
//! were not resent. An instance whose connections keep failing is **ejected** for a
//! backoff period ([`Ejection`]) and comes back on its own; while every instance is
//! ejected, calls still go to them (fail open).

mod endpoint;
mod outlier;
mod ring;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jaunt_codec::EncodeBody;
use jaunt_peer::{Peer, PullOptions, Reply, Router, Session};
use jaunt_service::Stub;
use jaunt_socket::{code, Status};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tower::retry::budget::{Budget, TpsBudget};

use crate::discovery::Discovery;
use crate::{ClusterError, Endpoints};
use endpoint::{DialContext, Endpoint};
pub use outlier::Ejection;
use ring::{hash_key, Ring};

/// How the balanced client picks an instance for a call that has no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// Two different instances drawn at random in proportion to their weight; the one with
    /// fewer calls in flight (per unit of weight) gets the call. So an instance that takes
    /// calls and never answers (gone silent, until heartbeats close its sessions) stops
    /// being chosen once it holds more than the others, instead of ending up with every
    /// caller.
    #[default]
    PowerOfTwoChoices,
    /// Each instance in turn (weights ignored).
    RoundRobin,
}

/// The settings of a [`Balanced`] client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BalancedConfig {
    /// Sessions kept dialed to each instance (Go erpc's multiclient pool). Default 2.
    pub pool_size: usize,
    /// How calls without a key pick an instance.
    pub policy: Policy,
    /// When an instance is ejected, and for how long.
    pub ejection: Ejection,
    /// Retries allowed, as a share of the idempotent pulls made (over the last 10 s).
    /// Default 0.2.
    pub retry_ratio: f32,
    /// Retries allowed per second whatever the share (so a quiet client can still fail
    /// over). Default 10.
    pub min_retries_per_s: u32,
    /// How long an instance that left keeps its sessions for the calls under way. Default
    /// 10 s.
    pub drain_grace: Duration,
    /// How long a call waits for a first session when none is connected yet (within its
    /// deadline). Default: the peer's `dial_timeout`.
    pub connect_wait: Option<Duration>,
}

impl Default for BalancedConfig {
    fn default() -> Self {
        BalancedConfig {
            pool_size: 2,
            policy: Policy::default(),
            ejection: Ejection::default(),
            retry_ratio: 0.2,
            min_retries_per_s: 10,
            drain_grace: Duration::from_secs(10),
            connect_wait: None,
        }
    }
}

/// A client of a service by name, balanced over its instances; see the [module
/// docs](self).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use jaunt::prelude::*;
/// use jaunt_cluster::client::Balanced;
/// use jaunt_cluster::discovery::StaticList;
/// use jaunt_cluster::Instance;
///
/// #[jaunt::service]
/// trait Kv {
///     #[jaunt(idempotent)]
///     async fn get(&self, ctx: &PullCtx, key: String) -> Result<Option<String>, Status>;
/// }
///
/// let instances = StaticList::new([
///     Instance::new("kv-1", "kv", "10.0.0.1:9090"),
///     Instance::new("kv-2", "kv", "10.0.0.2:9090"),
/// ]);
/// let kv = Balanced::builder("kv", instances).build().await?;
/// let value = KvClient::new(kv.clone()).get("colour".into()).await?;
/// // Affinity: every call for this user goes to the same instance.
/// let pinned = KvClient::new(kv.keyed("user-42")).get("cart".into()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Balanced {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    config: BalancedConfig,
    ctx: Arc<DialContext>,
    set: RwLock<Arc<EndpointSet>>,
    budget: TpsBudget,
    turn: AtomicUsize,
    /// Pulls sent again to another instance after a connection loss.
    resent: std::sync::atomic::AtomicU64,
    follower: std::sync::Mutex<Option<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(follower) = self.follower.get_mut().expect("not poisoned").take() {
            follower.abort();
        }
    }
}

/// The instances calls may go to, as of the last discovery answer.
#[derive(Default)]
struct EndpointSet {
    endpoints: Vec<Arc<Endpoint>>,
    /// Running sums of the weights, for drawing by weight.
    weight_sums: Vec<u64>,
    ring: Ring,
}

impl EndpointSet {
    fn new(endpoints: Vec<Arc<Endpoint>>) -> EndpointSet {
        let mut sum = 0u64;
        let weight_sums = endpoints
            .iter()
            .map(|e| {
                sum += u64::from(e.instance.weight);
                sum
            })
            .collect();
        let ring = Ring::new(
            endpoints
                .iter()
                .map(|e| (e.instance.id.as_str(), e.instance.weight)),
        );
        EndpointSet {
            endpoints,
            weight_sums,
            ring,
        }
    }

    /// An endpoint drawn at random in proportion to its weight.
    fn draw(&self) -> Option<usize> {
        let total = *self.weight_sums.last()?;
        if total == 0 {
            return None;
        }
        let point = fastrand::u64(0..total);
        Some(self.weight_sums.partition_point(|&sum| sum <= point))
    }

    /// An endpoint other than `drawn`, drawn at random in proportion to its weight; `None`
    /// when there is no other with a weight.
    fn draw_other(&self, drawn: usize) -> Option<usize> {
        let total = *self.weight_sums.last()?;
        let below = if drawn == 0 {
            0
        } else {
            self.weight_sums[drawn - 1]
        };
        let own = self.weight_sums[drawn] - below;
        let rest = total - own;
        if rest == 0 {
            return None;
        }
        // A point on the weights with `drawn`'s share cut out.
        let mut point = fastrand::u64(0..rest);
        if point >= below {
            point += own;
        }
        Some(self.weight_sums.partition_point(|&sum| sum <= point))
    }
}

/// Builds a [`Balanced`] client.
pub struct BalancedBuilder<D> {
    service: String,
    discovery: D,
    peer: Option<Peer>,
    config: BalancedConfig,
}

impl<D: Discovery> BalancedBuilder<D> {
    /// Dials with this peer (its plugins — auth, heartbeat — and settings apply); default:
    /// a new peer with no routes.
    pub fn peer(mut self, peer: Peer) -> Self {
        self.peer = Some(peer);
        self
    }

    /// All the settings at once.
    pub fn config(mut self, config: BalancedConfig) -> Self {
        self.config = config;
        self
    }

    /// Sessions kept dialed to each instance (at least 1: `build` refuses 0).
    pub fn pool_size(mut self, sessions: usize) -> Self {
        self.config.pool_size = sessions;
        self
    }

    /// How calls without a key pick an instance.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.config.policy = policy;
        self
    }

    /// When instances are ejected.
    pub fn ejection(mut self, ejection: Ejection) -> Self {
        self.config.ejection = ejection;
        self
    }

    /// How long a call waits for a first session when none is connected.
    pub fn connect_wait(mut self, wait: Duration) -> Self {
        self.config.connect_wait = Some(wait);
        self
    }

    /// Retries allowed: `ratio` of the idempotent pulls (over the last 10 s), and at least
    /// `min_per_s` per second.
    pub fn retry_budget(mut self, ratio: f32, min_per_s: u32) -> Self {
        self.config.retry_ratio = ratio;
        self.config.min_retries_per_s = min_per_s;
        self
    }

    /// How long an instance that left keeps its sessions for the calls under way.
    pub fn drain_grace(mut self, grace: Duration) -> Self {
        self.config.drain_grace = grace;
        self
    }

    /// Starts following the service: asks discovery for its instances and starts dialing
    /// them. Fails when discovery fails (see the backend's settings).
    pub async fn build(self) -> Result<Balanced, ClusterError> {
        if self.service.is_empty() {
            return Err(ClusterError::Config("the service name is empty".to_owned()));
        }
        if self.config.pool_size == 0 {
            return Err(ClusterError::Config(
                "pool_size is 0: at least one session per instance".to_owned(),
            ));
        }
        let ratio = self.config.retry_ratio;
        if !(0.0..=1000.0).contains(&ratio) {
            return Err(ClusterError::Config(format!(
                "retry_ratio {ratio} is not a share between 0 and 1000"
            )));
        }
        let endpoints = self.discovery.watch(&self.service).await?;
        let peer = self.peer.unwrap_or_else(|| Peer::new(Router::new()));
        let config = self.config;
        let budget = TpsBudget::new(
            Duration::from_secs(10),
            config.min_retries_per_s,
            config.retry_ratio,
        );
        let inner = Arc::new(Inner {
            service: self.service,
            ctx: Arc::new(DialContext {
                peer,
                ejection: config.ejection,
                ready: tokio::sync::Notify::new(),
            }),
            config,
            set: RwLock::new(Arc::default()),
            budget,
            turn: AtomicUsize::new(0),
            resent: std::sync::atomic::AtomicU64::new(0),
            follower: std::sync::Mutex::new(None),
        });
        // The first set is applied before `build` returns: the client knows its instances
        // (and `endpoints()` shows them, dialing) from the start.
        let mut endpoints = endpoints;
        let first = endpoints.borrow_and_update().clone();
        inner.apply(&first);
        let follower = tokio::spawn(follow(Arc::downgrade(&inner), endpoints));
        *inner.follower.lock().expect("not poisoned") = Some(follower.abort_handle());
        Ok(Balanced { inner })
    }
}

/// Applies every new set of instances discovery announces (after the first, which
/// `build` applied), until the client is dropped.
async fn follow(inner: Weak<Inner>, mut endpoints: watch::Receiver<Endpoints>) {
    loop {
        if endpoints.changed().await.is_err() {
            // The backend will announce nothing more (a static list): keep the last set.
            return;
        }
        let Some(client) = inner.upgrade() else {
            return;
        };
        let set = endpoints.borrow_and_update().clone();
        client.apply(&set);
    }
}

impl Inner {
    /// Makes `instances` the set: new ones are dialed, changed ones replaced, gone ones
    /// retired (their sessions close once their calls are done).
    fn apply(&self, instances: &Endpoints) {
        let current = self.set.read().expect("not poisoned").clone();
        let mut old: HashMap<&str, &Arc<Endpoint>> = current
            .endpoints
            .iter()
            .map(|e| (e.instance.id.as_str(), e))
            .collect();
        let mut next = Vec::with_capacity(instances.len());
        for instance in instances.values().filter(|i| i.weight > 0) {
            match old.remove(instance.id.as_str()) {
                Some(kept) if kept.instance == *instance => next.push(kept.clone()),
                _ => next.push(Endpoint::start(
                    instance.clone(),
                    self.config.pool_size,
                    &self.ctx,
                )),
            }
        }
        let retired: Vec<Arc<Endpoint>> = current
            .endpoints
            .iter()
            .filter(|e| !next.iter().any(|n| Arc::ptr_eq(n, e)))
            .cloned()
            .collect();
        *self.set.write().expect("not poisoned") = Arc::new(EndpointSet::new(next));
        for endpoint in retired {
            endpoint.retire(self.config.drain_grace);
        }
    }

    /// Picks an endpoint (not one of `tried`) and a connected session of it.
    fn pick(&self, key: Option<u64>, tried: &[usize]) -> Option<(Arc<Endpoint>, Session)> {
        let set = self.set.read().expect("not poisoned").clone();
        // The clock is read only when some endpoint has a failure on record.
        let now = std::cell::OnceCell::new();
        let now = || *now.get_or_init(Instant::now);
        let n = set.endpoints.len();
        let usable = |i: usize, healthy_only: bool| {
            let endpoint = &set.endpoints[i];
            if tried.contains(&ptr(endpoint))
                || (healthy_only && !endpoint.health.is_available_at(now))
            {
                return None;
            }
            endpoint.session().map(|s| (endpoint.clone(), s))
        };
        for healthy_only in [true, false] {
            let chosen = match key {
                Some(hash) => set.ring.walk(hash).find_map(|i| usable(i, healthy_only)),
                None => match self.config.policy {
                    Policy::PowerOfTwoChoices => {
                        // Two *different* instances: with the same one drawn twice, an
                        // instance gone silent (its calls pending until heartbeats close
                        // its sessions) would keep taking calls however many it holds, and
                        // soon every caller would wait on it.
                        let first = set.draw();
                        let second = first.and_then(|first| set.draw_other(first));
                        let a = first.and_then(|i| usable(i, healthy_only));
                        let b = second.and_then(|i| usable(i, healthy_only));
                        match (a, b) {
                            (Some(a), Some(b)) => Some(if load(&b.0) < load(&a.0) { b } else { a }),
                            // A draw unusable (an instance down, ejected, or tried): the
                            // least loaded of the usable ones — taking the other draw
                            // whatever its load would pile calls on a silent instance
                            // while another is down.
                            _ => (0..n)
                                .filter_map(|i| usable(i, healthy_only))
                                .min_by(|x, y| load(&x.0).total_cmp(&load(&y.0))),
                        }
                    }
                    Policy::RoundRobin => {
                        let start = self.turn.fetch_add(1, Ordering::Relaxed);
                        (0..n).find_map(|i| usable((start + i) % n, healthy_only))
                    }
                },
            };
            if chosen.is_some() {
                return chosen;
            }
        }
        None
    }

    /// Picks like [`pick`](Self::pick), waiting (until `deadline`, at most `connect_wait`)
    /// for a session when none is connected yet.
    async fn pick_or_wait(
        &self,
        key: Option<u64>,
        tried: &[usize],
        deadline: Option<Instant>,
    ) -> Result<(Arc<Endpoint>, Session), Status> {
        // The usual case first: a session is there, nothing to wait for.
        if let Some(chosen) = self.pick(key, tried) {
            return Ok(chosen);
        }
        let wait = self
            .config
            .connect_wait
            .unwrap_or(self.ctx.peer.config().dial_timeout);
        let mut until = Instant::now() + wait;
        if let Some(deadline) = deadline {
            until = until.min(deadline);
        }
        loop {
            let ready = self.ctx.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(chosen) = self.pick(key, tried) {
                return Ok(chosen);
            }
            if tokio::time::timeout_at(until.into(), ready).await.is_err() {
                let known = self.set.read().expect("not poisoned").endpoints.len();
                return Err(Status::dial_failed(format!(
                    "no instance of service {:?} is reachable ({known} known{})",
                    self.service,
                    if tried.is_empty() {
                        ""
                    } else {
                        ", the others already failed this call"
                    }
                )));
            }
        }
    }

    async fn pull<A: EncodeBody + Sync>(
        &self,
        key: Option<u64>,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> Result<Reply, Status> {
        let budget = opts.time_budget().or(self.ctx.peer.config().pull_timeout);
        let deadline = budget.map(|b| Instant::now() + b);
        let mut tried = Vec::new();
        // Only an idempotent pull may be sent again: keep its options for that. The retry
        // budget counts the pulls that could be resent, so resends stay a fraction of them.
        let retry_opts = opts.is_idempotent().then(|| {
            self.budget.deposit();
            opts.clone()
        });
        let mut opts = Some(opts);
        loop {
            let (endpoint, session) = self.pick_or_wait(key, &tried, deadline).await?;
            let this_opts = match (opts.take(), &retry_opts, deadline) {
                (Some(first), _, _) => first,
                (None, Some(again), Some(deadline)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    again.clone().timeout(left)
                }
                (None, Some(again), None) => again.clone(),
                (None, None, _) => unreachable!("only idempotent pulls are sent again"),
            };
            let result = {
                let _pending = InFlight::count(&endpoint);
                session.pull_with(uri, args, this_opts).await
            };
            let status = match result {
                Ok(reply) => {
                    endpoint.health.success();
                    return Ok(reply);
                }
                Err(status) if is_connection_loss(status.code()) => status,
                Err(status) => return Err(status),
            };
            endpoint.health.failure(&self.ctx.ejection, Instant::now());
            let why_not = if retry_opts.is_none() {
                Some("not resent: the pull is not idempotent")
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                Some("not resent: its deadline has passed")
            } else if !self.budget.withdraw() {
                Some("not resent: the retry budget is spent")
            } else {
                None
            };
            if let Some(why_not) = why_not {
                let cause = status.cause().unwrap_or(status.msg()).to_owned();
                return Err(status.with_cause(format!(
                    "{cause} (instance {}; {why_not})",
                    endpoint.instance.id
                )));
            }
            self.resent.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(instance = %endpoint.instance.id, %status, uri, "pull resent to another instance");
            tried.push(ptr(&endpoint));
        }
    }

    async fn push<A: EncodeBody + Sync>(
        &self,
        key: Option<u64>,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> Result<(), Status> {
        let (endpoint, session) = self.pick_or_wait(key, &[], None).await?;
        let result = {
            let _pending = InFlight::count(&endpoint);
            session.push_with(uri, args, opts).await
        };
        if result.as_ref().is_err_and(|s| is_connection_loss(s.code())) {
            endpoint.health.failure(&self.ctx.ejection, Instant::now());
        }
        result
    }
}

/// A call counted in its endpoint's `in_flight` until dropped — also when the caller
/// drops the call's future half-way (a timeout around it), which must not leave the
/// endpoint looking busy forever.
struct InFlight<'a>(&'a Endpoint);

impl<'a> InFlight<'a> {
    fn count(endpoint: &'a Endpoint) -> Self {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(endpoint)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An endpoint's identity within one call (its address in memory).
fn ptr(endpoint: &Arc<Endpoint>) -> usize {
    Arc::as_ptr(endpoint) as usize
}

/// Calls in flight per unit of weight.
fn load(endpoint: &Endpoint) -> f64 {
    endpoint.in_flight.load(Ordering::Relaxed) as f64 / f64::from(endpoint.instance.weight.max(1))
}

/// The connection was lost (or never made) before the reply: the statuses a pull may be
/// resent after.
fn is_connection_loss(status: i32) -> bool {
    matches!(
        status,
        code::CONN_CLOSED | code::WRITE_FAILED | code::DIAL_FAILED
    )
}

/// One instance as the client sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointView {
    /// The instance's id.
    pub id: String,
    /// The address dialed.
    pub addr: String,
    /// Sessions of its pool connected now.
    pub connected: usize,
    /// Calls of this client under way through it.
    pub in_flight: usize,
    /// Ejected now (after connection failures in a row).
    pub ejected: bool,
}

impl Balanced {
    /// A client of `service`, whose instances `discovery` gives.
    pub fn builder<D: Discovery>(service: impl Into<String>, discovery: D) -> BalancedBuilder<D> {
        BalancedBuilder {
            service: service.into(),
            discovery,
            peer: None,
            config: BalancedConfig::default(),
        }
    }

    /// The service called.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// A view of the client whose calls go to the instance owning `key` on the hash ring
    /// (affinity: the same key, the same instance, while the set of instances stays the
    /// same; when it leaves, only its keys move).
    pub fn keyed(&self, key: impl AsRef<[u8]>) -> Keyed {
        Keyed {
            client: self.clone(),
            hash: hash_key(key.as_ref()),
        }
    }

    /// The instances calls may go to now, and their state.
    pub fn endpoints(&self) -> Vec<EndpointView> {
        let set = self.inner.set.read().expect("not poisoned").clone();
        let now = Instant::now();
        set.endpoints
            .iter()
            .map(|e| EndpointView {
                id: e.instance.id.clone(),
                addr: e.instance.addr().unwrap_or_default().to_owned(),
                connected: e.connected(),
                in_flight: e.in_flight.load(Ordering::Relaxed),
                ejected: !e.health.is_available(now),
            })
            .collect()
    }

    /// Waits until every instance known now has at least one session connected, or
    /// `timeout` passes; returns whether they all have. Calls made before work too (they
    /// wait for a first session), but go to whichever instance connected first — a keyed
    /// call, to the next instance on the ring — so programs that care about the spread
    /// from the first call wait for this.
    ///
    /// ```no_run
    /// # async fn f(balanced: jaunt_cluster::client::Balanced) {
    /// use std::time::Duration;
    /// if !balanced.wait_connected(Duration::from_secs(5)).await {
    ///     eprintln!("some instances are unreachable: {:?}", balanced.endpoints());
    /// }
    /// # }
    /// ```
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let ready = self.inner.ctx.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let set = self.inner.set.read().expect("not poisoned").clone();
            if set.endpoints.iter().all(|e| e.connected() > 0) {
                return true;
            }
            // Also look again now and then: a set may change without a new session.
            let next = until.min(tokio::time::Instant::now() + Duration::from_millis(50));
            let _ = tokio::time::timeout_at(next, ready).await;
            if tokio::time::Instant::now() >= until {
                let set = self.inner.set.read().expect("not poisoned").clone();
                return set.endpoints.iter().all(|e| e.connected() > 0);
            }
        }
    }

    /// How many pulls were sent again to another instance (failover) so far.
    pub fn resent(&self) -> u64 {
        self.inner.resent.load(Ordering::Relaxed)
    }

    /// The peer the sessions are dialed from.
    pub fn peer(&self) -> &Peer {
        &self.inner.ctx.peer
    }
}

impl Stub for Balanced {
    fn pull<A: EncodeBody + Sync>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> impl std::future::Future<Output = Result<Reply, Status>> + Send {
        self.inner.pull(None, uri, args, opts)
    }

    fn push<A: EncodeBody + Sync>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> impl std::future::Future<Output = Result<(), Status>> + Send {
        self.inner.push(None, uri, args, opts)
    }
}

/// A [`Balanced`] client whose calls all go to the instance owning one key (see
/// [`Balanced::keyed`]).
#[derive(Clone)]
pub struct Keyed {
    client: Balanced,
    hash: u64,
}

impl Stub for Keyed {
    fn pull<A: EncodeBody + Sync>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> impl std::future::Future<Output = Result<Reply, Status>> + Send {
        self.client.inner.pull(Some(self.hash), uri, args, opts)
    }

    fn push<A: EncodeBody + Sync>(
        &self,
        uri: &str,
        args: &A,
        opts: PullOptions,
    ) -> impl std::future::Future<Output = Result<(), Status>> + Send {
        self.client.inner.push(Some(self.hash), uri, args, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(weights: &[u64]) -> EndpointSet {
        let mut sum = 0;
        EndpointSet {
            weight_sums: weights
                .iter()
                .map(|w| {
                    sum += w;
                    sum
                })
                .collect(),
            ..EndpointSet::default()
        }
    }

    #[test]
    fn the_second_choice_is_another_instance_drawn_by_weight() {
        let set = weights(&[1, 2, 3]);
        for drawn in 0..3 {
            let mut seen = [0u32; 3];
            for _ in 0..6_000 {
                let other = set.draw_other(drawn).unwrap();
                assert_ne!(other, drawn);
                seen[other] += 1;
            }
            // The others in proportion to their weights.
            let others: Vec<usize> = (0..3).filter(|&i| i != drawn).collect();
            let (x, y) = (others[0], others[1]);
            let expected = (set_weight(&set, x) as f64) / (set_weight(&set, y) as f64);
            let got = f64::from(seen[x]) / f64::from(seen[y]);
            assert!(
                (got / expected - 1.0).abs() < 0.15,
                "drawn {drawn}: {seen:?}"
            );
        }
        // Alone: no other.
        assert_eq!(weights(&[5]).draw_other(0), None);
        assert_eq!(weights(&[]).draw(), None);
    }

    fn set_weight(set: &EndpointSet, i: usize) -> u64 {
        set.weight_sums[i] - if i == 0 { 0 } else { set.weight_sums[i - 1] }
    }
}
