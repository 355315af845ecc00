//! Interop: a server and a checker for testing compatibility with other
//! implementations of the erpc protocol, such as the Go erpc peer.
//!
//! ```text
//! cargo run --example interop -- serve --addr 127.0.0.1:9090 [--gzip]
//! cargo run --example interop -- check --addr 127.0.0.1:9090 [--gzip]
//! cargo run --example interop -- selftest [--gzip]
//! ```
//!
//! `serve` listens (port 0 picks a free port), prints `LISTENING host:port`
//! with the bound address once it accepts connections, and serves until it
//! is killed or gets SIGINT or SIGTERM. With the JSON codec, it serves:
//!
//! | uri | kind | argument → reply |
//! |---|---|---|
//! | `/math/add` | pull | a JSON array of integers → their sum; the reply's meta `author` echoes the pull's |
//! | `/echo/str` | pull | a string → the same string |
//! | `/echo/fail` | pull | a string → status 1001, msg `custom failure`, the string as cause |
//! | `/bench/echo` | pull | raw bytes (codec `s`) → the same bytes, codec `s` |
//! | `/push/msg` | push | anything: counted per session |
//! | `/push/count` | pull | → how many `/push/msg` this session sent, a JSON number |
//!
//! and it pushes `/notice/hello` (a JSON string) to every session it
//! accepts. With `--gzip` every reply goes through the gzip filter `g`;
//! without it, replies go through the filters of their pull.
//!
//! `check` dials a server offering those routes (one written with another
//! implementation, say) and checks each of them, printing `ok   name` or
//! `FAIL name: why` per check and a summary; it exits non-zero if any check
//! failed. With `--gzip` it sends every pull and push through `g` and checks
//! that the replies come back through `g`.
//!
//! `selftest` runs `serve` on 127.0.0.1:0 in-process and `check`s it.
//!
//! The routes are defined once, as typed services (`#[jaunt::service]`
//! traits named as Go erpc names the same structs: `Math.add` is
//! `/math/add`): `serve` implements them and `check` calls them through the
//! generated typed clients, so a `check` against a Go server exercises the
//! typed client against another implementation.

use std::error::Error;
use std::future::IntoFuture;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use jaunt::prelude::*;
use jaunt::router::RouteError;
use jaunt::{code, Reply};
use tokio::sync::mpsc;

/// The gzip transfer filter's id, by the Go ecosystem's convention.
const GZIP: u8 = b'g';

// ----- serve ------------------------------------------------------------------

/// The number of `/push/msg` a session sent, kept in its session data.
#[derive(Debug, Clone, Copy, Default)]
struct PushCount(u64);

/// Sends the reply through gzip when the server runs with `--gzip`.
fn reply_filters(ctx: &PullCtx, gzip: bool) {
    if gzip {
        ctx.set_reply_xfer(vec![GZIP]);
    }
}

// The interop routes, defined once as typed services: `serve` implements
// them, `check` calls them through the generated clients. Their uris are the
// ones Go erpc gives the same structs and methods (`/math/add`, ...).

/// `/math/add`.
#[jaunt::service]
trait Math {
    /// The sum; the reply's meta `author` echoes the pull's.
    async fn add(&self, ctx: &PullCtx, numbers: Vec<i64>) -> Result<i64, Status>;
}

/// `/echo/str`, `/echo/fail`.
#[jaunt::service]
trait Echo {
    /// The same string.
    async fn str(&self, ctx: &PullCtx, text: String) -> Result<String, Status>;
    /// Status 1001 with the string as cause.
    async fn fail(&self, ctx: &PullCtx, text: String) -> Result<(), Status>;
}

/// `/bench/echo`.
#[jaunt::service]
trait Bench {
    /// The same bytes, codec `s`.
    async fn echo(&self, ctx: &PullCtx, body: Bytes) -> Result<Bytes, Status>;
}

/// `/push/msg`, `/push/count`.
#[jaunt::service]
trait Push {
    /// Counted per session.
    async fn msg(&self, ctx: &PushCtx);
    /// How many `/push/msg` this session sent.
    async fn count(&self, ctx: &PullCtx) -> Result<u64, Status>;
}

