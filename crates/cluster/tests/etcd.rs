//! The etcd registry and discovery against a real etcd (started by each test on free
//! loopback ports, stopped at its end): registration and discovery, revoke-first graceful
//! shutdown, lease expiry and loss, etcd restarts and compaction, malformed values, etcd
//! down at start-up, and the balanced client over etcd discovery.

#![cfg(feature = "etcd")]

#[path = "support/etcd.rs"]
mod etcd_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use etcd_support::{free_port, TestEtcd};
use jaunt::prelude::*;
use jaunt::Plugin;
use jaunt_cluster::client::Balanced;
use jaunt_cluster::discovery::{Discovery, EtcdDiscovery};
use jaunt_cluster::registry::etcd_client::{Client, CompactionOptions};
use jaunt_cluster::registry::{EtcdConfig, EtcdRegistry, StartupPolicy};
use jaunt_cluster::{ClusterError, Endpoints, Instance};
use tokio::sync::watch;

#[jaunt::service]
trait Who {
    /// The server's name.
    #[jaunt(idempotent)]
    async fn name(&self, ctx: &PullCtx) -> Result<String, Status>;
}

struct Named(String);

impl Who for Named {
    async fn name(&self, _: &PullCtx) -> Result<String, Status> {
        Ok(self.0.clone())
    }
}

