//! The etcd registry and discovery, measured against a running etcd:
//!
//! - **watch latency**: `--registrations` instances registered one after the other
//!   (`EtcdRegistry::register`: connect, lease grant, put), each timed until an
//!   `EtcdDiscovery` watch of the service has it — from the call, and from the put's
//!   acknowledgement;
//! - **a large service**: `--instances` instances written, then the time for a new watch to
//!   list them (read + parse), and the time and memory for a balanced client to take the
//!   whole set (its endpoints and their dialers; the addresses refuse connections).
//!
//! ```sh
//! etcd --data-dir /tmp/bench-etcd &   # or any etcd
//! cargo run --release -p jaunt-benches --features etcd --bin cluster-watch -- --etcd http://127.0.0.1:2379
//! ```
//!
//! It writes under a prefix of its own (`/jaunt-bench/{pid}`) and deletes it at the end.

use std::time::{Duration, Instant};

use clap::Parser;
use jaunt_cluster::client::Balanced;
use jaunt_cluster::discovery::{Discovery, EtcdDiscovery, Manual};
use jaunt_cluster::registry::etcd_client::{Client, DeleteOptions};
use jaunt_cluster::registry::{EtcdConfig, EtcdRegistry};
use jaunt_cluster::Instance;

#[derive(Parser)]
#[command(about = "Watch latency and large-service costs of the etcd registry and discovery")]
struct Args {
    /// etcd client URL.
    #[arg(long)]
    etcd: String,
    /// Registrations timed for the watch latency.
    #[arg(long, default_value_t = 200)]
    registrations: usize,
    /// Instances of the large service.
    #[arg(long, default_value_t = 1000)]
    instances: usize,
    /// Times the large service is listed.
    #[arg(long, default_value_t = 10)]
    lists: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} median={:?} p99={:?} max={:?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

/// Resident memory, from /proc/self/statm (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let prefix = format!("/jaunt-bench/{}", std::process::id());
    let config = EtcdConfig::new([args.etcd.clone()]).prefix(prefix.clone());

    // Watch latency.
    let registry = EtcdRegistry::new(config.clone())?;
    let discovery = EtcdDiscovery::new(config.clone())?;
    let mut watch = discovery.watch("lat").await?;
    let mut from_call = Vec::with_capacity(args.registrations);
    let mut from_ack = Vec::with_capacity(args.registrations);
    let mut held = Vec::with_capacity(args.registrations);
    for i in 0..args.registrations {
        let id = format!("i{i}");
        let start = Instant::now();
        let registration = registry
            .register(Instance::new(
                id.clone(),
                "lat",
                format!("127.0.0.1:{}", 10000 + i),
            ))
            .await?;
        let acked = Instant::now();
        watch.wait_for(|set| set.contains_key(&id)).await?;
        let seen = Instant::now();
        from_call.push(seen - start);
        from_ack.push(seen - acked);
        held.push(registration);
    }
    summary("register() call -> seen by the watch", from_call);
    summary("put acknowledged -> seen by the watch", from_ack);
    for registration in held {
        registration.deregister().await;
    }

    // A large service.
    let mut raw = Client::connect([args.etcd.as_str()], None).await?;
    let write = Instant::now();
    let mut value_bytes = 0;
    for i in 0..args.instances {
        let mut instance = Instance::new(
            format!("big-{i}"),
            "big",
            format!("127.0.0.1:{}", 20000 + i % 40000),
        );
        instance.version = "1.0.0".into();
        instance.meta.insert("zone".into(), format!("z{}", i % 3));
        let value = serde_json::to_vec(&instance)?;
        value_bytes += value.len();
        raw.put(config.key("big", &instance.id), value, None)
            .await?;
    }
    println!(
        "wrote {} instances ({} bytes of JSON) in {:?}",
        args.instances,
        value_bytes,
        write.elapsed()
    );
    let mut lists = Vec::new();
    let mut set = Default::default();
    for _ in 0..args.lists {
        let start = Instant::now();
        let rx = discovery.watch("big").await?;
        lists.push(start.elapsed());
        set = rx.borrow().clone();
    }
    summary(
        &format!("new watch of {} instances (list + parse)", args.instances),
        lists,
    );

    let manual = Manual::new();
    let balanced = Balanced::builder("big", manual.clone()).build().await?;
    let before = rss_bytes();
    let start = Instant::now();
    manual.set(set.into_values());
    while balanced.endpoints().len() < args.instances {
        tokio::task::yield_now().await;
    }
    let applied = start.elapsed();
    let after = rss_bytes();
    println!(
        "balanced client took the set of {} in {applied:?}; resident memory {} (+{} KiB)",
        args.instances,
        after.map_or("?".into(), |b| format!("{} KiB", b / 1024)),
        match (before, after) {
            (Some(b), Some(a)) => (a.saturating_sub(b) / 1024).to_string(),
            _ => "?".into(),
        }
    );
    drop(balanced);
    raw.delete(prefix, Some(DeleteOptions::new().with_prefix()))
        .await?;
    Ok(())
}
