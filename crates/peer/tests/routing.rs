//! Routing over real connections: nested groups, query strings, the
//! unknown-pull and unknown-push fallbacks, and 404 without a fallback.

mod common;

use std::time::Duration;

use common::{tcp_server, within};
use jaunt_codec::{ids, RawBody, Registry};
use jaunt_peer::{Peer, PullCtx, PullOptions, PushCtx, Router};
use jaunt_socket::Status;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u32,
    label: String,
}

fn grouped_routes(pushes: mpsc::Sender<(String, Item)>) -> Router {
    let mut routes = Router::new();
    {
        let mut g = routes.group("/g");
        let mut v1 = g.group("/v1");
        v1.pull("/x", |ctx: PullCtx, n: i64| async move {
            Ok::<_, Status>(json!({
                "uri": ctx.uri(),
                "path": ctx.path(),
                "route": ctx.route().map(|r| r.uri().to_owned()),
                "group": ctx.route().and_then(|r| r.group()).map(|g| g.prefix().to_owned()),
                "n": ctx.query().get("n"),
                "m": ctx.query().get("m"),
                "arg": n,
            }))
        })
        .unwrap();
        v1.push("/p", move |ctx: PushCtx, item: Item| {
            let tx = pushes.clone();
            async move {
                tx.send((ctx.uri().to_owned(), item)).await.unwrap();
            }
        })
        .unwrap();
    }
    routes
}

/// `router.group("/g").group("/v1").pull("/x")` answers at `/g/v1/x`, with
/// the query string handed to the handler and not part of the route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_groups_and_query_strings() {
    within(async {
        let (push_tx, mut push_rx) = mpsc::channel(4);
        let routes = grouped_routes(push_tx);
        assert_eq!(routes.pull_uris(), ["/g/v1/x"]);
        assert_eq!(routes.push_uris(), ["/g/v1/p"]);
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());
        let s = client.dial(&addr).await.unwrap();

        let v: Value = s.pull("/g/v1/x", &5).await.unwrap().decode().unwrap();
        assert_eq!(
            v,
            json!({"uri": "/g/v1/x", "path": "/g/v1/x", "route": "/g/v1/x", "group": "/g/v1", "n": null, "m": null, "arg": 5})
        );

        let v: Value = s.pull("/g/v1/x?n=1&m=e", &-3).await.unwrap().decode().unwrap();
        assert_eq!(
            v,
            json!({"uri": "/g/v1/x?n=1&m=e", "path": "/g/v1/x", "route": "/g/v1/x", "group": "/g/v1", "n": "1", "m": "e", "arg": -3})
        );

        // Escapes in the query are decoded.
        let v: Value = s.pull("/g/v1/x?m=a%20b&n=%2F", &0).await.unwrap().decode().unwrap();
        assert_eq!((v["m"].as_str(), v["n"].as_str()), (Some("a b"), Some("/")));

        // The group push, with a query string.
        let item = Item {
            id: 1,
            label: "one".into(),
        };
        s.push("/g/v1/p?k=v", &item).await.unwrap();
        assert_eq!(push_rx.recv().await.unwrap(), ("/g/v1/p?k=v".to_owned(), item));

        // Neither the group prefix nor a sibling are routes: 404.
        for uri in ["/g/v1", "/g/x", "/g/v1/x/more", "/v1/x"] {
            let err = s.pull(uri, &1).await.unwrap_err();
            assert_eq!(err.code(), 404, "{uri}");
            assert!(err.cause().unwrap_or_default().contains(uri), "{err}");
        }

        client.close().await;
        server.close().await;
    })
    .await;
}

