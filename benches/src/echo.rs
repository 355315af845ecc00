//! Jaunt's side of the load generator: the echo server and the callers of `jaunt-bench`.
//!
//! The server serves pull [`BENCH_URI`] (`/bench/echo`): a protobuf body (codec `p`) is
//! decoded as `Pb<BenchmarkMessage>` and answered with [`reply_to`] (`field1 = "OK"`,
//! `field2 = 100`: 527 bytes), a JSON / XML / form body likewise through serde, and any other
//! body (codec `s`, say, with `--size`) is echoed back as it is, with its codec. The callers
//! pull it and check the reply.

use std::sync::Arc;

use jaunt::codec::{erased_serde, EncodeBody, MessageEncode};
use jaunt::{codec_ids, Pb, Peer, PullCtx, PullOptions, RawBody, Router, Session, Status};

use crate::load::{self, Caller, ClientOpts, Outcome, Report};
use crate::{benchmark_message, reply_to, BenchmarkMessage, BENCH_URI, MESSAGE_LEN};

/// The echo handler's reply: the benchmark reply (protobuf or serde) or the raw body.
enum Echo {
    Pb(Pb<BenchmarkMessage>),
    Serde(BenchmarkMessage),
    Raw(RawBody),
}

impl EncodeBody for Echo {
    fn type_name(&self) -> &'static str {
        "Echo"
    }

    fn as_serialize(&self) -> Option<&dyn erased_serde::Serialize> {
        match self {
            Echo::Serde(message) => Some(message),
            _ => None,
        }
    }

    fn as_message(&self) -> Option<&dyn MessageEncode> {
        match self {
            Echo::Pb(message) => Some(&message.0),
            _ => None,
        }
    }

    fn as_raw(&self) -> Option<&RawBody> {
        match self {
            Echo::Raw(raw) => Some(raw),
            _ => None,
        }
    }
}

/// Pull `/bench/echo`.
async fn echo(ctx: PullCtx) -> Result<Echo, Status> {
    match ctx.body_codec() {
        codec_ids::PROTOBUF => {
            let Pb(message) = ctx.decode::<Pb<BenchmarkMessage>>()?;
            Ok(Echo::Pb(Pb(reply_to(message))))
        }
        codec_ids::JSON | codec_ids::XML | codec_ids::FORM => {
            Ok(Echo::Serde(reply_to(ctx.decode::<BenchmarkMessage>()?)))
        }
        _ => Ok(Echo::Raw(ctx.raw_body())),
    }
}

/// The echo server's router.
pub fn router() -> Router {
    let mut router = Router::new();
    router
        .pull(BENCH_URI, echo)
        .expect("one route cannot clash");
    router
}

/// Starts the echo server on `addr` (in the current runtime); returns the peer and the
/// bound address.
pub async fn serve(addr: &str) -> Result<(Peer, String), String> {
    serve_on(Peer::new(router()), addr).await
}

/// [`serve`] with the metrics plugin (`jaunt-bench server --metrics`).
pub async fn serve_metered(addr: &str) -> Result<(Peer, String), String> {
    let metrics = std::sync::Arc::new(jaunt_plugins::metrics::Metrics::new());
    let peer = Peer::builder(router())
        .plugin_arc(metrics)
        .build()
        .map_err(|e| format!("cannot build the server: {e}"))?;
    serve_on(peer, addr).await
}

