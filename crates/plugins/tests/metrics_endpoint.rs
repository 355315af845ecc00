//! The metrics plugin's Prometheus endpoint, scraped over loopback HTTP from
//! live peers, and its text checked by `promtool check metrics` (Debian's
//! `prometheus` package).

#![cfg(feature = "metrics")]

use std::sync::Arc;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt_plugins::metrics::{Metrics, MetricsEndpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;
use support::{promtool_check, sample, within};

/// `GET path` over HTTP/1.1; the status line and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP head");
    let status = head.lines().next().unwrap().to_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(body.len(), length, "the whole body");
    (status, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_counts_match_the_calls_and_promtool_accepts_them() {
    within(async {
        // A server with the plugin; the client has its own (its own recorder:
        // the two do not mix).
        let served = Arc::new(Metrics::new());
        let mut routes = Router::new();
        routes
            .pull("/math/half", |_: PullCtx, n: i64| async move {
                if n % 2 == 0 {
                    Ok(n / 2)
                } else {
                    Err(Status::new(1001, "odd"))
                }
            })
            .unwrap();
        routes
            .pull("/math/fail", |_: PullCtx| async move {
                Err::<(), _>(Status::new(1002, "always"))
            })
            .unwrap();
        let server = Peer::builder(routes)
            .plugin_arc(served.clone())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let server_endpoint = served
            .serve("127.0.0.1:0", Some(server.clone()))
            .await
            .unwrap();

        let sent = Arc::new(Metrics::new());
        let client = Peer::builder(Router::new())
            .plugin_arc(sent.clone())
            .build()
            .unwrap();
        let client_endpoint =
            MetricsEndpoint::bind("127.0.0.1:0", sent.clone(), Some(client.clone()))
                .await
                .unwrap();
        let session = client.dial(&addr).await.unwrap();

        const N: i64 = 11; // 6 even, 5 odd
        for n in 0..N {
            let _ = session.pull("/math/half", &n).await;
        }
        for _ in 0..3 {
            assert!(session.pull("/math/fail", &()).await.is_err());
        }
        // A served pull is counted just after its reply is queued: wait
        // for the last one.
        for _ in 0..1000 {
            if served
                .snapshot()
                .per_uri
                .values()
                .map(|s| s.pulls)
                .sum::<u64>()
                == N as u64 + 3
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let (status, text) = http_get(server_endpoint.local_addr(), "/metrics").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(
            sample(
                &text,
                r#"jaunt_requests_total{uri="/math/half",kind="pull"}"#
            ),
            N as f64
        );
        assert_eq!(
            sample(&text, r#"jaunt_errors_total{uri="/math/half",code="1001"}"#),
            5.0
        );
        assert_eq!(
            sample(
                &text,
                r#"jaunt_requests_total{uri="/math/fail",kind="pull"}"#
            ),
            3.0
        );
        assert_eq!(
            sample(&text, r#"jaunt_errors_total{uri="/math/fail",code="1002"}"#),
            3.0
        );
        assert_eq!(
            sample(
                &text,
                r#"jaunt_request_duration_seconds_count{uri="/math/half"}"#
            ),
            N as f64
        );
        assert_eq!(sample(&text, "jaunt_sessions"), 1.0);
        assert!(sample(&text, r#"jaunt_received_body_bytes_total{kind="pull"}"#) >= N as f64);
        promtool_check(&text);

        // The client's side: the pulls it sent, by the replies it read.
        let (status, text) = http_get(client_endpoint.local_addr(), "/metrics").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(
            sample(&text, r#"jaunt_client_requests_total{uri="/math/half"}"#),
            N as f64
        );
        assert_eq!(
            sample(
                &text,
                r#"jaunt_client_errors_total{uri="/math/half",code="1001"}"#
            ),
            5.0
        );
        assert_eq!(
            sample(
                &text,
                r#"jaunt_client_errors_total{uri="/math/fail",code="1002"}"#
            ),
            3.0
        );
        assert_eq!(
            sample(
                &text,
                r#"jaunt_client_request_duration_seconds_count{uri="/math/fail"}"#
            ),
            3.0
        );
        assert_eq!(
            sample(
                &text,
                r#"jaunt_requests_total{uri="/math/half",kind="pull"}"#
            ),
            0.0
        );
        assert_eq!(sample(&text, "jaunt_sessions"), 1.0);
        promtool_check(&text);
        let snap = sent.snapshot();
        assert_eq!(
            (
                snap.sent["/math/half"].pulls,
                snap.sent["/math/half"].errors
            ),
            (N as u64, 5)
        );

        // Anything but GET /metrics is a 404.
        let (status, _) = http_get(server_endpoint.local_addr(), "/other").await;
        assert_eq!(status, "HTTP/1.1 404 Not Found");

        // Stopped, the endpoint no longer accepts connections.
        let endpoint_addr = server_endpoint.local_addr();
        server_endpoint.stop().await;
        assert!(TcpStream::connect(endpoint_addr).await.is_err());

        client_endpoint.stop().await;
        client.close().await;
        server.close().await;
    })
    .await;
}

/// Whether a sample named `name` (no labels) is in `text`.
fn has_sample(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with(' '))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_wire_counters_match_the_peers_stats_and_the_maxima_are_exported() {
    within(async {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let served = Arc::new(Metrics::new());
        let mut routes = Router::new();
        routes
            .pull("/echo", |_: PullCtx, text: String| async move {
                Ok::<_, Status>(text)
            })
            .unwrap();
        let g = gate.clone();
        routes
            .pull("/slow", move |_: PullCtx| {
                let g = g.clone();
                async move {
                    g.acquire().await.unwrap().forget();
                    Ok::<_, Status>(())
                }
            })
            .unwrap();
        let server = Peer::builder(routes)
            .plugin_arc(served.clone())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let server_endpoint = served
            .serve("127.0.0.1:0", Some(server.clone()))
            .await
            .unwrap();
        let sent = Arc::new(Metrics::new());
        let client = Peer::new(Router::new());
        let client_endpoint =
            MetricsEndpoint::bind("127.0.0.1:0", sent.clone(), Some(client.clone()))
                .await
                .unwrap();
        let session = client.dial(&addr).await.unwrap();

        let wire = |text: &str| {
            [
                "jaunt_received_bytes_total",
                "jaunt_sent_bytes_total",
                "jaunt_received_frames_total",
                "jaunt_sent_frames_total",
            ]
            .map(|name| sample(text, name) as u64)
        };
        let stats_wire = |peer: &Peer| {
            let s = peer.stats();
            [
                s.received_bytes,
                s.sent_bytes,
                s.received_frames,
                s.sent_frames,
            ]
        };

        let mut last = [0u64; 4];
        for round in 1..=3u64 {
            for n in 0..5 {
                let text = "w".repeat(n * 1000 * round as usize);
                let _ = session.pull("/echo", &text).await.unwrap();
            }
            let (_, text) = http_get(server_endpoint.local_addr(), "/metrics").await;
            let scraped = wire(&text);
            assert_eq!(scraped, stats_wire(&server), "scraped vs Peer::stats");
            assert_eq!([scraped[2], scraped[3]], [5 * round, 5 * round]);
            for (now, before) in scraped.iter().zip(last) {
                assert!(*now > before, "a wire counter did not grow: {scraped:?}");
            }
            last = scraped;
            // The client's counters mirror the server's.
            let (_, client_text) = http_get(client_endpoint.local_addr(), "/metrics").await;
            let mirrored = wire(&client_text);
            assert_eq!(
                mirrored,
                [scraped[1], scraped[0], scraped[3], scraped[2]],
                "client vs server"
            );
            promtool_check(&text);
            promtool_check(&client_text);
        }

        // Two pulls wait on one session: the pending and per-session maxima
        // show them.
        let mut slow = Vec::new();
        for _ in 0..2 {
            let session = session.clone();
            slow.push(tokio::spawn(async move {
                session.pull("/slow", &()).await.map(|_| ())
            }));
        }
        let idle = client.dial(&addr).await.unwrap();
        let mut waited = false;
        for _ in 0..400 {
            if server.stats().handlers == 2 {
                waited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(waited, "the slow pulls did not reach their handlers");
        let (_, client_text) = http_get(client_endpoint.local_addr(), "/metrics").await;
        let (_, server_text) = http_get(server_endpoint.local_addr(), "/metrics").await;
        for text in [&client_text, &server_text] {
            for name in [
                "jaunt_pending_pulls",
                "jaunt_session_bytes_queued_max",
                "jaunt_session_pending_pulls_max",
                "jaunt_session_handlers_max",
            ] {
                assert!(has_sample(text, name), "{name} missing in\n{text}");
            }
            promtool_check(text);
        }
        assert_eq!(sample(&client_text, "jaunt_pending_pulls"), 2.0);
        assert_eq!(sample(&client_text, "jaunt_session_pending_pulls_max"), 2.0);
        assert_eq!(sample(&client_text, "jaunt_sessions"), 2.0);
        assert_eq!(sample(&server_text, "jaunt_session_handlers_max"), 2.0);
        assert_eq!(sample(&server_text, "jaunt_handlers"), 2.0);
        assert_eq!(sample(&server_text, "jaunt_session_bytes_queued_max"), 0.0);

        gate.add_permits(2);
        for call in slow {
            call.await.unwrap().unwrap();
        }
        let (_, client_text) = http_get(client_endpoint.local_addr(), "/metrics").await;
        assert_eq!(sample(&client_text, "jaunt_pending_pulls"), 0.0);
        assert_eq!(sample(&client_text, "jaunt_session_pending_pulls_max"), 0.0);

        drop(idle);
        server_endpoint.stop().await;
        client_endpoint.stop().await;
        client.close().await;
        server.close().await;
    })
    .await;
}

/// Writes `parts` one after another (a pause between them), then reads the
/// whole answer until the endpoint closes the connection.
async fn raw_exchange(addr: std::net::SocketAddr, parts: &[&[u8]]) -> String {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    for part in parts {
        conn.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut answer = Vec::new();
    // Bounded well below the endpoint's own 10 s per connection.
    tokio::time::timeout(Duration::from_secs(3), conn.read_to_end(&mut answer))
        .await
        .expect("the endpoint neither answered nor closed within 3 s")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_reads_whole_heads_up_to_8_kib_and_closes_when_dropped() {
    within(async {
        let metrics = Arc::new(Metrics::new());
        assert_eq!(jaunt::RoutePlugin::name(metrics.as_ref()), "metrics");
        let endpoint = metrics.serve("127.0.0.1:0", None).await.unwrap();
        let addr = endpoint.local_addr();

        // A head that arrives in pieces is read whole before it is answered.
        let answer = raw_exchange(addr, &[b"GET /metr", b"ics HTTP/1.1\r\n", b"\r\n"]).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");

        // A head of exactly 8 KiB is answered ...
        let start = "GET /metrics HTTP/1.1\r\nX-Pad: ";
        let pad = "a".repeat(8192 - start.len() - 4);
        let head = format!("{start}{pad}\r\n\r\n");
        assert_eq!(head.len(), 8192);
        let answer = raw_exchange(addr, &[head.as_bytes()]).await;
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "{}",
            &answer[..40.min(answer.len())]
        );
        // ... one byte more is not: the connection is closed unanswered, at
        // once (not after the 10 s a connection may take).
        let head = format!("{start}{pad}a\r\n\r\n");
        assert_eq!(raw_exchange(addr, &[head.as_bytes()]).await, "");

        // Dropped without `stop`, it stops listening too.
        drop(endpoint);
        let mut refused = false;
        for _ in 0..200 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            refused,
            "still listening 2 s after the endpoint was dropped"
        );
    })
    .await;
}
