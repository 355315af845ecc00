//! `idle-sessions`: the memory one idle session costs, on each side.
//!
//! ```text
//! idle-sessions [-n 10000] [--threads 2] [--touch] [--json]
//! ```
//!
//! The program starts a copy of itself as the server (`idle-sessions serve`, a Jaunt peer
//! with the echo router, in its own process), then dials `n` sessions to it from a client
//! peer in this process and holds them open. Both sides read their resident set size
//! (`VmRSS` of `/proc/self/status`) with no session, with half of them and with all of them,
//! and report the bytes per session: `(RSS(n) - RSS(0)) / n` (every cost included, the
//! runtime's growth too) and the marginal `(RSS(n) - RSS(n/2)) / (n/2)`. With `--touch`
//! every session first makes one pull of the benchmark message, so that its buffers have
//! been used, as those of a session that went quiet after some traffic.
//!
//! Each process needs `n` + a few file descriptors: `ulimit -n` must allow it (the program
//! says so when it does not).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use jaunt::{codec_ids, Pb, Peer, PullOptions, Router, Session};
use jaunt_benches::load::{self, parse_count};
use jaunt_benches::{benchmark_message, echo, BENCH_URI};
use serde::Serialize;

/// The resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The soft limit of open files of this process.
fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Side {
    rss0_kib: u64,
    rss_half_kib: u64,
    rss_full_kib: u64,
    bytes_per_session: f64,
    marginal_bytes_per_session: f64,
}

impl Side {
    fn new(n: u64, rss0: u64, half: u64, full: u64) -> Side {
        let per = |from: u64, count: u64| (full.saturating_sub(from) * 1024) as f64 / count as f64;
        Side {
            rss0_kib: rss0,
            rss_half_kib: half,
            rss_full_kib: full,
            bytes_per_session: per(rss0, n),
            marginal_bytes_per_session: per(half, n - n / 2),
        }
    }
}

#[derive(Debug, Serialize)]
struct IdleReport {
    sessions: u64,
    touched: bool,
    threads: usize,
    server: Side,
    client: Side,
    open_secs: f64,
}

/// Memory per idle session, server and client side.
#[derive(Parser)]
#[command(name = "idle-sessions", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand)]
enum Sub {
    /// The server process the runner starts: prints `LISTENING addr`, then answers
    /// `measure N` lines on stdin with `RSS kib SESSIONS n`.
    Serve {
        /// Worker threads of the server's runtime.
        #[arg(long, default_value = "2", value_parser = thread_count)]
        threads: usize,
    },
}

#[derive(clap::Args)]
struct Opts {
    /// Sessions to open (at least 2; 100k and 1m are accepted).
    #[arg(short = 'n', default_value = "10000", value_parser = parse_count)]
    n: u64,
    /// Worker threads of each side's runtime.
    #[arg(long, default_value = "2", value_parser = thread_count)]
    threads: usize,
    /// Make one pull on every session before measuring.
    #[arg(long)]
    touch: bool,
    /// Print the report as one JSON line.
    #[arg(long)]
    json: bool,
}

