//! `tarpc-bench`: the baseline of tarpc, with its native serde transport over TCP
//! (`tarpc::serde_transport`, length-delimited frames, bincode).
//!
//! The message has the same fields as `jaunt_benches::BenchmarkMessage`, as a plain serde
//! struct (bincode is not self-describing, so every field is always written: no
//! `skip_serializing_if`). TCP_NODELAY is set on both ends (tarpc's own `tcp::connect` /
//! `tcp::listen` leave it off, which would cost it the Nagle delay).

use std::process::ExitCode;

use futures::prelude::*;
use jaunt_benches::benchmark_message;
use jaunt_benches::load::{Caller, ClientOpts};
use jaunt_compare::{check, spread, Supports};
use serde::{Deserialize, Serialize};
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tarpc::{client, context};
use tokio::net::{TcpListener, TcpStream};

/// The benchmark message's fields, as a serde struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    field1: Option<String>,
    field4: Option<String>,
    field7: Option<String>,
    field9: Option<String>,
    field18: Option<String>,
    field102: Option<String>,
    field103: Option<String>,
    field129: Option<String>,
    field2: Option<i32>,
    field3: Option<i32>,
    field6: Option<i32>,
    field16: Option<i32>,
    field23: Option<i32>,
    field25: Option<i32>,
    field29: Option<i32>,
    field60: Option<i32>,
    field67: Option<i32>,
    field68: Option<i32>,
    field100: Option<i32>,
    field101: Option<i32>,
    field104: Option<i32>,
    field128: Option<i32>,
    field130: Option<i32>,
    field131: Option<i32>,
    field150: Option<i32>,
    field271: Option<i32>,
    field272: Option<i32>,
    field280: Option<i32>,
    field22: Option<i64>,
    field12: Option<bool>,
    field13: Option<bool>,
    field14: Option<bool>,
    field17: Option<bool>,
    field24: Option<bool>,
    field30: Option<bool>,
    field59: Option<bool>,
    field78: Option<bool>,
    field80: Option<bool>,
    field81: Option<bool>,
    #[serde(default)]
    field5: Vec<u64>,
}

impl Message {
    /// The benchmark's request, the same values as Jaunt's (converted once, at start-up,
    /// through JSON: the field names are the same).
    fn request() -> Message {
        let json = serde_json::to_value(benchmark_message()).expect("the message serializes");
        serde_json::from_value(json).expect("the same fields")
    }
}

#[tarpc::service]
trait Bench {
    /// The benchmark's echo: `field1 = "OK"`, `field2 = 100`.
    async fn echo(message: Message) -> Message;
}

#[derive(Clone, Copy)]
struct BenchServer;

impl Bench for BenchServer {
    async fn echo(self, _: context::Context, mut message: Message) -> Message {
        message.field1 = Some("OK".to_owned());
        message.field2 = Some(100);
        message
    }
}

async fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(fut);
}

async fn serve(addr: String) -> Result<String, String> {
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let framed = Framed::new(stream, LengthDelimitedCodec::new());
            let transport = tarpc::serde_transport::new(framed, Bincode::default());
            let channel = BaseChannel::with_defaults(transport);
            tokio::spawn(channel.execute(BenchServer.serve()).for_each(spawn));
        }
    });
    Ok(bound.to_string())
}

struct TarpcCaller {
    client: BenchClient,
    message: Message,
}

impl Caller for TarpcCaller {
    async fn call(&mut self) -> Result<(), String> {
        let reply = self
            .client
            .echo(context::current(), self.message.clone())
            .await
            .map_err(|e| e.to_string())?;
        check(reply.field1.as_deref(), reply.field2)
    }
}

async fn connect(opts: ClientOpts) -> Result<Vec<TarpcCaller>, String> {
    let mut clients = Vec::with_capacity(opts.connections());
    for _ in 0..opts.connections() {
        let stream = TcpStream::connect(&opts.addr)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", opts.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let framed = Framed::new(stream, LengthDelimitedCodec::new());
        let transport = tarpc::serde_transport::new(framed, Bincode::default());
        clients.push(BenchClient::new(client::Config::default(), transport).spawn());
    }
    let message = Message::request();
    Ok(spread(clients, opts.c)
        .into_iter()
        .map(|client| TarpcCaller {
            client,
            message: message.clone(),
        })
        .collect())
}

fn main() -> ExitCode {
    jaunt_compare::main(
        "tarpc",
        Supports {
            size: false,
            shared_conns: true,
        },
        serve,
        connect,
    )
}
