//! `balance`: what tower's p2c balancer costs per call over a direct session, and over a
//! hand-written p2c of the same algorithm, in one run.
//!
//! ```text
//! balance [-n 50000] [-c 16] [--rounds 7] [--threads 1] [--only direct|service|tower|hand]
//! ```
//!
//! The program starts three copies of itself as servers (`balance serve`: the echo router
//! of `jaunt-bench`, each in its own process), dials one session to each, and runs rounds
//! of `-n` pulls of the benchmark message (protobuf) from `-c` callers, in four ways over
//! the same three sessions:
//!
//! - `direct`: `session.pull_with(..)`, caller `i` on session `i % 3` (no balancing);
//! - `service`: the same through `jaunt_tower::SessionService` (`ready().await` then
//!   `call(PullRequest)`): the tower adapter alone;
//! - `tower`: `Buffer<Balance<ServiceList<[SessionService; 3]>>>`, tower's p2c (each caller
//!   holds a clone of the buffer);
//! - `hand`: a hand-written p2c: two distinct sessions drawn at random, the one with fewer
//!   pending pulls is pulled (`Session::pending_pulls`, the load tower's p2c reads).
//!
//! Every caller clones the message per call and decodes the reply. It prints calls/s per
//! round and the median per-round ratios against `direct`.
//!
//! `--only KIND` runs one kind alone (`-n` calls, no warm-up): for counting instructions
//! under `valgrind --tool=callgrind` (the servers are child processes callgrind does not
//! follow, so the counts are the client's).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use jaunt::{codec_ids, Pb, Peer, PullOptions, Reply, Router, Session, Status};
use jaunt_benches::child_server::ChildServer;
use jaunt_benches::load::{self, Caller, LoadPlan, Stop};
use jaunt_benches::{benchmark_message, echo, BenchmarkMessage, BENCH_URI};
use jaunt_tower::{PullRequest, SessionService};
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::ServiceList;
use tower::{Service, ServiceExt};

/// The ways of calling, compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// `Session::pull_with` on a fixed session per caller.
    Direct,
    /// `SessionService` (the tower adapter) on a fixed session per caller.
    Service,
    /// tower's p2c balancer behind a `Buffer`.
    Tower,
    /// A hand-written p2c on pending pulls.
    Hand,
}

const KINDS: [Kind; 4] = [Kind::Direct, Kind::Service, Kind::Tower, Kind::Hand];

#[derive(Debug, Parser)]
#[command(
    name = "balance",
    about = "Per-call cost of tower's p2c balancer against a direct session and a hand-written p2c"
)]
struct Opts {
    /// Calls per round (per kind).
    #[arg(short = 'n', default_value_t = 50_000, value_parser = parse_positive)]
    n: u64,
    /// Concurrent callers.
    #[arg(short = 'c', default_value_t = 16, value_parser = parse_positive)]
    c: u64,
    /// Rounds of each kind (the kinds alternate within a round, in a rotating order).
    #[arg(long, default_value_t = 7, value_parser = parse_positive)]
    rounds: u64,
    /// Worker threads of the client's runtime.
    #[arg(long, default_value_t = 1, value_parser = parse_positive)]
    threads: u64,
    /// Runs one kind alone, `-n` calls without warm-up (for callgrind).
    #[arg(long, value_enum)]
    only: Option<Kind>,
}

fn parse_positive(text: &str) -> Result<u64, String> {
    match load::parse_count(text)? {
        0 => Err("must be at least 1".to_owned()),
        n => Ok(n),
    }
}

/// The argument every caller sends (a clone per call) and its options.
fn request() -> (BenchmarkMessage, PullOptions) {
    (
        benchmark_message(),
        PullOptions::new().codec(codec_ids::PROTOBUF),
    )
}

fn check(reply: Result<Reply, Status>) -> Result<(), String> {
    let Pb(reply) = reply
        .and_then(|r| r.decode::<Pb<BenchmarkMessage>>())
        .map_err(|s| s.to_string())?;
    match reply.field1.as_deref() {
        Some("OK") => Ok(()),
        other => Err(format!("wrong reply: field1 {other:?}")),
    }
}

/// `Session::pull_with`.
struct Direct {
    session: Session,
    message: BenchmarkMessage,
    opts: PullOptions,
}

impl Caller for Direct {
    async fn call(&mut self) -> Result<(), String> {
        let reply = self
            .session
            .pull_with(BENCH_URI, &Pb(self.message.clone()), self.opts.clone())
            .await;
        check(reply)
    }
}

/// A tower service taking `PullRequest`s: the adapter alone, or the balancer.
struct Tower<S> {
    svc: S,
    message: BenchmarkMessage,
    opts: PullOptions,
}

impl<S> Caller for Tower<S>
where
    S: Service<PullRequest, Response = Reply> + Send + 'static,
    S::Error: Into<tower::BoxError>,
    S::Future: Send,
{
    async fn call(&mut self) -> Result<(), String> {
        let req =
            PullRequest::new(BENCH_URI, Pb(self.message.clone())).with_options(self.opts.clone());
        let svc = self
            .svc
            .ready()
            .await
            .map_err(|e| jaunt_tower::into_status(e.into()).to_string())?;
        let reply = svc
            .call(req)
            .await
            .map_err(|e| jaunt_tower::into_status(e.into()));
        check(reply)
    }
}

/// Two distinct sessions at random; the one with fewer pending pulls is pulled.
struct Hand {
    sessions: Arc<[Session]>,
    message: BenchmarkMessage,
    opts: PullOptions,
}

