//! `jaunt listen`: print what the other side pushes.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use jaunt::{PushCtx, Router};
use serde_json::{json, Map, Value};

use crate::connect::ConnectOpts;
use crate::exit::Failure;
use crate::output;
use crate::request::RequestOpts;

/// The arguments of `listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The server: `host:port` or `unix:/path/to/socket`.
    pub addr: String,
    /// Print only the pushes whose uri starts with this (the others are dropped).
    #[arg(long, value_name = "URI")]
    pub prefix: Option<String>,
    /// After connecting, pull this uri first (to subscribe, say); its reply goes to stderr.
    /// The request options (--data, --codec, --meta...) apply to it.
    #[arg(long, value_name = "URI")]
    pub subscribe: Option<String>,
    #[command(flatten)]
    pub connect: ConnectOpts,
    #[command(flatten)]
    pub request: SubscribeOpts,
}

/// The request options of `--subscribe` (the uri comes from `--subscribe`).
#[derive(Debug, Args)]
pub struct SubscribeOpts {
    /// The body of the --subscribe pull (as `call --data`).
    #[arg(long, value_name = "BODY", requires = "subscribe")]
    pub data: Option<String>,
    /// The codec of --data.
    #[arg(long, value_name = "NAME", requires = "subscribe")]
    pub codec: Option<String>,
}

/// Dials, prints each push as a JSON line (`{"uri", "codec", "meta", "body"}`) until Ctrl-C
/// (exit 0) or until the connection is lost (exit 6).
pub async fn listen(args: ListenArgs) -> Result<ExitCode, Failure> {
    let prefix = args.prefix.clone().unwrap_or_default();
    let mut router = Router::new();
    router
        .unknown_push(move |ctx: PushCtx| {
            let prefix = prefix.clone();
            async move {
                if ctx.uri().starts_with(prefix.as_str()) {
                    print_push(&ctx);
                }
            }
        })
        .map_err(|e| Failure::Input(format!("cannot set up the listener: {e}")))?;
    let client = args.connect.client(router)?;
    let session = client.dial(&args.addr).await?;
    if let Some(uri) = &args.subscribe {
        let request = RequestOpts {
            uri: uri.clone(),
            data: args.request.data.clone(),
            codec: args.request.codec.clone(),
            meta: Vec::new(),
            timeout: std::time::Duration::from_secs(10),
            gzip: false,
        };
        let body = request.body(client.peer().codecs())?;
        let reply = session.pull_raw(uri, body, request.options()).await?;
        let mut stderr = std::io::stderr().lock();
        let _ = output::write_body(&mut stderr, reply.codec(), reply.body());
    }
    eprintln!("listening on {} (Ctrl-C to stop)", args.addr);
    let code = tokio::select! {
        _ = tokio::signal::ctrl_c() => ExitCode::SUCCESS,
        () = session.closed() => {
            eprintln!("jaunt: the connection was closed");
            ExitCode::from(crate::exit::status_exit_code(jaunt::code::CONN_CLOSED))
        }
    };
    client.close().await;
    Ok(code)
}

/// One push as a JSON line on stdout.
fn print_push(ctx: &PushCtx) {
    let raw = ctx.raw_body();
    let mut meta = Map::new();
    for (key, value) in ctx.meta().iter() {
        meta.insert(
            String::from_utf8_lossy(key).into_owned(),
            Value::String(String::from_utf8_lossy(value).into_owned()),
        );
    }
    let line = json!({
        "uri": ctx.uri(),
        "codec": output::codec_name(ctx.session().peer().codecs(), raw.codec),
        "meta": meta,
        "body": output::body_value(raw.codec, &raw.bytes),
    });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
