//! Many hosts: three server processes, each in a network namespace of its own, registered
//! in one etcd (each host registers itself, under a lease), and a balanced client over what
//! etcd says, under load. One host's link is cut (its connections go silent: only
//! heartbeats notice), another host is SIGKILLed; every idempotent pull must still
//! succeed, a non-idempotent pull in flight on them must fail with a clear status, the
//! registry must come to list exactly the hosts that can renew their lease, and both
//! hosts must be registered and used again once they are back.
//!
//! **What the registry shows.** The lease's TTL ([`lease_ttl`]: 2 s at the default
//! heartbeat) outlasts the client's detection of the cut (3 heartbeats), so that a is
//! ejected by heartbeats while it is still registered; a's cut then lasts longer than the
//! TTL on purpose: the test waits, with a still cut off, until both leases are gone. The cut
//! host cannot reach etcd (it listens on the bridge) any more than the client can reach the
//! host, so nothing renews its lease and it expires, as b's does: the registry then lists
//! exactly c, deterministically. (Keeping a listed would need its cut to end before its
//! lease expires, a race between the cut's length and the keep-alive schedule: the lease
//! may have anything from 2/3 of the TTL to all of it left when the link goes down.) When
//! the link is back, a's registration finds its lease gone and registers a again under a
//! new one; the restarted b registers before it says it is ready.
//!
//! This file is its own `main` (`harness = false` in Cargo.toml): started with
//! `JAUNT_HOSTS_ROLE=server` in its environment it is one of the server hosts (the test
//! runs its own executable inside each namespace); otherwise it is the test.
//!
//! Needs root (CI runs as root), `ip` (iproute2, see `support/netns.rs`), `etcd` (Debian
//! package etcd-server, see `support/etcd.rs`) and jaunt-cluster's `etcd` feature (its
//! `[[test]]` entry requires it; the feature needs `protoc`).
//!
//! ```text
//! cargo test -p jaunt-cluster --features etcd --test hosts -- --nocapture   # prints its measurements
//! ```

#[path = "support/etcd.rs"]
mod etcd_support;
#[path = "support/netns.rs"]
mod netns;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_support::TestEtcd;
use jaunt::prelude::*;
use jaunt::PeerConfig;
use jaunt_cluster::client::{Balanced, Ejection, EndpointView};
use jaunt_cluster::discovery::EtcdDiscovery;
use jaunt_cluster::registry::etcd_client::{Client, GetOptions};
use jaunt_cluster::registry::{EtcdConfig, EtcdRegistry};
use jaunt_cluster::Instance;
use jaunt_plugins::heartbeat::{self, Ping, Pong};
use netns::{HostProcess, Net};

/// The environment variable that makes this executable a server host.
const ROLE_ENV: &str = "JAUNT_HOSTS_ROLE";
const ID_ENV: &str = "JAUNT_HOSTS_ID";
const ADDR_ENV: &str = "JAUNT_HOSTS_ADDR";
/// The test etcd's client URL on the bridge, where the hosts reach it.
const ETCD_ENV: &str = "JAUNT_HOSTS_ETCD";
/// The service the hosts register.
const SERVICE: &str = "who";
/// The hosts' lease TTL: how long an instance stays registered once nothing renews its
/// lease (renewed every third of it, so at least 2/3 of it is left when a's link is cut).
/// Whole seconds, 6 heartbeats and at least 2 s: then 2/3 of it (4 heartbeats) outlasts the
/// heartbeat detection of the cut (3 heartbeats) by a heartbeat or more, and a is ejected by
/// the client before etcd drops it. See the module docs for why a's cut outlasts the TTL.
fn lease_ttl() -> Duration {
    let six_beats = (heartbeat_rate() * 6).as_secs_f64().ceil() as u64;
    Duration::from_secs(six_beats.max(2))
}
/// Every host listens on this port of its own address.
const PORT: u16 = 7000;
/// Heartbeat rate of both sides: an idle session is pinged after this, and closed when
/// the ping gets no reply within twice it. `JAUNT_HOSTS_HEARTBEAT_MS` changes it (to
/// measure how detection scales with it); the hosts get the test's value.
const HEARTBEAT: Duration = Duration::from_millis(250);
const HEARTBEAT_ENV: &str = "JAUNT_HOSTS_HEARTBEAT_MS";

