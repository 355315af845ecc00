//! Fault injection through real loopback sockets: 500 sessions disconnected
//! at random while they pull, a session closed under 50 pulls in flight, a
//! handler that hangs forever, and a peer that dies abruptly (RST, or FIN in
//! the middle of a frame). Every pull must end, with a reply or a status,
//! within its deadline, and every hub must empty.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{eventually, jitter, read_frame, tcp_server, wait_sessions, within};
use jaunt_peer::{Addr, Peer, PullCtx, PullOptions, Router, Session};
use jaunt_socket::{code, Packet, PacketType, Proto, RawProto, Status};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The time budget of every pull of the chaos test.
const PULL_BUDGET: Duration = Duration::from_secs(2);
/// The budget of every eighth pull: shorter than most handlers take.
const SHORT_BUDGET: Duration = Duration::from_millis(5);
/// How late past its budget a pull may end.
const SLACK: Duration = Duration::from_millis(500);

/// Sets a flag when the handler's future is dropped before finishing.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Counts the handler futures dropped before finishing.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The soft limit of open files of this process, from /proc/self/limits.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// A small xorshift generator: the chaos needs no reproducibility beyond
/// its seed, and the tests no random number crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What the chaos workers saw.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    /// Failed pulls by status code.
    codes: Mutex<BTreeMap<i32, usize>>,
    /// Replies that did not echo the argument.
    wrong: AtomicUsize,
    /// Pulls that had not ended PULL_BUDGET + SLACK after they started.
    hung: AtomicUsize,
    /// The slowest pull, failed or not, in microseconds.
    max_us: AtomicU64,
    /// The slowest pull with the short budget, in microseconds.
    max_short_us: AtomicU64,
    /// The slowest failed pull, in microseconds.
    max_failed_us: AtomicU64,
    redials: AtomicUsize,
    dial_failures: AtomicUsize,
}

