//! Chat: a server that pushes every message to every connected session with
//! `Peer::broadcast_push` (like the chat example of the Go framework Tao).
//!
//! The protocol: a client pulls `/chat/join` with its name, then pushes
//! `/chat/say` with each line it wants to say. The server pushes
//! `/chat/msg` (`{"from": .., "text": ..}`) to everyone: every line said,
//! and who joined and who left.
//!
//! ```text
//! cargo run --example chat                        # demo: a server and three clients in one process
//! cargo run --example chat -- server --addr 127.0.0.1:9000
//! cargo run --example chat -- client --addr 127.0.0.1:9000 --name bob
//! ```
//!
//! The demo exchanges a few messages, prints them and exits. The server runs
//! until Ctrl-C. The client reads lines from standard input and says them;
//! it ends at end of input (Ctrl-D) or when the server goes away.

use std::error::Error;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use jaunt::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// What the server pushes to everyone on `/chat/msg`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChatMsg {
    from: String,
    text: String,
}

impl ChatMsg {
    fn from_server(text: impl Into<String>) -> Self {
        Self {
            from: "server".into(),
            text: text.into(),
        }
    }
}

/// The name a session joined with, kept in its session data.
#[derive(Clone)]
struct Name(String);

// ----- the server -----------------------------------------------------------

/// Pull `/chat/join`: remembers the caller's name, tells everyone, and
/// replies how many sessions are connected.
async fn join(ctx: PullCtx, name: String) -> Result<usize, Status> {
    if name.trim().is_empty() {
        return Err(Status::new(1001, "a name is required"));
    }
    ctx.data().insert(Name(name.clone()));
    let peer = ctx.peer();
    peer.broadcast_push("/chat/msg", &ChatMsg::from_server(format!("{name} joined")))
        .await?;

    // There is no "session closed" hook: wait for the close in a task.
    let session = ctx.session().clone();
    tokio::spawn(async move {
        session.closed().await;
        let left = ChatMsg::from_server(format!("{name} left"));
        // Sessions closing at the same time may refuse the push: fine.
        let _ = peer.broadcast_push("/chat/msg", &left).await;
    });
    Ok(ctx.peer().session_count())
}

/// Push `/chat/say`: sends the line to everyone, signed with the sender's name.
async fn say(ctx: PushCtx, text: String) -> Result<(), Status> {
    let Some(Name(from)) = ctx.data().get::<Name>() else {
        return Err(Status::new(1002, "say something after /chat/join"));
    };
    ctx.peer()
        .broadcast_push("/chat/msg", &ChatMsg { from, text })
        .await?;
    Ok(())
}

fn server_peer() -> Result<Peer, Box<dyn Error>> {
    let mut routes = Router::new();
    let mut chat = routes.group("/chat");
    chat.pull("/join", join)?.push("/say", say)?;
    Ok(Peer::new(routes))
}

async fn run_server(addr: &str) -> Result<(), Box<dyn Error>> {
    let server = server_peer()?;
    let bound = server.listen(addr).await?;
    println!("chat server listening on {bound}; Ctrl-C stops it");
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    server.close().await;
    Ok(())
}

// ----- a client ---------------------------------------------------------------

/// A client peer whose `/chat/msg` handler sends what it receives, tagged
/// with `me`, into `inbox`.
fn client_peer(me: &str, inbox: mpsc::Sender<(String, ChatMsg)>) -> Result<Peer, Box<dyn Error>> {
    let me = me.to_owned();
    let mut routes = Router::new();
    routes.push("/chat/msg", move |_: PushCtx, msg: ChatMsg| {
        let (me, inbox) = (me.clone(), inbox.clone());
        async move {
            let _ = inbox.send((me, msg)).await;
        }
    })?;
    Ok(Peer::new(routes))
}

/// Standard input, line by line. A thread of its own reads it: a read that
/// blocks there does not keep the program from exiting (`tokio::io::stdin`
/// would keep the runtime from shutting down until the next line).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

