//! `abuse`: how a Jaunt server with the **default** [`PeerConfig`] holds up against hostile
//! clients, while a well-behaved client keeps pulling.
//!
//! ```text
//! cargo run --release -p jaunt-benches --bin abuse                      # every attack
//! cargo run --release -p jaunt-benches --bin abuse -- --only gzip-bomb  # one attack
//! cargo run -p jaunt-benches --bin abuse -- --quick                     # smoke test, < 60 s
//! abuse [--quick] [--only NAME] [--json FILE] [--config JSON] [--logs DIR] [--rss-cap-mib N]
//! abuse serve [--config JSON] [--watch-stdin]                           # the server alone
//! ```
//!
//! For each attack the runner starts a fresh server: this binary re-executed as
//! `abuse serve`, a peer built with `Peer::builder(router).config(PeerConfig::default())`
//! (`--config JSON` overrides fields, e.g. `--config '{"max_handlers": 4096}'`) listening on
//! 127.0.0.1:0, which prints `LISTENING addr` and logs (tracing, `RUST_LOG`, default `warn`)
//! to stderr. Its routes: pull `/bench/echo` (echoes its raw body and codec), `/math/add`
//! (`Vec<i64>` as JSON → their sum), `/slow` (sleeps 200 ms), `/abuse/stats` (see
//! `server_stats`) and `/abuse/reset_peak` (resets `VmHWM` through `/proc/self/clear_refs`).
//!
//! While the attack runs, from its own connections:
//!
//! - a **good client** pulls `/math/add` with `[1,2,3]`, one pull at a time about every 5 ms,
//!   each with a 2 s timeout; every pull that errors or takes longer than 2 s is a failure.
//!   The latency quantiles are over every pull (a failed pull counts with the time it took);
//! - a **sampler** pulls `/abuse/stats` and reads the server's `/proc/PID/status` every
//!   100 ms. *RSS+* is the largest `VmHWM` seen minus the RSS at the start of the attack;
//!   *held* is the largest `bytes_held` (or `peak_bytes_held`) the server reports, `-` while
//!   it reports none.
//!
//! The server's stderr is captured: *log* is the bytes it wrote during the attack (`--logs
//! DIR` keeps them in `DIR/ATTACK.log`). A server whose RSS passes `--rss-cap-mib` (default
//! 4096) is stopped and the attack marked aborted, so a run cannot exhaust the machine.
//!
//! The attacks (frames built with [`RawProto`]; "never reads": the attacker never reads its
//! socket):
//!
//! | name | what |
//! |---|---|
//! | `handler-pool` | 17 connections pipeline pulls to `/slow` (200 ms, 16 KiB reply) as fast as they can, never read |
//! | `big-echo` | 1 connection sends 1 MiB `/bench/echo` pulls for 5 s, never reads |
//! | `gzip-bomb` | pulls to `/bench/echo` through gzip (`g`): 15 MiB of zeros in ~15 KB, never reads |
//! | `header-only` | 500 connections send the first 5 bytes of a frame announcing 16 MiB, then wait |
//! | `big-json` | 2 connections pipeline maximal frames (just under 16 MiB) of a JSON array to `/math/add`, reading the replies |
//! | `bad-seq-flood` | 100,000 frames whose seq is not base-36, on one connection (a valid push every 8th frame, so they are never 16 in a row); then bad frames only on another, which the server must close |
//! | `conn-rate` | 5,000 connections opened as fast as possible (500 at a time) and held |
//! | `slowloris` | 1,000 connections each sending one byte of a frame per second |
//! | `idle` | 2,000 connections that send nothing |
//! | `dup-seq` | pulls to `/slow`, each seq sent twice while the first is in flight, reading replies |
//!
//! Every loop is bounded in count and time, every attack is cut at 20 s, and the server
//! process is killed (and waited for) after each attack, on error paths too; a server also
//! exits when the runner's end of its stdin closes (`--watch-stdin`). All traffic goes to
//! 127.0.0.1. Both processes raise their soft open-file limit to the hard limit; if that is
//! still too low, the connection counts are reduced and the run says so.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Parser, Subcommand};
use jaunt::router::RouteError;
use jaunt::socket::{Proto, ProtoConfig};
use jaunt::xfer::{GzipFilter, XferFilter};
use jaunt::{
    codec_ids, Packet, PacketType, Peer, PeerConfig, PullCtx, PullOptions, RawBody, RawProto,
    Router, Session, Status,
};
use jaunt_benches::{load, BENCH_URI};
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant as TokioInstant;

/// How long `/slow` sleeps.
const SLOW: Duration = Duration::from_millis(200);
/// The good client's timeout per pull.
const GOOD_TIMEOUT: Duration = Duration::from_secs(2);
/// The good client's pause between pulls.
const GOOD_PAUSE: Duration = Duration::from_millis(5);
/// How often the sampler looks at the server.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// No attack runs longer.
const HARD_CAP: Duration = Duration::from_secs(20);
/// The gzip bomb's body, decompressed.
const BOMB_LEN: usize = 15 * 1024 * 1024;
/// The largest frame of the default config.
const MAX_FRAME: usize = jaunt::socket::DEFAULT_MAX_FRAME_LEN;
/// File descriptors kept free for everything but the attack's connections.
const FD_RESERVE: u64 = 128;

/// The attacks, in the order they run.
const ATTACKS: [&str; 10] = [
    "handler-pool",
    "big-echo",
    "gzip-bomb",
    "header-only",
    "big-json",
    "bad-seq-flood",
    "conn-rate",
    "slowloris",
    "idle",
    "dup-seq",
];

/// How a Jaunt server with the default `PeerConfig` holds up against hostile clients.
#[derive(Parser)]
#[command(name = "abuse", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    run: Opts,
}

#[derive(Subcommand)]
enum Sub {
    /// The server alone: prints `LISTENING addr`, serves until killed.
    Serve {
        /// Fields of the server's `PeerConfig`, as a JSON object
        /// (e.g. '{"max_handlers": 4096}').
        #[arg(long, value_name = "JSON", value_parser = peer_config)]
        config: Option<PeerConfig>,
        /// Exit when standard input closes (the runner holds it).
        #[arg(long)]
        watch_stdin: bool,
    },
}

/// A `PeerConfig` from its JSON form.
fn peer_config(json: &str) -> Result<PeerConfig, String> {
    serde_json::from_str(json).map_err(|e| format!("bad --config: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::Serve {
        config,
        watch_stdin,
    }) = cli.command
    {
        return serve(config.unwrap_or_default(), watch_stdin);
    }
    match run(&cli.run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("abuse: {e}");
            ExitCode::FAILURE
        }
    }
}

// ----- shared helpers -------------------------------------------------------------