/// One of the chaos test's pulling sessions: pulls `/echo` in a loop until
/// `stop`; when its session is lost it dials a new one. Returns the session
/// it holds at the end.
async fn chaos_worker(
    id: u64,
    client: Peer,
    addr: Addr,
    mut session: Session,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Session {
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        if !session.is_connected() {
            match client.dial(&addr).await {
                Ok(fresh) => {
                    tally.redials.fetch_add(1, Ordering::Relaxed);
                    session = fresh;
                }
                Err(_) => {
                    tally.dial_failures.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            }
        }
        n += 1;
        let value = id * 1_000_000 + n;
        // Every eighth pull has a budget shorter than most handlers take:
        // timeouts (and the cancel pushes they send) race the closes too.
        let budget = if n.is_multiple_of(8) {
            SHORT_BUDGET
        } else {
            PULL_BUDGET
        };
        let start = Instant::now();
        let pull = session.pull_with("/echo", &value, PullOptions::new().timeout(budget));
        let Ok(outcome) = tokio::time::timeout(budget + SLACK, pull).await else {
            tally.hung.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        tally.max_us.fetch_max(us, Ordering::Relaxed);
        if budget == SHORT_BUDGET {
            tally.max_short_us.fetch_max(us, Ordering::Relaxed);
        }
        match outcome {
            Ok(reply) => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
                if reply.decode::<u64>().ok() != Some(value) {
                    tally.wrong.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(status) => {
                tally.max_failed_us.fetch_max(us, Ordering::Relaxed);
                *tally
                    .codes
                    .lock()
                    .unwrap()
                    .entry(status.code())
                    .or_default() += 1;
            }
        }
    }
    session
}

/// 500 sessions (5 client peers × 100) pull an echo handler that sleeps
/// 0–20 ms (with a 2 s budget, or 5 ms for every eighth pull), while a chaos
/// thread closes random sessions every few ms, from the client side or the
/// server side. Every pull ends within its budget (plus slack) with its own
/// value or with 102 / 408; nothing stays pending; the hubs agree with what
/// is still connected, and empty once everything is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_sessions_disconnected_at_random_while_pulling() {
    within(async {
        // Both ends of every session live in this process, and redials make
        // more: about three descriptors per session, plus some to spare.
        let limit = open_files_limit().unwrap_or(1024);
        let sessions = 500usize.min(usize::try_from(limit.saturating_sub(150) / 3).unwrap_or(500));
        if sessions < 500 {
            println!(
                "open files limit is {limit}: running the chaos test with {sessions} sessions, not 500"
            );
        }
        assert!(
            sessions >= 200,
            "the open files limit ({limit}) is too low for the chaos test (needs >= 200 sessions)"
        );
        let peers = 5usize;

        let mut routes = Router::new();
        routes
            .pull("/echo", |_: PullCtx, v: u64| async move {
                tokio::time::sleep(Duration::from_millis(jitter(v, 21))).await;
                Ok::<_, Status>(v)
            })
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let clients: Vec<Peer> = (0..peers).map(|_| Peer::new(Router::new())).collect();

        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        // Dial concurrently: 500 dials one after the other take a while.
        let dials: Vec<_> = (0..sessions)
            .map(|i| {
                let (client, addr) = (clients[i % peers].clone(), addr.clone());
                tokio::spawn(async move { client.dial(&addr).await })
            })
            .collect();
        let mut dialed = Vec::with_capacity(sessions);
        for dial in dials {
            dialed.push(dial.await.unwrap().expect("dial"));
        }
        let mut workers = Vec::with_capacity(sessions);
        for (i, session) in dialed.into_iter().enumerate() {
            let client = clients[i % peers].clone();
            workers.push(tokio::spawn(chaos_worker(
                i as u64,
                client,
                addr.clone(),
                session,
                stop.clone(),
                tally.clone(),
            )));
        }
        wait_sessions(&server, sessions).await;
        let started = Instant::now();

        // The chaos: every 2 ms or so, close a random session from a random side.
        // On its own thread (closing is synchronous), so that the busy
        // runtime cannot slow it down.
        let chaos = {
            let (server, clients, stop) = (server.clone(), clients.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(0x2545_F491_4F6C_DD1D);
                let (mut by_client, mut by_server) = (0usize, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(2));
                    let client_side = rng.below(2) == 0;
                    let victims = if client_side {
                        clients[rng.below(clients.len())].sessions()
                    } else {
                        server.sessions()
                    };
                    if victims.is_empty() {
                        continue;
                    }
                    victims[rng.below(victims.len())].close();
                    if client_side {
                        by_client += 1;
                    } else {
                        by_server += 1;
                    }
                }
                (by_client, by_server)
            })
        };

        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::SeqCst);
        let (by_client, by_server) = chaos.join().unwrap();
        // Each worker finishes the pull it is in: within its budget.
        let mut held = Vec::with_capacity(sessions);
        for worker in workers {
            let session = tokio::time::timeout(PULL_BUDGET + SLACK * 2, worker)
                .await
                .expect("a worker's pull did not end within its budget")
                .unwrap();
            held.push(session);
        }
        let ran = started.elapsed();

        let codes = tally.codes.lock().unwrap().clone();
        let failed: usize = codes.values().sum();
        let ok = tally.ok.load(Ordering::SeqCst);
        let max = Duration::from_micros(tally.max_us.load(Ordering::SeqCst));
        let max_failed = Duration::from_micros(tally.max_failed_us.load(Ordering::SeqCst));
        let max_short = Duration::from_micros(tally.max_short_us.load(Ordering::SeqCst));
        println!(
            "chaos: {sessions} sessions for {ran:?}; closes: {by_client} client side, {by_server} server side; \
             pulls: {ok} ok, {failed} failed, codes {codes:?}; slowest pull {max:?}, slowest failure {max_failed:?}, slowest 5 ms pull {max_short:?}; \
             redials {}, failed dials {}",
            tally.redials.load(Ordering::SeqCst),
            tally.dial_failures.load(Ordering::SeqCst),
        );
        assert_eq!(tally.hung.load(Ordering::SeqCst), 0, "pulls that never ended");
        assert_eq!(tally.wrong.load(Ordering::SeqCst), 0, "replies with another value");
        assert!(
            codes
                .keys()
                .all(|&c| c == code::CONN_CLOSED || c == code::HANDLE_TIMEOUT),
            "unexpected failure codes: {codes:?}"
        );
        assert!(ok > sessions, "too few pulls succeeded: {ok}");
        assert!(
            codes.contains_key(&code::CONN_CLOSED) && codes.contains_key(&code::HANDLE_TIMEOUT),
            "both closes and short budgets must have failed pulls: {codes:?}"
        );
        assert!(max <= PULL_BUDGET + SLACK, "slowest pull took {max:?}");
        assert!(
            max_short <= SHORT_BUDGET + SLACK,
            "slowest 5 ms pull took {max_short:?}"
        );

        // No pull is left pending on any session, and the hubs settle on
        // exactly what is still connected: closed sessions left both hubs.
        for client in &clients {
            for session in client.sessions() {
                assert_eq!(session.pending_pulls(), 0, "{session:?}");
            }
        }
        for session in &held {
            assert_eq!(session.pending_pulls(), 0, "{session:?}");
        }
        let settled = eventually(Duration::from_secs(3), || {
            let live = held.iter().filter(|s| !s.is_closed()).count();
            let in_clients: usize = clients.iter().map(Peer::session_count).sum();
            live == in_clients && server.session_count() == in_clients
        })
        .await;
        let live = held.iter().filter(|s| !s.is_closed()).count();
        let in_clients: usize = clients.iter().map(Peer::session_count).sum();
        assert!(
            settled,
            "hubs disagree with the live sessions: {live} live, {in_clients} in the clients' hubs, \
             {} in the server's",
            server.session_count()
        );

        // Closing the clients empties their hubs and, as the server sees the
        // connections end, the server's.
        for client in &clients {
            tokio::time::timeout(Duration::from_secs(5), client.close())
                .await
                .expect("a client's close hung");
            assert_eq!(client.session_count(), 0);
        }
        assert!(held.iter().all(Session::is_closed));
        assert!(
            eventually(Duration::from_secs(5), || server.session_count() == 0).await,
            "the server still has {} sessions",
            server.session_count()
        );
        tokio::time::timeout(Duration::from_secs(5), server.close())
            .await
            .expect("the server's close hung");
    })
    .await;
}