/// A number of worker threads (at least 1).
fn thread_count(text: &str) -> Result<usize, String> {
    parse_count(text).map(|v| v.max(1) as usize)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::Serve { threads }) = cli.command {
        return serve(threads);
    }
    let mut opts = cli.opts;
    opts.n = opts.n.max(2);
    match run(&opts) {
        Ok(report) => {
            if opts.json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                print_report(&report);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("idle-sessions: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_report(r: &IdleReport) {
    println!(
        "{} idle sessions{} (runtime: {} worker threads per process), opened in {:.2} s",
        r.sessions,
        if r.touched {
            ", each after one pull"
        } else {
            ""
        },
        r.threads,
        r.open_secs
    );
    for (side, s) in [("server", r.server), ("client", r.client)] {
        println!(
            "{side}: RSS {} KiB with none, {} KiB with half, {} KiB with all: {:.0} bytes per session ({:.2} KiB); marginal {:.0} bytes",
            s.rss0_kib,
            s.rss_half_kib,
            s.rss_full_kib,
            s.bytes_per_session,
            s.bytes_per_session / 1024.0,
            s.marginal_bytes_per_session
        );
    }
}

/// The server process: prints `LISTENING addr`, then answers each `measure N` line on
/// stdin, once it holds N sessions, with `RSS kib SESSIONS count`.
fn serve(threads: usize) -> ExitCode {
    let rt = load::runtime(threads);
    let (peer, addr) = match rt.block_on(echo::serve("127.0.0.1:0")) {
        Ok(served) => served,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    load::announce(&addr);
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Some(want) = line
            .strip_prefix("measure ")
            .and_then(|n| n.trim().parse::<usize>().ok())
        else {
            break;
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while peer.session_count() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let the tasks of the last sessions settle.
        std::thread::sleep(Duration::from_millis(300));
        println!("RSS {} SESSIONS {}", rss_kib(), peer.session_count());
        let _ = std::io::stdout().flush();
    }
    rt.block_on(peer.close());
    ExitCode::SUCCESS
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(threads: usize) -> Result<(Server, String), String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(["serve", "--threads", &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the server process: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        stdout.read_line(&mut line).map_err(|e| e.to_string())?;
        let addr = line
            .strip_prefix("LISTENING ")
            .ok_or_else(|| format!("the server said {line:?}"))?
            .trim()
            .to_owned();
        Ok((
            Server {
                child,
                stdin,
                stdout,
            },
            addr,
        ))
    }

    /// The server's RSS once it holds `sessions` sessions.
    fn measure(&mut self, sessions: u64) -> Result<u64, String> {
        writeln!(self.stdin, "measure {sessions}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let mut words = line.split_whitespace();
        let (Some("RSS"), Some(rss), Some("SESSIONS"), Some(count)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(format!("the server said {line:?}"));
        };
        let count: u64 = count.parse().map_err(|_| format!("bad line {line:?}"))?;
        if count < sessions {
            return Err(format!("the server holds {count} sessions, not {sessions}"));
        }
        rss.parse().map_err(|_| format!("bad line {line:?}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn open(
    peer: &Peer,
    addr: &str,
    count: u64,
    touch: bool,
    sessions: &mut Vec<Session>,
) -> Result<(), String> {
    let message = Pb(benchmark_message());
    for _ in 0..count {
        let session = peer
            .dial(addr)
            .await
            .map_err(|e| format!("dial {} failed: {e}", sessions.len() + 1))?;
        if touch {
            session
                .pull_with(
                    BENCH_URI,
                    &message,
                    PullOptions::new().codec(codec_ids::PROTOBUF),
                )
                .await
                .map_err(|e| format!("pull failed: {e}"))?;
        }
        sessions.push(session);
    }
    Ok(())
}

fn run(opts: &Opts) -> Result<IdleReport, String> {
    if let Some(limit) = fd_limit() {
        if limit < opts.n + 64 {
            return Err(format!(
                "{} sessions need about {} file descriptors per process, but the limit \
                 (ulimit -n) is {limit}: raise it (ulimit -n {}) or pass a smaller -n",
                opts.n,
                opts.n + 64,
                opts.n + 64
            ));
        }
    }
    let (mut server, addr) = Server::start(opts.threads)?;
    let rt = load::runtime(opts.threads);
    let client = Peer::new(Router::new());
    let mut sessions = Vec::with_capacity(opts.n as usize);
    // Dial and drop one session first on each side, so that the listener's and dialer's
    // one-time set-up is not counted (not the per-session structures: those are all held).
    rt.block_on(async {
        let first = client
            .dial(addr.as_str())
            .await
            .map_err(|e| e.to_string())?;
        first.close();
        first.closed().await;
        Ok::<_, String>(())
    })?;
    std::thread::sleep(Duration::from_millis(300));
    let server0 = server.measure(0)?;
    let client0 = rss_kib();
    let started = Instant::now();
    let half = opts.n / 2;
    rt.block_on(open(&client, &addr, half, opts.touch, &mut sessions))?;
    std::thread::sleep(Duration::from_millis(300));
    let server_half = server.measure(half)?;
    let client_half = rss_kib();
    rt.block_on(open(
        &client,
        &addr,
        opts.n - half,
        opts.touch,
        &mut sessions,
    ))?;
    let open_secs = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let server_full = server.measure(opts.n)?;
    let client_full = rss_kib();
    let report = IdleReport {
        sessions: opts.n,
        touched: opts.touch,
        threads: opts.threads,
        server: Side::new(opts.n, server0, server_half, server_full),
        client: Side::new(opts.n, client0, client_half, client_full),
        open_secs,
    };
    rt.block_on(client.close());
    drop(sessions);
    drop(server);
    Ok(report)
}
