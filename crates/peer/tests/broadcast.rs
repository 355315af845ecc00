//! `Peer::broadcast_push` with a slow consumer: one client that never
//! reads, one that does. The broadcast returns at once under every
//! slow-consumer policy, the normal client gets every push, and the report
//! tells what became of the slow one's copy.

mod common;

use std::time::Duration;

use common::{eventually, wait_sessions, within};
use jaunt_peer::{Addr, BroadcastReport, Peer, PeerConfig, PushCtx, Router, SlowConsumer};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Far longer than any broadcast may take.
const SLOW_CONSUMER_WAIT: Duration = Duration::from_secs(10);
/// How long a broadcast may take.
const PROMPT: Duration = Duration::from_millis(500);

async fn broadcast_with_a_slow_consumer(policy: SlowConsumer) {
    let config = PeerConfig::builder()
        .write_queue_len(2)
        .slow_consumer(policy)
        .slow_consumer_wait(SLOW_CONSUMER_WAIT)
        // The stuck client never sends a frame either.
        .first_frame_timeout(None)
        .build();
    let server = Peer::builder(Router::new()).config(config).build().unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    let Addr::Tcp(sa) = addr else {
        unreachable!("listening on TCP")
    };
    // A "client" that never reads.
    let stuck = TcpStream::connect(sa).await.unwrap();
    wait_sessions(&server, 1).await;
    let slow = server.sessions().pop().unwrap();
    // A normal client, which reports every push it gets.
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let mut routes = Router::new();
    routes
        .push("/news", move |_: PushCtx, (n, _body): (u64, String)| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(n);
            }
        })
        .unwrap();
    let client = Peer::new(routes);
    let _normal = client.dial(&addr).await.unwrap();
    wait_sessions(&server, 2).await;

    let big = "x".repeat(256 * 1024);
    let mut slow_one = None;
    for n in 0..400_u64 {
        let report = tokio::time::timeout(PROMPT, server.broadcast_push("/news", &(n, &big)))
            .await
            .unwrap_or_else(|_| panic!("broadcast {n} waited for the slow consumer"))
            .unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), rx.recv()).await,
            Ok(Some(n)),
            "the normal client gets broadcast {n}"
        );
        assert_eq!(report.sessions(), 2, "{report:?}");
        assert_eq!(
            report.sent + report.waiting,
            2 - report.dropped - report.closed
        );
        if report.sent == 1 {
            slow_one = Some((n, report));
            break;
        }
        assert_eq!(report.sent, 2, "{report:?}");
    }
    let (n, report) = slow_one.expect("400 pushes of 256 KiB fill a reader that never reads");
    assert!(n >= 2, "the queue holds 2 frames, the kernel more: at {n}");
    let one = |r: BroadcastReport| (r.sent, r.waiting, r.dropped, r.closed);
    match policy {
        SlowConsumer::Wait => {
            assert_eq!(one(report), (1, 1, 0, 0));
            // The next broadcasts do not wait either: the slow session's
            // copies queue up behind the first.
            for m in n + 1..n + 4 {
                let report =
                    tokio::time::timeout(PROMPT, server.broadcast_push("/news", &(m, "small")))
                        .await
                        .expect("prompt")
                        .unwrap();
                assert_eq!(one(report), (1, 1, 0, 0));
                assert_eq!(rx.recv().await, Some(m));
            }
            assert!(!slow.is_closed());
        }
        SlowConsumer::Drop => {
            assert_eq!(one(report), (1, 0, 1, 0));
            assert!(!slow.is_closed());
        }
        SlowConsumer::Close => {
            assert_eq!(one(report), (1, 0, 0, 1));
            assert!(slow.is_closed());
            assert!(eventually(Duration::from_secs(3), || server.session_count() == 1).await);
            let report = server
                .broadcast_push("/news", &(n + 1, "small"))
                .await
                .unwrap();
            assert_eq!(one(report), (1, 0, 0, 0));
            assert_eq!(rx.recv().await, Some(n + 1));
        }
    }
    // Gone, the stuck client's socket fails the writes at once.
    drop(stuck);
    client.close().await;
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_does_not_wait_for_a_slow_consumer_under_wait() {
    within(broadcast_with_a_slow_consumer(SlowConsumer::Wait)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_drops_for_a_slow_consumer_under_drop() {
    within(broadcast_with_a_slow_consumer(SlowConsumer::Drop)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_closes_a_slow_consumer_under_close() {
    within(broadcast_with_a_slow_consumer(SlowConsumer::Close)).await;
}
