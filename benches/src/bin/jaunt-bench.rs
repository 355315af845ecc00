//! `jaunt-bench`: the load generator of Jaunt, in the style of the teleport / rpcx bench
//! clients.
//!
//! ```text
//! jaunt-bench server [--addr 127.0.0.1:0] [--threads T]       # prints LISTENING addr
//! jaunt-bench client --addr A [-n N] [-c C] [--conns K] [--json] ...
//! jaunt-bench selftest [-n 1000] [-c 10]                       # server + client in-process
//! jaunt-bench summarize --out target/bench/compare.json REPORT.json...
//! ```
//!
//! The client pulls `/bench/echo` with the 581-byte benchmark message (protobuf) and checks
//! the 527-byte reply (`field1 = "OK"`, `field2 = 100`); with `--size BYTES` it sends a raw
//! body instead, which the server echoes. `--uri` and `--codec` let it drive any peer that
//! speaks the raw protocol (a Go erpc server, say).

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;
use jaunt_benches::echo;
use jaunt_benches::load::{self, ClientOpts, ServerOpts, SummarizeOpts};
use jaunt_benches::{benchmark_body, MESSAGE_LEN};

/// Jaunt's load generator (the compare harness; `jaunt bench` is the general one, on the
/// same engine).
#[derive(Parser)]
#[command(name = "jaunt-bench")]
enum Command {
    /// Serves the benchmark's echo; prints `LISTENING addr`.
    Server(ServerOpts),
    /// Runs the load against a server.
    Client(ClientOpts),
    /// Server and client in this process: the benchmark message, a raw body and shared
    /// connections; exits 1 on any error.
    Selftest(SelftestOpts),
    /// The comparison table of compare.sh, and its compare.json.
    Summarize(SummarizeOpts),
}

/// The flags of `selftest`.
#[derive(clap::Args)]
struct SelftestOpts {
    /// Timed calls per run (100k and 1m are accepted).
    #[arg(short = 'n', default_value = "1000", value_parser = load::parse_count)]
    n: u64,
    /// Concurrent callers.
    #[arg(short = 'c', default_value = "10")]
    c: usize,
    /// Worker threads of the runtime.
    #[arg(long, default_value = "2")]
    threads: usize,
    /// Untimed warm-up calls (default: n/10, at most 20000).
    #[arg(long, value_parser = load::parse_count)]
    warmup: Option<u64>,
    /// Print each report as one JSON line.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let code = match Command::parse() {
        Command::Server(opts) => server(&opts),
        Command::Client(opts) => client(&opts),
        Command::Selftest(opts) => selftest(&opts),
        Command::Summarize(opts) => opts.run(),
    };
    ExitCode::from(code as u8)
}

fn server(opts: &ServerOpts) -> i32 {
    load::runtime(opts.threads).block_on(async {
        let served = if opts.metrics {
            echo::serve_metered(&opts.addr).await
        } else {
            echo::serve(&opts.addr).await
        };
        let (peer, addr) = match served {
            Ok(served) => served,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        load::announce(&addr);
        tokio::time::sleep(opts.lifetime).await;
        peer.close().await;
        0
    })
}

fn client(opts: &ClientOpts) -> i32 {
    if opts.n == 0 {
        eprintln!("-n must be at least 1");
        return 2;
    }
    load::runtime(opts.threads).block_on(async {
        match echo::client(opts).await {
            Ok((report, outcome)) => report.print(&outcome, opts.json),
            Err(e) => {
                eprintln!("{e}");
                1
            }
        }
    })
}

/// Server and client in one process, on a free loopback port: the CI smoke test.
fn selftest(args: &SelftestOpts) -> i32 {
    if args.n == 0 || args.c == 0 || args.threads == 0 {
        eprintln!("-n, -c and --threads must be at least 1");
        return 2;
    }
    // The in-process server provides the address.
    let mut opts = ClientOpts {
        n: args.n,
        c: args.c,
        threads: args.threads,
        warmup: args.warmup,
        json: args.json,
        ..ClientOpts::default()
    };
    opts.no_progress = true;
    if benchmark_body().len() != MESSAGE_LEN {
        eprintln!("the benchmark message is not {MESSAGE_LEN} bytes");
        return 1;
    }
    let runs = [
        ("benchmark message, protobuf", opts.clone()),
        (
            "raw 581-byte body, codec s",
            ClientOpts {
                size: Some(MESSAGE_LEN),
                codec: Some(b's'),
                ..opts.clone()
            },
        ),
        (
            "benchmark message, callers sharing 2 connections",
            ClientOpts {
                conns: Some(2),
                ..opts.clone()
            },
        ),
    ];
    let mut code = 0;
    for (what, run_opts) in runs {
        println!("== selftest: {what}");
        let rt = load::runtime(run_opts.threads);
        code |= rt.block_on(async {
            match echo::in_process(run_opts.clone()).await {
                Ok((report, outcome)) => {
                    let code = report.print(&outcome, run_opts.json);
                    if report.ok != run_opts.n {
                        eprintln!("only {} of {} calls succeeded", report.ok, run_opts.n);
                        return 1;
                    }
                    code
                }
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            }
        });
    }
    if code == 0 {
        println!("selftest: ok");
    } else {
        println!("selftest: FAILED");
    }
    code
}
