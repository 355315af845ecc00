//! `balanced`: what a pull through the cluster's balanced client costs over a pull on a
//! session dialed directly, in one run.
//!
//! ```text
//! balanced [-n 100000] [-c 48] [--pool 2] [--rounds 7] [--only direct|balanced]
//! ```
//!
//! The program starts a copy of itself as the servers (`balanced serve`: three echo
//! servers — `jaunt-bench`'s echo router — listening on three ports of one child process)
//! and runs rounds of `-n` typed pulls of the benchmark message (protobuf) from `-c`
//! callers, alternating a round where each caller holds one session of its own choosing
//! (caller `i` uses session `i mod 3·pool`: the ideal spread, with no choice made per call)
//! with a round through one `jaunt_cluster::client::Balanced` over the three instances
//! (power of two choices on pending pulls, a pool of `--pool` sessions per instance).
//! Both rounds call through the same generated client type, so the difference is the
//! balancer: the choice, the pool and the failover bookkeeping.
//!
//! `--only direct` or `--only balanced` runs one kind alone with one caller and no warm-up
//! rounds: for counting instructions under `valgrind --tool=callgrind`.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use jaunt::service::Stub;
use jaunt::{codec_ids, Pb, Peer, PullCtx, Router, Session, Status};
use jaunt_benches::child_server::{calls_per_second as round, ChildServer};
use jaunt_benches::load::{self, Caller};
use jaunt_benches::{benchmark_message, echo, BenchmarkMessage};
use jaunt_cluster::client::Balanced;
use jaunt_cluster::discovery::StaticList;
use jaunt_cluster::Instance;

/// The echo route as a typed service: `/bench/echo`.
#[jaunt::service]
trait Bench {
    /// The benchmark message echoed (with `field1 = "OK"`). Idempotent: through the
    /// balanced client it takes the costlier path (its options kept for a resend, the
    /// retry budget credited).
    #[jaunt(idempotent)]
    async fn echo(
        &self,
        ctx: &PullCtx,
        message: Pb<BenchmarkMessage>,
    ) -> Result<Pb<BenchmarkMessage>, Status>;
}

/// One caller: a typed client over some stub (a session or the balanced client).
struct Echo<S: Stub> {
    client: BenchClient<S>,
    message: BenchmarkMessage,
}

impl<S: Stub + Send + Sync + 'static> Caller for Echo<S> {
    async fn call(&mut self) -> Result<(), String> {
        let Pb(reply) = self
            .client
            .echo(Pb(self.message.clone()))
            .codec(codec_ids::PROTOBUF)
            .await
            .map_err(|s| s.to_string())?;
        if reply.field1.as_deref() == Some("OK") {
            Ok(())
        } else {
            Err(format!("wrong reply: field1 {:?}", reply.field1))
        }
    }
}

#[derive(Parser)]
#[command(about = "The balanced client's cost per pull over a direct session, in one run")]
struct Args {
    #[command(subcommand)]
    serve: Option<Serve>,
    /// Pulls per round.
    #[arg(short = 'n', default_value_t = 100_000)]
    n: u64,
    /// Concurrent callers.
    #[arg(short = 'c', default_value_t = 48)]
    c: usize,
    /// Sessions per instance (the balanced client's pool; the direct rounds dial as many).
    #[arg(long, default_value_t = 2)]
    pool: usize,
    /// Rounds of each kind, alternated.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Runs one kind alone, one caller, no warm-up (for callgrind).
    #[arg(long, value_enum)]
    only: Option<Kind>,
}

#[derive(Subcommand)]
enum Serve {
    /// Three echo servers in this process; prints `LISTENING addr` for each.
    Serve,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Direct,
    Balanced,
}

async fn measure(args: &Args, addrs: &[String]) -> Result<(), String> {
    let peer = Peer::new(Router::new());
    let mut sessions: Vec<Session> = Vec::new();
    for _ in 0..args.pool {
        for addr in addrs {
            sessions.push(peer.dial(addr).await.map_err(|s| s.to_string())?);
        }
    }
    let instances = addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| Instance::new(format!("echo-{i}"), "bench", addr.clone()));
    let balanced = Balanced::builder("bench", StaticList::new(instances))
        .peer(peer.clone())
        .pool_size(args.pool)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    // Every pool filled before measuring.
    let filled = Instant::now();
    while !balanced
        .endpoints()
        .iter()
        .all(|e| e.connected == args.pool)
    {
        if filled.elapsed().as_secs() > 10 {
            return Err(format!("pools never filled: {:?}", balanced.endpoints()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let message = benchmark_message();
    let direct = |c: usize| -> Vec<Echo<Session>> {
        (0..c)
            .map(|i| Echo {
                client: BenchClient::new(sessions[i % sessions.len()].clone()),
                message: message.clone(),
            })
            .collect()
    };
    let through = |c: usize| -> Vec<Echo<Balanced>> {
        (0..c)
            .map(|_| Echo {
                client: BenchClient::new(balanced.clone()),
                message: message.clone(),
            })
            .collect()
    };
    if let Some(only) = args.only {
        let started = Instant::now();
        let rate = match only {
            Kind::Direct => round(args.n, direct(1)).await?,
            Kind::Balanced => round(args.n, through(1)).await?,
        };
        let name = if only == Kind::Direct {
            "direct"
        } else {
            "balanced"
        };
        println!(
            "{name}: {} calls in {:.2?}, {rate:.0} calls/s",
            args.n,
            started.elapsed()
        );
        peer.close().await;
        return Ok(());
    }
    round(args.n / 10 + 1, direct(args.c)).await?;
    round(args.n / 10 + 1, through(args.c)).await?;
    let mut pairs = Vec::new();
    for r in 0..args.rounds {
        // Alternate which goes first, so drift favours neither.
        let (d, b) = if r % 2 == 0 {
            let d = round(args.n, direct(args.c)).await?;
            (d, round(args.n, through(args.c)).await?)
        } else {
            let b = round(args.n, through(args.c)).await?;
            (round(args.n, direct(args.c)).await?, b)
        };
        println!(
            "round {}: direct {d:.0} calls/s, balanced {b:.0} calls/s, balanced/direct {:.3}",
            r + 1,
            b / d
        );
        pairs.push((d, b));
    }
    let mut ratios: Vec<f64> = pairs.iter().map(|(d, b)| b / d).collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "balanced/direct throughput per round over {} rounds: median {:.3} (min {:.3}, max {:.3})",
        args.rounds,
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    peer.close().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.serve.is_some() {
        let runtime = load::runtime(1);
        return runtime.block_on(async {
            let mut peers = Vec::new();
            for _ in 0..3 {
                let Ok((peer, addr)) = echo::serve("127.0.0.1:0").await else {
                    eprintln!("balanced serve: cannot listen");
                    return ExitCode::FAILURE;
                };
                load::announce(&addr);
                peers.push(peer);
            }
            // Serves until killed.
            std::future::pending::<()>().await;
            ExitCode::SUCCESS
        });
    }
    if args.n == 0 || args.c == 0 || args.pool == 0 || args.rounds == 0 {
        eprintln!("balanced: -n, -c, --pool and --rounds must be at least 1");
        return ExitCode::from(2);
    }
    let servers = match ChildServer::start(3) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("balanced: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = load::runtime(1);
    let result = runtime.block_on(measure(&args, &servers.addrs));
    drop(servers);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("balanced: {e}");
            ExitCode::FAILURE
        }
    }
}
