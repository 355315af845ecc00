//! `tonic-bench`: the baseline of tonic (gRPC over HTTP/2), unary, with the same prost
//! message as Jaunt (`jaunt_benches::BenchmarkMessage`, hand-written: no protoc).
//!
//! The service is written by hand the way tonic-build would generate it: a
//! `Service<http::Request<Body>>` + `NamedService` that routes `/bench.Bench/Echo` to
//! `tonic::server::Grpc::unary` with `tonic_prost::ProstCodec`; the client calls
//! `tonic::client::Grpc::unary` on a `Channel` (one per connection; callers sharing a
//! connection with `--conns` clone it). TCP_NODELAY is on at both ends.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use jaunt_benches::load::{Caller, ClientOpts};
use jaunt_benches::{benchmark_message, reply_to, BenchmarkMessage};
use jaunt_compare::{check, spread, Supports};
use tonic::body::Body;
use tonic::server::{NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_prost::ProstCodec;

const SERVICE: &str = "bench.Bench";
const ECHO_PATH: &str = "/bench.Bench/Echo";

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// The unary method: the benchmark's echo.
#[derive(Clone, Copy)]
struct Echo;

impl UnaryService<BenchmarkMessage> for Echo {
    type Response = BenchmarkMessage;
    type Future = Ready<Result<tonic::Response<BenchmarkMessage>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<BenchmarkMessage>) -> Self::Future {
        ready(Ok(tonic::Response::new(reply_to(request.into_inner()))))
    }
}

/// The service, as tonic-build would generate it.
#[derive(Clone, Copy)]
struct BenchServer;

impl NamedService for BenchServer {
    const NAME: &'static str = SERVICE;
}

impl tower::Service<http::Request<Body>> for BenchServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match request.uri().path() {
            ECHO_PATH => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::<
                    BenchmarkMessage,
                    BenchmarkMessage,
                >::default());
                Ok(grpc.unary(Echo, request).await)
            }),
            _ => Box::pin(async move {
                let mut response = http::Response::new(Body::default());
                let headers = response.headers_mut();
                headers.insert(
                    tonic::Status::GRPC_STATUS,
                    (tonic::Code::Unimplemented as i32).into(),
                );
                headers.insert(
                    http::header::CONTENT_TYPE,
                    tonic::metadata::GRPC_CONTENT_TYPE,
                );
                Ok(response)
            }),
        }
    }
}

async fn serve(addr: String) -> Result<String, String> {
    let addr = addr
        .parse()
        .map_err(|e| format!("bad address {addr}: {e}"))?;
    let incoming = TcpIncoming::bind(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?
        .with_nodelay(Some(true));
    let bound = incoming.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = Server::builder()
            .add_service(BenchServer)
            .serve_with_incoming(incoming)
            .await
        {
            eprintln!("tonic server failed: {e}");
        }
    });
    Ok(bound.to_string())
}

struct TonicCaller {
    grpc: tonic::client::Grpc<Channel>,
    message: BenchmarkMessage,
    path: PathAndQuery,
}

impl Caller for TonicCaller {
    async fn call(&mut self) -> Result<(), String> {
        self.grpc.ready().await.map_err(|e| e.to_string())?;
        let reply = self
            .grpc
            .unary(
                tonic::Request::new(self.message.clone()),
                self.path.clone(),
                ProstCodec::<BenchmarkMessage, BenchmarkMessage>::default(),
            )
            .await
            .map_err(|s| s.to_string())?
            .into_inner();
        check(reply.field1.as_deref(), reply.field2)
    }
}

async fn connect(opts: ClientOpts) -> Result<Vec<TonicCaller>, String> {
    let endpoint = Endpoint::from_shared(format!("http://{}", opts.addr))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true);
    let mut channels = Vec::with_capacity(opts.connections());
    for _ in 0..opts.connections() {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", opts.addr))?;
        channels.push(tonic::client::Grpc::new(channel));
    }
    let message = benchmark_message();
    Ok(spread(channels, opts.c)
        .into_iter()
        .map(|grpc| TonicCaller {
            grpc,
            message: message.clone(),
            path: PathAndQuery::from_static(ECHO_PATH),
        })
        .collect())
}

fn main() -> ExitCode {
    jaunt_compare::main(
        "tonic",
        Supports {
            size: false,
            shared_conns: true,
        },
        serve,
        connect,
    )
}