/// `/notice/hello`: what the server pushes to every session it accepts.
#[jaunt::service]
trait Notice {
    /// A greeting.
    async fn hello(&self, ctx: &PushCtx, text: String);
}

/// The interop server's routes; `gzip` sends every reply through `g`.
struct Interop {
    gzip: bool,
}

impl Math for Interop {
    async fn add(&self, ctx: &PullCtx, numbers: Vec<i64>) -> Result<i64, Status> {
        reply_filters(ctx, self.gzip);
        if let Some(author) = ctx.meta().get("author") {
            ctx.set_reply_meta("author", author);
        }
        numbers
            .iter()
            .try_fold(0_i64, |sum, n| sum.checked_add(*n))
            .ok_or_else(|| Status::bad_message("the sum overflows an i64"))
    }
}

impl Echo for Interop {
    async fn str(&self, ctx: &PullCtx, text: String) -> Result<String, Status> {
        reply_filters(ctx, self.gzip);
        Ok(text)
    }

    async fn fail(&self, ctx: &PullCtx, text: String) -> Result<(), Status> {
        reply_filters(ctx, self.gzip);
        Err(Status::new(1001, "custom failure").with_cause(text))
    }
}

impl Bench for Interop {
    async fn echo(&self, ctx: &PullCtx, body: Bytes) -> Result<Bytes, Status> {
        reply_filters(ctx, self.gzip);
        ctx.set_reply_codec(jaunt::codec_ids::PLAIN);
        Ok(body)
    }
}

impl Push for Interop {
    async fn msg(&self, ctx: &PushCtx) {
        ctx.data().update(|count: &mut PushCount| count.0 += 1);
    }

    async fn count(&self, ctx: &PullCtx) -> Result<u64, Status> {
        reply_filters(ctx, self.gzip);
        Ok(ctx.data().get::<PushCount>().unwrap_or_default().0)
    }
}

fn server_routes(gzip: bool) -> Result<Router, RouteError> {
    let interop = std::sync::Arc::new(Interop { gzip });
    let mut routes = Router::new();
    routes
        .service(MathServer::from_arc(interop.clone()))?
        .service(EchoServer::from_arc(interop.clone()))?
        .service(BenchServer::from_arc(interop.clone()))?
        .service(PushServer::from_arc(interop))?;
    Ok(routes)
}

/// Pushes `/notice/hello` to every session the peer accepts, from the
/// `post_accept` hook: once per session, with no polling of the session list.
struct Greeter;

impl jaunt::RoutePlugin for Greeter {
    fn name(&self) -> &str {
        "greeter"
    }
}

#[jaunt::async_trait]
impl jaunt::Plugin for Greeter {
    async fn post_accept(&self, session: &Session) -> Result<(), Status> {
        let notice = NoticeClient::new(session);
        if let Err(status) = notice.hello("hello from jaunt".to_owned()).await {
            tracing::debug!(id = %session.id(), %status, "could not say hello");
        }
        Ok(())
    }
}

/// What the checking client does with the server's hello: hands it to the
/// check.
struct Hellos(mpsc::Sender<String>);

impl Notice for Hellos {
    async fn hello(&self, _ctx: &PushCtx, text: String) {
        let _ = self.0.send(text).await;
    }
}

/// A listening interop server.
struct Server {
    peer: Peer,
    addr: jaunt::Addr,
}

impl Server {
    async fn start(addr: &str, gzip: bool) -> Result<Self, Box<dyn Error>> {
        let peer = Peer::builder(server_routes(gzip)?)
            .plugin(Greeter)
            .build()?;
        let addr = peer.listen(addr).await?;
        Ok(Self { peer, addr })
    }

    async fn stop(self) {
        self.peer.close().await;
    }
}

/// Returns on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

async fn serve(addr: &str, gzip: bool) -> Result<(), Box<dyn Error>> {
    let server = Server::start(addr, gzip).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "LISTENING {}", server.addr)?;
    stdout.flush()?;
    shutdown_signal().await;
    server.stop().await;
    Ok(())
}

// ----- check ------------------------------------------------------------------