fn heartbeat_rate() -> Duration {
    std::env::var(HEARTBEAT_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(HEARTBEAT, Duration::from_millis)
}
/// The whole test's bound.
const TEST_BOUND: Duration = Duration::from_secs(60);

#[jaunt::service]
trait Who {
    /// The server's name, after `ms` milliseconds.
    #[jaunt(idempotent)]
    async fn slow(&self, ctx: &PullCtx, ms: u64) -> Result<String, Status>;
    /// The same, but not idempotent: never resent.
    async fn slow_once(&self, ctx: &PullCtx, ms: u64) -> Result<String, Status>;
}

struct Named(String);

impl Who for Named {
    async fn slow(&self, _: &PullCtx, ms: u64) -> Result<String, Status> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(self.0.clone())
    }
    async fn slow_once(&self, _: &PullCtx, ms: u64) -> Result<String, Status> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(self.0.clone())
    }
}

fn main() {
    if std::env::var_os(ROLE_ENV).is_some() {
        serve();
    }
    if std::env::args().any(|a| a == "--list") {
        println!("many_hosts: test");
        return;
    }
    if !selected(std::env::args().skip(1)) {
        println!("running 0 tests (many_hosts filtered out)");
        return;
    }
    println!("running 1 test\ntest many_hosts ...");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    // A panic unwinds through `block_on`, dropping the test's future and with it every
    // host process and the namespaces.
    runtime.block_on(async {
        tokio::time::timeout(TEST_BOUND, many_hosts())
            .await
            .unwrap_or_else(|_| panic!("the test took more than {TEST_BOUND:?}"));
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    println!("test many_hosts ... ok");
}

/// Whether the test harness's command line (`cargo test -p jaunt-cluster -- ARGS`) selects
/// the test: its name filters, `--skip`, `--exact`, `--ignored`.
fn selected(mut args: impl Iterator<Item = String>) -> bool {
    const NAME: &str = "many_hosts";
    let (mut filters, mut skips, mut exact) = (Vec::new(), Vec::new(), false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // `--ignored` runs only ignored tests, and this one is not ignored.
            "--ignored" => return false,
            "--exact" => exact = true,
            "--skip" => skips.extend(args.next()),
            // Options with a value: the value is no filter.
            "--test-threads" | "--format" | "--color" | "--logfile" | "--shuffle-seed" | "-Z" => {
                args.next();
            }
            flag if flag.starts_with('-') => {}
            filter => filters.push(filter.to_owned()),
        }
    }
    let matches = |pattern: &String| {
        if exact {
            pattern == NAME
        } else {
            NAME.contains(pattern.as_str())
        }
    };
    (filters.is_empty() || filters.iter().any(matches)) && !skips.iter().any(matches)
}

/// The etcd settings of both sides: the hosts' registrations (the TTL is theirs) and the
/// client's discovery.
fn etcd_config(url: &str) -> EtcdConfig {
    EtcdConfig::new([url])
        .ttl(lease_ttl())
        .connect_timeout(Duration::from_secs(1))
        .backoff(Duration::from_millis(100), Duration::from_millis(500))
}

/// A server host: serves `Who` on `$JAUNT_HOSTS_ADDR` with heartbeats, registers itself in
/// the etcd at `$JAUNT_HOSTS_ETCD` (service `who`, its id, the address it listens on),
/// prints `ready ADDR` once registered and runs until killed, or until its stdin closes
/// (the test is gone).
fn serve() -> ! {
    let id = std::env::var(ID_ENV).expect("JAUNT_HOSTS_ID");
    let addr = std::env::var(ADDR_ENV).expect("JAUNT_HOSTS_ADDR");
    let etcd = std::env::var(ETCD_ENV).expect("JAUNT_HOSTS_ETCD");
    std::thread::spawn(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut router = Router::new();
        router.service(WhoServer::new(Named(id.clone()))).unwrap();
        heartbeat::routes(&mut router).unwrap();
        // The registry plugin registers the instance, under a lease it keeps alive, once
        // the peer listens (and `listen` fails when etcd cannot be reached: the default
        // start-up policy). No address in the template: the one listened on is registered.
        // A SIGKILL leaves the entry to expire; a restart registers it again.
        let registry = EtcdRegistry::new(etcd_config(&etcd)).unwrap();
        let mut template = Instance::new(id.clone(), SERVICE, "");
        template.addrs.clear();
        let peer = Peer::builder(router)
            .plugin(Pong::new())
            .plugin(Ping::new(heartbeat_rate()))
            .plugin(registry.plugin(template))
            .build()
            .unwrap();
        let bound = peer.listen(addr.as_str()).await.unwrap();
        println!("ready {bound}");
        std::future::pending::<()>().await;
    });
    unreachable!("the server runs until killed")
}

