//! Routing: nested route groups, query parameters, fallbacks for unknown
//! uris, and the RPC naming style.
//!
//! - Groups put a prefix in front of their routes and nest:
//!   `/api` + `/v1` + `/users` + `/get` is `/api/v1/users/get`. A handler
//!   can see which route and groups it was reached through (`ctx.route()`).
//! - The query string of a uri (`/api/v1/search?q=..&tag=..`) is not part of
//!   the route: the handler reads it with `ctx.query()`.
//! - A fallback serves the pulls (or pushes) whose uri has no route. It takes
//!   no typed argument: it looks at the uri and codec and decodes the raw
//!   body on demand, as whatever type suits.
//! - `Router::with_mapper(UriMapper::Rpc)` names routes the RPC way,
//!   `Group.Method` (`Math.Add`), instead of `/group/method`.
//!
//! Everything runs in one process and the program exits when done:
//!
//! ```text
//! cargo run --example groups
//! ```

use std::error::Error;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt::router::UriMapper;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Where a handler was reached from: the route's uri and its groups,
/// outermost first.
fn route_of(ctx_route: Option<&std::sync::Arc<jaunt::router::RouteInfo>>) -> String {
    let Some(route) = ctx_route else {
        return "the fallback".into();
    };
    let mut groups = Vec::new();
    let mut group = route.group();
    while let Some(g) = group {
        groups.push(g.prefix().to_owned());
        group = g.parent();
    }
    groups.reverse();
    format!("route {} (groups {groups:?})", route.uri())
}

// ----- the HTTP-style server --------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
struct User {
    id: u32,
    name: String,
}

/// Pull `/api/ping`.
async fn ping(ctx: PullCtx) -> Result<String, Status> {
    Ok(format!("pong from {}", route_of(ctx.route())))
}

/// Pull `/api/v1/users/get`: a user by id.
async fn get_user(ctx: PullCtx, id: u32) -> Result<User, Status> {
    println!("server: {}", route_of(ctx.route()));
    match id {
        1 => Ok(User {
            id,
            name: "ann".into(),
        }),
        _ => Err(Status::new(1004, "no such user").with_cause(format!("id {id}"))),
    }
}

/// Pull `/api/v1/search?q=..&limit=..&tag=..`: the words containing `q`,
/// at most `limit` of them, with the tags echoed. The body is unused.
async fn search(ctx: PullCtx) -> Result<Value, Status> {
    const WORDS: [&str; 5] = ["jaunt", "java", "javascript", "jam", "rust"];
    let query = ctx.query();
    let q = query.get("q").unwrap_or_default();
    let limit = match query.get("limit").map(str::parse::<usize>) {
        None => usize::MAX,
        Some(Ok(limit)) => limit,
        Some(Err(e)) => return Err(Status::bad_message(format!("limit: {e}"))),
    };
    let tags: Vec<&str> = query.get_all("tag").collect();
    let found: Vec<&str> = WORDS
        .iter()
        .copied()
        .filter(|w| w.contains(q))
        .take(limit)
        .collect();
    Ok(json!({ "q": q, "tags": tags, "found": found }))
}

/// The fallback for pulls without a route: it answers anything under
/// `/legacy/`, decoding the body according to its codec, and refuses the
/// rest with 404.
async fn unknown_pull(ctx: PullCtx) -> Result<Value, Status> {
    if !ctx.path().starts_with("/legacy/") {
        return Err(Status::not_found(format!("nothing at {}", ctx.path())));
    }
    let body = match ctx.body_codec() {
        jaunt::codec_ids::PLAIN => Value::String(ctx.decode::<String>()?),
        _ => ctx.decode::<Value>()?,
    };
    // A reply is encoded with its pull's codec unless told otherwise, and
    // the plain codec cannot carry a JSON object.
    ctx.set_reply_codec(jaunt::codec_ids::JSON);
    Ok(json!({
        "served_by": route_of(ctx.route()),
        "path": ctx.path(),
        "query": ctx.query().iter().collect::<Vec<_>>(),
        "codec": char::from(ctx.body_codec()).to_string(),
        "body": body,
    }))
}

fn http_server(events: mpsc::Sender<String>) -> Result<Peer, Box<dyn Error>> {
    let mut routes = Router::new();
    {
        let mut api = routes.group("/api");
        api.pull("/ping", ping)?;
        let mut v1 = api.group("/v1");
        v1.pull("/search", search)?;
        let mut users = v1.group("/users");
        users.pull("/get", get_user)?;
        let touched = events.clone();
        users.push("/touch", move |ctx: PushCtx, id: u32| {
            let touched = touched.clone();
            async move {
                let _ = touched
                    .send(format!("user {id} touched, via {}", route_of(ctx.route())))
                    .await;
            }
        })?;
    }
    routes.unknown_pull(unknown_pull)?;
    // The fallback for pushes without a route decodes the raw body itself.
    routes.unknown_push(move |ctx: PushCtx| {
        let events = events.clone();
        async move {
            let raw = ctx.raw_body();
            let body = raw
                .decode::<Value>(ctx.peer().codecs())
                .map_err(|e| Status::bad_message(e.to_string()))?;
            let _ = events
                .send(format!("unknown push {} with body {body}", ctx.uri()))
                .await;
            Ok::<_, Status>(())
        }
    })?;
    println!("HTTP-style pulls: {:?}", routes.pull_uris());
    println!("HTTP-style pushes: {:?}", routes.push_uris());
    Ok(Peer::new(routes))
}

