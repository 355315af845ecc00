//! The metrics plugin's client side through real sessions on loopback:
//! pulls that get no reply (their deadline passed, their session closed or
//! their connection was lost) and pulls the caller abandoned are counted,
//! as exactly as the replied ones; the served side of the same traffic is
//! unchanged; the text passes `promtool check metrics`.

#![cfg(feature = "metrics")]

use std::sync::Arc;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt_plugins::metrics::Metrics;

mod support;
use support::{eventually, promtool_check, sample, within};

/// A server with its own metrics: `/echo` returns its string, `/slow`
/// sleeps its argument in ms.
async fn server() -> (Peer, jaunt::Addr, Arc<Metrics>) {
    let mut routes = Router::new();
    routes
        .pull("/echo", |_: PullCtx, s: String| async move {
            Ok::<_, Status>(s)
        })
        .unwrap();
    routes
        .pull("/slow", |_: PullCtx, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, Status>(ms)
        })
        .unwrap();
    let metrics = Arc::new(Metrics::new());
    let server = Peer::builder(routes)
        .plugin_arc(metrics.clone())
        .build()
        .unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    (server, addr, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_without_a_reply_and_abandoned_pulls_are_counted() {
    within(async {
        let (server, addr, served) = server().await;
        let sent = Arc::new(Metrics::new());
        let client = Peer::builder(Router::new())
            .plugin_arc(sent.clone())
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();

        // Replied.
        const REPLIED: u64 = 4;
        for n in 0..REPLIED {
            session.pull("/echo", &n.to_string()).await.unwrap();
        }

        // Their own deadline passed: 408.
        const TIMED_OUT: u64 = 3;
        for _ in 0..TIMED_OUT {
            let opts = PullOptions::new().timeout(Duration::from_millis(30));
            let err = session
                .pull_with("/slow", &3_000u64, opts)
                .await
                .unwrap_err();
            assert_eq!(err.code(), code::HANDLE_TIMEOUT);
        }

        // Abandoned: two dropped futures, one aborted async_pull.
        for _ in 0..2 {
            let dropped =
                tokio::time::timeout(Duration::from_millis(30), session.pull("/slow", &3_000u64))
                    .await;
            assert!(dropped.is_err());
        }
        let handle = session.async_pull("/slow", &3_000u64, PullOptions::new());
        tokio::time::sleep(Duration::from_millis(30)).await;
        handle.abort();
        const ABANDONED: u64 = 3;

        // Waiting when the session closed: 102.
        const CLOSED: u64 = 2;
        let waiting: Vec<_> = (0..CLOSED)
            .map(|_| {
                let session = session.clone();
                tokio::spawn(async move { session.pull("/slow", &5_000u64).await })
            })
            .collect();
        assert!(eventually(|| session.pending_pulls() == CLOSED as usize).await);
        session.close();
        for pull in waiting {
            assert_eq!(pull.await.unwrap().unwrap_err().code(), code::CONN_CLOSED);
        }
        // A pull on the closed session: 102 too.
        let err = session.pull("/echo", &"late").await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED);

        // The served side of the same traffic, before the server goes: the
        // replied pulls; of `/slow`, at most the timed-out ones, answered
        // 408 by the server's own deadline (their timeout travels in the
        // meta) unless the caller's cancel stopped them first. The others'
        // handlers were stopped: not counted.
        // (A served pull is counted just after its reply is queued.)
        assert!(
            eventually(|| served
                .snapshot()
                .per_uri
                .get("/echo")
                .is_some_and(|s| s.pulls == REPLIED))
            .await
        );
        let served_snap = served.snapshot();
        assert_eq!(served_snap.per_uri["/echo"].pulls, REPLIED);
        assert_eq!(served_snap.per_uri["/echo"].errors, 0);
        if let Some(slow) = served_snap.per_uri.get("/slow") {
            assert!(slow.pulls <= TIMED_OUT, "{served_snap:#?}");
            assert_eq!(slow.errors_by_code.get(&408), Some(&slow.pulls));
            assert_eq!(slow.errors, slow.pulls);
        }

        // Waiting when the connection was lost (the server closed): 102.
        let session = client.dial(&addr).await.unwrap();
        let waiting = {
            let session = session.clone();
            tokio::spawn(async move { session.pull("/slow", &5_000u64).await })
        };
        assert!(eventually(|| session.pending_pulls() == 1).await);
        server.close().await;
        assert_eq!(
            waiting.await.unwrap().unwrap_err().code(),
            code::CONN_CLOSED
        );
        let lost_102 = CLOSED + 1 + 1; // the closed session's, the late one, the lost one

        let snap = sent.snapshot();
        let slow = &snap.sent["/slow"];
        assert_eq!(slow.pulls, TIMED_OUT + ABANDONED + CLOSED + 1);
        assert_eq!(slow.abandoned, ABANDONED);
        assert_eq!(slow.errors, TIMED_OUT + CLOSED + 1);
        assert_eq!(
            slow.errors_by_code.clone().into_iter().collect::<Vec<_>>(),
            [(102, CLOSED + 1), (408, TIMED_OUT)]
        );
        // Durations: every pull but the abandoned ones; each timed-out one
        // took at least its 30 ms.
        assert_eq!(slow.latency.count(), TIMED_OUT + CLOSED + 1);
        assert!(slow.latency.sum >= Duration::from_millis(30) * TIMED_OUT as u32);
        let echo = &snap.sent["/echo"];
        assert_eq!(
            (echo.pulls, echo.errors, echo.abandoned),
            (REPLIED + 1, 1, 0)
        );
        assert_eq!(echo.errors_by_code.get(&102), Some(&1));
        assert_eq!(
            snap.sent
                .values()
                .map(|s| s.errors_by_code.get(&102).copied().unwrap_or(0))
                .sum::<u64>(),
            lost_102
        );

        // The same in the Prometheus text, which promtool accepts.
        let text = sent.prometheus();
        assert_eq!(
            sample(&text, r#"jaunt_client_requests_total{uri="/slow"}"#),
            (TIMED_OUT + ABANDONED + CLOSED + 1) as f64
        );
        assert_eq!(
            sample(
                &text,
                r#"jaunt_client_errors_total{uri="/slow",code="408"}"#
            ),
            TIMED_OUT as f64
        );
        assert_eq!(
            sample(
                &text,
                r#"jaunt_client_errors_total{uri="/slow",code="102"}"#
            ),
            (CLOSED + 1) as f64
        );
        assert_eq!(
            sample(&text, r#"jaunt_client_abandoned_total{uri="/slow"}"#),
            ABANDONED as f64
        );
        // Bodies: every written pull's, every reply's (JSON strings).
        assert!(
            sample(&text, r#"jaunt_received_body_bytes_total{kind="reply"}"#)
                >= REPLIED as f64 * 3.0
        );
        promtool_check(&text);

        client.close().await;
    })
    .await;
}