/// The test etcd, where the hosts register themselves and the client discovers them: it
/// serves clients on the bridge's address ([`Net::gateway`], which every namespace
/// reaches) and on 127.0.0.1 (the test's own clients).
struct Registry {
    etcd: TestEtcd,
    config: EtcdConfig,
}

impl Registry {
    /// Starts etcd on `net`'s bridge (the bridge must exist: after `Net::new`).
    fn start(net: &Net) -> Registry {
        let etcd = tokio::task::block_in_place(|| TestEtcd::start_on(&net.gateway()));
        let config = etcd_config(&etcd.url());
        Registry { etcd, config }
    }

    /// The URL the hosts register at (on the bridge).
    fn url_for_hosts(&self) -> String {
        self.etcd.url_on_ip()
    }

    fn discovery(&self) -> EtcdDiscovery {
        EtcdDiscovery::new(self.config.clone()).unwrap()
    }

    /// What etcd lists under the service's prefix now: id (the key's last segment) →
    /// instance.
    async fn instances(&self) -> BTreeMap<String, Instance> {
        let mut client = Client::connect([self.etcd.url()], None)
            .await
            .expect("connect to the test etcd");
        let prefix = self.config.service_prefix(SERVICE);
        let answer = client
            .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
            .await
            .expect("read the registry");
        answer
            .kvs()
            .iter()
            .map(|kv| {
                let key = kv.key_str().expect("a UTF-8 key");
                let id = key.strip_prefix(&prefix).expect("under the prefix");
                let instance: Instance =
                    serde_json::from_slice(kv.value()).expect("an instance as JSON");
                (id.to_owned(), instance)
            })
            .collect()
    }

    /// The ids etcd lists now.
    async fn ids(&self) -> BTreeSet<String> {
        self.instances().await.into_keys().collect()
    }

    /// Polls (every 10 ms, at most `bound`) until etcd lists exactly `want`, checking
    /// `always` of each listing on the way; returns, for each id that left meanwhile, how
    /// long after the start of the wait it was first missing.
    async fn wait_for_ids(
        &self,
        want: &BTreeSet<String>,
        bound: Duration,
        always: impl Fn(&BTreeSet<String>) -> bool,
    ) -> BTreeMap<String, Duration> {
        let started = Instant::now();
        let mut seen = self.ids().await;
        let mut left = BTreeMap::new();
        loop {
            assert!(always(&seen), "the registry lists {seen:?}");
            if &seen == want {
                return left;
            }
            assert!(
                started.elapsed() < bound,
                "the registry does not list exactly {want:?} within {bound:?}: it lists {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            let now = self.ids().await;
            for gone in seen.difference(&now) {
                left.entry(gone.clone()).or_insert(started.elapsed());
            }
            seen = now;
        }
    }
}

/// Starts host `i` of `net` as a server process named `id`.
/// Once it says it is ready, it is registered at `etcd`.
fn start_host(net: &Net, i: usize, id: &str, etcd: &str) -> (HostProcess, Instance) {
    let host = &net.hosts()[i];
    let addr = format!("{}:{PORT}", host.ip);
    let exe = std::env::current_exe().expect("the test executable");
    let env = [
        (ROLE_ENV, "server".to_owned()),
        (ID_ENV, id.to_owned()),
        (ADDR_ENV, addr.clone()),
        (HEARTBEAT_ENV, heartbeat_rate().as_millis().to_string()),
        (ETCD_ENV, etcd.to_owned()),
    ];
    let (process, first) = tokio::task::block_in_place(|| {
        host.spawn(&exe, &env, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("host {id}: {e}"))
    });
    assert_eq!(first, format!("ready {addr}"), "host {id}");
    (process, Instance::new(id, SERVICE, addr))
}

/// What the load saw.
#[derive(Default)]
struct Tally {
    idempotent_ok: AtomicU64,
    idempotent_failed: Mutex<Vec<Status>>,
    once_ok: AtomicU64,
    once_failed: Mutex<Vec<Status>>,
    /// Replies per host.
    by_host: Mutex<BTreeMap<String, u64>>,
    /// The longest idempotent pull (a pull caught on the silent host waits for the
    /// heartbeat to close its session, then is resent), in microseconds.
    idempotent_longest_us: AtomicU64,
    /// Idempotent pulls that took over 100 ms (the work is 5 ms).
    idempotent_slow: AtomicU64,
}

impl Tally {
    fn replied(&self, host: &str) {
        *self
            .by_host
            .lock()
            .unwrap()
            .entry(host.to_owned())
            .or_insert(0) += 1;
    }