/// `VmRSS` and `VmHWM` (KiB) of a `/proc/.../status` file; zeros if unreadable.
fn proc_status_kib(path: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Raises the soft limit of open files to the hard limit; returns the soft limit now.
fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

// ----- the server -------------------------------------------------------------------

/// Everything the server reports about itself on `/abuse/stats`. The one place that gathers
/// server-side numbers: once `Peer::stats()` exists this becomes
/// `serde_json::to_value(peer.stats())` plus the two RSS fields (the runner already reads
/// `bytes_held` and `peak_bytes_held` when present).
fn server_stats(peer: &Peer) -> Value {
    let (rss_kib, hwm_kib) = proc_status_kib("/proc/self/status");
    let mut stats = serde_json::to_value(peer.stats()).unwrap_or_else(|_| serde_json::json!({}));
    if let Value::Object(fields) = &mut stats {
        fields.insert("rss_kib".into(), rss_kib.into());
        fields.insert("hwm_kib".into(), hwm_kib.into());
    }
    stats
}

/// The server's routes.
fn server_router() -> Result<Router, RouteError> {
    let mut routes = Router::new();
    routes.pull(BENCH_URI, |ctx: PullCtx| async move {
        Ok::<RawBody, Status>(ctx.raw_body())
    })?;
    routes.pull("/math/add", |_: PullCtx, numbers: Vec<i64>| async move {
        numbers
            .iter()
            .try_fold(0_i64, |sum, n| sum.checked_add(*n))
            .ok_or_else(|| Status::bad_message("the sum overflows an i64"))
    })?;
    // 16 KiB replies: a client that never reads them fills its socket
    // buffers within a few hundred, and then its write queue and handlers.
    let slow_reply = Bytes::from(vec![b's'; 16 * 1024]);
    routes.pull("/slow", move |_: PullCtx| {
        let reply = slow_reply.clone();
        async move {
            tokio::time::sleep(SLOW).await;
            Ok::<_, Status>(RawBody::new(codec_ids::PLAIN, reply))
        }
    })?;
    routes.pull("/abuse/stats", |ctx: PullCtx| async move {
        Ok::<_, Status>(server_stats(&ctx.peer()))
    })?;
    routes.pull("/abuse/reset_peak", |_: PullCtx| async move {
        // "5" resets VmHWM to the current RSS; failing is harmless (the runner then
        // measures from the process's start).
        Ok::<_, Status>(std::fs::write("/proc/self/clear_refs", "5").is_ok())
    })?;
    Ok(routes)
}

/// `abuse serve`: prints `LISTENING addr`, serves until killed (or, with `--watch-stdin`,
/// until stdin closes).
fn serve(config: PeerConfig, watch_stdin: bool) -> ExitCode {
    raise_nofile();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    if watch_stdin {
        std::thread::spawn(|| {
            let mut buf = [0_u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            std::process::exit(0);
        });
    }
    let rt = load::runtime(2);
    rt.block_on(async {
        let routes = match server_router() {
            Ok(routes) => routes,
            Err(e) => {
                eprintln!("abuse serve: {e}");
                return ExitCode::FAILURE;
            }
        };
        let peer = match Peer::builder(routes).config(config).build() {
            Ok(peer) => peer,
            Err(e) => {
                eprintln!("abuse serve: {e}");
                return ExitCode::FAILURE;
            }
        };
        let addr = match peer.listen("127.0.0.1:0").await {
            Ok(addr) => addr,
            Err(e) => {
                eprintln!("abuse serve: cannot listen: {e}");
                return ExitCode::FAILURE;
            }
        };
        load::announce(&addr);
        // Serves until killed (the runner kills it after each attack).
        std::future::pending::<()>().await;
        peer.close().await;
        ExitCode::SUCCESS
    })
}

// ----- the runner's options -----------------------------------------------------------

/// The runner's command line.
#[derive(clap::Args)]
struct Opts {
    /// Small counts and short durations: a smoke test (under 60 s).
    #[arg(long)]
    quick: bool,
    /// Run only this attack.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(ATTACKS))]
    only: Option<String>,
    /// Also write the results to FILE, as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Fields of the servers' `PeerConfig`, as a JSON object.
    #[arg(long, value_name = "JSON", value_parser = config_json)]
    config: Option<String>,
    /// Keep each server's log in DIR.
    #[arg(long, value_name = "DIR")]
    logs: Option<PathBuf>,
    /// Stop an attack when the server's RSS passes N MiB.
    #[arg(long, value_name = "N", default_value = "4096", value_parser = rss_cap)]
    rss_cap_mib: u64,
}

/// `--config`: checked to be a `PeerConfig`, kept as text for the server's command line.
fn config_json(json: &str) -> Result<String, String> {
    peer_config(json).map(|_| json.to_owned())
}

fn rss_cap(text: &str) -> Result<u64, String> {
    load::parse_count(text)
}

/// The counts and durations of the attacks (full or `--quick`).
#[derive(Debug, Clone)]
struct Scale {
    handler_pool_conns: usize,
    handler_pool_for: Duration,
    big_echo_for: Duration,
    bomb_for: Duration,
    bomb_max_frames: u64,
    header_only_conns: usize,
    header_only_for: Duration,
    big_json_conns: usize,
    big_json_frames: u64,
    big_json_for: Duration,
    bad_seq_frames: u64,
    conn_rate_conns: usize,
    conn_rate_at_once: usize,
    conn_rate_hold: Duration,
    slowloris_conns: usize,
    slowloris_for: Duration,
    idle_conns: usize,
    idle_for: Duration,
    dup_seq_pairs: i32,
}

impl Scale {
    fn new(quick: bool) -> Scale {
        let s = Duration::from_secs_f64;
        if quick {
            Scale {
                handler_pool_conns: 17,
                handler_pool_for: s(2.0),
                big_echo_for: s(1.5),
                bomb_for: s(1.5),
                bomb_max_frames: 16,
                header_only_conns: 100,
                header_only_for: s(1.5),
                big_json_conns: 2,
                big_json_frames: 1,
                big_json_for: s(3.0),
                bad_seq_frames: 10_000,
                conn_rate_conns: 500,
                conn_rate_at_once: 100,
                conn_rate_hold: s(1.0),
                slowloris_conns: 100,
                slowloris_for: s(2.0),
                idle_conns: 200,
                idle_for: s(1.5),
                dup_seq_pairs: 10,
            }
        } else {
            Scale {
                handler_pool_conns: 17,
                handler_pool_for: s(8.0),
                big_echo_for: s(5.0),
                bomb_for: s(6.0),
                bomb_max_frames: 400,
                header_only_conns: 500,
                header_only_for: s(5.0),
                big_json_conns: 2,
                big_json_frames: 24,
                big_json_for: s(12.0),
                bad_seq_frames: 100_000,
                conn_rate_conns: 5_000,
                conn_rate_at_once: 500,
                conn_rate_hold: s(3.0),
                slowloris_conns: 1_000,
                slowloris_for: s(13.0),
                idle_conns: 2_000,
                idle_for: s(12.0),
                dup_seq_pairs: 50,
            }
        }
    }

    /// Cuts the connection counts to what `fd_limit` allows; returns what it changed.
    fn fit(&mut self, fd_limit: u64) -> Vec<String> {
        let room = fd_limit.saturating_sub(FD_RESERVE).max(16) as usize;
        let mut cut = Vec::new();
        for (name, count) in [
            ("header-only", &mut self.header_only_conns),
            ("conn-rate", &mut self.conn_rate_conns),
            ("slowloris", &mut self.slowloris_conns),
            ("idle", &mut self.idle_conns),
        ] {
            if *count > room {
                cut.push(format!("{name}: {count} -> {room} connections"));
                *count = room;
            }
        }
        cut
    }
}

// ----- the server process, seen from the runner --------------------------------------------

/// A running `abuse serve`; dropping it kills the process and waits for it.
struct ServerProc {
    child: Child,
    addr: SocketAddr,
    log_bytes: Arc<AtomicU64>,
    log_lines: Arc<AtomicU64>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl ServerProc {
    /// Starts the server and waits (at most 10 s) for its `LISTENING` line.
    fn start(config: Option<&str>, log_file: Option<PathBuf>) -> Result<ServerProc, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
        let mut command = Command::new(exe);
        command.arg("serve").arg("--watch-stdin");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let log_bytes = Arc::new(AtomicU64::new(0));
        let log_lines = Arc::new(AtomicU64::new(0));
        let mut server = ServerProc {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log_bytes: log_bytes.clone(),
            log_lines: log_lines.clone(),
            stderr_reader: None,
        };
        if let Some(mut stderr) = stderr {
            let mut file = match log_file {
                Some(path) => Some(
                    std::fs::File::create(&path)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
                ),
                None => None,
            };
            server.stderr_reader = Some(std::thread::spawn(move || {
                let mut buf = vec![0_u8; 64 * 1024];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
                    log_lines.fetch_add(lines as u64, Ordering::Relaxed);
                    if let Some(file) = file.as_mut() {
                        let _ = file.write_all(&buf[..n]);
                    }
                }
            }));
        }
        let Some(stdout) = stdout else {
            return Err("the server has no stdout".to_owned());
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Drain whatever else it prints, until it exits.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => return Err("the server exited before listening".to_owned()),
            Err(_) => return Err("the server did not say LISTENING within 10 s".to_owned()),
        };
        let addr = line
            .strip_prefix("LISTENING ")
            .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            .ok_or_else(|| format!("unexpected first line from the server: {line:?}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("the server listens on {addr}, not on loopback"));
        }
        server.addr = addr;
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(why)` if the process has ended by itself.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("server exited by itself ({status})")),
            _ => None,
        }
    }

    /// Kills the process and waits for it and its stderr.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.stop();
    }
}

// ----- the good client and the sampler -------------------------------------------------------

/// What the monitor thread saw.
#[derive(Debug, Default)]
struct Watch {
    latencies_us: Vec<u64>,
    ok: u64,
    failures: u64,
    first_failure: Option<String>,
    rss_start_kib: u64,
    peak_hwm_kib: u64,
    /// RSS 1 s after the attack's connections were gone.
    rss_after_kib: u64,
    max_bytes_held: Option<u64>,
    stats_failures: u64,
    last_stats: Option<Value>,
}

/// Flags shared by the runner and its monitor thread.
struct Shared {
    stop: AtomicBool,
    over_cap: Notify,
    over_cap_why: Mutex<Option<String>>,
}

/// One `/abuse/stats` pull, at most 1 s.
async fn stats(session: &Session) -> Result<Value, String> {
    let pull = session.pull_with(
        "/abuse/stats",
        &(),
        PullOptions::new().timeout(Duration::from_secs(1)),
    );
    match tokio::time::timeout(Duration::from_millis(1500), pull).await {
        Ok(Ok(reply)) => reply.decode::<Value>().map_err(|s| s.to_string()),
        Ok(Err(status)) => Err(status.to_string()),
        Err(_) => Err("no stats within 1.5 s".to_owned()),
    }
}

/// The largest `bytes_held` / `peak_bytes_held` of a stats object, if it has any.
fn held(stats: &Value) -> Option<u64> {
    let a = stats.get("bytes_held").and_then(Value::as_u64);
    let b = stats.get("peak_bytes_held").and_then(Value::as_u64);
    a.max(b)
}

/// Runs the good client and the sampler in their own thread (and runtime, so that the
/// attack's tasks do not delay them in the runner); sends `Ok` on `ready` once both are
/// connected and the server's peak is reset, then watches until `shared.stop`.
fn start_monitor(
    addr: SocketAddr,
    pid: u32,
    rss_cap_kib: u64,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> std::thread::JoinHandle<Watch> {
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready.send(Err(format!("no runtime: {e}")));
                return Watch::default();
            }
        };
        rt.block_on(monitor(addr, pid, rss_cap_kib, shared, ready))
    })
}

async fn monitor(
    addr: SocketAddr,
    pid: u32,
    rss_cap_kib: u64,
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> Watch {
    let mut watch = Watch::default();
    let client = Peer::new(Router::new());
    let dial = || async {
        match tokio::time::timeout(Duration::from_secs(5), client.dial(addr)).await {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(status)) => Err(format!("cannot dial {addr}: {status}")),
            Err(_) => Err(format!("cannot dial {addr} within 5 s")),
        }
    };
    let setup = async {
        let good = dial().await?;
        let sampler = dial().await?;
        let _ = sampler
            .pull_with(
                "/abuse/reset_peak",
                &(),
                PullOptions::new().timeout(Duration::from_secs(2)),
            )
            .await;
        let start = stats(&sampler).await?;
        Ok::<_, String>((good, sampler, start))
    };
    let (mut good, sampler, start) = match setup.await {
        Ok(set) => set,
        Err(e) => {
            let _ = ready.send(Err(e));
            client.close().await;
            return watch;
        }
    };
    watch.rss_start_kib = start.get("rss_kib").and_then(Value::as_u64).unwrap_or(0);
    watch.peak_hwm_kib = start.get("hwm_kib").and_then(Value::as_u64).unwrap_or(0);
    watch.max_bytes_held = held(&start);
    let _ = ready.send(Ok(()));

    let status_path = format!("/proc/{pid}/status");
    let peak_hwm = AtomicU64::new(watch.peak_hwm_kib);
    let stopped = || shared.stop.load(Ordering::Relaxed);

    let good_loop = async {
        let args = vec![1_i64, 2, 3];
        let mut latencies = Vec::new();
        let (mut ok, mut failures, mut first_failure) = (0_u64, 0_u64, None);
        // Bounded: the attack is cut at HARD_CAP, and one pull takes at least GOOD_PAUSE.
        let max_pulls = (HARD_CAP.as_millis() / GOOD_PAUSE.as_millis()) as u64 * 2;
        for _ in 0..max_pulls {
            if stopped() {
                break;
            }
            let started = Instant::now();
            let pull = good.pull_with("/math/add", &args, PullOptions::new().timeout(GOOD_TIMEOUT));
            let outcome =
                tokio::time::timeout(GOOD_TIMEOUT + Duration::from_millis(100), pull).await;
            let took = started.elapsed();
            latencies.push(took.as_micros() as u64);
            let failure = match outcome {
                Ok(Ok(reply)) => match reply.decode::<i64>() {
                    Ok(6) if took <= GOOD_TIMEOUT => None,
                    Ok(6) => Some(format!("took {} ms", took.as_millis())),
                    other => Some(format!("wrong reply {other:?}")),
                },
                Ok(Err(status)) => Some(status.to_string()),
                Err(_) => Some("no reply within 2 s".to_owned()),
            };
            match failure {
                None => ok += 1,
                Some(why) => {
                    failures += 1;
                    first_failure.get_or_insert(why);
                    if good.is_closed() {
                        // Come back on a new connection, as a real client would.
                        if let Ok(session) = dial().await {
                            good = session;
                        }
                    }
                }
            }
            tokio::time::sleep(GOOD_PAUSE).await;
        }
        (latencies, ok, failures, first_failure)
    };

    let proc_loop = async {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        let max_ticks = HARD_CAP.as_millis() / SAMPLE_EVERY.as_millis() * 2;
        for _ in 0..max_ticks {
            tick.tick().await;
            if stopped() {
                break;
            }
            let (rss, hwm) = proc_status_kib(&status_path);
            peak_hwm.fetch_max(hwm.max(rss), Ordering::Relaxed);
            if rss > rss_cap_kib {
                let mut why = shared
                    .over_cap_why
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                why.get_or_insert(format!(
                    "aborted: server RSS {} MiB over the cap of {} MiB",
                    rss / 1024,
                    rss_cap_kib / 1024
                ));
                shared.over_cap.notify_one();
            }
        }
    };

    let stats_loop = async {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        let (mut max_held, mut failures, mut last) = (watch.max_bytes_held, 0_u64, None);
        let max_ticks = HARD_CAP.as_millis() / SAMPLE_EVERY.as_millis() * 2;
        for _ in 0..max_ticks {
            tick.tick().await;
            if stopped() {
                break;
            }
            match stats(&sampler).await {
                Ok(stats) => {
                    if let Some(hwm) = stats.get("hwm_kib").and_then(Value::as_u64) {
                        peak_hwm.fetch_max(hwm, Ordering::Relaxed);
                    }
                    max_held = max_held.max(held(&stats));
                    last = Some(stats);
                }
                Err(_) => failures += 1,
            }
        }
        (max_held, failures, last)
    };

    let ((latencies, ok, failures, first_failure), (), (max_held, stats_failures, last)) =
        tokio::join!(good_loop, proc_loop, stats_loop);
    watch.latencies_us = latencies;
    watch.ok = ok;
    watch.failures = failures;
    watch.first_failure = first_failure;
    watch.peak_hwm_kib = peak_hwm.load(Ordering::Relaxed);
    watch.max_bytes_held = max_held;
    watch.stats_failures = stats_failures;
    watch.last_stats = last;
    // What stays once the attack is over (the attack's connections are
    // closed when its future ends, before `stop` is set).
    tokio::time::sleep(Duration::from_secs(1)).await;
    watch.rss_after_kib = proc_status_kib(&status_path).0;
    // Do not wait on sessions a hostile server state may keep busy.
    let _ = tokio::time::timeout(Duration::from_secs(2), client.close()).await;
    watch
}

// ----- frames -------------------------------------------------------------------------------

/// The framing the attackers write (the server's default: raw, gzip and md5, 16 MiB).
fn proto() -> RawProto {
    RawProto::new(ProtoConfig::default())
}

/// A pull frame.
fn pull_frame(seq: i32, uri: &str, codec: u8, body: Bytes) -> Bytes {
    let mut pull = Packet::new(PacketType::Pull, seq, uri);
    pull.body_codec = codec;
    pull.body = body;
    let mut wire = BytesMut::new();
    proto()
        .encode(&pull, &mut wire)
        .expect("the attack frames are within the limits");
    wire.freeze()
}

/// The head of a pull frame whose body of `body_len` bytes is written after it (so a large
/// body is shared by every frame rather than copied into each).
fn pull_head(seq: i32, uri: &str, codec: u8, body_len: usize) -> Bytes {
    let head = pull_frame(seq, uri, codec, Bytes::new());
    let total = u32::try_from(head.len() + body_len).expect("frames stay under 4 GiB");
    let mut head = BytesMut::from(&head[..]);
    head[..4].copy_from_slice(&total.to_be_bytes());
    head.freeze()
}

/// Builds gzip-bomb frames: the payload is one gzip member holding the frame's fields (its
/// seq differs per frame) followed by members each inflating to 1 MiB of zeros (a gzip
/// reader goes on through concatenated members, as Go's does), so the zeros are compressed
/// once.
struct Bomb {
    gzip: GzipFilter,
    zeros: Bytes,
}

impl Bomb {
    fn new() -> Result<Bomb, String> {
        let gzip = GzipFilter::new(b'g', 9);
        let member = gzip
            .on_pack(Bytes::from(vec![0_u8; 1024 * 1024]))
            .map_err(|e| format!("gzip: {e}"))?;
        let mut zeros = BytesMut::new();
        for _ in 0..BOMB_LEN / (1024 * 1024) {
            zeros.put_slice(&member);
        }
        Ok(Bomb {
            gzip,
            zeros: zeros.freeze(),
        })
    }

    fn frame(&self, seq: i32) -> Result<Bytes, String> {
        // The fields of the payload: the unfiltered frame without its 5-byte envelope.
        let plain = pull_frame(seq, BENCH_URI, codec_ids::PLAIN, Bytes::new());
        let head = self
            .gzip
            .on_pack(plain.slice(5..))
            .map_err(|e| format!("gzip: {e}"))?;
        let total = 4 + 1 + 1 + head.len() + self.zeros.len();
        let mut frame = BytesMut::with_capacity(total);
        frame.put_u32(u32::try_from(total).map_err(|_| "bomb too large")?);
        frame.put_u8(1);
        frame.put_u8(b'g');
        frame.put_slice(&head);
        frame.put_slice(&self.zeros);
        Ok(frame.freeze())
    }
}

// ----- attack building blocks ---------------------------------------------------------------

/// What one attack did, besides what the monitor saw.
#[derive(Debug, Default)]
struct AttackOut {
    note: String,
    extra: serde_json::Map<String, Value>,
}

impl AttackOut {
    fn note(note: impl Into<String>) -> AttackOut {
        AttackOut {
            note: note.into(),
            extra: serde_json::Map::new(),
        }
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> AttackOut {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

/// What one writer sent.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    frames: u64,
    bytes: u64,
    /// The server closed the connection (or a write failed).
    closed: bool,
}

impl Sent {
    fn add(&mut self, other: Sent) {
        self.frames += other.frames;
        self.bytes += other.bytes;
        self.closed |= other.closed;
    }
}

/// Writes the frames `frame(seq)` (seq 1, 2, ...) as fast as `w` takes them, until
/// `max_frames` or `deadline`. Small frames are batched into writes of about 64 KiB; the
/// chunks of a frame are written one after another.
async fn flood<W, F>(w: &mut W, deadline: TokioInstant, max_frames: u64, mut frame: F) -> Sent
where
    W: AsyncWrite + Unpin,
    F: FnMut(i32) -> Vec<Bytes>,
{
    const BIG: usize = 64 * 1024;
    let mut sent = Sent::default();
    let mut batch = BytesMut::new();
    // Frames whose last byte is in `batch`.
    let mut pending = 0;
    for i in 0..max_frames {
        let seq = i32::try_from(i % i32::MAX as u64 + 1).unwrap_or(1);
        let chunks = frame(seq);
        let count = chunks.len();
        for (k, chunk) in chunks.into_iter().enumerate() {
            let last = k + 1 == count;
            if chunk.len() >= BIG {
                if !batch.is_empty() {
                    if !write(w, &batch, deadline, &mut sent).await {
                        return sent;
                    }
                    sent.frames += pending;
                    pending = 0;
                    batch.clear();
                }
                if !write(w, &chunk, deadline, &mut sent).await {
                    return sent;
                }
                sent.frames += u64::from(last);
            } else {
                batch.put_slice(&chunk);
                pending += u64::from(last);
            }
        }
        if batch.len() >= BIG {
            if !write(w, &batch, deadline, &mut sent).await {
                return sent;
            }
            sent.frames += pending;
            pending = 0;
            batch.clear();
        }
        if TokioInstant::now() >= deadline {
            return sent;
        }
    }
    if !batch.is_empty() && write(w, &batch, deadline, &mut sent).await {
        sent.frames += pending;
    }
    sent
}

/// Writes `bytes` before `deadline`; false when the time is up or the write failed.
async fn write<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    deadline: TokioInstant,
    sent: &mut Sent,
) -> bool {
    match tokio::time::timeout_at(deadline, w.write_all(bytes)).await {
        Ok(Ok(())) => {
            sent.bytes += bytes.len() as u64;
            true
        }
        Ok(Err(_)) => {
            sent.closed = true;
            false
        }
        Err(_) => false,
    }
}

/// Connects, giving up after 3 s.
async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    match tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connect timed out (3 s)".to_owned()),
    }
}

/// Opens `n` connections, `at_once` connecting at a time; returns those that opened, the
/// errors (counted, with the first one) and the time it took.
async fn open_many(
    addr: SocketAddr,
    n: usize,
    at_once: usize,
) -> (Vec<TcpStream>, usize, Option<String>, Duration) {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(at_once.max(1)));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            connect(addr).await
        });
    }
    let mut streams = Vec::with_capacity(n);
    let (mut errors, mut first_error) = (0, None);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    (streams, errors, first_error, started.elapsed())
}

/// Reads replies off `r` until `deadline`, `want` replies or the end of the stream; returns
/// the replies' seqs, in order, and how many had an OK status.
async fn read_replies<R: AsyncRead + Unpin>(
    r: &mut R,
    deadline: TokioInstant,
    want: usize,
) -> (Vec<i32>, usize) {
    let proto = proto();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let (mut seqs, mut ok) = (Vec::new(), 0);
    while seqs.len() < want {
        loop {
            match proto.decode(&mut buf) {
                Ok(Some(packet)) => {
                    if packet.ptype == PacketType::Reply {
                        ok += usize::from(packet.status.is_ok());
                        seqs.push(packet.seq);
                    }
                }
                Ok(None) => break,
                Err(_) => return (seqs, ok),
            }
        }
        if seqs.len() >= want {
            break;
        }
        match tokio::time::timeout_at(deadline, r.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
    }
    (seqs, ok)
}

/// Keeps the connections open, sending nothing, until `until`; returns how many.
async fn hold(until: TokioInstant, streams: Vec<TcpStream>) -> usize {
    tokio::time::sleep_until(until).await;
    streams.len()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ----- the attacks --------------------------------------------------------------------------

/// Runs the attack `name`.
async fn attack(name: &str, addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    match name {
        "handler-pool" => handler_pool(addr, s).await,
        "big-echo" => big_echo(addr, s).await,
        "gzip-bomb" => gzip_bomb(addr, s).await,
        "header-only" => header_only(addr, s).await,
        "big-json" => big_json(addr, s).await,
        "bad-seq-flood" => bad_seq_flood(addr, s).await,
        "conn-rate" => conn_rate(addr, s).await,
        "slowloris" => slowloris(addr, s).await,
        "idle" => idle(addr, s).await,
        "dup-seq" => dup_seq(addr, s).await,
        other => Err(format!("no attack named {other:?}")),
    }
}

/// Flooders on `conns` connections, never reading; each holds its connection until
/// `deadline`.
async fn flood_conns<F>(
    addr: SocketAddr,
    conns: usize,
    deadline: TokioInstant,
    max_frames: u64,
    frame: F,
) -> Result<(Sent, usize), String>
where
    F: Fn(i32) -> Vec<Bytes> + Clone + Send + 'static,
{
    let mut set = JoinSet::new();
    for _ in 0..conns {
        let frame = frame.clone();
        set.spawn(async move {
            let mut stream = connect(addr).await?;
            let sent = flood(&mut stream, deadline, max_frames, frame).await;
            tokio::time::sleep_until(deadline).await;
            drop(stream);
            Ok::<_, String>(sent)
        });
    }
    let (mut total, mut failed) = (Sent::default(), 0);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(sent)) => total.add(sent),
            _ => failed += 1,
        }
    }
    if failed == conns {
        return Err(format!("none of the {conns} connections could be opened"));
    }
    Ok((total, failed))
}

async fn handler_pool(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    let deadline = TokioInstant::now() + s.handler_pool_for;
    let (sent, failed) = flood_conns(addr, s.handler_pool_conns, deadline, 1_000_000, |seq| {
        vec![pull_frame(seq, "/slow", codec_ids::JSON, Bytes::new())]
    })
    .await?;
    Ok(AttackOut::note(format!(
        "{} pulls to /slow on {} conns ({:.1} MiB) in {:.0} s{}{}",
        sent.frames,
        s.handler_pool_conns - failed,
        mib(sent.bytes),
        s.handler_pool_for.as_secs_f64(),
        if sent.closed {
            "; server closed some"
        } else {
            ""
        },
        if failed > 0 {
            "; some connects failed"
        } else {
            ""
        },
    ))
    .with("frames_sent", sent.frames))
}

async fn big_echo(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    let deadline = TokioInstant::now() + s.big_echo_for;
    let body = Bytes::from(vec![b'x'; 1024 * 1024]);
    let (sent, _) = flood_conns(addr, 1, deadline, 100_000, move |seq| {
        vec![
            pull_head(seq, BENCH_URI, codec_ids::PLAIN, body.len()),
            body.clone(),
        ]
    })
    .await?;
    Ok(AttackOut::note(format!(
        "{} pulls of 1 MiB written ({:.0} MiB) in {:.0} s{}",
        sent.frames,
        mib(sent.bytes),
        s.big_echo_for.as_secs_f64(),
        if sent.closed {
            "; server closed it"
        } else {
            ""
        },
    ))
    .with("frames_sent", sent.frames))
}

async fn gzip_bomb(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    let bomb = Arc::new(Bomb::new()?);
    let frame_len = bomb.frame(1)?.len();
    let deadline = TokioInstant::now() + s.bomb_for;
    // Every frame has its own seq (a repeated seq would cancel the pull in flight, see
    // dup-seq): only its small first member is compressed per frame.
    let (sent, _) = flood_conns(addr, 1, deadline, s.bomb_max_frames, move |seq| {
        bomb.frame(seq).map(|f| vec![f]).unwrap_or_default()
    })
    .await?;
    Ok(AttackOut::note(format!(
        "{} frames of {:.1} KB inflating to {} MiB each ({:.0} MiB unpacked){}",
        sent.frames,
        frame_len as f64 / 1000.0,
        BOMB_LEN / (1024 * 1024),
        sent.frames as f64 * BOMB_LEN as f64 / (1024.0 * 1024.0),
        if sent.closed {
            "; server closed it"
        } else {
            ""
        },
    ))
    .with("frames_sent", sent.frames)
    .with("frame_bytes", frame_len))
}

async fn header_only(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    let deadline = TokioInstant::now() + s.header_only_for;
    let (mut streams, errors, first_error, took) = open_many(addr, s.header_only_conns, 100).await;
    // A 16 MiB frame (the length counts its own 4 bytes), no filters, and nothing more.
    let mut head = [0_u8; 5];
    head[..4].copy_from_slice(&(MAX_FRAME as u32).to_be_bytes());
    let mut written = 0;
    for stream in &mut streams {
        if tokio::time::timeout_at(deadline, stream.write_all(&head))
            .await
            .is_ok_and(|r| r.is_ok())
        {
            written += 1;
        }
    }
    let held = hold(deadline, streams).await;
    Ok(AttackOut::note(format!(
        "{written} of {} conns sent a 16 MiB header (opened in {:.2} s), held {held}{}",
        s.header_only_conns,
        took.as_secs_f64(),
        match first_error {
            Some(e) => format!("; {errors} connects failed: {e}"),
            None => String::new(),
        }
    ))
    .with("announced_mib", (written as u64 * 16) as f64))
}

async fn big_json(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    // "[1,1,...,1]" filling the frame up to just under the limit.
    let head_len = pull_head(1_000_000, "/math/add", codec_ids::JSON, 0).len();
    let body_len = MAX_FRAME - head_len - 16;
    let mut body = Vec::with_capacity(body_len);
    body.push(b'[');
    while body.len() + 3 <= body_len {
        body.extend_from_slice(b"1,");
    }
    body.push(b'1');
    body.push(b']');
    let numbers = (body.len() - 1) / 2;
    let body = Bytes::from(body);
    let deadline = TokioInstant::now() + s.big_json_for;
    let mut set = JoinSet::new();
    for _ in 0..s.big_json_conns {
        let body = body.clone();
        let frames = s.big_json_frames;
        set.spawn(async move {
            let stream = connect(addr).await?;
            let (mut r, mut w) = stream.into_split();
            // The replies are read (and counted) while the frames go out.
            let reader =
                tokio::spawn(async move { read_replies(&mut r, deadline, frames as usize).await });
            let sent = flood(&mut w, deadline, frames, |seq| {
                vec![
                    pull_head(seq, "/math/add", codec_ids::JSON, body.len()),
                    body.clone(),
                ]
            })
            .await;
            let (seqs, ok) = reader.await.unwrap_or_default();
            Ok::<_, String>((sent, seqs.len(), ok))
        });
    }
    let (mut sent, mut replies, mut ok, mut failed) = (Sent::default(), 0, 0, 0);
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok((s, r, o))) => {
                sent.add(s);
                replies += r;
                ok += o;
            }
            _ => failed += 1,
        }
    }
    if failed == s.big_json_conns {
        return Err("no connection could be opened".to_owned());
    }
    Ok(AttackOut::note(format!(
        "reading replies: {} frames of {:.1} MiB ({numbers} ints) sent on {} conns, {replies} replies ({ok} ok){}",
        sent.frames,
        mib((head_len + body.len()) as u64),
        s.big_json_conns - failed,
        if sent.closed { "; server closed some" } else { "" },
    ))
    .with("frames_sent", sent.frames)
    .with("replies", replies as u64)
    .with("replies_ok", ok as u64))
}

async fn bad_seq_flood(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    // A valid pull whose one-character seq is replaced by '!', which is not base-36.
    let mut bad = BytesMut::from(
        &pull_frame(1, "/math/add", codec_ids::JSON, Bytes::from_static(b"[1]"))[..],
    );
    debug_assert_eq!(bad[5], 1, "seq length");
    bad[6] = b'!';
    let bad = bad.freeze();
    let deadline = TokioInstant::now() + HARD_CAP - Duration::from_secs(3);
    let mut stream = connect(addr).await?;
    let started = Instant::now();
    let frames = s.bad_seq_frames;
    // Every 8th frame is a valid push (to a uri with no handler: dropped
    // quietly), so that no 16 are bad in a row: with
    // `max_dropped_frames` (16) in a row the server would close the
    // connection, which the second part below checks.
    let push = {
        let mut push = Packet::new(PacketType::Push, 1, "/nowhere");
        push.body_codec = codec_ids::JSON;
        push.body = Bytes::from_static(b"1");
        let mut wire = BytesMut::new();
        proto().encode(&push, &mut wire).expect("a push frame");
        wire.freeze()
    };
    let sent = flood(&mut stream, deadline, frames * 8 / 7, |i| {
        if i % 8 == 7 {
            vec![push.clone()]
        } else {
            vec![bad.clone()]
        }
    })
    .await;
    let took = started.elapsed();
    // Bad frames only: the connection is closed after 16 in a row.
    let mut only_bad = connect(addr).await?;
    let cut = flood(
        &mut only_bad,
        TokioInstant::now() + Duration::from_secs(2),
        1000,
        |_| vec![bad.clone()],
    )
    .await;
    let mut sink = [0u8; 64];
    let closed = matches!(
        tokio::time::timeout(Duration::from_secs(2), only_bad.read(&mut sink)).await,
        Ok(Ok(0) | Err(_))
    ) || cut.closed;
    // Give the server a moment to go through what it has read, then check the connection is
    // still served (a bad seq is meant to cost only its frame).
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream
        .write_all(&pull_frame(
            7,
            "/math/add",
            codec_ids::JSON,
            Bytes::from_static(b"[2,3]"),
        ))
        .await
        .map_err(|e| format!("the connection broke: {e}"))?;
    let (seqs, ok) =
        read_replies(&mut stream, TokioInstant::now() + Duration::from_secs(3), 1).await;
    let after = if seqs.is_empty() {
        "no reply to a valid pull after it".to_owned()
    } else {
        format!("a valid pull after it: {} reply ({ok} ok)", seqs.len())
    };
    Ok(AttackOut::note(format!(
        "{} frames, 7 in 8 with a bad seq ({:.1} MiB) in {:.2} s; {after}{}; bad frames only: {}",
        sent.frames,
        mib(sent.bytes),
        took.as_secs_f64(),
        if sent.closed {
            "; server closed it"
        } else {
            ""
        },
        if closed {
            "closed by the server"
        } else {
            "NOT closed"
        },
    ))
    .with("frames_sent", sent.frames))
}

async fn conn_rate(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    let (streams, errors, first_error, took) =
        open_many(addr, s.conn_rate_conns, s.conn_rate_at_once).await;
    let opened = streams.len();
    hold(TokioInstant::now() + s.conn_rate_hold, streams).await;
    Ok(AttackOut::note(format!(
        "opened {opened} of {} conns ({} at a time) in {:.2} s, held {:.0} s{}",
        s.conn_rate_conns,
        s.conn_rate_at_once,
        took.as_secs_f64(),
        s.conn_rate_hold.as_secs_f64(),
        match first_error {
            Some(e) => format!("; {errors} failed: {e}"),
            None => String::new(),
        }
    ))
    .with("opened", opened as u64)
    .with("open_secs", took.as_secs_f64()))
}

async fn slowloris(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    let (mut streams, errors, first_error, took) = open_many(addr, s.slowloris_conns, 100).await;
    // A valid pull, one byte per second: it never completes within the attack.
    let frame = pull_frame(
        1,
        "/math/add",
        codec_ids::JSON,
        Bytes::from_static(b"[1,2,3,4,5,6,7,8,9]"),
    );
    let started = TokioInstant::now();
    let seconds = s.slowloris_for.as_secs().max(1);
    let (mut bytes, mut broken) = (0_u64, 0_usize);
    for second in 0..seconds {
        tokio::time::sleep_until(started + Duration::from_secs(second)).await;
        let byte = [frame[second as usize % frame.len()]];
        let mut alive = Vec::with_capacity(streams.len());
        for stream in streams {
            match stream.try_write(&byte) {
                Ok(n) if n > 0 => {
                    bytes += 1;
                    alive.push(stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => alive.push(stream),
                _ => broken += 1,
            }
        }
        streams = alive;
    }
    tokio::time::sleep_until(started + s.slowloris_for).await;
    Ok(AttackOut::note(format!(
        "{} conns (opened in {:.2} s) sent {bytes} bytes in {seconds} s; {broken} closed by the server{}",
        s.slowloris_conns - errors,
        took.as_secs_f64(),
        match first_error {
            Some(e) => format!("; {errors} connects failed: {e}"),
            None => String::new(),
        }
    ))
    .with("closed_by_server", broken as u64))
}

async fn idle(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    let (streams, errors, first_error, took) = open_many(addr, s.idle_conns, 200).await;
    let opened = streams.len();
    // Closed by the server during the hold? A read returns 0 (or fails) on a closed one.
    tokio::time::sleep(s.idle_for).await;
    let mut closed = 0;
    let mut probe = [0_u8; 1];
    for stream in &streams {
        match stream.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => closed += 1,
        }
    }
    drop(streams);
    Ok(AttackOut::note(format!(
        "{opened} idle conns (opened in {:.2} s) held {:.0} s; {closed} closed by the server{}",
        took.as_secs_f64(),
        s.idle_for.as_secs_f64(),
        match first_error {
            Some(e) => format!("; {errors} connects failed: {e}"),
            None => String::new(),
        }
    ))
    .with("closed_by_server", closed as u64))
}

async fn dup_seq(addr: SocketAddr, s: &Scale) -> Result<AttackOut, String> {
    let stream = connect(addr).await?;
    let (mut r, mut w) = stream.into_split();
    let pairs = s.dup_seq_pairs;
    let mut wire = BytesMut::new();
    for seq in 1..=pairs {
        let frame = pull_frame(seq, "/slow", codec_ids::JSON, Bytes::new());
        wire.put_slice(&frame);
        wire.put_slice(&frame);
    }
    w.write_all(&wire)
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    let sent = 2 * pairs as usize;
    // Every /slow answers after 200 ms; give them 3 s.
    let (seqs, ok) = read_replies(&mut r, TokioInstant::now() + Duration::from_secs(3), sent).await;
    let mut distinct = seqs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    Ok(AttackOut::note(format!(
        "{sent} pulls sent ({pairs} seqs, each twice at once): {} replies ({ok} ok) for {} distinct seqs",
        seqs.len(),
        distinct.len()
    ))
    .with("pulls_sent", sent as u64)
    .with("replies", seqs.len() as u64)
    .with("distinct_seqs_replied", distinct.len() as u64))
}

// ----- the run ------------------------------------------------------------------------------

/// One line of the table, one object of `--json`.
#[derive(Debug, Serialize)]
struct Row {
    attack: String,
    /// Peak RSS minus RSS at the start, MiB.
    rss_growth_mib: Option<f64>,
    /// RSS 1 s after the attack minus RSS at the start, MiB.
    rss_after_mib: Option<f64>,
    /// Peak of the server's own accounting of held bytes, MiB (None: not reported).
    bytes_held_peak_mib: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    good_pulls: u64,
    good_failures: u64,
    first_failure: Option<String>,
    log_bytes: u64,
    log_lines: u64,
    secs: f64,
    note: String,
    stats_failures: u64,
    last_stats: Option<Value>,
    extra: serde_json::Map<String, Value>,
}

fn run(opts: &Opts) -> Result<(), String> {
    let fd_limit = raise_nofile();
    let mut scale = Scale::new(opts.quick);
    let cut = scale.fit(fd_limit);
    if !cut.is_empty() {
        eprintln!(
            "abuse: only {fd_limit} open files allowed (raise with `ulimit -n`); reduced: {}",
            cut.join(", ")
        );
    }
    if let Some(dir) = &opts.logs {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let rt = load::runtime(2);
    let names: Vec<&str> = match &opts.only {
        Some(name) => vec![name.as_str()],
        None => ATTACKS.to_vec(),
    };
    println!(
        "abuse: {} attack(s) against `abuse serve` with {} ({} mode); good client: /math/add every ~5 ms, 2 s timeout",
        names.len(),
        match &opts.config {
            Some(config) => format!("PeerConfig::default() + {config}"),
            None => "PeerConfig::default()".to_owned(),
        },
        if opts.quick { "quick" } else { "full" }
    );
    print_header();
    let mut rows = Vec::new();
    for name in names {
        let row = match run_one(&rt, name, opts, &scale) {
            Ok(row) => row,
            Err(e) => Row {
                attack: name.to_owned(),
                rss_growth_mib: None,
                rss_after_mib: None,
                bytes_held_peak_mib: None,
                p50_ms: None,
                p99_ms: None,
                max_ms: None,
                good_pulls: 0,
                good_failures: 0,
                first_failure: None,
                log_bytes: 0,
                log_lines: 0,
                secs: 0.0,
                note: format!("ERROR: {e}"),
                stats_failures: 0,
                last_stats: None,
                extra: serde_json::Map::new(),
            },
        };
        print_row(&row);
        rows.push(row);
    }
    // Let the runtime's leftovers (none should be left) go without waiting on them.
    rt.shutdown_timeout(Duration::from_secs(1));
    if let Some(path) = &opts.json {
        let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("rows written to {}", path.display());
    }
    Ok(())
}

/// Starts a server, runs one attack against it with the good client watching, stops it.
fn run_one(
    rt: &tokio::runtime::Runtime,
    name: &str,
    opts: &Opts,
    scale: &Scale,
) -> Result<Row, String> {
    let log_file = opts
        .logs
        .as_ref()
        .map(|dir| dir.join(format!("{name}.log")));
    let mut server = ServerProc::start(opts.config.as_deref(), log_file)?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        over_cap: Notify::new(),
        over_cap_why: Mutex::new(None),
    });
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let monitor = start_monitor(
        server.addr,
        server.pid(),
        opts.rss_cap_mib.saturating_mul(1024),
        shared.clone(),
        ready_tx,
    );
    let ready = ready_rx
        .recv_timeout(Duration::from_secs(15))
        .unwrap_or_else(|_| Err("the good client did not start within 15 s".to_owned()));
    if let Err(e) = ready {
        shared.stop.store(true, Ordering::Relaxed);
        server.stop();
        let _ = monitor.join();
        return Err(e);
    }
    let logs_at_start = server.log_bytes.load(Ordering::Relaxed);
    let lines_at_start = server.log_lines.load(Ordering::Relaxed);
    let started = Instant::now();
    let addr = server.addr;
    let outcome = rt.block_on(async {
        tokio::select! {
            result = tokio::time::timeout(HARD_CAP, attack(name, addr, scale)) => match result {
                Ok(result) => result,
                Err(_) => Ok(AttackOut::note(format!("cut at the hard cap of {} s", HARD_CAP.as_secs()))),
            },
            () = shared.over_cap.notified() => {
                let why = shared.over_cap_why.lock().unwrap_or_else(|p| p.into_inner()).clone();
                Ok(AttackOut::note(why.unwrap_or_else(|| "aborted".to_owned())))
            }
        }
    });
    let secs = started.elapsed().as_secs_f64();
    shared.stop.store(true, Ordering::Relaxed);
    let watch = monitor
        .join()
        .map_err(|_| "the monitor thread panicked".to_owned())?;
    let died = server.exited();
    // Stopping it first reads its stderr to the end (the lines it wrote as the attack's
    // connections went away included).
    server.stop();
    let log_bytes = server.log_bytes.load(Ordering::Relaxed) - logs_at_start;
    let log_lines = server.log_lines.load(Ordering::Relaxed) - lines_at_start;
    let mut out = outcome?;
    if let Some(died) = died {
        out.note = format!("{}; {died}", out.note);
    }
    if let Some(why) = shared
        .over_cap_why
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        if !out.note.contains(&why) {
            out.note = format!("{}; {why}", out.note);
        }
    }
    let mut latencies = watch.latencies_us.clone();
    latencies.sort_unstable();
    let ms =
        |q: f64| (!latencies.is_empty()).then(|| load::quantile(&latencies, q) as f64 / 1000.0);
    Ok(Row {
        attack: name.to_owned(),
        rss_growth_mib: (watch.peak_hwm_kib > 0)
            .then(|| watch.peak_hwm_kib.saturating_sub(watch.rss_start_kib) as f64 / 1024.0),
        rss_after_mib: (watch.rss_after_kib > 0)
            .then(|| watch.rss_after_kib.saturating_sub(watch.rss_start_kib) as f64 / 1024.0),
        bytes_held_peak_mib: watch.max_bytes_held.map(mib),
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        max_ms: latencies.last().map(|&us| us as f64 / 1000.0),
        good_pulls: watch.ok + watch.failures,
        good_failures: watch.failures,
        first_failure: watch.first_failure,
        log_bytes,
        log_lines,
        secs,
        note: out.note,
        stats_failures: watch.stats_failures,
        last_stats: watch.last_stats,
        extra: out.extra,
    })
}

fn print_header() {
    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9} {:>5}  note",
        "attack",
        "RSS+MiB",
        "after",
        "heldMiB",
        "p50 ms",
        "p99 ms",
        "max ms",
        "pulls",
        "fail",
        "log KiB",
        "secs"
    );
    let _ = std::io::stdout().flush();
}

fn print_row(row: &Row) {
    let num = |v: Option<f64>, digits: usize| match v {
        Some(v) => format!("{v:.digits$}"),
        None => "-".to_owned(),
    };
    let mut note = row.note.clone();
    if let Some(why) = &row.first_failure {
        let _ = write!(note, "; first failure: {why}");
    }
    if row.stats_failures > 0 {
        let _ = write!(note, "; {} stats pulls failed", row.stats_failures);
    }
    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>9.1} {:>5.1}  {note}",
        row.attack,
        num(row.rss_growth_mib, 1),
        num(row.rss_after_mib, 1),
        num(row.bytes_held_peak_mib, 1),
        num(row.p50_ms, 2),
        num(row.p99_ms, 2),
        num(row.max_ms, 1),
        row.good_pulls,
        row.good_failures,
        row.log_bytes as f64 / 1024.0,
        row.secs,
    );
    let _ = std::io::stdout().flush();
}
