//! The metrics plugin's Prometheus endpoint, scraped over loopback HTTP from
//! live peers, and its text checked by `promtool check metrics` (Debian's
//! `prometheus` package).

#![cfg(feature = "metrics")]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt_plugins::metrics::{Metrics, MetricsEndpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test took over 20 s")
}

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

/// The value of the one sample whose line starts with `series` (name and
/// labels as rendered), 0 if there is none.
fn sample(text: &str, series: &str) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert!(found.len() <= 1, "{series} twice in\n{text}");
    found.first().copied().unwrap_or(0.0)
}

/// Runs `promtool check metrics` on `text`; panics with its output if it
/// complains, and names the package if promtool is missing.
fn promtool_check(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "promtool is needed to check the scraped text ({e}): \
             install Debian's `prometheus` package (apt-get install -y prometheus)"
        ),
    };
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}\n{}{}\n--- text:\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
