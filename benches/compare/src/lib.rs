//! What the baselines share: the command line of `jaunt-bench` (`server` / `client`, the
//! same flags, the same report) around each system's own server and callers.

use std::future::Future;
use std::process::ExitCode;

use jaunt_benches::load::{self, Caller, ClientOpts, Report, ServerOpts};
use jaunt_benches::BENCH_URI;

/// What a baseline supports beyond the benchmark message.
#[derive(Debug, Clone, Copy)]
pub struct Supports {
    /// `--size BYTES` (a raw body instead of the message).
    pub size: bool,
    /// `--conns K` with K below the number of callers (a multiplexed connection).
    pub shared_conns: bool,
}

/// The `main` of a baseline named `system`: `server` runs `serve(addr)` (which binds, starts
/// serving in the background and returns the bound address), prints `LISTENING addr` and
/// keeps serving; `client` builds the callers with `connect(opts)` and runs the load.
pub fn main<SF, SFut, CF, CFut, C>(
    system: &str,
    supports: Supports,
    serve: SF,
    connect: CF,
) -> ExitCode
where
    SF: FnOnce(String) -> SFut,
    SFut: Future<Output = Result<String, String>>,
    CF: FnOnce(ClientOpts) -> CFut,
    CFut: Future<Output = Result<Vec<C>, String>>,
    C: Caller,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = format!(
        "{system}-bench: a baseline of Jaunt's load generator\n\n{}\n{}",
        ClientOpts::help(),
        ServerOpts::help()
    );
    let Some((command, rest)) = args.split_first() else {
        eprint!("{usage}");
        return ExitCode::from(2);
    };
    match command.as_str() {
        "server" => {
            let opts = match ServerOpts::parse(rest) {
                Ok(opts) => opts,
                Err(e) => {
                    eprintln!("{e}\n\n{usage}");
                    return ExitCode::from(2);
                }
            };
            load::runtime(opts.threads).block_on(async {
                match serve(opts.addr.clone()).await {
                    Ok(addr) => {
                        load::announce(&addr);
                        tokio::time::sleep(opts.lifetime).await;
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
        "client" => {
            let opts = match ClientOpts::parse(rest) {
                Ok(opts) => opts,
                Err(e) => {
                    eprintln!("{e}\n\n{usage}");
                    return ExitCode::from(2);
                }
            };
            let refused = if opts.uri != BENCH_URI {
                Some("--uri is for Jaunt (and other erpc peers) only")
            } else if opts.size.is_some() && !supports.size {
                Some("--size is not supported by this baseline")
            } else if opts.size.is_none() && opts.codec() != b'p' {
                Some("--codec is for Jaunt only: the baselines send the message their own way")
            } else if opts.connections() < opts.c && !supports.shared_conns {
                Some("this baseline has no multiplexing: one connection per caller")
            } else {
                None
            };
            if let Some(refused) = refused {
                eprintln!("{refused}");
                return ExitCode::from(2);
            }
            let code = load::runtime(opts.threads).block_on(async {
                let callers = match connect(opts.clone()).await {
                    Ok(callers) => callers,
                    Err(e) => {
                        eprintln!("{e}");
                        return 1;
                    }
                };
                let outcome = load::run(&opts.plan(), callers).await;
                let report = Report::new(&opts.shape(system), &outcome);
                report.print(&outcome, opts.json)
            });
            ExitCode::from(code as u8)
        }
        "help" | "--help" | "-h" => {
            print!("{usage}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("unknown command {other:?}\n\n{usage}");
            ExitCode::from(2)
        }
    }
}

/// `c` callers over `k` connections made by `make` (caller `i` gets connection `i % k`,
/// cloned).
pub fn spread<T: Clone>(conns: Vec<T>, c: usize) -> Vec<T> {
    (0..c).map(|i| conns[i % conns.len()].clone()).collect()
}

/// Checks the benchmark reply's two changed fields.
pub fn check(field1: Option<&str>, field2: Option<i32>) -> Result<(), String> {
    if field1 == Some("OK") && field2 == Some(100) {
        Ok(())
    } else {
        Err(format!("wrong reply: field1 {field1:?}, field2 {field2:?}"))
    }
}
