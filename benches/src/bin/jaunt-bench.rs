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

use jaunt_benches::echo;
use jaunt_benches::load::{self, ClientOpts, ServerOpts};
use jaunt_benches::{benchmark_body, MESSAGE_LEN};

fn usage() -> String {
    format!(
        "jaunt-bench: Jaunt's load generator (the compare harness; `jaunt bench` is the\n\
         general one, on the same engine)\n\n{}\n{}\n  selftest [-n N] [-c C] [--threads T]\n    \
         server and client in this process: the benchmark message, a raw body and shared\n    \
         connections; exits 1 on any error\n  summarize [--out FILE] REPORT.json...\n    \
         the comparison table of compare.sh, and its compare.json\n",
        ClientOpts::help(),
        ServerOpts::help()
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{}", usage());
        return ExitCode::from(2);
    };
    let code = match command.as_str() {
        "server" => server(rest),
        "client" => client(rest),
        "selftest" => selftest(rest),
        "summarize" => load::summarize(rest),
        "help" | "--help" | "-h" => {
            print!("{}", usage());
            0
        }
        other => {
            eprintln!("unknown command {other:?}\n\n{}", usage());
            2
        }
    };
    ExitCode::from(code as u8)
}

fn server(args: &[String]) -> i32 {
    let opts = match ServerOpts::parse(args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}\n\n{}", usage());
            return 2;
        }
    };
    load::runtime(opts.threads).block_on(async {
        let (peer, addr) = match echo::serve(&opts.addr).await {
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

fn client(args: &[String]) -> i32 {
    let opts = match ClientOpts::parse(args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}\n\n{}", usage());
            return 2;
        }
    };
    load::runtime(opts.threads).block_on(async {
        match echo::client(&opts).await {
            Ok((report, outcome)) => report.print(&outcome, opts.json),
            Err(e) => {
                eprintln!("{e}");
                1
            }
        }
    })
}

/// Server and client in one process, on a free loopback port: the CI smoke test.
fn selftest(args: &[String]) -> i32 {
    // The client parser wants an address; the in-process server provides the real one.
    let mut full = vec!["--addr".to_owned(), "127.0.0.1:0".to_owned()];
    full.extend_from_slice(args);
    let mut opts = match ClientOpts::parse(&full) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}\n\n{}", usage());
            return 2;
        }
    };
    if !args.iter().any(|a| a == "-c") {
        opts.c = 10;
    }
    if !args.iter().any(|a| a == "-n") {
        opts.n = 1000;
    }
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