async fn serve_on(peer: Peer, addr: &str) -> Result<(Peer, String), String> {
    let bound = peer
        .listen(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    Ok((peer, bound.to_string()))
}

/// What a caller sends.
enum Request {
    /// The benchmark message, protobuf.
    Pb(Pb<BenchmarkMessage>),
    /// The benchmark message through a serde codec.
    Serde(BenchmarkMessage, u8),
    /// A raw body, echoed back.
    Raw(RawBody),
}

/// One caller of `jaunt-bench client`: a session (shared with other callers under
/// `--conns`) and the request.
pub struct JauntCaller {
    session: Session,
    uri: Arc<str>,
    request: Arc<Request>,
}

fn check(reply: &BenchmarkMessage) -> Result<(), String> {
    if reply.field1.as_deref() == Some("OK") && reply.field2 == Some(100) {
        Ok(())
    } else {
        Err(format!(
            "wrong reply: field1 {:?}, field2 {:?}",
            reply.field1, reply.field2
        ))
    }
}

impl Caller for JauntCaller {
    async fn call(&mut self) -> Result<(), String> {
        match &*self.request {
            Request::Pb(message) => {
                let reply = self
                    .session
                    .pull_with(
                        &self.uri,
                        message,
                        PullOptions::new().codec(codec_ids::PROTOBUF),
                    )
                    .await
                    .map_err(|s| s.to_string())?;
                let Pb(reply) = reply
                    .decode::<Pb<BenchmarkMessage>>()
                    .map_err(|s| s.to_string())?;
                check(&reply)
            }
            Request::Serde(message, codec) => {
                let reply = self
                    .session
                    .pull_with(&self.uri, message, PullOptions::new().codec(*codec))
                    .await
                    .map_err(|s| s.to_string())?;
                check(
                    &reply
                        .decode::<BenchmarkMessage>()
                        .map_err(|s| s.to_string())?,
                )
            }
            Request::Raw(body) => {
                let reply = self
                    .session
                    .pull_raw(&self.uri, body.clone(), PullOptions::new())
                    .await
                    .map_err(|s| s.to_string())?;
                if reply.body().len() == body.bytes.len() {
                    Ok(())
                } else {
                    Err(format!(
                        "echo of {} bytes came back with {}",
                        body.bytes.len(),
                        reply.body().len()
                    ))
                }
            }
        }
    }
}

/// Opens `opts.connections()` sessions to `opts.addr` from one client peer and makes
/// `opts.c` callers sharing them round-robin. Returns the client peer too (close it after
/// the run).
pub async fn callers(opts: &ClientOpts) -> Result<(Peer, Vec<JauntCaller>), String> {
    let request = Arc::new(match (opts.size, opts.codec()) {
        (Some(size), codec) => Request::Raw(RawBody::new(codec, raw_body(size))),
        (None, codec_ids::PROTOBUF) => Request::Pb(Pb(benchmark_message())),
        (None, codec) => Request::Serde(benchmark_message(), codec),
    });
    if let Request::Pb(Pb(message)) = &*request {
        // The benchmark's request is exactly the 581-byte message of teleport and rpcx.
        assert_eq!(prost::Message::encoded_len(message), MESSAGE_LEN);
    }
    let peer = Peer::new(Router::new());
    let mut sessions = Vec::with_capacity(opts.connections());
    for _ in 0..opts.connections() {
        let session = peer
            .dial(opts.addr.as_str())
            .await
            .map_err(|e| format!("cannot dial {}: {e}", opts.addr))?;
        sessions.push(session);
    }
    let uri: Arc<str> = opts.uri.as_str().into();
    let callers = (0..opts.c)
        .map(|i| JauntCaller {
            session: sessions[i % sessions.len()].clone(),
            uri: uri.clone(),
            request: request.clone(),
        })
        .collect();
    Ok((peer, callers))
}

/// A raw body of `size` bytes (a repeating pattern, so a mix-up would show).
pub fn raw_body(size: usize) -> bytes::Bytes {
    (0..size)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// `jaunt-bench client`: connects, runs the load, returns the report and the outcome.
pub async fn client(opts: &ClientOpts) -> Result<(Report, Outcome), String> {
    let (peer, callers) = callers(opts).await?;
    let outcome = load::run(&opts.plan(), callers).await;
    peer.close().await;
    let report = Report::new(&opts.shape("jaunt"), &outcome);
    Ok((report, outcome))
}

/// Runs a server and a client in this process (the server on a free loopback port): the
/// CI smoke test and the crate's tests. Returns the client's report and outcome.
pub async fn in_process(mut opts: ClientOpts) -> Result<(Report, Outcome), String> {
    let (server, addr) = serve("127.0.0.1:0").await?;
    opts.addr = addr;
    let result = client(&opts).await;
    server.close().await;
    result
}
