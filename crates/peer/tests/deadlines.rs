//! Deadlines and cancellation through real sessions: a pull's time budget,
//! the callee's 408, and abandoned pulls stopping the callee's handler.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jaunt_peer::{Peer, PeerConfig, PullCtx, PullOptions, Router, TIMEOUT_META};
use jaunt_socket::{code, Status};

const LIMIT: Duration = Duration::from_secs(20);

/// Sets a flag when the handler's future is dropped before finishing.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Server {
    peer: Peer,
    addr: jaunt_peer::Addr,
    dropped: Arc<AtomicBool>,
    finished: Arc<AtomicUsize>,
    saw_deadline: Arc<AtomicBool>,
}

/// A server whose `/slow` handler sleeps for the given milliseconds.
async fn server() -> Server {
    let dropped = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicUsize::new(0));
    let saw_deadline = Arc::new(AtomicBool::new(false));
    let mut router = Router::new();
    let (d, f, s) = (dropped.clone(), finished.clone(), saw_deadline.clone());
    router
        .pull("/slow", move |ctx: PullCtx, ms: u64| {
            let (d, f, s) = (d.clone(), f.clone(), s.clone());
            async move {
                if ctx.deadline().is_some() {
                    s.store(true, Ordering::SeqCst);
                }
                let flag = DropFlag(d);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                std::mem::forget(flag);
                f.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Status>(ms)
            }
        })
        .unwrap();
    let peer = Peer::new(router);
    let addr = peer.listen("127.0.0.1:0").await.unwrap();
    Server {
        peer,
        addr,
        dropped,
        finished,
        saw_deadline,
    }
}

async fn wait_for(flag: &AtomicBool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if flag.load(Ordering::SeqCst) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_past_its_timeout_ends_with_408_and_stops_the_callee() {
    tokio::time::timeout(LIMIT, async {
        let srv = server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&srv.addr).await.unwrap();

        let started = Instant::now();
        let err = session
            .pull_with(
                "/slow",
                &5_000u64,
                PullOptions::new().timeout(Duration::from_millis(200)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT, "{err}");
        assert!(started.elapsed() < Duration::from_secs(2), "ended promptly");
        assert_eq!(
            session.pending_pulls(),
            0,
            "no memory kept for the abandoned pull"
        );
        assert!(
            srv.saw_deadline.load(Ordering::SeqCst),
            "the deadline reached the handler"
        );
        assert!(
            wait_for(&srv.dropped).await,
            "the callee dropped the handler"
        );
        assert_eq!(srv.finished.load(Ordering::SeqCst), 0);

        // A pull within its budget still works on the same session.
        let ok: u64 = session
            .pull_with(
                "/slow",
                &10u64,
                PullOptions::new().timeout(Duration::from_secs(5)),
            )
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(ok, 10);
        client.close().await;
        srv.peer.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_answers_408_when_its_handler_misses_the_deadline() {
    tokio::time::timeout(LIMIT, async {
        let srv = server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&srv.addr).await.unwrap();
        // The budget travels in meta; the caller itself does not time out.
        let started = Instant::now();
        let err = session
            .pull_with(
                "/slow",
                &5_000u64,
                PullOptions::new().meta(TIMEOUT_META, "150"),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT, "{err}");
        assert!(err.cause().unwrap_or("").contains("deadline"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            wait_for(&srv.dropped).await,
            "the handler future was dropped"
        );
        client.close().await;
        srv.peer.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_pull_cancels_it_on_the_callee() {
    tokio::time::timeout(LIMIT, async {
        let srv = server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&srv.addr).await.unwrap();
        // The caller gives up by dropping the future (no timeout option).
        let gave_up =
            tokio::time::timeout(Duration::from_millis(200), session.pull("/slow", &5_000u64))
                .await;
        assert!(gave_up.is_err(), "the pull was still running");
        assert_eq!(session.pending_pulls(), 0);
        assert!(
            wait_for(&srv.dropped).await,
            "the callee dropped the handler"
        );
        assert_eq!(srv.finished.load(Ordering::SeqCst), 0);
        client.close().await;
        srv.peer.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_default_pull_timeout_applies() {
    tokio::time::timeout(LIMIT, async {
        let srv = server().await;
        let config = PeerConfig::builder()
            .pull_timeout(Duration::from_millis(150))
            .build();
        let client = Peer::builder(Router::new()).config(config).build().unwrap();
        let session = client.dial(&srv.addr).await.unwrap();
        let err = session.pull("/slow", &5_000u64).await.unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT);
        // A per-call option overrides the default.
        let ok: u64 = session
            .pull_with(
                "/slow",
                &300u64,
                PullOptions::new().timeout(Duration::from_secs(5)),
            )
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(ok, 300);
        client.close().await;
        srv.peer.close().await;
    })
    .await
    .expect("test timed out");
}
