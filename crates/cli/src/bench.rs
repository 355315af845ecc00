//! `jaunt bench`: a load test of one route, on the project's load engine (`jaunt-load`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use jaunt::{codec_ids, PullOptions, RawBody, Router, Session};
use jaunt_load::{LoadPlan, Report, RunShape, Stop};

use crate::connect::ConnectOpts;
use crate::exit::Failure;
use crate::request::RequestOpts;

/// The arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The server: `host:port` or `unix:/path/to/socket`.
    pub addr: String,
    #[command(flatten)]
    pub request: RequestOpts,
    /// Calls to make (100k and 1_000 are accepted). Default: 1000, unless --duration.
    #[arg(short = 'n', long = "requests", value_parser = count, conflicts_with = "duration")]
    pub n: Option<u64>,
    /// Make calls for this long instead (e.g. 10s, 1m).
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Concurrent callers, one call outstanding each.
    #[arg(short = 'c', long = "concurrency", default_value = "10", value_parser = positive)]
    pub c: u64,
    /// Connections the callers share, round-robin (at most one per caller).
    #[arg(long, default_value = "1", value_parser = positive)]
    pub conns: u64,
    /// Open loop: start calls at this rate (calls/s) whether or not replies keep up;
    /// latency counts from when each call was due (no coordinated omission).
    #[arg(long, value_name = "CALLS_PER_S")]
    pub rate: Option<f64>,
    /// Send a body of this many bytes (codec plain unless --codec) instead of --data.
    #[arg(long, value_name = "BYTES", value_parser = count, conflicts_with = "data")]
    pub size: Option<u64>,
    /// Untimed calls first.
    #[arg(long, default_value = "0", value_parser = count)]
    pub warmup: u64,
    /// Print the report as one line of JSON (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Never draw the progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Worker threads of the client.
    #[arg(long, default_value = "2", value_parser = positive_usize)]
    pub threads: usize,
    #[command(flatten)]
    pub connect: ConnectOpts,
}

fn count(text: &str) -> Result<u64, String> {
    jaunt_load::parse_count(text)
}

fn positive(text: &str) -> Result<u64, String> {
    match count(text)? {
        0 => Err("must be at least 1".to_owned()),
        v => Ok(v),
    }
}

fn positive_usize(text: &str) -> Result<usize, String> {
    positive(text).and_then(|v| usize::try_from(v).map_err(|e| e.to_string()))
}

/// One caller: a session (shared with other callers) and the request.
struct Caller {
    session: Session,
    uri: Arc<str>,
    body: RawBody,
    opts: PullOptions,
}

impl jaunt_load::Caller for Caller {
    async fn call(&mut self) -> Result<(), String> {
        self.session
            .pull_raw(&self.uri, self.body.clone(), self.opts.clone())
            .await
            .map(drop)
            .map_err(|status| crate::exit::describe(&status))
    }
}

/// Runs the load and prints the report; exits 1 when any call failed.
pub async fn bench(args: BenchArgs) -> Result<ExitCode, Failure> {
    let stop = match (args.n, args.duration) {
        (_, Some(d)) => Stop::Duration(d),
        (Some(n), None) => Stop::Count(n),
        (None, None) => Stop::Count(1000),
    };
    let plan = LoadPlan::new(stop)
        .warmup(args.warmup)
        .rate(args.rate)
        .progress(!args.json && !args.no_progress);
    plan.validate().map_err(Failure::Input)?;

    let client = args.connect.client(Router::new())?;
    let body = match args.size {
        Some(size) => {
            let codec = args
                .request
                .codec_id(client.peer().codecs(), codec_ids::PLAIN)?;
            let size = usize::try_from(size).map_err(|e| Failure::Input(e.to_string()))?;
            RawBody::new(
                codec,
                (0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>(),
            )
        }
        None => args.request.body(client.peer().codecs())?,
    };
    let conns = args.conns.min(args.c);
    let mut sessions = Vec::new();
    for _ in 0..conns {
        sessions.push(client.dial(&args.addr).await?);
    }
    let uri: Arc<str> = args.request.uri.as_str().into();
    let opts = args.request.options();
    let callers: Vec<Caller> = (0..args.c as usize)
        .map(|i| Caller {
            session: sessions[i % sessions.len()].clone(),
            uri: uri.clone(),
            body: body.clone(),
            opts: opts.clone(),
        })
        .collect();
    let outcome = jaunt_load::run(&plan, callers).await;
    client.close().await;
    let shape = RunShape {
        system: format!("{}{}", args.addr, args.request.uri),
        c: args.c as usize,
        conns: conns as usize,
        threads: args.threads,
        body_bytes: body.bytes.len(),
        warmup: args.warmup,
        rate: args.rate,
    };
    let report = Report::new(&shape, &outcome);
    Ok(ExitCode::from(report.print(&outcome, args.json) as u8))
}
