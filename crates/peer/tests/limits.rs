//! Limits and backpressure through real loopback sockets: graceful shutdown
//! (drain, 102 for late pulls, timeout), `max_sessions`, handler permits per
//! session and per peer, in-order handling, the slow-consumer policies of
//! pushes, `max_session_age` and `read_timeout`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, wait_sessions, within};
use jaunt_peer::{
    Addr, Handling, Peer, PeerConfig, PullCtx, PullOptions, PushCtx, Router, Session, SlowConsumer,
};
use jaunt_socket::{code, Status};
use tokio::net::TcpStream;

/// A peer with `config` and `router`, listening on a free loopback port.
async fn server_with(config: PeerConfig, router: Router) -> (Peer, Addr) {
    let peer = Peer::builder(router).config(config).build().unwrap();
    let addr = peer.listen("127.0.0.1:0").await.unwrap();
    (peer, addr)
}

/// Handlers running now, and the most that ever ran at once.
#[derive(Default)]
struct Gauge {
    running: AtomicUsize,
    max: AtomicUsize,
    started: AtomicUsize,
    finished: AtomicUsize,
    pushed: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.finished.fetch_add(1, Ordering::SeqCst);
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A router whose `/slow` pull sleeps `ms` and answers `n * 2`, counted by
/// `gauge`; `/echo` answers its argument at once; the push `/note` is
/// counted in `gauge.pushed`.
fn slow_router(gauge: Arc<Gauge>, ms: u64) -> Router {
    let pushed = gauge.clone();
    let mut router = Router::new();
    router
        .pull("/slow", move |_: PullCtx, n: u64| {
            let gauge = gauge.clone();
            async move {
                gauge.enter();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                gauge.leave();
                Ok::<_, Status>(n * 2)
            }
        })
        .unwrap();
    router
        .pull(
            "/echo",
            |_: PullCtx, n: u64| async move { Ok::<_, Status>(n) },
        )
        .unwrap();
    router
        .push("/note", move |_: PushCtx, _: u64| {
            let gauge = pushed.clone();
            async move {
                gauge.pushed.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    router
}

/// 200 pulls over 4 sessions are in their handlers when the server shuts
/// down: it waits for all of them, every caller gets its reply, and then the
/// server neither listens nor keeps any session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_answers_all_200_pulls_in_flight() {
    within(async {
        let gauge = Arc::new(Gauge::default());
        let (server, addr) =
            server_with(PeerConfig::default(), slow_router(gauge.clone(), 300)).await;
        let client = Peer::new(Router::new());
        let mut sessions = Vec::new();
        for _ in 0..4 {
            sessions.push(client.dial(&addr).await.unwrap());
        }
        let pulls: Vec<_> = (0..200_u64)
            .map(|n| {
                let s = &sessions[(n % 4) as usize];
                (n, s.async_pull("/slow", &n, PullOptions::default()))
            })
            .collect();
        assert!(
            eventually(Duration::from_secs(5), || gauge.started() == 200).await,
            "only {} of 200 handlers started",
            gauge.started()
        );
        assert_eq!(gauge.finished(), 0, "the handlers sleep 300 ms");

        let began = Instant::now();
        assert!(server.shutdown(Duration::from_secs(5)).await);
        // It waited for the handlers, and not much longer.
        assert_eq!(gauge.finished(), 200);
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "{:?}",
            began.elapsed()
        );

        let mut ok = 0;
        for (n, pull) in pulls {
            let doubled: u64 = pull
                .await
                .unwrap_or_else(|e| panic!("pull {n} failed: {e}"))
                .decode()
                .unwrap();
            assert_eq!(doubled, n * 2);
            ok += 1;
        }
        assert_eq!(ok, 200);

        // No longer listening.
        let err = client.dial(&addr).await.unwrap_err();
        assert_eq!(err.code(), code::DIAL_FAILED, "{err}");
        assert_eq!(server.session_count(), 0);
        // The clients' sessions were closed by the server.
        assert!(
            eventually(Duration::from_secs(2), || sessions
                .iter()
                .all(Session::is_closed))
            .await
        );
        client.close().await;
    })
    .await;
}

/// Handlers slower than the shutdown timeout are abandoned: `shutdown`
/// returns false at the deadline, and every pull in flight ends with 102.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_abandons_slow_handlers_with_102() {
    within(async {
        let gauge = Arc::new(Gauge::default());
        let (server, addr) =
            server_with(PeerConfig::default(), slow_router(gauge.clone(), 3000)).await;
        let client = Peer::new(Router::new());
        let a = client.dial(&addr).await.unwrap();
        let b = client.dial(&addr).await.unwrap();
        let pulls: Vec<_> = (0..20_u64)
            .map(|n| {
                let s = if n % 2 == 0 { &a } else { &b };
                s.async_pull("/slow", &n, PullOptions::default())
            })
            .collect();
        assert!(eventually(Duration::from_secs(5), || gauge.started() == 20).await);

        let began = Instant::now();
        assert!(!server.shutdown(Duration::from_millis(200)).await);
        let took = began.elapsed();
        assert!(
            took >= Duration::from_millis(190) && took < Duration::from_secs(2),
            "shutdown took {took:?}"
        );
        for pull in pulls {
            let err = pull.await.unwrap_err();
            assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        }
        // None waited for its handler.
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "{:?}",
            began.elapsed()
        );
        assert_eq!(gauge.finished(), 0);
        assert_eq!(server.session_count(), 0);
        client.close().await;
    })
    .await;
}