impl Hand {
    fn pick(&self) -> &Session {
        let n = self.sessions.len();
        if n == 1 {
            return &self.sessions[0];
        }
        let a = fastrand::usize(..n);
        let mut b = fastrand::usize(..n - 1);
        if b >= a {
            b += 1;
        }
        let (sa, sb) = (&self.sessions[a], &self.sessions[b]);
        if sa.pending_pulls() <= sb.pending_pulls() {
            sa
        } else {
            sb
        }
    }
}

impl Caller for Hand {
    async fn call(&mut self) -> Result<(), String> {
        let reply = self
            .pick()
            .pull_with(BENCH_URI, &Pb(self.message.clone()), self.opts.clone())
            .await;
        check(reply)
    }
}

/// One round of `n` calls of `kind` from `c` callers; calls/s.
async fn round(kind: Kind, n: u64, c: usize, sessions: &[Session]) -> Result<f64, String> {
    let plan = LoadPlan::new(Stop::Count(n));
    let (message, opts) = request();
    let outcome = match kind {
        Kind::Direct => {
            let callers = (0..c).map(|i| Direct {
                session: sessions[i % sessions.len()].clone(),
                message: message.clone(),
                opts: opts.clone(),
            });
            load::run(&plan, callers.collect()).await
        }
        Kind::Service => {
            let callers = (0..c).map(|i| Tower {
                svc: SessionService::new(sessions[i % sessions.len()].clone()),
                message: message.clone(),
                opts: opts.clone(),
            });
            load::run(&plan, callers.collect()).await
        }
        Kind::Tower => {
            let services: Vec<_> = sessions.iter().cloned().map(SessionService::new).collect();
            let balanced = Buffer::new(Balance::new(ServiceList::new(services)), c.max(1));
            let callers = (0..c).map(|_| Tower {
                svc: balanced.clone(),
                message: message.clone(),
                opts: opts.clone(),
            });
            load::run(&plan, callers.collect()).await
        }
        Kind::Hand => {
            let sessions: Arc<[Session]> = sessions.into();
            let callers = (0..c).map(|_| Hand {
                sessions: sessions.clone(),
                message: message.clone(),
                opts: opts.clone(),
            });
            load::run(&plan, callers.collect()).await
        }
    };
    if outcome.errors > 0 {
        return Err(format!(
            "{kind:?}: {} errors, first: {:?}",
            outcome.errors, outcome.first_error
        ));
    }
    Ok(outcome.ok as f64 / outcome.elapsed.as_secs_f64())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn measure(opts: &Opts, addrs: &[String]) -> Result<(), String> {
    let peer = Peer::new(Router::new());
    let mut sessions = Vec::new();
    for addr in addrs {
        sessions.push(peer.dial(addr.as_str()).await.map_err(|s| s.to_string())?);
    }
    let c = opts.c as usize;
    if let Some(kind) = opts.only {
        let started = Instant::now();
        let rate = round(kind, opts.n, c, &sessions).await?;
        println!(
            "{kind:?}: {} calls from {c} callers in {:.2?}, {rate:.0} calls/s",
            opts.n,
            started.elapsed()
        );
        peer.close().await;
        return Ok(());
    }
    // Warm-up: connections, allocator, caches.
    for kind in KINDS {
        round(kind, opts.n / 10 + 1, c, &sessions).await?;
    }
    let mut rates: Vec<[f64; 4]> = Vec::new();
    for r in 0..opts.rounds as usize {
        let mut rate = [0.0; 4];
        // Rotate the order so drift favours no kind.
        for k in 0..KINDS.len() {
            let i = (k + r) % KINDS.len();
            rate[i] = round(KINDS[i], opts.n, c, &sessions).await?;
        }
        println!(
            "round {}: direct {:.0}, service {:.0}, tower p2c {:.0}, hand p2c {:.0} calls/s",
            r + 1,
            rate[0],
            rate[1],
            rate[2],
            rate[3]
        );
        rates.push(rate);
    }
    let per_kind = |i: usize| median(rates.iter().map(|r| r[i]).collect());
    // Cost per call relative to direct: the inverse of the rate ratio, per round.
    let cost_ratio = |i: usize| {
        let ratios: Vec<f64> = rates.iter().map(|r| r[0] / r[i]).collect();
        let (min, max) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        (median(ratios), min, max)
    };
    println!(
        "median over {} rounds (n {}, c {c}): calls/s direct {:.0}, service {:.0}, tower p2c {:.0}, hand p2c {:.0}",
        opts.rounds,
        opts.n,
        per_kind(0),
        per_kind(1),
        per_kind(2),
        per_kind(3)
    );
    for (i, name) in [(1, "service"), (2, "tower p2c"), (3, "hand p2c")] {
        let (med, min, max) = cost_ratio(i);
        println!("cost per call {name} ÷ direct: median {med:.3} (min {min:.3}, max {max:.3})");
    }
    peer.close().await;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let runtime = load::runtime(1);
        return runtime.block_on(async {
            let Ok((peer, addr)) = echo::serve("127.0.0.1:0").await else {
                eprintln!("balance serve: cannot listen");
                return ExitCode::FAILURE;
            };
            load::announce(&addr);
            // Serves until killed.
            std::future::pending::<()>().await;
            peer.close().await;
            ExitCode::SUCCESS
        });
    }
    let opts = Opts::parse();
    // Three server processes, one echo server each.
    let servers: Result<Vec<_>, _> = (0..3).map(|_| ChildServer::start(1)).collect();
    let result = servers.and_then(|servers| {
        let addrs: Vec<String> = servers.iter().map(|s| s.addrs[0].clone()).collect();
        load::runtime(opts.threads as usize).block_on(measure(&opts, &addrs))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("balance: {e}");
            ExitCode::FAILURE
        }
    }
}
