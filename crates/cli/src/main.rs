//! `jaunt`: the command line of the Jaunt RPC framework. It pokes any service that speaks
//! the erpc protocol — Jaunt's or Go erpc's — from a shell, as grpcurl and ghz do for gRPC:
//!
//! - `jaunt call ADDR URI` pulls and prints the reply (pretty JSON when it is JSON);
//! - `jaunt push ADDR URI` pushes one-way;
//! - `jaunt listen ADDR` prints every push the other side sends, as JSON lines;
//! - `jaunt bench ADDR URI` load-tests a route (closed or open loop; the [`jaunt_load`]
//!   engine that the project's own benchmarks use);
//! - `jaunt discover SERVICE --etcd URL` (feature `etcd`) prints the instances registered in
//!   etcd, and with `--watch` every change.
//!
//! Every command dials with the same options ([`connect::ConnectOpts`]: auth token,
//! heartbeat, TLS, a `PeerConfig` file), and every failure ends with a documented exit code
//! ([`exit`]).

mod bench;
mod call;
mod connect;
#[cfg(feature = "etcd")]
mod discover;
mod exit;
mod listen;
mod output;
mod request;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "jaunt",
    version,
    about = "Call, push to, listen to and load-test Jaunt and Go erpc services",
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pull URI: send a request and print the reply's body.
    Call(call::CallArgs),
    /// Push to URI: send a one-way message.
    Push(call::CallArgs),
    /// Dial ADDR and print every push the other side sends, as JSON lines, until Ctrl-C.
    Listen(listen::ListenArgs),
    /// Load-test URI: many calls, then throughput, a latency histogram and percentiles.
    Bench(bench::BenchArgs),
    /// Print the instances of SERVICE registered in etcd (as JSON lines), with --watch every
    /// change until Ctrl-C.
    #[cfg(feature = "etcd")]
    Discover(discover::DiscoverArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs of the peer (none by default) go to stderr; stdout carries only results.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JAUNT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let threads = match &cli.command {
        Command::Bench(args) => args.threads,
        _ => 1,
    };
    let runtime = jaunt_load::runtime(threads);
    let result = runtime.block_on(async {
        match cli.command {
            Command::Call(args) => call::call(args).await,
            Command::Push(args) => call::push(args).await,
            Command::Listen(args) => listen::listen(args).await,
            Command::Bench(args) => bench::bench(args).await,
            #[cfg(feature = "etcd")]
            Command::Discover(args) => discover::discover(args).await,
        }
    });
    // Background tasks of closed peers must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("jaunt: {failure}");
            failure.exit_code()
        }
    }
}