/// The server closes a session while its client has 50 pulls in flight
/// (without deadlines): all 50 end at once with 102, the server drops the
/// 50 handlers, nothing stays pending and both hubs empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closes_a_session_under_50_pulls_in_flight() {
    within(async {
        let started = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut routes = Router::new();
        let (s, d) = (started.clone(), dropped.clone());
        routes
            .pull("/stuck", move |_: PullCtx, _: u64| {
                let (s, d) = (s.clone(), d.clone());
                async move {
                    let guard = DropCount(d);
                    s.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    std::mem::forget(guard);
                    Ok::<_, Status>(0u64)
                }
            })
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 1).await;

        let pulls: Vec<_> = (0..50u64)
            .map(|i| session.async_pull("/stuck", &i, PullOptions::new()))
            .collect();
        assert!(
            eventually(Duration::from_secs(5), || started.load(Ordering::SeqCst)
                == 50)
            .await
        );
        assert_eq!(session.pending_pulls(), 50);

        let closed_at = Instant::now();
        server.sessions()[0].close();
        for pull in pulls {
            let outcome = tokio::time::timeout(Duration::from_secs(2), pull)
                .await
                .expect("a pull outlived its closed session");
            let err = outcome.unwrap_err();
            assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        }
        let took = closed_at.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "the 50 pulls took {took:?} to end"
        );
        assert_eq!(session.pending_pulls(), 0);
        assert!(
            eventually(Duration::from_secs(2), || dropped.load(Ordering::SeqCst)
                == 50)
            .await,
            "only {} of the 50 handlers were stopped",
            dropped.load(Ordering::SeqCst)
        );
        assert!(eventually(Duration::from_secs(2), || session.is_closed()).await);
        wait_sessions(&client, 0).await;
        wait_sessions(&server, 0).await;

        client.close().await;
        server.close().await;
    })
    .await;
}

