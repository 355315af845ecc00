//! The overloader plugin through real sessions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt_plugins::overloader::Overloader;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

/// A server with pull routes `/x` and `/y` and push route `/p`, each
/// counting its runs.
async fn server(overloader: Arc<Overloader>) -> (Peer, jaunt::Addr, Arc<[AtomicUsize; 3]>) {
    let runs: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let mut routes = Router::new();
    for (i, uri) in ["/x", "/y"].into_iter().enumerate() {
        let runs = runs.clone();
        routes
            .pull(uri, move |_: PullCtx| {
                runs[i].fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, Status>(true) }
            })
            .unwrap();
    }
    let counted = runs.clone();
    routes
        .push("/p", move |_: PushCtx| {
            counted[2].fetch_add(1, Ordering::SeqCst);
            async {}
        })
        .unwrap();
    let server = Peer::builder(routes)
        .plugin_arc(overloader)
        .build()
        .unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    (server, addr, runs)
}

/// Fires `n` pulls to `uri` at once; returns (ok, rejected with 500 overloaded).
async fn burst(session: &Session, uri: &str, n: usize) -> (usize, usize) {
    let handles: Vec<_> = (0..n)
        .map(|_| session.async_pull(uri, &(), PullOptions::new()))
        .collect();
    let (mut ok, mut rejected) = (0, 0);
    for handle in handles {
        match handle.await {
            Ok(_) => ok += 1,
            Err(status) => {
                assert_eq!(status.code(), code::INTERNAL_SERVER_ERROR, "{status}");
                assert_eq!(status.msg(), "Internal Server Error");
                assert!(
                    status.cause().unwrap().starts_with("overloaded: "),
                    "{status}"
                );
                rejected += 1;
            }
        }
    }
    (ok, rejected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sessions_closes_the_extra_ones() {
    timeout(LIMIT, async {
        let overloader = Arc::new(Overloader::new().max_sessions(2));
        let (server, addr, _) = server(overloader.clone()).await;
        let client = Peer::new(Router::new());
        let first = client.dial(&addr).await.unwrap();
        first.pull("/x", &()).await.unwrap();
        let second = client.dial(&addr).await.unwrap();
        second.pull("/x", &()).await.unwrap();
        assert_eq!(overloader.live_sessions(), 2);

        let third = client.dial(&addr).await.unwrap();
        let err = third.pull("/x", &()).await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        assert_eq!(server.session_count(), 2);
        assert_eq!(overloader.live_sessions(), 2);

        // One leaves: a new dial gets in.
        first.close();
        first.closed().await;
        timeout(Duration::from_secs(3), async {
            while overloader.live_sessions() != 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the closed session was not released");
        let fourth = client.dial(&addr).await.unwrap();
        fourth.pull("/x", &()).await.unwrap();
        second.pull("/x", &()).await.unwrap();
        assert_eq!(server.session_count(), 2);
        assert_eq!(overloader.live_sessions(), 2);

        client.close().await;
        server.close().await;
        assert_eq!(overloader.live_sessions(), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uri_rate_limits_only_its_uri() {
    timeout(LIMIT, async {
        let overloader = Arc::new(Overloader::new().uri_rate("/x", 5.0, 5));
        let (server, addr, runs) = server(overloader).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        assert_eq!(burst(&session, "/x", 20).await, (5, 15));
        assert_eq!(runs[0].load(Ordering::SeqCst), 5);
        // The query string does not escape the limit.
        assert_eq!(burst(&session, "/x?page=2", 3).await.0, 0);
        // Other uris are not limited.
        assert_eq!(burst(&session, "/y", 20).await, (20, 0));
        assert_eq!(runs[1].load(Ordering::SeqCst), 20);
        // The bucket refills at 5 a second.
        tokio::time::sleep(Duration::from_millis(450)).await;
        let (ok, _) = burst(&session, "/x", 10).await;
        assert!((1..=3).contains(&ok), "{ok} pulls after 450 ms");

        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_rate_limits_every_uri_together() {
    timeout(LIMIT, async {
        let overloader = Arc::new(
            Overloader::new()
                .total_rate(5.0, 5)
                .uri_rate("/y", 100.0, 100),
        );
        let (server, addr, runs) = server(overloader).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        let (x, y) = tokio::join!(burst(&session, "/x", 10), burst(&session, "/y", 10));
        assert_eq!(x.0 + y.0, 5, "x {x:?}, y {y:?}");
        assert_eq!(x.1 + y.1, 15);
        let ran = runs[0].load(Ordering::SeqCst) + runs[1].load(Ordering::SeqCst);
        assert_eq!(ran, 5);

        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limit_pushes_are_dropped() {
    timeout(LIMIT, async {
        let overloader = Arc::new(Overloader::new().uri_rate("/p", 1.0, 3));
        let (server, addr, runs) = server(overloader).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        for _ in 0..10 {
            session.push("/p", &()).await.unwrap();
        }
        // A pull after the pushes: once answered, every push was handled
        // or dropped.
        session.pull("/y", &()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(runs[2].load(Ordering::SeqCst), 3);
        assert!(!session.is_closed());

        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}