/// While the server drains, a new pull on a live session is answered 102
/// "shutting down" (its handler never runs) and the pull in flight still
/// gets its reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_during_the_drain_are_refused_with_102() {
    within(async {
        let gauge = Arc::new(Gauge::default());
        let (server, addr) =
            server_with(PeerConfig::default(), slow_router(gauge.clone(), 1000)).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        let first = session.async_pull("/slow", &21_u64, PullOptions::default());
        assert!(eventually(Duration::from_secs(5), || gauge.started() == 1).await);

        let stopping = server.clone();
        let shutdown = tokio::spawn(async move { stopping.shutdown(Duration::from_secs(5)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;

        let err = session.pull("/slow", &1_u64).await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        assert!(
            err.cause().unwrap_or_default().contains("shutting down"),
            "{err}"
        );
        // A push is dropped (no reply to carry a refusal). The quick pull
        // after it is refused as well: it is the drain, not the load; and its
        // reply means the server has read the push before it.
        session.push("/note", &1_u64).await.unwrap();
        let err = session.pull("/echo", &1_u64).await.unwrap_err();
        assert!(
            err.cause().unwrap_or_default().contains("shutting down"),
            "{err}"
        );
        assert_eq!(
            gauge.started(),
            1,
            "a refused pull never reaches its handler"
        );
        assert!(!session.is_closed(), "refusing is a reply, not a close");
        assert_eq!(
            gauge.pushed.load(Ordering::SeqCst),
            0,
            "push during the drain"
        );

        let doubled: u64 = first.await.unwrap().decode().unwrap();
        assert_eq!(doubled, 42);
        assert!(shutdown.await.unwrap());
        assert_eq!(server.session_count(), 0);
        assert_eq!(
            gauge.pushed.load(Ordering::SeqCst),
            0,
            "push during the drain"
        );
        client.close().await;
    })
    .await;
}

/// With `max_sessions = 2` a third connection is closed by the server at
/// once: the dial itself succeeds (TCP was accepted by the kernel), but the
/// session is closed right away and its pull fails with 102. Once one of
/// the first two goes, a new dial is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_sessions_closes_connections_over_the_limit() {
    within(async {
        let config = PeerConfig::builder().max_sessions(2).build();
        let (server, addr) = server_with(config, slow_router(Arc::default(), 0)).await;
        let client = Peer::new(Router::new());
        let s1 = client.dial(&addr).await.unwrap();
        let s2 = client.dial(&addr).await.unwrap();
        for s in [&s1, &s2] {
            let n: u64 = s.pull("/echo", &7_u64).await.unwrap().decode().unwrap();
            assert_eq!(n, 7);
        }
        wait_sessions(&server, 2).await;

        let s3 = client
            .dial(&addr)
            .await
            .expect("the kernel accepts the connection before the server drops it");
        let err = s3.pull("/echo", &3_u64).await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        assert!(eventually(Duration::from_secs(2), || s3.is_closed()).await);
        assert_eq!(server.session_count(), 2);
        // The first two are unaffected.
        for s in [&s1, &s2] {
            let n: u64 = s.pull("/echo", &8_u64).await.unwrap().decode().unwrap();
            assert_eq!(n, 8);
        }

        s1.close();
        wait_sessions(&server, 1).await;
        let s4 = client.dial(&addr).await.unwrap();
        let n: u64 = s4.pull("/echo", &9_u64).await.unwrap().decode().unwrap();
        assert_eq!(n, 9);
        assert_eq!(server.session_count(), 2);

        client.close().await;
        server.close().await;
    })
    .await;
}

/// With `max_handlers_per_session = 2`, 10 concurrent pulls on one session
/// run at most two at a time, and all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_handlers_per_session_bounds_concurrency() {
    within(async {
        let gauge = Arc::new(Gauge::default());
        let config = PeerConfig::builder().max_handlers_per_session(2).build();
        let (server, addr) = server_with(config, slow_router(gauge.clone(), 50)).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        let pulls: Vec<_> = (0..10_u64)
            .map(|n| (n, session.async_pull("/slow", &n, PullOptions::default())))
            .collect();
        for (n, pull) in pulls {
            let doubled: u64 = pull.await.unwrap().decode().unwrap();
            assert_eq!(doubled, n * 2);
        }
        assert_eq!(gauge.finished(), 10);
        assert_eq!(gauge.max(), 2, "at most (and, here, exactly) 2 at once");
        client.close().await;
        server.close().await;
    })
    .await;
}