/// A handler that never finishes (and whose pull has no deadline) does not
/// keep its session from serving other pulls; closing the session from
/// either side ends the hung pull with 102 and drops the handler; closing the
/// peer with a handler still hung does not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_hung_forever_blocks_neither_the_session_nor_its_close() {
    within(async {
        let (tx, mut hung) = mpsc::channel::<Arc<AtomicBool>>(4);
        let mut routes = Router::new();
        routes
            .pull("/hang", move |_: PullCtx| {
                let tx = tx.clone();
                async move {
                    let dropped = Arc::new(AtomicBool::new(false));
                    let _flag = DropFlag(dropped.clone());
                    tx.send(dropped).await.ok();
                    std::future::pending::<()>().await;
                    Ok::<_, Status>(())
                }
            })
            .unwrap();
        routes
            .pull(
                "/echo",
                |_: PullCtx, v: u64| async move { Ok::<_, Status>(v) },
            )
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());

        for server_side in [true, false] {
            let session = client.dial(&addr).await.unwrap();
            let hung_pull = session.async_pull("/hang", &(), PullOptions::new());
            let dropped = hung.recv().await.unwrap();

            // The session serves other pulls meanwhile, concurrently.
            let echoes: Vec<_> = (0..20u64)
                .map(|v| session.async_pull("/echo", &v, PullOptions::new()))
                .collect();
            for (v, echo) in echoes.into_iter().enumerate() {
                let reply = tokio::time::timeout(Duration::from_secs(2), echo)
                    .await
                    .expect("a pull waited behind the hung handler")
                    .unwrap();
                assert_eq!(reply.decode::<u64>().unwrap(), v as u64);
            }
            assert_eq!(session.pending_pulls(), 1);
            assert!(!dropped.load(Ordering::SeqCst));

            if server_side {
                wait_sessions(&server, 1).await;
                let remote = server.sessions().pop().unwrap();
                remote.close();
                tokio::time::timeout(Duration::from_secs(2), remote.closed())
                    .await
                    .expect("closing a session with a hung handler hung");
            } else {
                session.close();
                tokio::time::timeout(Duration::from_secs(2), session.closed())
                    .await
                    .expect("closing a session with a hung handler hung");
            }
            let err = tokio::time::timeout(Duration::from_secs(2), hung_pull)
                .await
                .expect("the hung handler's caller was not told")
                .unwrap_err();
            assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
            assert!(
                eventually(Duration::from_secs(2), || dropped.load(Ordering::SeqCst)).await,
                "the hung handler was not dropped with its session"
            );
            assert_eq!(session.pending_pulls(), 0);
            wait_sessions(&client, 0).await;
            wait_sessions(&server, 0).await;
        }

        // A handler still hung when the peer closes: the close does not wait.
        let session = client.dial(&addr).await.unwrap();
        let hung_pull = session.async_pull("/hang", &(), PullOptions::new());
        let dropped = hung.recv().await.unwrap();
        tokio::time::timeout(Duration::from_secs(3), server.close())
            .await
            .expect("Peer::close waited for a hung handler");
        let err = tokio::time::timeout(Duration::from_secs(2), hung_pull)
            .await
            .expect("the hung handler's caller was not told")
            .unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        assert!(eventually(Duration::from_secs(2), || dropped.load(Ordering::SeqCst)).await);
        wait_sessions(&client, 0).await;
        client.close().await;
    })
    .await;
}

