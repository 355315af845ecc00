//! The write path under pressure: frames larger than the socket buffer
//! (written partly by their sender, finished by the writer task) mixed with
//! small ones from many tasks at once, over TCP and Unix sockets. Every
//! reply must come back whole and belong to its pull: a frame cut or
//! interleaved with another would fail to decode or carry another's bytes.

mod common;

use bytes::Bytes;
use common::{jitter, tcp_server, within};
use jaunt_codec::ids as codec_ids;
use jaunt_peer::{Peer, PeerConfig, PullCtx, PullOptions, Router, Session};
use jaunt_socket::Status;

/// The body of pull `n`: its size varies from a few bytes to 2 MiB, and
/// every byte depends on `n` and its position.
fn body(n: u64) -> Bytes {
    let len = match n % 4 {
        0 => (1 << 20) + jitter(n, 1 << 20) as usize,
        1 => (64 << 10) + jitter(n, 256 << 10) as usize,
        _ => 1 + jitter(n, 4096) as usize,
    };
    (0..len)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(n * 7) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn echo_router() -> Router {
    let mut routes = Router::new();
    routes
        .pull("/echo", |_: PullCtx, body: Bytes| async move {
            Ok::<_, Status>(body)
        })
        .unwrap();
    routes
}

/// 160 pulls at once on one session, a quarter of them over 1 MiB.
async fn exercise(session: &Session) {
    let pulls = (0..160u64).map(|n| {
        let session = session.clone();
        async move {
            let sent = body(n);
            let reply = session
                .pull_with("/echo", &sent, PullOptions::new().codec(codec_ids::PLAIN))
                .await
                .unwrap_or_else(|e| panic!("pull {n}: {e}"));
            let got: Bytes = reply.decode().expect("decode");
            assert_eq!(got.len(), sent.len(), "pull {n}: reply of another size");
            assert!(got == sent, "pull {n}: reply bytes differ");
        }
    });
    futures_util::future::join_all(pulls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_small_frames_from_many_tasks_over_tcp() {
    within(async {
        let (server, addr) = tcp_server(echo_router()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        exercise(&session).await;
        // The server's side pulls back through the same connection too.
        let mut client_routes = Router::new();
        client_routes
            .pull("/echo", |_: PullCtx, body: Bytes| async move {
                Ok::<_, Status>(body)
            })
            .unwrap();
        let both = Peer::new(client_routes);
        let session = both.dial(&addr).await.unwrap();
        common::wait_sessions(&server, 2).await;
        let back = server
            .sessions()
            .into_iter()
            .find(|s| s.remote_addr().to_string() == session.local_addr().to_string())
            .expect("the server's side of the session");
        tokio::join!(exercise(&session), exercise(&back));
        client.close().await;
        both.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_small_frames_from_many_tasks_over_unix() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("write-path.sock");
        let server = Peer::new(echo_router());
        let addr = server
            .listen(format!("unix:{}", path.display()))
            .await
            .unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        exercise(&session).await;
        client.close().await;
        server.close().await;
    })
    .await;
}

/// The same with a write queue of one frame on both sides: senders wait for
/// the queue as often as they write directly, and a frame written in part
/// must still have its rest queued before any other frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_small_frames_with_a_one_frame_queue() {
    within(async {
        let config = PeerConfig::builder().write_queue_len(1).build();
        let server = Peer::builder(echo_router())
            .config(config.clone())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::builder(Router::new()).config(config).build().unwrap();
        let session = client.dial(&addr).await.unwrap();
        exercise(&session).await;
        client.close().await;
        server.close().await;
    })
    .await;
}
