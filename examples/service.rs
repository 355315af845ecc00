//! Typed services: one trait is the definition both sides share; the server
//! implements it, the client calls it through the generated typed client,
//! and the server pushes back through the client's own typed service.
//!
//! Over a real socket: a typed pull, a typed push from the server to the
//! client, an error raised with `?` in a handler, and a pull whose deadline
//! expires. The service's own code is the first section (26 lines) and the
//! three calls in `main`.
//!
//! ```text
//! cargo run --example service
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jaunt::prelude::*;

// ----- the service: definition and implementation -----------------------------

#[jaunt::service]
trait Kv {
    async fn put(&self, ctx: &PullCtx, entry: (String, String)) -> Result<(), Status>;
    async fn slow(&self, ctx: &PullCtx, millis: u64) -> Result<(), Status>;
}

#[jaunt::service]
trait Watcher {
    async fn changed(&self, ctx: &PushCtx, key: String);
}

struct Store(Mutex<HashMap<String, serde_json::Value>>);

impl Kv for Store {
    async fn put(&self, ctx: &PullCtx, (key, json): (String, String)) -> Result<(), Status> {
        let value = serde_json::from_str(&json)?; // not JSON: `?` makes it a 500
        self.0.lock().unwrap().insert(key.clone(), value);
        WatcherClient::new(ctx.session()).changed(key).await // a typed push back
    }
    async fn slow(&self, _: &PullCtx, millis: u64) -> Result<(), Status> {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(())
    }
}

/// The client's watcher (it keeps no state).
impl Watcher for () {
    async fn changed(&self, _: &PushCtx, key: String) {
        println!("client: the server pushed changed({key:?})");
    }
}

// ----- two peers on loopback, and the client's calls -----------------------

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut router = Router::new();
    router.service(KvServer::new(Store(Mutex::default())))?;
    let server = Peer::new(router);
    let addr = server.listen("127.0.0.1:0").await?;
    println!("server: {addr} serves {:?}", server.router().pull_uris());

    let mut client_router = Router::new();
    client_router.service(WatcherServer::new(()))?;
    let client = Peer::new(client_router);
    let kv = KvClient::new(client.dial(&addr).await?);

    kv.put(("colour".into(), r#""blue""#.into())).await?;
    let bad = kv.put(("size".into(), "big".into())).await;
    let late = kv.slow(2_000).timeout(Duration::from_millis(100)).await;

    println!("client: put(size, big) -> {bad:?}");
    println!("client: slow(2000) with a 100 ms deadline -> {late:?}");
    assert_eq!(bad.unwrap_err().code(), code::INTERNAL_SERVER_ERROR);
    assert_eq!(late.unwrap_err().code(), code::HANDLE_TIMEOUT);
    client.close().await;
    server.close().await;
    println!("done: typed pulls, a typed push back to the client, `?` in a handler, a deadline");
    Ok(())
}