/// How a fake peer dies once it has read a pull.
#[derive(Debug, Clone, Copy)]
enum Death {
    /// Abortive close: the other side gets a reset.
    Reset,
    /// Orderly close after writing half of the reply's frame.
    HalfFrame,
}

/// A fake server that accepts one connection, reads one pull and dies.
async fn dying_server(death: Death) -> (Addr, tokio::task::JoinHandle<Packet>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = Addr::Tcp(listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        let pull = read_frame(&mut conn, &mut buf).await.expect("a pull");
        match death {
            Death::Reset => conn.set_zero_linger().unwrap(),
            Death::HalfFrame => {
                let mut reply = Packet::new(PacketType::Reply, pull.seq, "");
                reply.body_codec = b'j';
                reply.body = bytes::Bytes::from_static(b"\"never whole\"");
                let mut wire = BytesMut::new();
                RawProto::default().encode(&reply, &mut wire).unwrap();
                conn.write_all(&wire[..wire.len() / 2]).await.unwrap();
                conn.flush().await.unwrap();
            }
        }
        drop(conn);
        pull
    });
    (addr, task)
}

/// The other peer's process dies in the middle of a pull: reset by the
/// kernel, or gone after half a reply frame. The pull (without a deadline)
/// ends at once with 102 and the session leaves the hub. The other way
/// round, a client that dies while the server's handler runs: the server's
/// session goes and the handler is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_dies_abruptly_ends_the_pull_with_102() {
    within(async {
        let client = Peer::new(Router::new());
        for death in [Death::Reset, Death::HalfFrame] {
            let (addr, fake) = dying_server(death).await;
            let session = client.dial(&addr).await.unwrap();
            let start = Instant::now();
            let outcome =
                tokio::time::timeout(Duration::from_secs(3), session.pull("/work", &"payload"))
                    .await
                    .unwrap_or_else(|_| panic!("{death:?}: the pull did not end"));
            let took = start.elapsed();
            let err = outcome.unwrap_err();
            assert_eq!(err.code(), code::CONN_CLOSED, "{death:?}: {err}");
            assert!(took < Duration::from_secs(1), "{death:?}: took {took:?}");
            let pull = fake.await.unwrap();
            assert_eq!(pull.uri, "/work");
            assert_eq!(session.pending_pulls(), 0);
            assert!(eventually(Duration::from_secs(2), || session.is_closed()).await);
            wait_sessions(&client, 0).await;
        }
        client.close().await;

        // A client dies (reset) while the server's handler is running.
        let dropped = Arc::new(AtomicBool::new(false));
        let (started_tx, mut started) = mpsc::channel::<()>(1);
        let mut routes = Router::new();
        let d = dropped.clone();
        routes
            .pull("/sum", move |_: PullCtx, _: Vec<i64>| {
                let (d, started_tx) = (d.clone(), started_tx.clone());
                async move {
                    let _flag = DropFlag(d);
                    started_tx.send(()).await.ok();
                    std::future::pending::<()>().await;
                    Ok::<_, Status>(0i64)
                }
            })
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let Addr::Tcp(sa) = addr else { unreachable!() };
        let mut conn = TcpStream::connect(sa).await.unwrap();
        let mut pull = Packet::new(PacketType::Pull, 1, "/sum");
        pull.body_codec = b'j';
        pull.body = bytes::Bytes::from_static(b"[1,2]");
        let mut wire = BytesMut::new();
        RawProto::default().encode(&pull, &mut wire).unwrap();
        conn.write_all(&wire).await.unwrap();
        started.recv().await.unwrap();
        wait_sessions(&server, 1).await;
        conn.set_zero_linger().unwrap();
        drop(conn);
        wait_sessions(&server, 0).await;
        assert!(
            eventually(Duration::from_secs(2), || dropped.load(Ordering::SeqCst)).await,
            "the handler of a dead client's pull kept running"
        );
        server.close().await;
    })
    .await;
}
