//! The cluster layer end to end: three instances of a service register in etcd, a client
//! balances over them by name, one instance is killed mid-load (SIGKILL) and another
//! leaves gracefully; the example shows the failover and the registry's view, and ends
//! with `RESULT: PASS` when every check passed (exit code 1 otherwise).
//!
//! ```text
//! cargo run -p jaunt-examples --features etcd --example cluster -- --etcd http://127.0.0.1:2379
//! cargo run -p jaunt-examples --features etcd --example cluster     # starts its own etcd
//! ```
//!
//! Without `--etcd` it starts a private etcd (the `etcd` binary: Debian's `etcd-server`)
//! on free loopback ports with a temporary data directory, and stops it at the end.
//! The instances are child processes (this program again, `cluster serve ...`), so the
//! kill is a real SIGKILL: no goodbye, the lease simply stops being kept alive.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use jaunt::cluster::client::Balanced;
use jaunt::cluster::discovery::{Discovery, EtcdDiscovery};
use jaunt::cluster::registry::{etcd_client, EtcdConfig, EtcdRegistry};
use jaunt::cluster::Instance;
use jaunt::prelude::*;

/// The service the instances serve.
#[jaunt::service]
trait Kv {
    /// Which instance answered.
    #[jaunt(idempotent)]
    async fn whoami(&self, ctx: &PullCtx) -> Result<String, Status>;
    /// Which instance answered, after `ms` milliseconds.
    #[jaunt(idempotent)]
    async fn slow(&self, ctx: &PullCtx, ms: u64) -> Result<String, Status>;
}

/// One instance's implementation: it answers with its id.
struct Named {
    id: String,
}

impl Kv for Named {
    async fn whoami(&self, _: &PullCtx) -> Result<String, Status> {
        Ok(self.id.clone())
    }
    async fn slow(&self, _: &PullCtx, ms: u64) -> Result<String, Status> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(self.id.clone())
    }
}

#[derive(Parser)]
#[command(about = "Three instances in etcd, a balanced client, a kill and a failover")]
struct Args {
    /// etcd's client URL; without it a private etcd is started.
    #[arg(long, global = true)]
    etcd: Option<String>,
    /// The key prefix of the registry (one per run by default, so runs never mix).
    #[arg(long, global = true)]
    prefix: Option<String>,
    #[command(subcommand)]
    serve: Option<Serve>,
}

#[derive(Subcommand)]
enum Serve {
    /// One instance (what the example starts three times).
    Serve {
        /// The instance id.
        #[arg(long)]
        id: String,
    },
}

/// The lease TTL: how long a killed instance stays in the registry at most.
const TTL: Duration = Duration::from_secs(3);

fn config(url: &str, prefix: &str) -> EtcdConfig {
    EtcdConfig::new([url])
        .prefix(prefix)
        .ttl(TTL)
        .connect_timeout(Duration::from_secs(3))
        .deregister_grace(Duration::from_millis(300))
}

