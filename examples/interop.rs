//! Interop: a server and a checker for testing compatibility with other
//! implementations of the erpc protocol, such as the Go erpc peer.
//!
//! ```text
//! cargo run --example interop -- serve --addr 127.0.0.1:9090 [--gzip] [--auth TOKEN] [--heartbeat SECS]
//! cargo run --example interop -- check --addr 127.0.0.1:9090 [--gzip] [--auth TOKEN [--expect-auth-fail]] [--heartbeat SECS]
//! cargo run --example interop -- selftest [--gzip] [--auth TOKEN] [--heartbeat SECS]
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
//! **Auth** (Go erpc's bearer/checker handshake, `jaunt_plugins::auth`):
//! `serve --auth TOKEN` accepts only sessions whose first frame is an
//! AUTH_PULL carrying TOKEN as a JSON string (codec `j`), answers it with the
//! JSON string `"ok"`, and refuses any other token with status 401 and
//! closes the session; its hello is pushed only once the handshake is done.
//! `check --auth TOKEN` authenticates when it dials and reports the handshake
//! as a check; with `--expect-auth-fail` the only check is that the server
//! refuses the token.
//!
//! **Heartbeat** (Go erpc's `/heartbeat` with meta `hb_`,
//! `jaunt_plugins::heartbeat`): `serve --heartbeat SECS` answers heartbeats
//! and closes every session that stays silent (nothing read or written) for
//! more than twice SECS, as well as sessions silent for more than twice the
//! rate they announced. `check --heartbeat SECS` pings whenever its session
//! has been idle for SECS, and adds a check that the session survives
//! 3 × SECS without calls.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use jaunt::prelude::*;
use jaunt::router::RouteError;
use jaunt::{code, Reply};
use jaunt_plugins::auth::{AuthReply, Bearer, Checker};
use jaunt_plugins::heartbeat::{self, LastActivity, Ping, Pong};
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
    let interop = Arc::new(Interop { gzip });
    let mut routes = Router::new();
    // Answers heartbeats (the `Pong` plugin only watches).
    heartbeat::routes(&mut routes)?;
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

/// Closes accepted sessions that stay silent (nothing read or written, as
/// the [`Pong`] plugin records it in [`LastActivity`]) for more than twice
/// `rate`, whether or not they announced a heartbeat rate.
struct SilenceLimit {
    rate: Duration,
}

impl jaunt::RoutePlugin for SilenceLimit {
    fn name(&self) -> &str {
        "silence-limit"
    }
}

