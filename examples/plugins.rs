//! Plugins: a server with auth, heartbeat, binder (argument validation) and
//! metrics, and a client that authenticates, calls, and reads the metrics.
//!
//! The plugins are in the `jaunt-plugins` crate; each one is wire-compatible
//! with its Go erpc counterpart where Go erpc has one:
//!
//! - **auth**: the server's [`Checker`] reads the first frame of every
//!   session, which must be an AUTH_PULL carrying a token; the client's
//!   [`Bearer`] sends it when it dials. A wrong token makes the dial fail
//!   with status 105, whose cause carries the server's 401.
//! - **heartbeat**: the client's [`Ping`] sends `/heartbeat` when its session
//!   has been idle for a second; the server's [`Pong`] answers (with the
//!   routes of [`heartbeat::routes`]) and would close the session if it went
//!   silent for more than twice that.
//! - **binder**: a handler taking [`Valid<T>`] only runs with input that
//!   passes `T`'s `#[validate(...)]` rules; other input gets status 400
//!   naming the failing fields.
//! - **metrics**: [`Metrics`] counts pulls, pushes and errors per uri, with
//!   latency histograms; the program prints its snapshot.
//!
//! The program checks what it shows and exits non-zero if something does
//! not happen as described. Run it from the workspace root:
//!
//! ```text
//! cargo run --example plugins
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt_plugins::auth::{AuthReply, Bearer, Checker, Credentials};
use jaunt_plugins::binder::{Valid, Validate};
use jaunt_plugins::heartbeat::{self, Ping, Pong};
use jaunt_plugins::metrics::Metrics;
use serde::Deserialize;

/// The token the server accepts.
const TOKEN: &str = "s3cret";

/// The client's heartbeat rate.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// The argument of `/users/create`, with its validation rules.
#[derive(Debug, Deserialize, Validate)]
struct NewUser {
    #[validate(length(min = 1, max = 32))]
    name: String,
    #[validate(range(min = 18, max = 150))]
    age: u32,
}

/// Pull `/users/create`: runs only with a valid [`NewUser`].
async fn create_user(_: PullCtx, Valid(user): Valid<NewUser>) -> Result<String, Status> {
    Ok(format!("welcome, {} ({})", user.name, user.age))
}

/// Pull `/whoami`: the token this session authenticated with.
async fn whoami(ctx: PullCtx) -> Result<String, Status> {
    match ctx.session().data().get::<Credentials>() {
        Some(Credentials(serde_json::Value::String(token))) => Ok(token),
        _ => Err(Status::unauthorized("no credentials")),
    }
}

/// Fails with `what` unless `ok`.
fn expect(ok: bool, what: impl Into<String>) -> Result<(), Box<dyn Error>> {
    if ok {
        Ok(())
    } else {
        Err(what.into().into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();

    // ----- the server -----
    let metrics = Arc::new(Metrics::new());
    let mut routes = Router::new();
    routes.pull("/users/create", create_user)?;
    routes.pull("/whoami", whoami)?;
    heartbeat::routes(&mut routes)?;
    let server = Peer::builder(routes)
        // Hooks run in this order: the handshake first.
        .plugin(Checker::expect(TOKEN))
        .plugin(Pong::new())
        .plugin_arc(metrics.clone())
        .build()?;
    let addr = server.listen("127.0.0.1:0").await?;
    println!("server: listening on {addr} (auth, heartbeat, binder, metrics)");

    // ----- a client with the wrong token -----
    println!("\n1. a wrong token is refused");
    let intruder = Peer::builder(Router::new())
        .plugin(Bearer::new("guess"))
        .build()?;
    let refused = intruder.dial(&addr).await;
    intruder.close().await;
    match refused {
        Ok(_) => return Err("the server accepted a wrong token".into()),
        Err(status) => {
            println!("intruder: {status}");
            expect(
                status.code() == code::DIAL_FAILED
                    && status.cause().is_some_and(|c| c.contains("401")),
                "the refusal is not a 105 carrying the 401",
            )?;
        }
    }

    // ----- the client -----
    println!("\n2. the right token");
    let client = Peer::builder(Router::new())
        .plugin(Bearer::new(TOKEN))
        // After the bearer: its timer starts once the handshake is done.
        .plugin(Ping::new(HEARTBEAT))
        .build()?;
    let session = client.dial(&addr).await?;
    let answer = session.data().get::<AuthReply>().map(|reply| reply.0);
    println!("client: authenticated, the server answered {answer:?}");
    expect(
        answer == Some(serde_json::json!("ok")),
        "the auth reply is not \"ok\"",
    )?;
    let who: String = session.pull("/whoami", &()).await?.decode()?;
    println!("client: the server knows us as {who:?}");
    expect(who == TOKEN, "the server does not see the token")?;

    println!("\n3. validated arguments");
    let welcome: String = session
        .pull(
            "/users/create",
            &serde_json::json!({"name": "ann", "age": 30}),
        )
        .await?
        .decode()?;
    println!("client: {welcome}");
    expect(welcome == "welcome, ann (30)", "unexpected welcome")?;
    let invalid = serde_json::json!({"name": "", "age": 12});
    match session.pull("/users/create", &invalid).await {
        Ok(_) => return Err("an invalid user was accepted".into()),
        Err(status) => {
            println!("client: {status}");
            let cause = status.cause().unwrap_or_default();
            expect(
                status.code() == code::BAD_MESSAGE
                    && cause.contains("name")
                    && cause.contains("age"),
                "the refusal is not a 400 naming both fields",
            )?;
        }
    }

    println!(
        "\n4. idle for {:?}: heartbeats keep the session alive",
        HEARTBEAT * 3
    );
    tokio::time::sleep(HEARTBEAT * 3).await;
    expect(!session.is_closed(), "the session closed while idle")?;

    println!("\n5. the server's metrics");
    let snapshot = metrics.snapshot();
    for (uri, stats) in &snapshot.per_uri {
        println!(
            "  {uri:<15} pulls {:>2}  pushes {:>2}  errors {:>2}  latency samples {}",
            stats.pulls,
            stats.pushes,
            stats.errors,
            stats.latency.count()
        );
    }
    let stats = |uri: &str| snapshot.per_uri.get(uri).cloned().unwrap_or_default();
    expect(stats("/whoami").pulls == 1, "/whoami was not counted once")?;
    let create = stats("/users/create");
    expect(
        (create.pulls, create.errors) == (2, 1),
        format!(
            "/users/create: {} pulls, {} errors, expected 2 and 1",
            create.pulls, create.errors
        ),
    )?;
    expect(
        stats("/heartbeat").pulls >= 1,
        "no heartbeat reached the server",
    )?;

    client.close().await;
    server.close().await;
    println!("\ndone");
    Ok(())
}
