//! The ignorecase plugin through real sessions.

use std::time::Duration;

use jaunt::prelude::*;
use jaunt::PeerError;
use jaunt_plugins::ignorecase::{lower_path, IgnoreCase};
use tokio::sync::mpsc;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_case_uris_reach_lower_case_routes() {
    timeout(LIMIT, async {
        let (tx, mut rx) = mpsc::channel::<(String, Option<String>)>(4);
        let mut routes = Router::new();
        routes
            .pull("/math/add", |ctx: PullCtx, args: Vec<i64>| async move {
                let x: i64 = ctx.query().get("X").map_or(0, |x| x.parse().unwrap());
                Ok::<_, Status>((ctx.uri().to_owned(), args.iter().sum::<i64>() + x))
            })
            .unwrap();
        routes
            .push("/chat/say", move |ctx: PushCtx, text: String| {
                let tx = tx.clone();
                async move {
                    let q = ctx.query().get("Room").map(str::to_owned);
                    tx.send((format!("{}: {text}", ctx.path()), q)).await.ok();
                }
            })
            .unwrap();
        let server = Peer::builder(routes).plugin(IgnoreCase).build().unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        let (uri, sum): (String, i64) = session
            .pull("/Math/ADD?X=1", &vec![2, 3])
            .await
            .unwrap()
            .decode()
            .unwrap();
        // The path is lower-cased, the query string kept as it was.
        assert_eq!(uri, "/math/add?X=1");
        assert_eq!(sum, 6);
        let (_, sum): (String, i64) = session
            .pull("/math/add", &vec![1])
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(sum, 1);

        session.push("/CHAT/Say?Room=Lobby", &"hi").await.unwrap();
        let (said, room) = rx.recv().await.unwrap();
        assert_eq!(said, "/chat/say: hi");
        assert_eq!(room.as_deref(), Some("Lobby"));

        // Unknown in any case is still 404.
        let err = session.pull("/Math/Sub", &vec![1]).await.unwrap_err();
        assert_eq!(err.code(), code::NOT_FOUND);
        assert!(err.cause().unwrap().contains("/math/sub"), "{err}");

        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_plugin_case_matters() {
    timeout(LIMIT, async {
        let mut routes = Router::new();
        routes
            .pull("/math/add", |_: PullCtx, args: Vec<i64>| async move {
                Ok::<_, Status>(args.iter().sum::<i64>())
            })
            .unwrap();
        let server = Peer::new(routes);
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::builder(Router::new())
            .plugin(IgnoreCase)
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();
        // The plugin on the calling side does not change outgoing uris.
        let err = session.pull("/Math/Add", &vec![1]).await.unwrap_err();
        assert_eq!(err.code(), code::NOT_FOUND);
        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[test]
fn upper_case_routes_are_refused_at_build() {
    let mut routes = Router::new();
    routes
        .pull("/Math/Add", |_: PullCtx| async { Ok::<_, Status>(()) })
        .unwrap();
    match Peer::builder(routes).plugin(IgnoreCase).build() {
        Err(PeerError::Plugin {
            plugin,
            what,
            status,
        }) => {
            assert_eq!(plugin, "ignorecase");
            assert!(what.contains("/Math/Add"), "{what}");
            assert!(status.cause().unwrap().contains("/math/add"), "{status}");
        }
        other => panic!("built: {:?}", other.map(|_| ())),
    }
}

#[test]
fn lower_path_keeps_the_query() {
    for (uri, want) in [
        ("/Math/ADD?X=1", "/math/add?X=1"),
        ("/a/b", "/a/b"),
        ("/A/B?", "/a/b?"),
        ("?Q=A", "?Q=A"),
        ("/ÄRGER/Ünd?Ö=Ü", "/ärger/ünd?Ö=Ü"),
        ("", ""),
    ] {
        let mut s = uri.to_owned();
        lower_path(&mut s);
        assert_eq!(s, want);
    }
}