async fn run_client(addr: &str, name: &str) -> Result<(), Box<dyn Error>> {
    let (inbox_tx, mut inbox) = mpsc::channel(64);
    let client = client_peer(name, inbox_tx)?;
    let session = client.dial(addr).await?;
    // Print what the server pushes. (Pushes are served concurrently, so two
    // that arrive back to back may be printed in either order.)
    tokio::spawn(async move {
        while let Some((_, msg)) = inbox.recv().await {
            println!("[{}] {}", msg.from, msg.text);
        }
    });
    let online: usize = session.pull("/chat/join", &name).await?.decode()?;
    println!("joined as {name}; {online} connected; type lines to say them, Ctrl-D to leave");

    let mut lines = stdin_lines();
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => session.push("/chat/say", &line).await?,
                None => break,
            },
            () = session.closed() => {
                println!("the server closed the connection");
                break;
            }
        }
    }
    client.close().await;
    Ok(())
}

// ----- the demo -----------------------------------------------------------------

/// Waits for `n` deliveries (up to 5 s) and returns them sorted by receiver.
async fn deliveries(
    inbox: &mut mpsc::Receiver<(String, ChatMsg)>,
    n: usize,
) -> Result<Vec<(String, ChatMsg)>, Box<dyn Error>> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), inbox.recv()).await {
            Ok(Some(delivery)) => got.push(delivery),
            Ok(None) => return Err("the inbox closed".into()),
            Err(_) => return Err(format!("only {} of {n} deliveries arrived", got.len()).into()),
        }
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(got)
}

/// Prints one message and who received it.
fn show(got: &[(String, ChatMsg)]) {
    let Some((_, msg)) = got.first() else { return };
    let to: Vec<&str> = got.iter().map(|(me, _)| me.as_str()).collect();
    let line = format!("[{}] {}", msg.from, msg.text);
    println!("  {line:<22} -> received by {}", to.join(", "));
}

async fn run_demo() -> Result<(), Box<dyn Error>> {
    let server = server_peer()?;
    let addr = server.listen("127.0.0.1:0").await?;
    println!("chat server listening on {addr}");

    // Every client's deliveries come into one inbox, tagged with its name.
    let (inbox_tx, mut inbox) = mpsc::channel(64);
    let names = ["ann", "bob", "cid"];
    let mut clients = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let peer = client_peer(name, inbox_tx.clone())?;
        let session = peer.dial(&addr).await?;
        let online: usize = session.pull("/chat/join", name).await?.decode()?;
        println!("{name} joined ({online} connected)");
        // Everyone connected so far sees the join.
        show(&deliveries(&mut inbox, i + 1).await?);
        clients.push((peer, session));
    }

    println!("chatting:");
    let lines = [(0, "hi all"), (1, "hello ann"), (2, "gotta go, bye")];
    for (who, text) in lines {
        clients[who].1.push("/chat/say", &text).await?;
        show(&deliveries(&mut inbox, names.len()).await?);
    }

    // cid leaves: the two others are told.
    let (cid, _) = clients.pop().ok_or("no clients")?;
    cid.close().await;
    show(&deliveries(&mut inbox, clients.len()).await?);

    for (peer, _) in &clients {
        peer.close().await;
    }
    server.close().await;
    println!("done");
    Ok(())
}

// ----- arguments --------------------------------------------------------------

/// A broadcast chat server and its clients.
#[derive(Parser)]
#[command(name = "chat")]
struct Cli {
    /// What to run.
    #[arg(value_enum, default_value = "demo")]
    mode: Mode,
    /// The server's address (to listen on, or to dial).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9000")]
    addr: String,
    /// The client's name in the chat.
    #[arg(long, default_value = "anon")]
    name: String,
}

/// What `chat` runs.
#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// A server and three clients in this process: a few messages, then exit.
    Demo,
    /// A chat server.
    Server,
    /// A client: lines read on stdin are sent, messages received are printed.
    Client,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let args = Cli::parse();
    let outcome = match args.mode {
        Mode::Server => run_server(&args.addr).await,
        Mode::Client => run_client(&args.addr, &args.name).await,
        Mode::Demo => run_demo().await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}