#[jaunt::async_trait]
impl jaunt::Plugin for SilenceLimit {
    async fn post_accept(&self, session: &Session) -> Result<(), Status> {
        let (session, limit) = (session.clone(), self.rate * 2);
        tokio::spawn(async move {
            loop {
                let last = session
                    .data()
                    .get::<LastActivity>()
                    .map_or_else(Instant::now, |last| last.0);
                let deadline = last + limit;
                if Instant::now() > deadline {
                    tracing::info!(id = %session.id(), "silent for more than {limit:?}: closing");
                    session.close();
                    return;
                }
                tokio::select! {
                    () = session.closed() => return,
                    () = tokio::time::sleep_until((deadline + Duration::from_millis(1)).into()) => {}
                }
            }
        });
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
    async fn start(addr: &str, opts: &Options) -> Result<Self, Box<dyn Error>> {
        let mut builder = Peer::builder(server_routes(opts.gzip)?);
        // Plugin hooks run in the order the plugins were added: the auth
        // handshake comes first, so that no route is reachable and no hello
        // is pushed before it succeeds.
        if let Some(token) = &opts.auth {
            builder = builder.plugin(Checker::expect(token.as_str()));
        }
        builder = builder.plugin(Pong::new());
        if let Some(secs) = opts.heartbeat {
            builder = builder.plugin(SilenceLimit {
                rate: Duration::from_secs(secs),
            });
        }
        let peer = builder.plugin(Greeter).build()?;
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

async fn serve(addr: &str, opts: &Options) -> Result<(), Box<dyn Error>> {
    let server = Server::start(addr, opts).await?;
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
    /// Prints the summary line; returns whether every check passed.
    fn summary(&self) -> bool {
        if self.failed.is_empty() {
            println!("interop check: all {} checks ok", self.total);
        } else {
            println!(
                "interop check: {} of {} checks FAILED",
                self.failed.len(),
                self.total
            );
        }
        self.failed.is_empty()
    }

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

/// Whether `status` is a dial refused by the other side's auth check (105
/// carrying the 401).
fn is_auth_refusal(status: &Status) -> bool {
    status.code() == code::DIAL_FAILED
        && status
            .cause()
            .is_some_and(|cause| cause.contains("code=401") || cause.contains("Unauthorized"))
}

/// Runs every check against `addr`; returns whether all passed.
async fn check(addr: &str, options: &Options, expect_auth_fail: bool) -> bool {
    let gzip = options.gzip;
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
    let mut builder = Peer::builder(routes);
    if let Some(token) = &options.auth {
        builder = builder.plugin(Bearer::new(token.as_str()));
    }
    // After the bearer: no heartbeat before the handshake.
    if let Some(secs) = options.heartbeat {
        builder = builder.plugin(Ping::new(Duration::from_secs(secs)));
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(e) => {
            report.record("client peer", Err(e.to_string()));
            return false;
        }
    };
    let dialed = timed(client.dial(addr)).await;
    if expect_auth_fail {
        let outcome = match dialed {
            Ok(Err(status)) if is_auth_refusal(&status) => Ok(()),
            Ok(Err(status)) => Err(format!(
                "the dial failed, but not by an auth refusal: {status}"
            )),
            Ok(Ok(_)) => Err("the server accepted the token".to_owned()),
            Err(why) => Err(why),
        };
        report.record("auth refused (as expected)", outcome);
        client.close().await;
        return report.summary();
    }
    let session = match dialed {
        Ok(Ok(session)) => session,
        Ok(Err(status)) if is_auth_refusal(&status) => {
            report.record(
                "auth handshake",
                Err(format!("the server refused the token: {status}")),
            );
            client.close().await;
            return report.summary();
        }
        Ok(Err(status)) => {
            report.record(&format!("dial {addr}"), Err(status.to_string()));
            client.close().await;
            return report.summary();
        }
        Err(why) => {
            report.record(&format!("dial {addr}"), Err(why));
            client.close().await;
            return report.summary();
        }
    };
    if options.auth.is_some() {
        let answer = session.data().get::<AuthReply>().map(|reply| reply.0);
        let outcome = match answer {
            Some(serde_json::Value::String(ok)) if ok == "ok" => Ok(()),
            other => Err(format!("the auth reply is {other:?}, expected \"ok\"")),
        };
        report.record("auth handshake (token accepted, reply \"ok\")", outcome);
    }
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

    if let Some(secs) = options.heartbeat {
        let idle = Duration::from_secs(secs * 3);
        let outcome = async {
            // No call for 3 × SECS: only the heartbeats keep the session up
            // against a server that closes sessions silent for 2 × SECS.
            tokio::select! {
                () = session.closed() => return Err(format!("the server closed the session while it was idle (heartbeats every {secs}s)")),
                () = tokio::time::sleep(idle) => {}
            }
            let reply = ok(echo.str("still here".to_owned()).options(opts()).reply()).await?;
            expect_eq("echo", decode::<String>(&reply)?.as_str(), "still here")
        };
        report.record(
            &format!("heartbeat every {secs}s keeps the session open for {idle:?} without calls"),
            outcome.await,
        );
    }

    if !report.failed.is_empty() && session.is_closed() && options.auth.is_none() {
        // A server that requires auth drops a session whose first frame is
        // not an AUTH_PULL, without an answer.
        println!("note: the server closed the session; if it requires auth, pass --auth TOKEN");
    }
    client.close().await;
    report.summary()
}

// ----- the command line ---------------------------------------------------------

/// Serves, or checks, the erpc interop routes (`/math/add`, `/echo/str`, `/echo/fail`,
/// `/bench/echo`, `/push/msg`, `/push/count`; a `/notice/hello` push on connect), to test
/// compatibility with another implementation such as Go erpc.
#[derive(Parser)]
#[command(name = "interop")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the interop routes; prints `LISTENING host:port`, runs until
    /// SIGINT or SIGTERM.
    Serve {
        /// The address to listen on (port 0 picks a free port).
        #[arg(long, value_name = "HOST:PORT")]
        addr: String,
        #[command(flatten)]
        opts: Options,
    },
    /// Checks a server offering the interop routes; exits non-zero if a check
    /// fails.
    Check {
        /// The server's address.
        #[arg(long, value_name = "HOST:PORT")]
        addr: String,
        #[command(flatten)]
        opts: Options,
        /// Pass only if the server refuses the `--auth` token (no other
        /// check runs).
        #[arg(long, requires = "auth")]
        expect_auth_fail: bool,
    },
    /// Serves on 127.0.0.1:0 in-process and checks it.
    Selftest {
        #[command(flatten)]
        opts: Options,
    },
}

/// The options `serve` and `check` share.
#[derive(Args, Clone, Default)]
struct Options {
    /// serve: every reply goes through the gzip filter `g`; check: every pull
    /// and push goes through `g`, and replies must come back through it.
    #[arg(long)]
    gzip: bool,
    /// serve: accept only sessions authenticating with this token (a JSON
    /// string); check: authenticate with it.
    #[arg(long, value_name = "TOKEN")]
    auth: Option<String>,
    /// serve: answer heartbeats, close sessions silent for more than twice
    /// SECS; check: ping whenever idle for SECS.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    heartbeat: Option<u64>,
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

    match Cli::parse().command {
        Command::Serve { addr, opts } => match serve(&addr, &opts).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("interop serve: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check {
            addr,
            opts,
            expect_auth_fail,
        } => match check(&addr, &opts, expect_auth_fail).await {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        },
        Command::Selftest { opts } => {
            let server = match Server::start("127.0.0.1:0", &opts).await {
                Ok(server) => server,
                Err(e) => {
                    eprintln!("interop selftest: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("serving on {}", server.addr);
            let passed = check(&server.addr.to_string(), &opts, false).await;
            server.stop().await;
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