// ----- the RPC-style server ---------------------------------------------------

async fn add(_: PullCtx, numbers: Vec<i64>) -> Result<i64, Status> {
    Ok(numbers.iter().sum())
}

async fn mul(ctx: PullCtx, numbers: Vec<i64>) -> Result<i64, Status> {
    println!("server: {}", route_of(ctx.route()));
    Ok(numbers.iter().product())
}

fn rpc_server() -> Result<Peer, Box<dyn Error>> {
    let mut routes = Router::with_mapper(UriMapper::Rpc);
    {
        let mut math = routes.group("Math");
        math.pull("Add", add)?;
        // Names can be built from snake_case ones: `Arith.MulAll`.
        let mut arith = math.group("Arith");
        arith.pull("MulAll", mul)?;
    }
    routes.pull(&UriMapper::Rpc.route("stats", "sum_all"), add)?;
    println!("RPC-style pulls: {:?}", routes.pull_uris());
    Ok(Peer::new(routes))
}

// ----- the client -------------------------------------------------------------

/// The next thing a push handler of the server reported.
async fn next_event(events: &mut mpsc::Receiver<String>) -> Result<String, &'static str> {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .ok()
        .flatten()
        .ok_or("no event from the server")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    // The server's push handlers report what they got through this channel.
    let (events_tx, mut events) = mpsc::channel(8);

    let http = http_server(events_tx)?;
    let rpc = rpc_server()?;
    let http_addr = http.listen("127.0.0.1:0").await?;
    let rpc_addr = rpc.listen("127.0.0.1:0").await?;

    let client = Peer::new(Router::new());
    let session = client.dial(&http_addr).await?;

    println!("\n1. nested groups");
    let pong: String = session.pull("/api/ping", &()).await?.decode()?;
    println!("client: /api/ping -> {pong}");
    let user: User = session.pull("/api/v1/users/get", &1).await?.decode()?;
    println!("client: /api/v1/users/get 1 -> {user:?}");
    let missing = session
        .pull("/api/v1/users/get", &7)
        .await
        .err()
        .ok_or("user 7 exists?")?;
    println!("client: /api/v1/users/get 7 -> {missing}");
    session.push("/api/v1/users/touch", &1).await?;
    println!("server: {}", next_event(&mut events).await?);

    println!("\n2. query parameters");
    for uri in [
        "/api/v1/search?q=ja&limit=2&tag=rust&tag=rpc",
        "/api/v1/search?q=r%75st&tag=a+b",
        "/api/v1/search?limit=lots",
    ] {
        match session.pull(uri, &()).await {
            Ok(reply) => println!("client: {uri}\n     -> {}", reply.decode::<Value>()?),
            Err(status) => println!("client: {uri}\n     -> {status}"),
        }
    }

    println!("\n3. fallbacks for unknown uris");
    let reply = session
        .pull(
            "/legacy/orders?page=2",
            &json!({ "customer": 42, "open": true }),
        )
        .await?;
    println!(
        "client: /legacy/orders (JSON) -> {}",
        reply.decode::<Value>()?
    );
    let reply = session
        .pull_with(
            "/legacy/notes",
            &"plain text",
            PullOptions::new().codec(b's'),
        )
        .await?;
    println!(
        "client: /legacy/notes (plain) -> {}",
        reply.decode::<Value>()?
    );
    let refused = session
        .pull("/nowhere", &())
        .await
        .err()
        .ok_or("/nowhere answered?")?;
    println!("client: /nowhere -> {refused}");
    session
        .push("/metrics/cpu", &json!({ "load": 0.25 }))
        .await?;
    println!("server: {}", next_event(&mut events).await?);

    println!("\n4. RPC-style uris");
    let rpc_session = client.dial(&rpc_addr).await?;
    for uri in ["Math.Add", "Math.Arith.MulAll", "Stats.SumAll"] {
        let result: i64 = rpc_session.pull(uri, &vec![2, 3, 4]).await?.decode()?;
        println!("client: {uri} [2, 3, 4] -> {result}");
    }
    println!(
        "(UriMapper::Http.route(\"MathV2\", \"AddAll\") = {:?}, UriMapper::Rpc.route(\"math_v2\", \"add_all\") = {:?})",
        UriMapper::Http.route("MathV2", "AddAll"),
        UriMapper::Rpc.route("math_v2", "add_all"),
    );

    client.close().await;
    http.close().await;
    rpc.close().await;
    println!("\ndone");
    Ok(())
}
