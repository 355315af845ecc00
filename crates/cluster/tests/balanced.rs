//! The balanced client against real servers on loopback: spreading, pools, affinity,
//! failover of idempotent pulls, ejection of an instance that refuses connections, and its
//! return.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jaunt::prelude::*;
use jaunt_cluster::client::{Balanced, Ejection, Policy};
use jaunt_cluster::discovery::{Manual, StaticList};
use jaunt_cluster::{ClusterError, Instance};

#[jaunt::service]
trait Who {
    /// The server's name.
    #[jaunt(idempotent)]
    async fn name(&self, ctx: &PullCtx) -> Result<String, Status>;
    /// The server's name, after `ms` milliseconds.
    #[jaunt(idempotent)]
    async fn slow(&self, ctx: &PullCtx, ms: u64) -> Result<String, Status>;
    /// The same, but not idempotent.
    async fn slow_once(&self, ctx: &PullCtx, ms: u64) -> Result<String, Status>;
    /// Counted by the server.
    async fn note(&self, ctx: &PushCtx, text: String);
    /// The server's name, or, if `lost`, status 102 as a relay answers when its own
    /// backend's connection is gone.
    async fn relay(&self, ctx: &PullCtx, lost: bool) -> Result<String, Status>;
}

struct Named {
    name: String,
    notes: Arc<AtomicU64>,
    /// Answers `name` only after a minute: an instance gone silent.
    stalled: bool,
}

impl Who for Named {
    async fn name(&self, _: &PullCtx) -> Result<String, Status> {
        if self.stalled {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Ok(self.name.clone())
    }
    async fn slow(&self, _: &PullCtx, ms: u64) -> Result<String, Status> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(self.name.clone())
    }
    async fn slow_once(&self, _: &PullCtx, ms: u64) -> Result<String, Status> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(self.name.clone())
    }
    async fn note(&self, _: &PushCtx, _: String) {
        self.notes.fetch_add(1, Ordering::Relaxed);
    }
    async fn relay(&self, _: &PullCtx, lost: bool) -> Result<String, Status> {
        if lost {
            return Err(Status::conn_closed("backend connection lost"));
        }
        Ok(self.name.clone())
    }
}

/// A server in a runtime of its own, so that a test can kill it the hard way (its runtime
/// dropped: every socket closed at once, no goodbye), as SIGKILL would.
struct Server {
    name: String,
    addr: String,
    peer: Option<Peer>,
    notes: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    fn start(name: &str) -> Server {
        Server::start_at(name, "127.0.0.1:0")
    }

    /// Starts the server from a thread of its own (tests call it from inside their runtime).
    fn start_at(name: &str, addr: &str) -> Server {
        let (name, addr) = (name.to_owned(), addr.to_owned());
        std::thread::spawn(move || Server::start_here(&name, &addr, false))
            .join()
            .unwrap()
    }

    /// A server whose `name` pulls get no answer (for a minute).
    fn start_stalled(name: &str) -> Server {
        let name = name.to_owned();
        std::thread::spawn(move || Server::start_here(&name, "127.0.0.1:0", true))
            .join()
            .unwrap()
    }

    fn start_here(name: &str, addr: &str, stalled: bool) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let notes = Arc::new(AtomicU64::new(0));
        let mut router = Router::new();
        router
            .service(WhoServer::new(Named {
                name: name.to_owned(),
                notes: notes.clone(),
                stalled,
            }))
            .unwrap();
        let peer = Peer::new(router);
        let addr = runtime.block_on(async {
            let backend = peer.listen("127.0.0.1:0").await.unwrap().to_string();
            front(addr, backend).await
        });
        Server {
            name: name.to_owned(),
            addr,
            peer: Some(peer),
            notes,
            runtime: Some(runtime),
        }
    }

    fn instance(&self) -> Instance {
        Instance::new(self.name.clone(), "who", self.addr.clone())
    }

    fn sessions(&self) -> usize {
        self.peer.as_ref().map_or(0, Peer::session_count)
    }

    /// Drops the server's runtime: its connections close with nothing sent.
    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.peer.take();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server's public address: a TCP relay to `backend`, on the server's runtime. Killing
/// the runtime drops the relay's sockets at once — connections end with nothing sent and
/// the address refuses new ones — which is what clients of a SIGKILLed process see.
async fn front(addr: &str, backend: String) -> String {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let public = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let backend = backend.clone();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(backend).await {
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    public
}

/// One test at a time: a test that kills a server frees its port, and a server another
/// test starts meanwhile may be given it — the first test's client, still redialing the
/// dead address, would then reach the second test's server.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn fast_ejection() -> Ejection {
    Ejection {
        failures: 2,
        base: Duration::from_millis(300),
        max: Duration::from_secs(2),
    }
}