/// With `max_handlers = 3`, 15 pulls over 3 sessions never run all at once:
/// sessions past their fair share wait while 3 run (the pool's rule allows
/// at most twice the limit, its ceiling: see `limits/pool.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_handlers_bounds_the_whole_peer() {
    within(async {
        let gauge = Arc::new(Gauge::default());
        let config = PeerConfig::builder().max_handlers(3).build();
        let (server, addr) = server_with(config, slow_router(gauge.clone(), 40)).await;
        let client = Peer::new(Router::new());
        let mut sessions = Vec::new();
        for _ in 0..3 {
            sessions.push(client.dial(&addr).await.unwrap());
        }
        let pulls: Vec<_> = (0..15_u64)
            .map(|n| {
                let s = &sessions[(n % 3) as usize];
                (n, s.async_pull("/slow", &n, PullOptions::default()))
            })
            .collect();
        for (n, pull) in pulls {
            let doubled: u64 = pull.await.unwrap().decode().unwrap();
            assert_eq!(doubled, n * 2);
        }
        assert_eq!(gauge.finished(), 15);
        // Past their fair share (1 each) sessions get handlers only while
        // fewer than 3 run; within it they always get one: at most 2 × 3.
        assert!(gauge.max() <= 6, "{} ran at once", gauge.max());
        assert!(gauge.max() >= 2, "the sessions' handlers did overlap");
        assert!(server.stats().peak_handlers <= 6);
        client.close().await;
        server.close().await;
    })
    .await;
}

