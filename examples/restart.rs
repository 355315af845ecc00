//! Graceful restart: replace a running server with a new process without
//! refusing a connection or failing a pull.
//!
//! ```sh
//! cargo run --example restart -- --addr 127.0.0.1:9000
//! kill -USR2 <pid>    # a new process takes over the socket; this one drains and exits
//! kill -TERM <pid>    # graceful shutdown
//! ```
//!
//! It serves pull `/who` (a number → `[pid, number]`, so a client can see
//! which process answered) and prints `LISTENING <addr> pid <pid>` once it
//! accepts connections.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use jaunt::prelude::*;
use jaunt::restart::Inherited;

/// A server that hands its socket over to a new process on SIGUSR2.
#[derive(Parser)]
#[command(name = "restart")]
struct Cli {
    /// The address to listen on (port 0 picks a free port); an inherited socket wins.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
    addr: String,
}

/// Serves until SIGUSR2 (hand over, drain, exit) or SIGTERM/SIGINT (drain, exit).
#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = Cli::parse().addr;
    let pid = std::process::id();
    let mut inherited = Inherited::from_env();

    let mut router = Router::new();
    router.pull("/who", move |_: PullCtx, n: u64| async move {
        // A little work, so that pulls are in flight during the hand-over.
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok::<_, Status>((pid, n))
    })?;
    let peer = Peer::new(router);
    let bound = peer.listen_inherited(&mut inherited, addr.as_str()).await?;

    // Register for the signals before announcing that we serve.
    let restart = peer.restart_on_signal(Duration::from_secs(10))?;
    let shutdown = peer.shutdown_on_signal(Duration::from_secs(10))?;
    println!("LISTENING {bound} pid {pid}");
    std::io::stdout().flush()?;
    inherited.ready()?;

    tokio::select! {
        new_pid = restart => eprintln!("pid {pid}: handed over to pid {}, drained", new_pid?),
        drained = shutdown => eprintln!("pid {pid}: shut down (drained: {drained})"),
    }
    Ok(())
}
