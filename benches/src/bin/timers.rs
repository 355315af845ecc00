//! `timers`: what a per-session `run_every` timer costs, in memory and CPU.
//!
//! ```text
//! timers [-n 10000] [--period-ms 1000] [--secs 10] [--threads 2]
//! ```
//!
//! Opens `n` session pairs between two peers of this process (over in-memory
//! streams, so no file descriptors are needed), lets them settle, and takes
//! the resident set size and the CPU time the idle process uses over `secs`
//! seconds. Then it starts one `Session::run_every(period)` timer on each
//! server-side session (the callback counts its tick) and measures again:
//! the memory per timer is `(RSS(timers) - RSS(none)) / n`, the CPU is the
//! process's user + system time over the window, as a share of one core.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use jaunt::{Addr, Peer, PeerConfig, Router, Session};
use jaunt_benches::load::{self, parse_count};
use nix::sys::resource::{getrusage, UsageWho};

/// The resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return Duration::ZERO;
    };
    let secs = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    secs(usage.user_time()) + secs(usage.system_time())
}

/// CPU used over `window`, as a share of one core.
fn cpu_share(window: Duration) -> f64 {
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    std::thread::sleep(window);
    (cpu_time() - cpu0).as_secs_f64() / wall0.elapsed().as_secs_f64()
}

/// The cost of many idle sessions' timers.
#[derive(Parser)]
#[command(name = "timers")]
struct Opts {
    /// Sessions (100k and 1m are accepted).
    #[arg(short = 'n', default_value = "10000", value_parser = at_least_one)]
    n: u64,
    /// The period of each session's timer, in milliseconds.
    #[arg(long = "period-ms", value_name = "MS", default_value = "1000", value_parser = millis)]
    period: Duration,
    /// How long to measure, in seconds.
    #[arg(long, default_value = "10", value_parser = at_least_one)]
    secs: u64,
    /// Worker threads of the runtime.
    #[arg(long, default_value = "2", value_parser = thread_count)]
    threads: usize,
}

/// A count (`100k`, `1m` accepted), at least 1.
fn at_least_one(text: &str) -> Result<u64, String> {
    parse_count(text).map(|v| v.max(1))
}

fn thread_count(text: &str) -> Result<usize, String> {
    at_least_one(text).map(|v| v as usize)
}

fn millis(text: &str) -> Result<Duration, String> {
    at_least_one(text).map(Duration::from_millis)
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("timers: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: &Opts) -> Result<(), String> {
    let rt = load::runtime(opts.threads);
    // Sessions that never speak must not be closed for it.
    let config = PeerConfig::builder()
        .first_frame_timeout(None)
        .read_timeout(None)
        .max_sessions(None)
        .build();
    let build = || {
        Peer::builder(Router::new())
            .config(config.clone())
            .build()
            .map_err(|e| e.to_string())
    };
    let (server, client) = (build()?, build()?);
    let n = opts.n;
    let sessions: Vec<Session> = rt.block_on(async {
        let mut sessions = Vec::with_capacity(n as usize);
        for i in 0..n {
            let (a, b) = tokio::io::duplex(4096);
            // Each session is named after its (made-up, unique) remote address.
            let name = Addr::Tcp(std::net::SocketAddr::from((
                [127, 1, (i >> 8) as u8, i as u8],
                (1000 + (i >> 16)) as u16,
            )));
            let served = server
                .serve_conn(a, name.clone())
                .await
                .map_err(|s| s.to_string())?;
            client
                .serve_conn(b, name)
                .await
                .map_err(|s| s.to_string())?;
            sessions.push(served);
        }
        Ok::<_, String>(sessions)
    })?;
    if sessions.len() as u64 != n {
        return Err(format!("{} of {n} sessions are up", sessions.len()));
    }
    let window = Duration::from_secs(opts.secs);
    std::thread::sleep(Duration::from_millis(500));
    let rss0 = rss_kib();
    let idle_cpu = cpu_share(window);

    let ticks = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let timers: Vec<_> = rt.block_on(async {
        sessions
            .iter()
            .map(|s| {
                let ticks = ticks.clone();
                s.run_every(opts.period, move |_| {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    std::future::ready(())
                })
            })
            .collect()
    });
    let start_took = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let rss1 = rss_kib();
    let ticks0 = ticks.load(Ordering::Relaxed);
    let timer_cpu = cpu_share(window);
    let ticked = ticks.load(Ordering::Relaxed) - ticks0;

    let per_timer = (rss1.saturating_sub(rss0) * 1024) as f64 / n as f64;
    let expected = n as f64 * window.as_secs_f64() / opts.period.as_secs_f64();
    println!(
        "{n} sessions, each with run_every({:?}); {} worker threads",
        opts.period, opts.threads
    );
    println!(
        "memory: RSS {rss0} KiB without timers, {rss1} KiB with: {per_timer:.0} bytes per timer (started in {:.1} ms)",
        start_took.as_secs_f64() * 1e3
    );
    println!(
        "cpu over {} s: {:.2} % of a core idle, {:.2} % with the timers ({ticked} ticks, {:.0} expected): {:.2} µs per tick",
        opts.secs,
        idle_cpu * 100.0,
        timer_cpu * 100.0,
        expected,
        (timer_cpu - idle_cpu).max(0.0) * window.as_secs_f64() * 1e6 / ticked.max(1) as f64
    );
    for timer in &timers {
        timer.cancel();
    }
    rt.block_on(async {
        client.close().await;
        server.close().await;
    });
    Ok(())
}