/// `Handling::InOrder`: 50 pushes sent back to back are handled one at a
/// time in the order sent, a pull sent after them is handled after them, and
/// a pull handler can still pull back to its caller (replies are read while
/// the worker is busy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_order_handling_keeps_arrival_order() {
    within(async {
        let gauge = Arc::new(Gauge::default());
        let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
        let mut router = Router::new();
        let (g, s) = (gauge.clone(), seen.clone());
        router
            .push("/record", move |_: PushCtx, n: u64| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    g.enter();
                    // Uneven work: concurrent handling would reorder these.
                    tokio::time::sleep(Duration::from_millis(common::jitter(n, 4))).await;
                    s.lock().unwrap().push(n);
                    g.leave();
                }
            })
            .unwrap();
        let s = seen.clone();
        router
            .pull("/seen", move |_: PullCtx, (): ()| {
                let s = s.clone();
                async move { Ok::<_, Status>(s.lock().unwrap().clone()) }
            })
            .unwrap();
        router
            .pull("/ask", |ctx: PullCtx, n: u64| async move {
                let name: String = ctx.session().pull("/client/name", &n).await?.decode()?;
                Ok::<_, Status>(format!("asked {name}"))
            })
            .unwrap();
        let in_order = PeerConfig::builder().handling(Handling::InOrder).build();
        let (server, addr) = server_with(in_order.clone(), router).await;

        let mut client_routes = Router::new();
        client_routes
            .pull("/client/name", |_: PullCtx, n: u64| async move {
                Ok::<_, Status>(format!("client#{n}"))
            })
            .unwrap();
        let client = Peer::builder(client_routes)
            .config(in_order)
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();

        for n in 0..50_u64 {
            session.push("/record", &n).await.unwrap();
        }
        // The pull is queued behind the 50 pushes.
        let at_pull: Vec<u64> = session.pull("/seen", &()).await.unwrap().decode().unwrap();
        let expected: Vec<u64> = (0..50).collect();
        assert_eq!(at_pull, expected);
        assert_eq!(*seen.lock().unwrap(), expected);
        assert_eq!(gauge.max(), 1, "one handler at a time");

        // The server's worker is busy with /ask while the reply to its pull
        // back comes in.
        for n in 0..3_u64 {
            let answer: String = session.pull("/ask", &n).await.unwrap().decode().unwrap();
            assert_eq!(answer, format!("asked client#{n}"));
        }

        client.close().await;
        server.close().await;
    })
    .await;
}

/// Which slow-consumer outcome a case expects.
async fn slow_consumer_case(policy: SlowConsumer) {
    let config = PeerConfig::builder()
        .write_queue_len(2)
        .slow_consumer(policy)
        .slow_consumer_wait(Duration::from_millis(200))
        .build();
    let (server, addr) = server_with(config, slow_router(Arc::default(), 0)).await;
    let Addr::Tcp(sa) = addr else {
        unreachable!("listening on TCP")
    };
    // A "client" that never reads.
    let stuck = TcpStream::connect(sa).await.unwrap();
    wait_sessions(&server, 1).await;
    let slow = server.sessions().pop().unwrap();
    // A normal client.
    let client = Peer::new(Router::new());
    let normal = client.dial(&addr).await.unwrap();
    wait_sessions(&server, 2).await;

    let big = "x".repeat(256 * 1024);
    let mut failure = None;
    for i in 0..400_u64 {
        let began = Instant::now();
        let pushed = if policy == SlowConsumer::Wait {
            // The other session is served while this push waits for room.
            let (pushed, echoed) = tokio::join!(slow.push("/sink", &big), normal.pull("/echo", &i));
            assert_eq!(echoed.unwrap().decode::<u64>().unwrap(), i);
            pushed
        } else {
            slow.push("/sink", &big).await
        };
        if let Err(status) = pushed {
            failure = Some((i, status, began.elapsed()));
            break;
        }
    }
    let (i, status, took) = failure.expect("400 pushes of 256 KiB to a reader that never reads");
    assert!(
        i >= 2,
        "the queue holds 2 frames, the kernel more: failed at push {i}"
    );
    match policy {
        SlowConsumer::Drop => {
            assert_eq!(status.code(), code::WRITE_FAILED, "{status}");
            assert!(
                took < Duration::from_millis(100),
                "Drop fails at once, took {took:?}"
            );
            assert!(!slow.is_closed());
        }
        SlowConsumer::Close => {
            assert_eq!(status.code(), code::CONN_CLOSED, "{status}");
            assert!(
                took < Duration::from_millis(100),
                "Close fails at once, took {took:?}"
            );
            assert!(slow.is_closed());
            assert_eq!(server.session_count(), 1);
            let again = slow.push("/sink", &"small").await.unwrap_err();
            assert_eq!(again.code(), code::CONN_CLOSED, "{again}");
        }
        SlowConsumer::Wait => {
            assert_eq!(status.code(), code::WRITE_FAILED, "{status}");
            assert!(
                took >= Duration::from_millis(190) && took < Duration::from_secs(2),
                "Wait waits slow_consumer_wait, took {took:?}"
            );
            assert!(!slow.is_closed());
        }
    }
    // The slow reader does not stall the other session.
    for n in 0..5_u64 {
        let began = Instant::now();
        let echoed: u64 = normal.pull("/echo", &n).await.unwrap().decode().unwrap();
        assert_eq!(echoed, n);
        assert!(began.elapsed() < Duration::from_secs(1));
    }
    // Unread data makes the kernel reset the connection, which unblocks the
    // server's stuck write at once.
    drop(stuck);
    client.close().await;
    server.close().await;
}