    fn replies_of(&self, host: &str) -> u64 {
        self.by_host.lock().unwrap().get(host).copied().unwrap_or(0)
    }
}

/// Whether `status` is the clear failure of a non-idempotent pull lost with its
/// connection: a connection-loss status whose cause names the instance and says why it
/// was not resent.
fn is_clear_loss(status: &Status) -> bool {
    let cause = status.cause().unwrap_or_default();
    matches!(
        status.code(),
        code::CONN_CLOSED | code::WRITE_FAILED | code::DIAL_FAILED
    ) && cause.contains("not resent: the pull is not idempotent")
        && cause.contains("(instance ")
}

fn view_of(balanced: &Balanced, id: &str) -> Option<EndpointView> {
    balanced.endpoints().into_iter().find(|e| e.id == id)
}

/// Waits (at most `bound`) until `ready` holds, panicking with `what` and the client's
/// view otherwise; returns how long it took.
async fn wait_for(
    balanced: &Balanced,
    bound: Duration,
    what: &str,
    mut ready: impl FnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < bound,
            "{what}: not within {bound:?}; endpoints {:?}",
            balanced.endpoints()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

async fn many_hosts() {
    let heartbeat = heartbeat_rate();
    let net = Net::new(3).unwrap_or_else(|e| panic!("{e}"));
    let registry = Registry::start(&net);
    let ids = ["a", "b", "c"];
    let mut hosts: Vec<Option<HostProcess>> = Vec::new();
    let mut instances = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (process, instance) = start_host(&net, i, id, &registry.url_for_hosts());
        hosts.push(Some(process));
        instances.push(instance);
    }
    // Each host registered itself (its id, the address it listens on) before saying it is
    // ready.
    let registered: BTreeMap<String, Instance> = instances
        .iter()
        .map(|instance| (instance.id.clone(), instance.clone()))
        .collect();
    assert_eq!(registry.instances().await, registered);

    let mut router = Router::new();
    heartbeat::routes(&mut router).unwrap();
    let peer = Peer::builder(router)
        .config(
            PeerConfig::builder()
                .dial_timeout(Duration::from_secs(1))
                .build(),
        )
        .plugin(Pong::new())
        .plugin(Ping::new(heartbeat))
        .build()
        .unwrap();
    let balanced = Balanced::builder("who", registry.discovery())
        .peer(peer)
        .pool_size(2)
        .ejection(Ejection {
            failures: 2,
            base: Duration::from_millis(500),
            max: Duration::from_secs(4),
        })
        .connect_wait(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    wait_for(&balanced, Duration::from_secs(10), "pools filled", || {
        let view = balanced.endpoints();
        view.len() == 3 && view.iter().all(|e| e.connected == 2)
    })
    .await;
    let who = WhoClient::new(balanced.clone());

    // Keys the hash ring gives to a and to b: non-idempotent pulls pinned on the hosts
    // about to fail.
    let mut pinned: BTreeMap<String, String> = BTreeMap::new();
    for n in 0..200 {
        if pinned.len() == 2 {
            break;
        }
        let key = format!("key-{n}");
        let owner = WhoClient::new(balanced.keyed(&key)).slow(0).await.unwrap();
        if owner != "c" {
            pinned.entry(owner).or_insert(key);
        }
    }
    assert_eq!(pinned.len(), 2, "keys owned by a and b: {pinned:?}");

    // The load: 8 tasks of idempotent pulls, 4 of long non-idempotent ones.
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (who, tally, stop) = (who.clone(), tally.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                match who.slow(5).timeout(Duration::from_secs(10)).await {
                    Ok(host) => {
                        let took = started.elapsed();
                        tally
                            .idempotent_longest_us
                            .fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                        if took > Duration::from_millis(100) {
                            tally.idempotent_slow.fetch_add(1, Ordering::Relaxed);
                        }
                        tally.idempotent_ok.fetch_add(1, Ordering::Relaxed);
                        tally.replied(&host);
                    }
                    Err(status) => tally.idempotent_failed.lock().unwrap().push(status),
                }
            }
        }));
    }
    for _ in 0..4 {
        let (who, tally, stop) = (who.clone(), tally.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match who.slow_once(600).timeout(Duration::from_secs(10)).await {
                    Ok(host) => {
                        tally.once_ok.fetch_add(1, Ordering::Relaxed);
                        tally.replied(&host);
                    }
                    Err(status) => tally.once_failed.lock().unwrap().push(status),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Long non-idempotent pulls on a and on b, then the failures, mid-flight.
    let in_flight: Vec<_> = pinned
        .iter()
        .map(|(host, key)| {
            let keyed = WhoClient::new(balanced.keyed(key));
            let host = host.clone();
            tokio::spawn(async move {
                (
                    host,
                    keyed
                        .slow_once(5_000)
                        .timeout(Duration::from_secs(10))
                        .await,
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cut_at = Instant::now();
    net.cut(0).unwrap_or_else(|e| panic!("{e}"));
    let killed_at = Instant::now();
    hosts[1].take().expect("b runs").kill();

    // Both are ejected: b at once (its connections end), a once heartbeats go unanswered.
    let (mut a_ejected, mut b_ejected) = (None, None);
    wait_for(&balanced, Duration::from_secs(5), "a and b ejected", || {
        let now = Instant::now();
        assert!(
            a_ejected.is_some() || view_of(&balanced, "a").is_some(),
            "a left the registry before heartbeats ejected it ({:?} after the cut): \
             its lease TTL ({:?}) is too short for the heartbeat ({heartbeat:?})",
            cut_at.elapsed(),
            lease_ttl()
        );
        if a_ejected.is_none() && view_of(&balanced, "a").is_some_and(|e| e.ejected) {
            a_ejected = Some(now - cut_at);
        }
        if b_ejected.is_none() && view_of(&balanced, "b").is_some_and(|e| e.ejected) {
            b_ejected = Some(now - killed_at);
        }
        a_ejected.is_some() && b_ejected.is_some()
    })
    .await;
    let (a_ejected, b_ejected) = (a_ejected.unwrap(), b_ejected.unwrap());
    println!("link cut -> a ejected: {a_ejected:?} (heartbeat {heartbeat:?})");
    println!("SIGKILL -> b ejected: {b_ejected:?}");
    assert!(
        a_ejected < heartbeat * 3 + Duration::from_secs(1),
        "a silent host is ejected within a few heartbeats: {a_ejected:?}"
    );

    // The pinned non-idempotent pulls fail, clearly, well before their deadline.
    for call in in_flight {
        let (host, result) = call.await.unwrap();
        let status = result.expect_err("a non-idempotent pull in flight on a lost host fails");
        assert!(
            is_clear_loss(&status),
            "pinned on {host}: unclear failure {status}"
        );
        assert!(
            status
                .cause()
                .unwrap_or_default()
                .contains(&format!("(instance {host};")),
            "{status}"
        );
        println!("non-idempotent pull in flight on {host}: {status}");
    }

    // Nothing renews b's lease (b is dead) nor a's (a is still cut off from etcd, as from
    // everything): both expire, c stays. The registry comes to list exactly c, and the
    // client follows it.
    let waited_from = Instant::now();
    let expected: BTreeSet<String> = ["c"].map(String::from).into();
    let left = registry
        .wait_for_ids(&expected, lease_ttl() + Duration::from_secs(3), |seen| {
            seen.contains("c") && seen.iter().all(|id| ids.contains(&id.as_str()))
        })
        .await;
    let gone = |id: &str, since: Instant| match left.get(id) {
        Some(during) => format!("{:?}", (waited_from - since) + *during),
        None => format!(
            "before {:?} (already gone when the wait began)",
            waited_from - since
        ),
    };
    println!(
        "SIGKILL -> b gone from the registry: {}; link cut -> a gone: {} (lease TTL {:?}, polled every 10 ms)",
        gone("b", killed_at),
        gone("a", cut_at),
        lease_ttl()
    );
    wait_for(
        &balanced,
        Duration::from_secs(2),
        "client follows the registry",
        || {
            balanced
                .endpoints()
                .iter()
                .map(|e| e.id.clone())
                .collect::<BTreeSet<_>>()
                == expected
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // a's link comes back, b restarts on the same address (and registers again).
    let a_replies = tally.replies_of("a");
    let b_replies = tally.replies_of("b");
    net.restore(0).unwrap_or_else(|e| panic!("{e}"));
    let restored_at = Instant::now();
    let (process, instance) = start_host(&net, 1, "b", &registry.url_for_hosts());
    assert_eq!(instance, instances[1]);
    hosts[1] = Some(process);
    let restarted_at = Instant::now();
    // b registered itself before saying it is ready; a registers again (under a new lease:
    // its old one expired) once its registration reaches etcd again.
    let now = registry.instances().await;
    assert_eq!(now.get("b"), Some(&instances[1]), "b registered: {now:?}");
    let all: BTreeSet<String> = ids.map(String::from).into();
    // Both waits at once, so that neither delays the other's measurement.
    let (mut a_back, mut b_back) = (None, None);
    let (a_registered, ()) = tokio::join!(
        async {
            registry
                .wait_for_ids(&all, Duration::from_secs(5), |seen| {
                    seen.contains("b") && seen.contains("c")
                })
                .await;
            restored_at.elapsed()
        },
        async {
            wait_for(
                &balanced,
                Duration::from_secs(12),
                "a and b used again",
                || {
                    let back = |id: &str, before: u64| {
                        tally.replies_of(id) > before
                            && view_of(&balanced, id).is_some_and(|e| e.connected > 0 && !e.ejected)
                    };
                    if a_back.is_none() && back("a", a_replies) {
                        a_back = Some(restored_at.elapsed());
                    }
                    if b_back.is_none() && back("b", b_replies) {
                        b_back = Some(restarted_at.elapsed());
                    }
                    a_back.is_some() && b_back.is_some()
                },
            )
            .await;
        },
    );
    assert_eq!(registry.instances().await, registered);
    println!(
        "link restored -> a registered again: {a_registered:?}, used again: {:?}; restarted -> b used again: {:?}",
        a_back.unwrap(),
        b_back.unwrap()
    );
    assert_eq!(registry.ids().await, all);
    let seen: BTreeSet<String> = balanced.endpoints().into_iter().map(|e| e.id).collect();
    assert_eq!(seen, all);
    tokio::time::sleep(Duration::from_millis(500)).await;

    stop.store(true, Ordering::Relaxed);
    for task in load {
        tokio::time::timeout(Duration::from_secs(12), task)
            .await
            .expect("the load stops")
            .unwrap();
    }
    let ok = tally.idempotent_ok.load(Ordering::Relaxed);
    let failed = tally.idempotent_failed.lock().unwrap();
    println!(
        "idempotent pulls: {ok} succeeded, {} failed; non-idempotent: {} succeeded, {} failed; replies by host {:?}",
        failed.len(),
        tally.once_ok.load(Ordering::Relaxed),
        tally.once_failed.lock().unwrap().len(),
        tally.by_host.lock().unwrap()
    );
    println!(
        "idempotent pulls over 100 ms: {}; longest: {:?}",
        tally.idempotent_slow.load(Ordering::Relaxed),
        Duration::from_micros(tally.idempotent_longest_us.load(Ordering::Relaxed))
    );
    assert!(
        failed.is_empty(),
        "{} idempotent pulls failed, first: {}",
        failed.len(),
        failed[0]
    );
    assert!(ok > 500, "the load ran: {ok} idempotent pulls");
    for status in tally.once_failed.lock().unwrap().iter() {
        assert!(
            is_clear_loss(status),
            "a non-idempotent pull failed unclearly: {status}"
        );
    }
    drop(hosts);
    drop(net);
}