fn config(etcd: &TestEtcd) -> EtcdConfig {
    EtcdConfig::new([etcd.url()])
        .ttl(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .backoff(Duration::from_millis(100), Duration::from_millis(500))
}

async fn client(etcd: &TestEtcd) -> Client {
    Client::connect([etcd.url()], None).await.unwrap()
}

fn ids(set: &Endpoints) -> BTreeSet<String> {
    set.keys().cloned().collect()
}

fn set_of(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

/// Waits (at most `within`) until the watched set's ids are `want`.
async fn wait_for_ids(rx: &mut watch::Receiver<Endpoints>, want: &[&str], within: Duration) {
    let want = set_of(want);
    let reached = tokio::time::timeout(within, rx.wait_for(|set| ids(set) == want))
        .await
        .map(|r| r.is_ok());
    assert!(
        matches!(reached, Ok(true)),
        "wanted {want:?}, have {:?}",
        ids(&rx.borrow())
    );
}

async fn key_exists(client: &mut Client, key: &str) -> bool {
    client.get(key, None).await.unwrap().count() > 0
}

fn who_peer(name: &str, plugin: impl Plugin) -> Peer {
    let mut router = Router::new();
    router
        .service(WhoServer::new(Named(name.to_owned())))
        .unwrap();
    Peer::builder(router).plugin(plugin).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_instance_is_discovered_and_leaves_when_deregistered() {
    let etcd = TestEtcd::start();
    let registry = EtcdRegistry::new(config(&etcd)).unwrap();
    let discovery = EtcdDiscovery::new(config(&etcd)).unwrap();
    let mut kv = discovery.watch("kv").await.unwrap();
    assert!(kv.borrow().is_empty());

    let mut instance = Instance::new("kv-1", "kv", "127.0.0.1:9001");
    instance.version = "1.2.3".into();
    instance.routes = vec!["/kv".into()];
    instance.meta.insert("zone".into(), "a".into());
    let registration = registry.register(instance.clone()).await.unwrap();
    assert!(registration.state().registered);
    assert_eq!(registration.key(), "/jaunt/services/kv/kv-1");
    wait_for_ids(&mut kv, &["kv-1"], Duration::from_secs(5)).await;
    assert_eq!(kv.borrow()["kv-1"], instance);

    // The value in etcd is the instance as JSON, under a lease.
    let mut raw = client(&etcd).await;
    let got = raw.get("/jaunt/services/kv/kv-1", None).await.unwrap();
    let kv_entry = &got.kvs()[0];
    assert_eq!(
        serde_json::from_slice::<Instance>(kv_entry.value()).unwrap(),
        instance
    );
    assert_eq!(kv_entry.lease(), registration.state().lease);

    // Another service's instances are not seen.
    let _other = registry
        .register(Instance::new("x", "other", "127.0.0.1:9009"))
        .await
        .unwrap();
    registration.deregister().await;
    wait_for_ids(&mut kv, &[], Duration::from_secs(5)).await;
    assert!(!key_exists(&mut raw, "/jaunt/services/kv/kv-1").await);
    assert!(key_exists(&mut raw, "/jaunt/services/other/x").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_removes_the_key_before_the_listener_closes() {
    let etcd = TestEtcd::start();
    let registry =
        EtcdRegistry::new(config(&etcd).deregister_grace(Duration::from_millis(300))).unwrap();
    let mut template = Instance::new("who-1", "who", "");
    template.addrs.clear();
    let peer = who_peer("one", registry.plugin(template));
    let addr = peer.listen("127.0.0.1:0").await.unwrap().to_string();
    let key = "/jaunt/services/who/who-1";

    let discovery = EtcdDiscovery::new(config(&etcd)).unwrap();
    let who = discovery.watch("who").await.unwrap();
    assert_eq!(who.borrow()["who-1"].addrs, vec![addr.clone()]);

    let shutdown = {
        let (registry, peer) = (registry.clone(), peer.clone());
        tokio::spawn(async move { registry.shutdown_peer(&peer, Duration::from_secs(5)).await })
    };
    // Sample (listener open?, key there?) in that order until both are gone: once the
    // listener refuses, the key must already be gone; and a moment where the key is gone
    // while the listener still accepts must be seen.
    let mut raw = client(&etcd).await;
    let mut gone_while_open = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "shutdown did not finish");
        let open = tokio::net::TcpStream::connect(&addr).await.is_ok();
        let there = key_exists(&mut raw, key).await;
        assert!(
            open || !there,
            "the listener closed while the key was still registered"
        );
        if open && !there {
            gone_while_open += 1;
        }
        if !open && !there {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        gone_while_open > 0,
        "never saw the key gone with the listener still open"
    );
    assert!(shutdown.await.unwrap());
}

#[test]
fn the_key_expires_with_the_lease_when_keep_alives_stop() {
    let etcd = TestEtcd::start();
    let key = "/jaunt/services/kv/doomed";
    // The registering "process": a runtime of its own, dropped without deregistering.
    let registering = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let registry = EtcdRegistry::new(config(&etcd)).unwrap();
    let registration = registering
        .block_on(registry.register(Instance::new("doomed", "kv", "127.0.0.1:1")))
        .unwrap();
    std::mem::forget(registration); // no revoke, no abort: the runtime's death stops it
    let test = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    test.block_on(async {
        let mut raw = client(&etcd).await;
        // Kept alive past its TTL while the process runs.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(key_exists(&mut raw, key).await, "expired while kept alive");
        registering.shutdown_background();
        let stopped = Instant::now();
        while key_exists(&mut raw, key).await {
            assert!(
                stopped.elapsed() < Duration::from_secs(6),
                "the key outlived its lease"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The lease expired (TTL 2 s, kept alive up to a third of it before): not at once.
        assert!(
            stopped.elapsed() >= Duration::from_millis(1000),
            "gone after {:?}: revoked, not expired",
            stopped.elapsed()
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_is_replaced_and_the_instance_registered_again() {
    let etcd = TestEtcd::start();
    let registry = EtcdRegistry::new(config(&etcd)).unwrap();
    let registration = registry
        .register(Instance::new("kv-1", "kv", "127.0.0.1:9001"))
        .await
        .unwrap();
    let first = registration.state();
    assert_eq!(first.leases_granted, 1);
    let discovery = EtcdDiscovery::new(config(&etcd)).unwrap();
    let mut kv = discovery.watch("kv").await.unwrap();
    wait_for_ids(&mut kv, &["kv-1"], Duration::from_secs(5)).await;

    // The lease goes behind the registration's back (as when it expires in a partition).
    let mut raw = client(&etcd).await;
    raw.lease_revoke(first.lease).await.unwrap();
    assert!(!key_exists(&mut raw, registration.key()).await);
    let mut state = registration.watch_state();
    tokio::time::timeout(
        Duration::from_secs(5),
        state.wait_for(|s| s.registered && s.lease != first.lease),
    )
    .await
    .expect("registered again under a new lease")
    .unwrap();
    assert_eq!(registration.state().leases_granted, 2);
    assert!(key_exists(&mut raw, registration.key()).await);
    wait_for_ids(&mut kv, &["kv-1"], Duration::from_secs(5)).await;
}

/// A valid instance written straight into etcd (no lease).
async fn put_instance(raw: &mut Client, id: &str) {
    let value = serde_json::to_vec(&Instance::new(id, "kv", "127.0.0.1:9000")).unwrap();
    raw.put(format!("/jaunt/services/kv/{id}"), value, None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_etcd_restart_the_registration_returns_and_the_watch_resumes_without_missing_changes(
) {
    let mut etcd = TestEtcd::start();
    let registry = EtcdRegistry::new(config(&etcd).ttl(Duration::from_secs(5))).unwrap();
    let registration = registry
        .register(Instance::new("a", "kv", "127.0.0.1:9001"))
        .await
        .unwrap();
    let mut raw = client(&etcd).await;
    put_instance(&mut raw, "x").await;
    // Discovery retries slowly, so that changes are made while its watch is down.
    let slow = config(&etcd).backoff(Duration::from_secs(8), Duration::from_secs(8));
    let discovery = EtcdDiscovery::new(slow).unwrap();
    let mut kv = discovery.watch("kv").await.unwrap();
    wait_for_ids(&mut kv, &["a", "x"], Duration::from_secs(5)).await;
    kv.borrow_and_update();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = {
        let (mut kv, seen) = (kv.clone(), seen.clone());
        tokio::spawn(async move {
            while kv.changed().await.is_ok() {
                let set = ids(&kv.borrow_and_update());
                seen.lock().unwrap().push(set);
            }
        })
    };

    etcd.stop();
    let mut state = registration.watch_state();
    tokio::time::timeout(Duration::from_secs(5), state.wait_for(|s| !s.registered))
        .await
        .expect("the registration notices etcd is gone")
        .unwrap();
    etcd.resume();
    // While the watch is still down: x leaves, b arrives.
    let mut raw = client(&etcd).await;
    raw.delete("/jaunt/services/kv/x", None).await.unwrap();
    put_instance(&mut raw, "b").await;
    assert_eq!(
        discovery.resumes(),
        0,
        "the watch came back too soon for this test"
    );

    wait_for_ids(&mut kv, &["a", "b"], Duration::from_secs(20)).await;
    assert_eq!(
        discovery.lists(),
        1,
        "resumed by listing again, not by revision"
    );
    assert!(discovery.resumes() >= 1);
    // The registration is back under the same lease (etcd kept it).
    tokio::time::timeout(Duration::from_secs(10), state.wait_for(|s| s.registered))
        .await
        .expect("registered again")
        .unwrap();
    assert_eq!(registration.state().leases_granted, 1);
    assert!(key_exists(&mut raw, "/jaunt/services/kv/a").await);

    // The sets seen: from {a, x} straight to the result, no stale or repeated set.
    put_instance(&mut raw, "c").await;
    wait_for_ids(&mut kv, &["a", "b", "c"], Duration::from_secs(5)).await;
    // The recorder is a task of its own: it may not have recorded the last set yet when `kv`
    // sees it. Let it (bounded: the assertion below says what it saw otherwise).
    let last = set_of(&["a", "b", "c"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().last() != Some(&last) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    recorder.abort();
    let seen = seen.lock().unwrap().clone();
    // The sets published since {a, x}: x's removal and b's arrival (together, or x first),
    // then c. Nothing stale (x back), nothing twice.
    let expected = [set_of(&["a", "b"]), set_of(&["a", "b", "c"])];
    let with_step = [set_of(&["a"]), expected[0].clone(), expected[1].clone()];
    assert!(
        seen == expected || seen == with_step,
        "sets published: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_behind_a_compaction_lists_again() {
    let mut etcd = TestEtcd::start();
    let mut raw = client(&etcd).await;
    put_instance(&mut raw, "a").await;
    put_instance(&mut raw, "x").await;
    let slow = config(&etcd).backoff(Duration::from_secs(8), Duration::from_secs(8));
    let discovery = EtcdDiscovery::new(slow).unwrap();
    let mut kv = discovery.watch("kv").await.unwrap();
    wait_for_ids(&mut kv, &["a", "x"], Duration::from_secs(5)).await;

    etcd.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    etcd.resume();
    let mut raw = client(&etcd).await;
    raw.delete("/jaunt/services/kv/x", None).await.unwrap();
    put_instance(&mut raw, "b").await;
    let revision = raw
        .get("/", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    raw.compact(revision, Some(CompactionOptions::new().with_physical()))
        .await
        .unwrap();
    assert_eq!(
        discovery.lists(),
        1,
        "the watch came back too soon for this test"
    );

    wait_for_ids(&mut kv, &["a", "b"], Duration::from_secs(20)).await;
    assert_eq!(discovery.lists(), 2, "listed again after the compaction");
    // And it watches again from the new list.
    put_instance(&mut raw, "c").await;
    wait_for_ids(&mut kv, &["a", "b", "c"], Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_values_are_skipped_and_the_good_ones_kept() {
    let etcd = TestEtcd::start();
    let registry = EtcdRegistry::new(config(&etcd)).unwrap();
    let _a = registry
        .register(Instance::new("a", "kv", "127.0.0.1:9001"))
        .await
        .unwrap();
    let mut raw = client(&etcd).await;
    raw.put("/jaunt/services/kv/garbage", "not json {", None)
        .await
        .unwrap();
    let wrong_id = serde_json::to_vec(&Instance::new("someone-else", "kv", "1.2.3.4:5")).unwrap();
    raw.put("/jaunt/services/kv/liar", wrong_id, None)
        .await
        .unwrap();

    let discovery = EtcdDiscovery::new(config(&etcd)).unwrap();
    let mut kv = discovery.watch("kv").await.unwrap();
    assert_eq!(ids(&kv.borrow()), set_of(&["a"]));
    assert_eq!(discovery.malformed(), 2);

    // Through the watch too: garbage arriving later is skipped, a good value still counts,
    // and a good key overwritten with garbage leaves.
    raw.put("/jaunt/services/kv/more", vec![0xff, 0x00, 0x01], None)
        .await
        .unwrap();
    put_instance(&mut raw, "c").await;
    wait_for_ids(&mut kv, &["a", "c"], Duration::from_secs(5)).await;
    raw.put("/jaunt/services/kv/c", "{\"id\": 7}", None)
        .await
        .unwrap();
    wait_for_ids(&mut kv, &["a"], Duration::from_secs(5)).await;
    assert_eq!(discovery.malformed(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_down_at_start_up_fails_clearly_or_is_retried() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let down = EtcdConfig::new([url.clone()]).connect_timeout(Duration::from_secs(1));

    let registry = EtcdRegistry::new(down.clone()).unwrap();
    let started = Instant::now();
    let error = registry
        .register(Instance::new("a", "kv", "127.0.0.1:9001"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        error,
        ClusterError::Unreachable {
            backend: "etcd",
            ..
        }
    ));
    assert!(error.to_string().contains(&url), "{error}");

    let error = EtcdDiscovery::new(down.clone())
        .unwrap()
        .watch("kv")
        .await
        .unwrap_err();
    assert!(error.to_string().contains(&url), "{error}");

    // The plugin fails the listen.
    let mut template = Instance::new("a", "kv", "");
    template.addrs.clear();
    let peer = who_peer("a", registry.plugin(template));
    let error = peer.listen("127.0.0.1:0").await.unwrap_err();
    assert!(error.to_string().contains("etcd-registry"), "{error}");

    // Retry: both return at once and catch up when etcd comes.
    let mut etcd = TestEtcd::start();
    let url = etcd.url();
    etcd.stop();
    let retry = EtcdConfig::new([url])
        .connect_timeout(Duration::from_millis(500))
        .backoff(Duration::from_millis(100), Duration::from_millis(300))
        .startup(StartupPolicy::Retry);
    let registration = EtcdRegistry::new(retry.clone())
        .unwrap()
        .register(Instance::new("a", "kv", "127.0.0.1:9001"))
        .await
        .unwrap();
    let mut kv = EtcdDiscovery::new(retry)
        .unwrap()
        .watch("kv")
        .await
        .unwrap();
    assert!(!registration.state().registered);
    assert!(kv.borrow().is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    etcd.resume();
    tokio::time::timeout(Duration::from_secs(10), registration.registered())
        .await
        .expect("registered once etcd is up");
    wait_for_ids(&mut kv, &["a"], Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balanced_client_calls_the_registered_instances_and_drops_one_that_leaves() {
    let etcd = TestEtcd::start();
    let mut peers = Vec::new();
    let mut registries = Vec::new();
    for name in ["one", "two"] {
        let registry =
            EtcdRegistry::new(config(&etcd).deregister_grace(Duration::from_millis(500))).unwrap();
        let mut template = Instance::new(name, "who", "");
        template.addrs.clear();
        let peer = who_peer(name, registry.plugin(template));
        peer.listen("127.0.0.1:0").await.unwrap();
        peers.push(peer);
        registries.push(registry);
    }
    let discovery = EtcdDiscovery::new(config(&etcd)).unwrap();
    let balanced = Balanced::builder("who", discovery).build().await.unwrap();
    let who = WhoClient::new(balanced.clone());
    let mut names = BTreeSet::new();
    for _ in 0..50 {
        names.insert(who.name().await.unwrap());
    }
    assert_eq!(names, set_of(&["one", "two"]));

    // "one" deregisters but keeps serving: only discovery can make the client stop
    // calling it.
    registries[0].deregister_all().await;
    let leaving = Instant::now();
    loop {
        let mut after = BTreeSet::new();
        for _ in 0..50 {
            after.insert(who.name().await.unwrap());
        }
        if after == set_of(&["two"]) {
            break;
        }
        assert!(
            leaving.elapsed() < Duration::from_secs(5),
            "still calling a deregistered instance: {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(peers[0].shutdown(Duration::from_secs(5)).await);
    assert_eq!(who.name().await.unwrap(), "two");
    registries[1]
        .shutdown_peer(&peers[1], Duration::from_secs(5))
        .await;
}