/// The unknown-pull fallback gets every unrouted uri and decodes the raw body
/// on demand; the unknown-push fallback gets unrouted pushes; routed uris
/// still go to their handlers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_pull_and_push_fallbacks() {
    within(async {
        let (push_tx, mut push_rx) = mpsc::channel(4);
        let mut routes = grouped_routes(push_tx);
        routes
            .unknown_pull(|ctx: PullCtx| async move {
                let raw = ctx.raw_body();
                let text = String::from_utf8_lossy(&raw.bytes).into_owned();
                let result = match ctx.query().get("as") {
                    Some("items") => {
                        let items: Vec<Item> = ctx.decode()?;
                        json!(items.iter().map(|i| i.id).sum::<u32>())
                    }
                    _ => {
                        let nums: Vec<i64> = ctx.decode()?;
                        json!(nums.iter().sum::<i64>())
                    }
                };
                Ok::<_, Status>(json!({
                    "uri": ctx.uri(),
                    "codec": raw.codec,
                    "raw": text,
                    "result": result,
                    "routed": ctx.route().is_some(),
                }))
            })
            .unwrap();
        let (unknown_tx, mut unknown_rx) = mpsc::channel::<(String, RawBody)>(4);
        routes
            .unknown_push(move |ctx: PushCtx| {
                let tx = unknown_tx.clone();
                async move {
                    tx.send((ctx.uri().to_owned(), ctx.raw_body())).await.unwrap();
                }
            })
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());
        let s = client.dial(&addr).await.unwrap();

        let v: Value = s.pull("/nowhere/sum", &vec![1, 2, 3]).await.unwrap().decode().unwrap();
        assert_eq!(
            v,
            json!({"uri": "/nowhere/sum", "codec": ids::JSON, "raw": "[1,2,3]", "result": 6, "routed": false})
        );

        let items = vec![
            Item {
                id: 4,
                label: "a".into(),
            },
            Item {
                id: 5,
                label: "b".into(),
            },
        ];
        let v: Value = s.pull("/other?as=items", &items).await.unwrap().decode().unwrap();
        assert_eq!(v["result"], 9);
        assert_eq!(v["uri"], "/other?as=items");

        // A body the fallback cannot decode as it asks: its `?` gives 400.
        let err = s.pull("/nowhere/sum", &"not numbers").await.unwrap_err();
        assert_eq!(err.code(), 400);

        // Routed uris still reach their handler.
        let v: Value = s.pull("/g/v1/x?n=2", &1).await.unwrap().decode().unwrap();
        assert_eq!(v["route"], "/g/v1/x");

        // Unrouted pushes reach the push fallback, with the raw body.
        s.push_with("/loose/end?x=1", &"hey", PullOptions::new().codec(ids::PLAIN))
            .await
            .unwrap();
        let (uri, raw) = unknown_rx.recv().await.unwrap();
        assert_eq!(uri, "/loose/end?x=1");
        assert_eq!(raw.codec, ids::PLAIN);
        assert_eq!(&raw.bytes[..], b"hey");
        s.push("/loose/item", &items[0]).await.unwrap();
        let (uri, raw) = unknown_rx.recv().await.unwrap();
        assert_eq!(uri, "/loose/item");
        assert_eq!(raw.decode::<Item>(&Registry::with_defaults()).unwrap(), items[0]);
        // The routed push still goes to its handler, not the fallback.
        s.push("/g/v1/p", &items[1]).await.unwrap();
        assert_eq!(push_rx.recv().await.unwrap(), ("/g/v1/p".to_owned(), items[1].clone()));
        assert!(unknown_rx.try_recv().is_err());

        client.close().await;
        server.close().await;
    })
    .await;
}

/// Without fallbacks an unknown pull is answered 404 and an unknown push is
/// dropped; the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fallback_means_404() {
    within(async {
        let (push_tx, mut push_rx) = mpsc::channel(4);
        let (server, addr) = tcp_server(grouped_routes(push_tx)).await;
        let client = Peer::new(Router::new());
        let s = client.dial(&addr).await.unwrap();

        let err = s.pull("/g/v1/y?n=1", &1).await.unwrap_err();
        assert_eq!(err.code(), 404);
        assert_eq!(err.msg(), "Not Found");
        assert!(err.cause().unwrap().contains("/g/v1/y"), "{err}");

        s.push("/g/v1/unknown", &1).await.unwrap();
        let v: Value = s.pull("/g/v1/x", &1).await.unwrap().decode().unwrap();
        assert_eq!(v["arg"], 1);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), push_rx.recv())
                .await
                .is_err()
        );
        assert!(!s.is_closed());

        client.close().await;
        server.close().await;
    })
    .await;
}
