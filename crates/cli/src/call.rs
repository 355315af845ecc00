//! `jaunt call` and `jaunt push`.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use jaunt::Router;

use crate::connect::ConnectOpts;
use crate::exit::Failure;
use crate::output;
use crate::request::RequestOpts;

/// The arguments of `call` and `push`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The server: `host:port` or `unix:/path/to/socket`.
    pub addr: String,
    #[command(flatten)]
    pub request: RequestOpts,
    #[command(flatten)]
    pub connect: ConnectOpts,
    /// Also print the reply's codec, meta and round-trip time to stderr.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// Pulls and prints the reply body to stdout.
pub async fn call(args: CallArgs) -> Result<ExitCode, Failure> {
    let client = args.connect.client(Router::new())?;
    let body = args.request.body(client.peer().codecs())?;
    let session = client.dial(&args.addr).await?;
    let started = std::time::Instant::now();
    let result = session
        .pull_raw(&args.request.uri, body, args.request.options())
        .await;
    let took = started.elapsed();
    let codecs = client.peer().codecs().clone();
    client.close().await;
    let reply = result?;
    if args.verbose {
        let meta: Vec<String> = reply
            .meta()
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            })
            .collect();
        eprintln!(
            "status: 0 (OK)\ncodec: {}\nmeta: {}\ntime: {took:?}",
            output::codec_name(&codecs, reply.codec()),
            meta.join("&")
        );
    }
    let mut stdout = std::io::stdout().lock();
    output::write_body(&mut stdout, reply.codec(), reply.body())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Input(format!("cannot write the reply: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// Pushes, and returns once the push is written.
pub async fn push(args: CallArgs) -> Result<ExitCode, Failure> {
    let client = args.connect.client(Router::new())?;
    let body = args.request.body(client.peer().codecs())?;
    let session = client.dial(&args.addr).await?;
    let result = session
        .push_raw(&args.request.uri, body, args.request.options())
        .await;
    // Closing flushes the write queue.
    client.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