/// `cluster serve`: an instance registered in etcd; deregisters first, then drains, on
/// SIGTERM.
async fn serve(url: &str, prefix: &str, id: &str) -> Result<(), String> {
    let registry = EtcdRegistry::new(config(url, prefix)).map_err(|e| e.to_string())?;
    let mut template = Instance::new(id, "kv", "");
    template.addrs.clear();
    let mut router = Router::new();
    router
        .service(KvServer::new(Named { id: id.to_owned() }))
        .map_err(|e| e.to_string())?;
    let peer = Peer::builder(router)
        .plugin(registry.plugin(template))
        .build()
        .map_err(|e| e.to_string())?;
    let addr = peer
        .listen("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    println!("LISTENING {addr}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    term.recv().await;
    registry.shutdown_peer(&peer, Duration::from_secs(5)).await;
    Ok(())
}

/// The instances, as child processes.
struct Instances {
    children: BTreeMap<String, Child>,
}

impl Instances {
    fn start(url: &str, prefix: &str, ids: &[&str]) -> Result<Instances, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut instances = Instances {
            children: BTreeMap::new(),
        };
        for id in ids {
            let mut child = Command::new(&exe)
                .args(["--etcd", url, "--prefix", prefix, "serve", "--id", id])
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start instance {id}: {e}"))?;
            let mut line = String::new();
            let stdout = child.stdout.take().ok_or("no stdout")?;
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            instances.children.insert((*id).to_owned(), child);
            if !line.starts_with("LISTENING ") {
                return Err(format!("instance {id} said {line:?}"));
            }
            println!(
                "  {id}: listening on {}",
                line.trim()["LISTENING ".len()..].trim()
            );
        }
        Ok(instances)
    }

    fn kill(&mut self, id: &str) {
        if let Some(mut child) = self.children.remove(id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and waits for the instance to finish its graceful shutdown.
    fn stop(&mut self, id: &str) {
        if let Some(mut child) = self.children.remove(id) {
            let _ = nix_kill_term(child.id());
            let _ = child.wait();
        }
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn nix_kill_term(pid: u32) -> std::io::Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill -TERM failed"))
    }
}

/// A private etcd on free loopback ports, stopped (and its data removed) on drop.
struct PrivateEtcd {
    child: Child,
    url: String,
    dir: std::path::PathBuf,
}

impl PrivateEtcd {
    fn start() -> Result<PrivateEtcd, String> {
        let port = || -> Result<u16, String> {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
        };
        let (client, peer) = (port()?, port()?);
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let dir =
            std::env::temp_dir().join(format!("jaunt-cluster-example-{}", std::process::id()));
        let child = Command::new("etcd")
            .args(["--name", "default", "--data-dir"])
            .arg(&dir)
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .arg("--initial-cluster")
            .arg(format!("default={peer_url}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start etcd ({e}): install it (apt-get install etcd-server) or pass \
                     --etcd URL of a running one"
                )
            })?;
        Ok(PrivateEtcd { child, url, dir })
    }
}

impl Drop for PrivateEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The instances the registry holds now: id → address.
async fn registry_view(url: &str, prefix: &str) -> Result<BTreeMap<String, String>, String> {
    let mut client = etcd_client::Client::connect([url], None)
        .await
        .map_err(|e| e.to_string())?;
    let options = etcd_client::GetOptions::new().with_prefix();
    let got = client
        .get(format!("{prefix}/kv/"), Some(options))
        .await
        .map_err(|e| e.to_string())?;
    let mut view = BTreeMap::new();
    for kv in got.kvs() {
        let instance: Instance = serde_json::from_slice(kv.value()).map_err(|e| e.to_string())?;
        view.insert(instance.id.clone(), instance.addrs.join(","));
    }
    Ok(view)
}

/// Waits until the registry holds exactly `ids`.
async fn registry_becomes(
    url: &str,
    prefix: &str,
    ids: &[&str],
    within: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let view = registry_view(url, prefix).await?;
        if view.keys().map(String::as_str).eq(ids.iter().copied()) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            return Err(format!("the registry holds {view:?}, not {ids:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Checks {
    failed: usize,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str) {
        println!("  [{}] {what}", if ok { "ok" } else { "FAILED" });
        if !ok {
            self.failed += 1;
        }
    }
}

/// Waits until etcd answers (a private one takes a moment to start).
async fn wait_etcd(url: &str) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let answer = match etcd_client::Client::connect([url], None).await {
            Ok(mut client) => client.status().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match answer {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() > Duration::from_secs(20) => {
                return Err(format!("etcd at {url} does not answer: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn demo(url: &str, prefix: &str) -> Result<Checks, String> {
    wait_etcd(url).await?;
    let mut checks = Checks { failed: 0 };
    println!("1. three instances of \"kv\" register in etcd ({url}, prefix {prefix})");
    let mut instances = Instances::start(url, prefix, &["kv-1", "kv-2", "kv-3"])?;
    let took = registry_becomes(
        url,
        prefix,
        &["kv-1", "kv-2", "kv-3"],
        Duration::from_secs(10),
    )
    .await;
    checks.check(took.is_ok(), "the registry holds kv-1, kv-2, kv-3");
    println!("   registry: {:?}", registry_view(url, prefix).await?);

    println!("2. a client calls \"kv\" by name, balanced over what etcd says");
    let discovery = EtcdDiscovery::new(config(url, prefix)).map_err(|e| e.to_string())?;
    let mut seen_by_discovery = discovery.watch("kv").await.map_err(|e| e.to_string())?;
    let balanced = Balanced::builder("kv", discovery)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while balanced.endpoints().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    checks.check(
        balanced.wait_connected(Duration::from_secs(10)).await,
        "the client dialed all three",
    );
    let kv = KvClient::new(balanced.clone());
    let mut spread = BTreeMap::new();
    for _ in 0..300 {
        let id = kv.whoami().await.map_err(|e| e.to_string())?;
        *spread.entry(id).or_insert(0) += 1;
    }
    println!("   300 calls: {spread:?}");
    checks.check(
        spread.len() == 3 && spread.values().all(|n| *n >= 30),
        "every instance took its share",
    );

    println!("3. kv-2 is killed (SIGKILL) under load: idempotent pulls fail over");
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (kv, ok, failed, stop) = (kv.clone(), ok.clone(), failed.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut first_error = None;
            while !stop.load(Ordering::Relaxed) {
                match kv.slow(20).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(status) => {
                        first_error.get_or_insert(status.to_string());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            first_error
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    instances.kill("kv-2");
    // Ejected (its sessions lost) and, once its lease expires, gone from the registry.
    let mut ejected_after = None;
    while killed_at.elapsed() < Duration::from_secs(2) {
        let view = balanced.endpoints();
        if view
            .iter()
            .any(|e| e.id == "kv-2" && (e.ejected || e.connected == 0))
        {
            ejected_after = Some(killed_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut first_error = None;
    for task in load {
        if let Some(error) = task.await.map_err(|e| e.to_string())? {
            first_error.get_or_insert(error);
        }
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let resent = balanced.resent();
    println!("   {resent} pulls in flight on kv-2 were resent to another instance");
    println!(
        "   {ok} pulls succeeded, {failed} failed{}",
        first_error
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!("   kv-2 left the choice {ejected_after:?} after the kill");
    checks.check(ok > 100 && failed == 0, "no idempotent pull failed");
    checks.check(resent > 0, "the pulls kv-2 held failed over");
    checks.check(ejected_after.is_some(), "kv-2 left the choice at once");
    let gone = registry_becomes(url, prefix, &["kv-1", "kv-3"], TTL * 3).await;
    match &gone {
        Ok(took) => println!(
            "   the registry dropped kv-2 {:.1?} after the kill (lease TTL {TTL:?})",
            *took + Duration::from_millis(500)
        ),
        Err(e) => println!("   {e}"),
    }
    checks.check(
        gone.is_ok(),
        "the registry shows exactly the live instances",
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen_by_discovery.borrow_and_update().len() != 2 && Instant::now() < deadline {
        let _ = tokio::time::timeout(Duration::from_millis(100), seen_by_discovery.changed()).await;
    }
    checks.check(
        seen_by_discovery.borrow().len() == 2,
        "discovery follows it",
    );

    println!("4. kv-1 leaves gracefully (SIGTERM): it deregisters first, then drains");
    let stopped_at = Instant::now();
    instances.stop("kv-1");
    let view = registry_view(url, prefix).await?;
    println!(
        "   registry {:.1?} after SIGTERM: {view:?}",
        stopped_at.elapsed()
    );
    checks.check(
        view.keys().eq(["kv-3"].iter()),
        "kv-1's key went before it exited",
    );
    let mut after = BTreeMap::new();
    for _ in 0..50 {
        let id = kv.whoami().await.map_err(|e| e.to_string())?;
        *after.entry(id).or_insert(0) += 1;
    }
    println!("   50 calls: {after:?}");
    checks.check(after.keys().eq(["kv-3"].iter()), "calls go to the one left");
    instances.stop("kv-3");
    balanced.peer().close().await;
    Ok(checks)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let prefix = args
        .prefix
        .clone()
        .unwrap_or_else(|| format!("/jaunt-example-{}/services", std::process::id()));
    if let Some(Serve::Serve { id }) = &args.serve {
        let Some(url) = &args.etcd else {
            eprintln!("cluster serve: --etcd is required");
            return ExitCode::from(2);
        };
        return match runtime.block_on(serve(url, &prefix, id)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cluster serve {id}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let private;
    let url = match &args.etcd {
        Some(url) => url.clone(),
        None => match PrivateEtcd::start() {
            Ok(etcd) => {
                private = etcd;
                println!("started a private etcd at {}", private.url);
                private.url.clone()
            }
            Err(e) => {
                eprintln!("cluster: {e}");
                println!("RESULT: FAIL");
                return ExitCode::FAILURE;
            }
        },
    };
    match runtime.block_on(demo(&url, &prefix)) {
        Ok(checks) if checks.failed == 0 => {
            println!("RESULT: PASS");
            ExitCode::SUCCESS
        }
        Ok(checks) => {
            println!("RESULT: FAIL ({} checks failed)", checks.failed);
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cluster: {e}");
            println!("RESULT: FAIL");
            ExitCode::FAILURE
        }
    }
}
