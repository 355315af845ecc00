//! Session and peer timers through real sockets: `run_after` fires once,
//! `run_every` repeats without overlapping itself, and stops when cancelled,
//! when its session closes (not when it redials), or when its peer closes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, tcp_server, wait_sessions, within};
use jaunt_peer::{Peer, PeerConfig, RedialConfig, Router, Session, SessionState};
use tokio::sync::mpsc;

/// A tick counter for `run_every` callbacks.
fn counter() -> (
    Arc<AtomicUsize>,
    impl FnMut(Session) -> std::future::Ready<()> + Send,
) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    (count, move |_: Session| {
        c.fetch_add(1, Ordering::SeqCst);
        std::future::ready(())
    })
}

/// Whether `count` stays put for `quiet`.
async fn stays(count: &AtomicUsize, quiet: Duration) -> bool {
    let before = count.load(Ordering::SeqCst);
    tokio::time::sleep(quiet).await;
    count.load(Ordering::SeqCst) == before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_after_fires_once_after_its_delay() {
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        let (tx, mut rx) = mpsc::unbounded_channel();
        let started = Instant::now();
        let timer = session.run_after(Duration::from_millis(100), move |s: Session| async move {
            let _ = tx.send((s.id(), started.elapsed()));
        });
        let (id, after) = rx.recv().await.unwrap();
        assert_eq!(id, session.id(), "the callback gets its session");
        assert!(after >= Duration::from_millis(100), "fired after {after:?}");
        // Once: the sender went with the callback.
        assert_eq!(rx.recv().await, None);
        assert!(eventually(Duration::from_secs(1), || timer.is_finished()).await);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_every_repeats_until_cancelled() {
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        let (count, tick) = counter();
        let timer = session.run_every(Duration::from_millis(10), tick);
        assert!(eventually(Duration::from_secs(3), || count.load(Ordering::SeqCst) >= 5).await);
        timer.cancel();
        assert!(eventually(Duration::from_secs(1), || timer.is_finished()).await);
        assert!(
            stays(&count, Duration::from_millis(100)).await,
            "ticks after cancel"
        );
        // Dropping a handle does not cancel.
        let (count, tick) = counter();
        drop(session.run_every(Duration::from_millis(10), tick));
        assert!(eventually(Duration::from_secs(3), || count.load(Ordering::SeqCst) >= 3).await);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_callback_does_not_overlap_itself_and_missed_ticks_are_skipped() {
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        let (r, m, c) = (running.clone(), most.clone(), calls.clone());
        // Every 10 ms, a call of 50 ms.
        let timer = session.run_every(Duration::from_millis(10), move |_| {
            let (r, m, c) = (r.clone(), m.clone(), c.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                c.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                r.fetch_sub(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        timer.cancel();
        let calls = calls.load(Ordering::SeqCst);
        assert_eq!(most.load(Ordering::SeqCst), 1, "calls overlapped");
        // 500 ms of 50 ms calls: at most 10, not the 50 ticks of the period.
        assert!((3..=11).contains(&calls), "{calls} calls");

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timers_stop_when_the_other_side_closes() {
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 1).await;
        let served = server.sessions().pop().unwrap();

        let (count, tick) = counter();
        let every = served.run_every(Duration::from_millis(10), tick);
        let (fired, fire) = counter();
        let after = served.run_after(Duration::from_millis(300), fire);
        assert!(eventually(Duration::from_secs(3), || count.load(Ordering::SeqCst) >= 3).await);

        // The client closes the connection: the server's session closes, and
        // its timers end.
        session.close();
        assert!(eventually(Duration::from_secs(3), || served.is_closed()).await);
        assert!(eventually(Duration::from_secs(1), || every.is_finished()).await);
        assert!(after.is_finished());
        assert!(stays(&count, Duration::from_millis(350)).await);
        assert_eq!(
            fired.load(Ordering::SeqCst),
            0,
            "run_after fired on a closed session"
        );

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timers_go_on_through_a_redial() {
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let config = PeerConfig::builder()
            .redial(
                RedialConfig::builder()
                    .interval(Duration::from_millis(20))
                    .build(),
            )
            .build();
        let client = Peer::builder(Router::new()).config(config).build().unwrap();
        let session = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 1).await;

        let (count, tick) = counter();
        let timer = session.run_every(Duration::from_millis(10), tick);
        // The server drops the connection; the client dials again.
        server.sessions().pop().unwrap().close();
        let mut state = session.watch_state();
        state
            .wait_for(|s| *s == SessionState::Connected { generation: 2 })
            .await
            .unwrap();
        let now = count.load(Ordering::SeqCst);
        assert!(
            eventually(Duration::from_secs(3), || count.load(Ordering::SeqCst)
                >= now + 3)
            .await
        );
        assert!(!timer.is_finished());

        client.close().await;
        assert!(eventually(Duration::from_secs(1), || timer.is_finished()).await);
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_timers_stop_when_the_peer_closes() {
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let client = Peer::new(Router::new());
        let _session = client.dial(&addr).await.unwrap();

        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let every = client.run_every(Duration::from_millis(10), move |peer: Peer| {
            let c = c.clone();
            async move {
                assert!(peer.session_count() <= 1);
                c.fetch_add(1, Ordering::SeqCst);
            }
        });
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let after = client.run_after(Duration::from_millis(300), move |_| async move {
            f.fetch_add(1, Ordering::SeqCst);
        });
        assert!(eventually(Duration::from_secs(3), || count.load(Ordering::SeqCst) >= 3).await);

        client.close().await;
        assert!(eventually(Duration::from_secs(1), || every.is_finished()).await);
        assert!(eventually(Duration::from_secs(1), || after.is_finished()).await);
        assert!(stays(&count, Duration::from_millis(350)).await);
        assert_eq!(fired.load(Ordering::SeqCst), 0);

        server.close().await;
    })
    .await;
}