/// How long one call may take before the check fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Strings that `/echo/str` must give back unchanged.
const ECHO_CASES: [(&str, &str); 5] = [
    ("empty", ""),
    ("unicode", "✓ 日本語 🚀"),
    ("quotes", r#"say "hi" and 'bye'"#),
    ("backslashes", r"C:\path\to\file \n \\ \"),
    ("url characters", "a&b=c?d%2Fe+f g"),
];

/// The cause `/echo/fail` must give back.
const FAIL_CAUSE: &str = "bad thing & more=1 %2F ✓";

/// The meta value `/math/add` must echo.
const AUTHOR: &str = "interop ✓ & co=1";

/// Counts and prints check outcomes.
#[derive(Default)]
struct Report {
    failed: Vec<String>,
    total: usize,
}

impl Report {
    fn record(&mut self, name: &str, outcome: Result<(), String>) {
        self.total += 1;
        match outcome {
            Ok(()) => println!("ok   {name}"),
            Err(why) => {
                println!("FAIL {name}: {why}");
                self.failed.push(name.to_owned());
            }
        }
    }
}

/// Awaits a call for at most [`CALL_TIMEOUT`].
async fn timed<T>(
    call: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<Result<T, Status>, String> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| format!("no answer within {CALL_TIMEOUT:?}"))
}

/// Awaits a pull that must succeed.
async fn ok(
    call: impl std::future::Future<Output = Result<Reply, Status>>,
) -> Result<Reply, String> {
    timed(call)
        .await?
        .map_err(|status| format!("failed: {status}"))
}

/// Awaits a pull that must fail.
async fn failure(
    call: impl std::future::Future<Output = Result<Reply, Status>>,
) -> Result<Status, String> {
    match timed(call).await? {
        Ok(reply) => Err(format!(
            "succeeded with body {:?}",
            String::from_utf8_lossy(reply.body())
        )),
        Err(status) => Ok(status),
    }
}

/// The reply came through the expected filters: `g` with `--gzip`, none
/// without (a reply mirrors its pull's filters).
fn filters(reply: &Reply, gzip: bool) -> Result<(), String> {
    let expected: &[u8] = if gzip { &[GZIP] } else { &[] };
    if reply.xfer() == expected {
        Ok(())
    } else {
        Err(format!(
            "the reply came through filters {:?}, expected {:?}",
            String::from_utf8_lossy(reply.xfer()),
            String::from_utf8_lossy(expected)
        ))
    }
}

fn decode<T: jaunt::codec::DecodeBody>(reply: &Reply) -> Result<T, String> {
    reply
        .decode()
        .map_err(|status| format!("undecodable reply: {status}"))
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// Runs every check against `addr`; returns whether all passed.
async fn check(addr: &str, gzip: bool) -> bool {
    let mut report = Report::default();
    let opts = || {
        if gzip {
            PullOptions::new().xfer(GZIP)
        } else {
            PullOptions::new()
        }
    };

    // The client serves the server's hello.
    let (hello_tx, mut hello) = mpsc::channel::<String>(4);
    let mut routes = Router::new();
    if let Err(e) = routes.service(NoticeServer::new(Hellos(hello_tx))) {
        report.record("client routes", Err(e.to_string()));
        return false;
    }
    let client = Peer::new(routes);
    let session = match timed(client.dial(addr))
        .await
        .and_then(|dialed| dialed.map_err(|s| s.to_string()))
    {
        Ok(session) => session,
        Err(why) => {
            report.record(&format!("dial {addr}"), Err(why));
            return false;
        }
    };
    let (math, echo) = (MathClient::new(&session), EchoClient::new(&session));
    let (bench, push) = (BenchClient::new(&session), PushClient::new(&session));

    let outcome = async {
        let call = math.add(vec![-3, 7, -100, 42]).options(opts());
        let reply = ok(call.meta("author", AUTHOR).reply()).await?;
        expect_eq("sum", decode::<i64>(&reply)?, -54)?;
        expect_eq("meta author", reply.meta().get_str("author"), Some(AUTHOR))?;
        filters(&reply, gzip)
    };
    report.record(
        "math/add (negative numbers, meta author echoed)",
        outcome.await,
    );

    for (name, text) in ECHO_CASES {
        let outcome = async {
            let reply = ok(echo.str(text.to_owned()).options(opts()).reply()).await?;
            expect_eq("echo", decode::<String>(&reply)?.as_str(), text)?;
            filters(&reply, gzip)
        };
        report.record(&format!("echo/str {name}"), outcome.await);
    }

    let outcome = async {
        let call = echo.fail(FAIL_CAUSE.to_owned()).options(opts());
        let status = failure(call.reply()).await?;
        expect_eq("code", status.code(), 1001)?;
        expect_eq("msg", status.msg(), "custom failure")?;
        expect_eq("cause", status.cause(), Some(FAIL_CAUSE))
    };
    report.record("echo/fail (code 1001, msg, cause)", outcome.await);

    let outcome = async {
        let status = failure(session.pull_with("/no/such/route", &"?", opts())).await?;
        expect_eq("code", status.code(), code::NOT_FOUND)
    };
    report.record("unknown route is 404", outcome.await);

    let outcome = async {
        let all_bytes = Bytes::from((0..=255_u8).collect::<Vec<u8>>());
        let call = bench.echo(all_bytes.clone()).options(opts());
        let reply = ok(call.codec(jaunt::codec_ids::PLAIN).reply()).await?;
        expect_eq("codec", char::from(reply.codec()), 's')?;
        expect_eq("body", reply.body(), &all_bytes)?;
        filters(&reply, gzip)
    };
    report.record("bench/echo (256 byte values, codec s)", outcome.await);

    let outcome = async {
        for i in 0..3 {
            let pushed = timed(push.msg().options(opts()).into_future()).await?;
            pushed.map_err(|status| format!("push {i} failed: {status}"))?;
        }
        // Pushes are served concurrently with later pulls (in erpc too): poll
        // until all three are counted.
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        loop {
            let reply = ok(push.count().options(opts()).reply()).await?;
            filters(&reply, gzip)?;
            let count = decode::<u64>(&reply)?;
            if count >= 3 || tokio::time::Instant::now() >= deadline {
                return expect_eq("count", count, 3);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    report.record("3 pushes to push/msg, push/count == 3", outcome.await);

    let outcome = match tokio::time::timeout(Duration::from_secs(5), hello.recv()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the client stopped listening".to_owned()),
        Err(_) => Err("no push within 5s".to_owned()),
    };
    report.record("notice/hello pushed on connect", outcome);

    client.close().await;
    if report.failed.is_empty() {
        println!("interop check: all {} checks ok", report.total);
    } else {
        println!(
            "interop check: {} of {} checks FAILED",
            report.failed.len(),
            report.total
        );
    }
    report.failed.is_empty()
}

// ----- the command line ---------------------------------------------------------

const USAGE: &str = "usage: interop serve --addr HOST:PORT [--gzip]
       interop check --addr HOST:PORT [--gzip]
       interop selftest [--gzip]";

struct Args {
    command: String,
    addr: Option<String>,
    gzip: bool,
}

fn parse_args() -> Option<Args> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        command: args.next()?,
        addr: None,
        gzip: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => parsed.addr = Some(args.next()?),
            "--gzip" => parsed.gzip = true,
            _ => return None,
        }
    }
    Some(parsed)
}

/// Runs the command named on the command line.
#[tokio::main]
pub async fn main() -> ExitCode {
    // Logs go to stderr: stdout carries the LISTENING line and the report.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    let usage = || {
        eprintln!("{USAGE}");
        ExitCode::from(2)
    };
    let Some(args) = parse_args() else {
        return usage();
    };
    match (args.command.as_str(), args.addr) {
        ("serve", Some(addr)) => match serve(&addr, args.gzip).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("interop serve: {e}");
                ExitCode::FAILURE
            }
        },
        ("check", Some(addr)) => match check(&addr, args.gzip).await {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        },
        ("selftest", None) => {
            let server = match Server::start("127.0.0.1:0", args.gzip).await {
                Ok(server) => server,
                Err(e) => {
                    eprintln!("interop selftest: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("serving on {}", server.addr);
            let passed = check(&server.addr.to_string(), args.gzip).await;
            server.stop().await;
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        _ => usage(),
    }
}
