//! Quickstart: two peers in one process, calling each other.
//!
//! In Jaunt both ends of a connection are equal. Either side can **pull**
//! (send a request and wait for its reply) and **push** (send a one-way
//! message), and each side serves the other side's pulls and pushes through
//! its own [`Router`]. "Server" and "client" only say who listened and who
//! dialed.
//!
//! This example starts a server peer that listens and a client peer that
//! dials it, then:
//!
//! 1. the client pulls `/math/add` (request and reply);
//! 2. the client pulls again with per-call options (meta, and the gzip
//!    transfer filter `g`), and reads the reply's meta, filters and cost;
//! 3. the client starts several pulls at once with `async_pull`;
//! 4. the client pushes `/chat/msg`. While serving that push, the server
//!    pulls `/client/time` back from the client on the same connection, and
//!    then pushes a `/notice` to the client;
//! 5. pulling a uri that has no route gives status 404.
//!
//! Run it from the workspace root:
//!
//! ```text
//! cargo run --example quickstart
//! RUST_LOG=debug cargo run --example quickstart   # with the framework's logs
//! ```

use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

use jaunt::prelude::*;
use tokio::sync::mpsc;

// ----- the server's handlers ----------------------------------------------

/// Pull `/math/add`: the sum of the numbers. The reply carries some meta.
async fn add(ctx: PullCtx, numbers: Vec<i64>) -> Result<i64, Status> {
    if let Some(author) = ctx.meta().get_str("author") {
        ctx.set_reply_meta("greeting", format!("hello, {author}"));
    }
    ctx.set_reply_meta("terms", numbers.len().to_string());
    Ok(numbers.iter().sum())
}

/// Push `/chat/msg`: a one-way message. The handler answers the sender by
/// pulling from it and pushing to it, through the session it came on.
async fn chat_msg(ctx: PushCtx, text: String) -> Result<(), Status> {
    println!(
        "server: got push /chat/msg {text:?} from {}",
        ctx.remote_addr()
    );

    // Pull back to the client, on the same connection.
    let millis: u128 = ctx.session().pull("/client/time", &()).await?.decode()?;
    println!("server: the client's clock says {millis} ms since 1970");

    // And push to it.
    let notice = format!("your message '{text}' arrived");
    ctx.session().push("/notice", &notice).await
}

// ----- the client's handlers ----------------------------------------------

/// Pull `/client/time` (pulled by the server): milliseconds since 1970. It
/// takes no argument.
async fn client_time(ctx: PullCtx) -> Result<u128, Status> {
    println!("client: serving pull {} from the server", ctx.uri());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(now.as_millis())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    // The server: routes, then listen (port 0 picks a free port).
    let mut server_routes = Router::new();
    server_routes.group("/math").pull("/add", add)?;
    server_routes.push("/chat/msg", chat_msg)?;
    let server = Peer::new(server_routes);
    let addr = server.listen("127.0.0.1:0").await?;
    println!("server: listening on {addr}");

    // The client serves pulls and pushes too. Its `/notice` handler hands
    // what it gets to `main` through a channel.
    let (notice_tx, mut notices) = mpsc::channel::<String>(8);
    let mut client_routes = Router::new();
    client_routes.pull("/client/time", client_time)?;
    client_routes.push("/notice", move |_: PushCtx, text: String| {
        let notice_tx = notice_tx.clone();
        async move {
            // `main` may have stopped listening; nothing to do then.
            let _ = notice_tx.send(text).await;
        }
    })?;
    let client = Peer::new(client_routes);
    let session = client.dial(&addr).await?;
    println!("client: connected to {}", session.remote_addr());

    // 1. A pull: arguments and reply are encoded with JSON, the default.
    println!("\n1. pull");
    let reply = session.pull("/math/add", &vec![1, 2, 3, 4]).await?;
    let sum: i64 = reply.decode()?;
    println!("client: 1 + 2 + 3 + 4 = {sum}");

    // 2. The same with per-call options: meta, and the gzip filter `g` (the
    //    reply goes through the same filters as its pull, by default).
    println!("\n2. pull with options");
    let opts = PullOptions::new().meta("author", "ann").xfer(b'g');
    let reply = session
        .pull_with("/math/add", &vec![10, 20, 30], opts)
        .await?;
    println!(
        "client: sum {}, reply meta greeting={:?} terms={:?}, filters {:?}, took {:?}",
        reply.decode::<i64>()?,
        reply.meta().get_str("greeting").unwrap_or_default(),
        reply.meta().get_str("terms").unwrap_or_default(),
        String::from_utf8_lossy(reply.xfer()),
        reply.cost(),
    );

    // 3. Several pulls in flight at once: `async_pull` starts a pull and
    //    returns a handle to await later.
    println!("\n3. async pulls");
    let inputs = [vec![1, 1], vec![2, 2, 2], vec![-7, 7]];
    let handles: Vec<_> = inputs
        .iter()
        .map(|numbers| session.async_pull("/math/add", numbers, PullOptions::new()))
        .collect();
    for (numbers, handle) in inputs.iter().zip(handles) {
        let sum: i64 = handle.await?.decode()?;
        println!("client: sum of {numbers:?} = {sum}");
    }

    // 4. A push: one-way, it returns once the message is queued. The server
    //    answers by pulling from us and pushing back a notice.
    println!("\n4. push, and the server pulls and pushes back");
    session.push("/chat/msg", &"hello, server").await?;
    let notice = notices.recv().await.ok_or("the notice channel closed")?;
    println!("client: got push /notice {notice:?}");

    // 5. Errors are statuses: a uri without a route is 404.
    println!("\n5. an unknown uri");
    match session.pull("/math/divide", &vec![1, 0]).await {
        Ok(_) => return Err("/math/divide should not exist".into()),
        Err(status) => println!("client: {status} (code {})", status.code()),
    }

    client.close().await;
    server.close().await;
    println!("\ndone");
    Ok(())
}