async fn names(client: &WhoClient<Balanced>, calls: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..calls {
        *seen.entry(client.name().await.unwrap()).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_every_instance_through_a_pool_of_sessions() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let servers: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(n)).collect();
    let list = StaticList::new(servers.iter().map(Server::instance));
    let balanced = Balanced::builder("who", list)
        .pool_size(3)
        .build()
        .await
        .unwrap();
    let who = WhoClient::new(balanced.clone());
    // The instances are known once `build` returns (a wait on an empty view would end at
    // once: the calls below went to whichever instance connected first).
    assert_eq!(balanced.endpoints().len(), 3, "{:?}", balanced.endpoints());
    // Calls made before the pools are up go to whatever is connected: wait for all.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !balanced.endpoints().iter().all(|e| e.connected == 3) {
        assert!(
            Instant::now() < deadline,
            "pools never filled: {:?}",
            balanced.endpoints()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Slow pulls all in flight at once: the choice of two goes by calls pending, not by
    // which server happens to answer first on a loaded machine, so they spread evenly.
    let calls = (0..60).map(|_| {
        let who = who.clone();
        async move { who.slow(500).await }
    });
    let replies = futures_join_all(calls).await;
    let mut per_server = BTreeMap::new();
    for reply in replies {
        *per_server.entry(reply.unwrap()).or_insert(0) += 1;
    }
    for server in &servers {
        let got = per_server.get(&server.name).copied().unwrap_or(0);
        assert!(got >= 12, "{} got {got} of 60: {per_server:?}", server.name);
        assert_eq!(
            server.sessions(),
            3,
            "a pool of 3 sessions to {}",
            server.name
        );
    }
    let view = balanced.endpoints();
    assert_eq!(view.len(), 3);
    assert!(
        view.iter().all(|e| e.connected == 3 && !e.ejected),
        "{view:?}"
    );

    // Pushes go through it too.
    for _ in 0..30 {
        who.note("hi".to_owned()).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while servers
        .iter()
        .map(|s| s.notes.load(Ordering::Relaxed))
        .sum::<u64>()
        < 30
    {
        assert!(Instant::now() < deadline, "pushes lost");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn futures_join_all<F: std::future::IntoFuture>(
    calls: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::IntoFuture: Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = calls.map(|c| tokio::spawn(c.into_future())).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_takes_turns() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let servers: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(n)).collect();
    let list = StaticList::new(servers.iter().map(Server::instance));
    let balanced = Balanced::builder("who", list)
        .policy(Policy::RoundRobin)
        .build()
        .await
        .unwrap();
    let who = WhoClient::new(balanced);
    // The first call waits for the sessions; then every instance takes its turn.
    who.name().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = names(&who, 30).await;
    assert_eq!(
        seen.values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10],
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_stays_on_its_instance_and_moves_only_when_it_leaves() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let servers: Vec<Server> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| Server::start(n))
        .collect();
    let manual = Manual::new();
    manual.set(servers.iter().map(Server::instance));
    let balanced = Balanced::builder("who", manual.clone())
        .build()
        .await
        .unwrap();
    assert!(balanced.wait_connected(Duration::from_secs(5)).await);
    let owners = |balanced: &Balanced| {
        let balanced = balanced.clone();
        async move {
            let mut owners = BTreeMap::new();
            for user in 0..40 {
                let keyed = WhoClient::new(balanced.keyed(format!("user-{user}")));
                let first = keyed.name().await.unwrap();
                for _ in 0..3 {
                    assert_eq!(keyed.name().await.unwrap(), first, "user-{user} moved");
                }
                owners.insert(user, first);
            }
            owners
        }
    };
    let before = owners(&balanced).await;
    let distinct: std::collections::BTreeSet<_> = before.values().collect();
    assert!(distinct.len() >= 3, "keys spread: {before:?}");
    // Instance "b" leaves the set: only its users move.
    manual.set(
        servers
            .iter()
            .filter(|s| s.name != "b")
            .map(Server::instance),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = owners(&balanced).await;
    for (user, owner) in &before {
        if owner == "b" {
            assert_ne!(after[user], "b");
        } else {
            assert_eq!(
                &after[user], owner,
                "user-{user} moved although {owner} stayed"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_instance_fails_over_idempotent_pulls_only() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut servers: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(n)).collect();
    let list = StaticList::new(servers.iter().map(Server::instance));
    let balanced = Balanced::builder("who", list)
        .ejection(fast_ejection())
        .build()
        .await
        .unwrap();
    let who = WhoClient::new(balanced.clone());
    who.name().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 60 slow pulls in flight on every instance, half of them idempotent; then "a" dies.
    let idempotent: Vec<_> = (0..30)
        .map(|_| {
            let who = who.clone();
            tokio::spawn(async move { who.slow(400).timeout(Duration::from_secs(5)).await })
        })
        .collect();
    let once: Vec<_> = (0..30)
        .map(|_| {
            let who = who.clone();
            tokio::spawn(async move { who.slow_once(400).timeout(Duration::from_secs(5)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    servers[0].kill();

    for call in idempotent {
        let name = call
            .await
            .unwrap()
            .expect("an idempotent pull survives the loss");
        assert_ne!(name, "a", "a's replies never came");
    }
    assert!(balanced.resent() > 0, "the pulls a held were resent");
    let mut lost = 0;
    for call in once {
        match call.await.unwrap() {
            Ok(name) => assert_ne!(name, "a"),
            Err(status) => {
                lost += 1;
                assert_eq!(status.code(), code::CONN_CLOSED, "{status}");
                let cause = status.cause().unwrap_or_default();
                assert!(
                    cause.contains("not idempotent") && cause.contains("instance a"),
                    "{cause}"
                );
            }
        }
    }
    assert!(
        lost > 0,
        "some non-idempotent pulls were on the lost instance"
    );

    // New calls avoid the dead instance at once (its sessions are gone, then it is ejected).
    let seen = names(&who, 60).await;
    assert!(!seen.contains_key("a"), "{seen:?}");
    assert_eq!(seen.values().sum::<usize>(), 60);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !balanced
        .endpoints()
        .iter()
        .any(|e| e.id == "a" && e.ejected)
    {
        assert!(
            Instant::now() < deadline,
            "a was never ejected: {:?}",
            balanced.endpoints()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn an_instance_refusing_connections_is_ejected_without_a_hot_loop_and_returns() {
    let _alone = ONE_AT_A_TIME.blocking_lock();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let good = Server::start("good");
    // "bad" accepts TCP connections and drops them at once, counting them.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bad_addr = listener.local_addr().unwrap().to_string();
    let accepts = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    listener.set_nonblocking(true).unwrap();
    let refuser = {
        let (accepts, stop) = (accepts.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        accepts.fetch_add(1, Ordering::Relaxed);
                        drop(conn);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    let list = StaticList::new([
        good.instance(),
        Instance::new("bad", "who", bad_addr.clone()),
    ]);
    runtime.block_on(async {
        let balanced = Balanced::builder("who", list)
            .ejection(fast_ejection())
            .build()
            .await
            .unwrap();
        let who = WhoClient::new(balanced.clone());
        let started = Instant::now();
        let mut calls = 0;
        while started.elapsed() < Duration::from_millis(1500) {
            assert_eq!(who.name().await.unwrap(), "good");
            calls += 1;
        }
        assert!(calls > 100);
        let dials = accepts.load(Ordering::Relaxed);
        // Two sessions in the pool, each waiting 100, 200, 400, 800 ms (+20 %) between
        // dials: about 10 dials in 1.5 s, where a hot loop makes thousands.
        assert!(
            (2..=16).contains(&dials),
            "{dials} dials of the refusing instance in 1.5 s"
        );
        let bad = balanced
            .endpoints()
            .into_iter()
            .find(|e| e.id == "bad")
            .unwrap();
        assert_eq!(bad.connected, 0);

        // The instance comes back: a real server on the same address is used again.
        stop.store(true, Ordering::Relaxed);
        refuser.join().unwrap();
        let restored = Server::start_at("bad", &bad_addr);
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let seen = names(&who, 20).await;
            if seen.contains_key("bad") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the restored instance never came back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(restored);
    });
    drop(good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_and_empty_sets_give_clear_errors() {
    let _alone = ONE_AT_A_TIME.lock().await;
    match Balanced::builder("", StaticList::default()).build().await {
        Err(ClusterError::Config(message)) => assert!(message.contains("empty")),
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
    for (builder, says) in [
        (
            Balanced::builder("who", StaticList::default()).pool_size(0),
            "pool_size",
        ),
        (
            Balanced::builder("who", StaticList::default()).retry_budget(-0.5, 10),
            "retry_ratio",
        ),
        (
            Balanced::builder("who", StaticList::default()).retry_budget(f32::NAN, 10),
            "retry_ratio",
        ),
    ] {
        match builder.build().await {
            Err(ClusterError::Config(message)) => assert!(message.contains(says), "{message}"),
            other => panic!("expected a config error, got {:?}", other.map(|_| ())),
        }
    }
    let balanced = Balanced::builder("who", StaticList::default())
        .connect_wait(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let status = WhoClient::new(balanced).name().await.unwrap_err();
    assert_eq!(status.code(), code::DIAL_FAILED);
    assert!(
        status
            .to_string()
            .contains("no instance of service \"who\""),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_half_way_does_not_leave_its_instance_looking_busy() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = Server::start("only");
    let balanced = Balanced::builder("who", StaticList::new([server.instance()]))
        .build()
        .await
        .unwrap();
    let who = WhoClient::new(balanced.clone());
    assert_eq!(who.name().await.unwrap(), "only");
    // The caller gives up on a slow pull: its future is dropped mid-call.
    let gave_up = tokio::time::timeout(Duration::from_millis(50), who.slow(2_000)).await;
    assert!(gave_up.is_err());
    let view = balanced.endpoints();
    assert_eq!(view[0].in_flight, 0, "{view:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_instance_does_not_capture_every_caller() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // "a" takes calls and never answers; "b" is down; "c" and "d" work.
    let mut servers = [
        Server::start_stalled("a"),
        Server::start("b"),
        Server::start("c"),
        Server::start("d"),
    ];
    let list = StaticList::new(servers.iter().map(Server::instance));
    let balanced = Balanced::builder("who", list).build().await.unwrap();
    assert_eq!(balanced.endpoints().len(), 4, "known from the start");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !balanced.endpoints().iter().all(|e| e.connected == 2) {
        assert!(Instant::now() < deadline, "{:?}", balanced.endpoints());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    servers[1].kill();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // 8 callers in a closed loop. A caller whose pull went to "a" waits; the choice of two
    // goes by calls pending, so "a" — holding more and more — must stop being chosen,
    // whatever else is down: the others keep the callers busy.
    let who = WhoClient::new(balanced.clone());
    let done = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (who, done) = (who.clone(), done.clone());
            tokio::spawn(async move {
                loop {
                    if who.name().timeout(Duration::from_secs(10)).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = done.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let recent = done.load(Ordering::Relaxed) - before;
    let view = balanced.endpoints();
    for caller in callers {
        caller.abort();
    }
    let stuck = view.iter().find(|e| e.id == "a").unwrap().in_flight;
    assert!(
        stuck <= 6,
        "{stuck} of 8 callers wait on the silent instance: {view:?}"
    );
    assert!(recent > 100, "only {recent} calls in 500 ms: {view:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_stops_when_the_retry_budget_is_spent() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut servers: Vec<Server> = ["a", "b"].iter().map(|n| Server::start(n)).collect();
    let list = StaticList::new(servers.iter().map(Server::instance));
    // Resends may be 20 % of the idempotent pulls made, with no reserve per second.
    let balanced = Balanced::builder("who", list)
        .pool_size(1)
        .retry_budget(0.2, 0)
        .build()
        .await
        .unwrap();
    assert!(balanced.wait_connected(Duration::from_secs(5)).await);
    let who = WhoClient::new(balanced.clone());
    // 20 slow idempotent pulls in flight, half of them on "a" (round-robin would be exact;
    // the choice of two keeps the pending counts within one of each other).
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let who = who.clone();
            tokio::spawn(async move { who.slow(600).timeout(Duration::from_secs(5)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let on_a = balanced
        .endpoints()
        .iter()
        .find(|e| e.id == "a")
        .unwrap()
        .in_flight;
    assert!(on_a >= 5, "{:?}", balanced.endpoints());
    servers[0].kill();
    let (mut ok, mut spent) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), code::CONN_CLOSED, "{status}");
                let cause = status.cause().unwrap_or_default();
                assert!(cause.contains("retry budget is spent"), "{cause}");
                spent += 1;
            }
        }
    }
    // 20 pulls credited 20 × 0.2 = 4 resends: some of a's pulls were resent, and the
    // budget stopped the rest.
    let resent = balanced.resent();
    assert!((1..=4).contains(&resent), "{resent} resent");
    assert!(spent >= 1, "the budget refused none");
    assert_eq!(
        resent as usize + spent,
        on_a,
        "every pull a held was resent or refused"
    );
    assert_eq!(ok + spent, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_that_works_clears_the_failures_before_it() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let server = Server::start("a");
    // Two connection-loss answers in a row eject the instance.
    let balanced = Balanced::builder("who", StaticList::new([server.instance()]))
        .pool_size(1)
        .ejection(fast_ejection())
        .build()
        .await
        .unwrap();
    assert!(balanced.wait_connected(Duration::from_secs(5)).await);
    let who = WhoClient::new(balanced.clone());
    let ejected = || balanced.endpoints()[0].ejected;

    // Lost, worked, lost: never two in a row, so never ejected.
    let lost = who.relay(true).await.unwrap_err();
    assert_eq!(lost.code(), code::CONN_CLOSED, "{lost}");
    assert_eq!(who.relay(false).await.unwrap(), "a");
    who.relay(true).await.unwrap_err();
    assert!(!ejected(), "{:?}", balanced.endpoints());
    // A second loss in a row ejects it (the rule is live, the session is fine).
    who.relay(true).await.unwrap_err();
    assert!(ejected(), "{:?}", balanced.endpoints());
    assert_eq!(server.sessions(), 1);
}