/// `SlowConsumer::Drop`: once the queue is full a push fails at once with 104.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_drop_fails_the_push_with_104() {
    within(slow_consumer_case(SlowConsumer::Drop)).await;
}

/// `SlowConsumer::Close`: once the queue is full the session is closed and
/// the push fails with 102.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_close_closes_the_session() {
    within(slow_consumer_case(SlowConsumer::Close)).await;
}

/// `SlowConsumer::Wait`: once the queue is full a push waits
/// `slow_consumer_wait` (200 ms) for room, then fails with 104.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_wait_fails_after_the_wait() {
    within(slow_consumer_case(SlowConsumer::Wait)).await;
}

/// `max_session_age = 300 ms`: a busy session is closed by the server after
/// about 300 ms, and the client's pulls fail from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_session_age_closes_even_a_busy_session() {
    within(async {
        let config = PeerConfig::builder()
            .max_session_age(Duration::from_millis(300))
            .build();
        let (server, addr) = server_with(config, slow_router(Arc::default(), 0)).await;
        let client = Peer::new(Router::new());
        let began = Instant::now();
        let session = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 1).await;
        let server_side = server.sessions().pop().unwrap();

        // Busy: a pull every 50 ms, which a read timeout would not mind.
        let mut n = 0_u64;
        let ended = loop {
            match session.pull("/echo", &n).await {
                Ok(reply) => assert_eq!(reply.decode::<u64>().unwrap(), n),
                Err(status) => break status,
            }
            n += 1;
            assert!(began.elapsed() < Duration::from_secs(3), "never closed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let age = began.elapsed();
        assert_eq!(ended.code(), code::CONN_CLOSED, "{ended}");
        assert!(age >= Duration::from_millis(290), "closed after {age:?}");
        assert!(n >= 3, "it served pulls before its age ran out ({n})");
        assert!(server_side.is_closed());
        assert!(eventually(Duration::from_secs(2), || session.is_closed()).await);
        let err = session.pull("/echo", &0_u64).await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        assert_eq!(server.session_count(), 0);

        client.close().await;
        server.close().await;
    })
    .await;
}

/// `read_timeout = 300 ms`: a silent session is closed after about 300 ms,
/// while one that keeps talking stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_closes_a_silent_session() {
    within(async {
        let config = PeerConfig::builder()
            .read_timeout(Duration::from_millis(300))
            .build();
        let (server, addr) = server_with(config, slow_router(Arc::default(), 0)).await;
        let client = Peer::new(Router::new());
        let began = Instant::now();
        let silent = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 1).await;
        let silent_server_side = server.sessions().pop().unwrap();
        let talking = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 2).await;

        let chatter = async {
            for n in 0..8_u64 {
                let echoed: u64 = talking.pull("/echo", &n).await.unwrap().decode().unwrap();
                assert_eq!(echoed, n);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let watch = async {
            assert!(eventually(Duration::from_secs(3), || silent_server_side.is_closed()).await);
            began.elapsed()
        };
        let ((), closed_after) = tokio::join!(chatter, watch);
        assert!(
            closed_after >= Duration::from_millis(290),
            "closed after {closed_after:?}"
        );
        // The talking one outlived the timeout several times over.
        assert!(began.elapsed() >= Duration::from_millis(700));
        assert!(!talking.is_closed());
        assert_eq!(server.session_count(), 1);
        // The silent client sees its session closed, and its pulls fail.
        assert!(eventually(Duration::from_secs(2), || silent.is_closed()).await);
        let err = silent.pull("/echo", &0_u64).await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");

        client.close().await;
        server.close().await;
    })
    .await;
}
