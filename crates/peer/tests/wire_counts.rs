//! Wire counters: the bytes and frames a session's connections carried
//! (`SessionStats`), the peer's totals over live and closed sessions
//! (`PeerStats`), and the per-session maxima that show one slow session.
//! Real sockets on loopback; a raw TCP client where the exact bytes matter.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{eventually, tcp_server, wait_sessions, within};
use jaunt_peer::{Addr, Peer, PeerStats, PullCtx, Router, Session, SessionStats};
use jaunt_socket::{Packet, PacketType, Proto, RawProto, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const WAIT: Duration = Duration::from_secs(5);

/// The router of these tests: `/echo` answers its body (a JSON string).
fn echo_router() -> Router {
    let mut routes = Router::new();
    routes
        .pull("/echo", |_: PullCtx, text: String| async move {
            Ok::<_, Status>(text)
        })
        .unwrap();
    routes
}

/// A pull of `/echo` with `text`, encoded by the default proto.
fn echo_pull(seq: i32, text: &str) -> BytesMut {
    let mut pull = Packet::new(PacketType::Pull, seq, "/echo");
    pull.body_codec = b'j';
    pull.body = Bytes::from(serde_json::to_vec(text).unwrap());
    let mut wire = BytesMut::new();
    RawProto::default().encode(&pull, &mut wire).unwrap();
    wire
}

/// Reads whole frames until `n` have arrived; returns them and the bytes
/// read (every byte the socket delivered).
async fn read_frames(conn: &mut TcpStream, n: usize) -> (Vec<Packet>, usize) {
    let mut buf = BytesMut::new();
    let mut read = 0;
    let mut frames = Vec::new();
    while frames.len() < n {
        while let Some(packet) = RawProto::default().decode(&mut buf).unwrap() {
            frames.push(packet);
        }
        if frames.len() == n {
            break;
        }
        let got = conn.read_buf(&mut buf).await.unwrap();
        assert!(got > 0, "the server closed the connection");
        read += got;
    }
    assert!(
        buf.is_empty(),
        "more bytes arrived than the frames expected"
    );
    (frames, read)
}

/// The wire counters of a session's stats.
fn wire(stats: &SessionStats) -> [u64; 4] {
    [
        stats.received_bytes,
        stats.received_frames,
        stats.sent_bytes,
        stats.sent_frames,
    ]
}

/// The wire totals of a peer's stats.
fn totals(stats: &PeerStats) -> [u64; 4] {
    [
        stats.received_bytes,
        stats.received_frames,
        stats.sent_bytes,
        stats.sent_frames,
    ]
}

fn only_session(peer: &Peer) -> Session {
    let sessions = peer.sessions();
    assert_eq!(sessions.len(), 1);
    sessions[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_bytes_and_frames_are_counted_exactly_and_stay_after_close() {
    within(async {
        let (server, addr) = tcp_server(echo_router()).await;
        let Addr::Tcp(sa) = addr else { unreachable!() };
        let mut conn = TcpStream::connect(sa).await.unwrap();

        // Three pulls of different sizes, in one write.
        let texts = ["a", &"b".repeat(300), &"c".repeat(70_000)];
        let mut written = 0u64;
        let mut burst = BytesMut::new();
        for (seq, text) in (1..).zip(texts) {
            burst.extend_from_slice(&echo_pull(seq, text));
        }
        written += burst.len() as u64;
        conn.write_all(&burst).await.unwrap();
        let (replies, read) = read_frames(&mut conn, 3).await;
        assert!(replies.iter().all(|r| r.status.is_ok()));
        let mut read = read as u64;

        // A malformed frame (an unknown transfer filter): dropped by the
        // server, but it crossed the wire. Then one more pull, whose reply
        // tells that the malformed frame was read before it.
        let malformed = [0u8, 0, 0, 10, 1, 0xEE, 1, 2, 3, 4];
        conn.write_all(&malformed).await.unwrap();
        written += malformed.len() as u64;
        let last = echo_pull(4, "d");
        conn.write_all(&last).await.unwrap();
        written += last.len() as u64;
        let (reply, more) = read_frames(&mut conn, 1).await;
        assert_eq!(reply[0].seq, 4);
        read += more as u64;

        let session = only_session(&server);
        assert_eq!(session.stats().frames_dropped, 1);
        let expected = [written, 5, read, 4];
        // (A sent byte counts right after the write that sent it: allow the
        // server that moment.)
        assert!(
            eventually(WAIT, || wire(&session.stats()) == expected).await,
            "session counts {:?}, expected {expected:?}",
            wire(&session.stats())
        );
        assert_eq!(totals(&server.stats()), expected);

        // The session closes: the totals keep its counts, never going back.
        drop(conn);
        let mut lowest = expected;
        let gone = eventually(WAIT, || {
            let now = totals(&server.stats());
            for (low, now) in lowest.iter_mut().zip(now) {
                assert!(now >= *low, "a total went backwards: {now} < {low}");
                *low = now;
            }
            server.session_count() == 0
        })
        .await;
        assert!(gone, "the session did not close");
        let after = server.stats();
        assert_eq!(totals(&after), expected);
        assert_eq!(after.sessions, 0);

        // A second connection adds to the totals.
        let mut conn = TcpStream::connect(sa).await.unwrap();
        let pull = echo_pull(1, "again");
        conn.write_all(&pull).await.unwrap();
        let (_, read2) = read_frames(&mut conn, 1).await;
        let expected2 = [written + pull.len() as u64, 6, read + read2 as u64, 5];
        assert!(
            eventually(WAIT, || totals(&server.stats()) == expected2).await,
            "totals {:?}, expected {expected2:?}",
            totals(&server.stats())
        );
        drop(conn);
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialed_session_and_its_server_count_the_same_bytes() {
    within(async {
        let mut routes = echo_router();
        routes
            .push("/note", |_: jaunt_peer::PushCtx, _: String| async {})
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        for n in 0..20 {
            let text = "x".repeat(n * 997);
            let reply: String = session
                .pull("/echo", &text)
                .await
                .unwrap()
                .decode()
                .unwrap();
            assert_eq!(reply, text);
        }
        session.push("/note", &"hello".to_owned()).await.unwrap();
        // A pull that fails still crosses the wire both ways.
        assert!(session.pull("/missing", &()).await.is_err());
        wait_sessions(&server, 1).await;
        let served = only_session(&server);
        let matched = eventually(WAIT, || {
            let (c, s) = (session.stats(), served.stats());
            c.sent_bytes == s.received_bytes
                && c.received_bytes == s.sent_bytes
                && c.sent_frames == s.received_frames
                && c.received_frames == s.sent_frames
        })
        .await;
        let (c, s) = (session.stats(), served.stats());
        assert!(matched, "client {:?} vs server {:?}", wire(&c), wire(&s));
        // 20 pulls, a push and a failed pull; 21 replies.
        assert_eq!((c.sent_frames, c.received_frames), (22, 21));
        assert!(c.sent_bytes > (0..20).map(|n| n as u64 * 997).sum::<u64>());
        assert_eq!(totals(&client.stats()), wire(&c));
        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_whose_writes_back_up_shows_in_the_maxima() {
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let Addr::Tcp(sa) = addr else { unreachable!() };
        // One raw client never reads; the other is idle.
        let stuck = TcpStream::connect(sa).await.unwrap();
        let idle = TcpStream::connect(sa).await.unwrap();
        wait_sessions(&server, 2).await;
        let stuck_session = server
            .get_session(&stuck.local_addr().unwrap().to_string())
            .unwrap();
        let idle_session = server
            .get_session(&idle.local_addr().unwrap().to_string())
            .unwrap();

        // Push to the stuck client until its frames wait in the queue (the
        // socket buffers fill first).
        let pusher = {
            let session = stuck_session.clone();
            tokio::spawn(async move {
                let body = "p".repeat(256 * 1024);
                for _ in 0..256 {
                    if session.push("/flood", &body).await.is_err() {
                        break;
                    }
                }
            })
        };
        let backed_up = eventually(WAIT, || stuck_session.stats().bytes_queued > 0).await;
        assert!(backed_up, "the stuck session's writes never queued");
        // The maximum is the stuck session's; the idle one queues nothing.
        let settled = eventually(WAIT, || {
            let stats = server.stats();
            stats.max_session_bytes_queued > 0
                && stats.max_session_bytes_queued == stuck_session.stats().bytes_queued
                && stats.max_session_bytes_queued == stats.bytes_queued
        })
        .await;
        assert!(settled, "maxima {:?}", server.stats());
        assert_eq!(idle_session.stats().bytes_queued, 0);
        // What went onto the socket is counted as it goes.
        assert!(stuck_session.stats().sent_bytes > 0);
        assert_eq!(idle_session.stats().sent_bytes, 0);
        pusher.abort();
        drop((stuck, idle));
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_pulls_and_handlers_maxima_show_the_busy_session() {
    within(async {
        let gate = Arc::new(Semaphore::new(0));
        let mut routes = Router::new();
        let g = gate.clone();
        routes
            .pull("/slow", move |_: PullCtx, n: i64| {
                let g = g.clone();
                async move {
                    g.acquire().await.unwrap().forget();
                    Ok::<_, Status>(n)
                }
            })
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());
        let busy = client.dial(&addr).await.unwrap();
        let quiet = client.dial(&addr).await.unwrap();
        let mut calls = Vec::new();
        for (session, n) in [(&busy, 3), (&quiet, 1)] {
            for i in 0..n {
                let session = session.clone();
                calls.push(tokio::spawn(async move {
                    session.pull("/slow", &i).await.map(|_| ())
                }));
            }
        }
        let waiting = eventually(WAIT, || {
            server.stats().handlers == 4 && client.stats().pending_pulls == 4
        })
        .await;
        assert!(waiting, "the pulls did not all reach their handlers");
        let (c, s) = (client.stats(), server.stats());
        assert_eq!(c.max_session_pending_pulls, 3);
        assert_eq!(s.max_session_handlers, 3);
        assert_eq!(s.pending_pulls, 0);
        assert_eq!(busy.stats().pending_pulls, 3);
        assert_eq!(quiet.stats().pending_pulls, 1);

        gate.add_permits(4);
        for call in calls {
            call.await.unwrap().unwrap();
        }
        let (c, s) = (client.stats(), server.stats());
        assert_eq!((c.pending_pulls, c.max_session_pending_pulls), (0, 0));
        assert!(
            eventually(WAIT, || server.stats().max_session_handlers == 0).await,
            "handlers still counted: {s:?}"
        );
        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_closing_session_flushes_joins_the_totals() {
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let Addr::Tcp(sa) = addr else { unreachable!() };
        let mut conn = TcpStream::connect(sa).await.unwrap();
        wait_sessions(&server, 1).await;
        let session = only_session(&server);
        let pusher = {
            let session = session.clone();
            tokio::spawn(async move {
                let body = "q".repeat(64 * 1024);
                for _ in 0..200 {
                    if session.push("/flood", &body).await.is_err() {
                        break;
                    }
                }
            })
        };
        // Frames wait in the queue (the client has not read yet), then the
        // session closes: the queue is flushed as the client reads.
        let queued = eventually(WAIT, || session.stats().bytes_queued > 0).await;
        assert!(queued, "nothing was queued");
        session.close();
        let mut read = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            read += n as u64;
        }
        session.closed().await;
        pusher.await.unwrap();
        assert_eq!(server.session_count(), 0);
        assert_eq!(session.stats().sent_bytes, read);
        assert_eq!(server.stats().sent_bytes, read);
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redialing_session_keeps_counting_on_its_new_connection() {
    within(async {
        let (server, addr) = tcp_server(echo_router()).await;
        let redial = jaunt_peer::RedialConfig::builder()
            .interval(Duration::from_millis(20))
            .max_attempts(None)
            .build();
        let client = Peer::builder(Router::new())
            .config(jaunt_peer::PeerConfig::builder().redial(redial).build())
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();
        let _: String = session
            .pull("/echo", &"one")
            .await
            .unwrap()
            .decode()
            .unwrap();
        let first = session.stats();
        assert_eq!((first.sent_frames, first.received_frames), (1, 1));

        // The server drops the connection; the client redials.
        let mut state = session.watch_state();
        only_session(&server).close();
        let redialed = tokio::time::timeout(WAIT, async {
            loop {
                if matches!(
                    *state.borrow_and_update(),
                    jaunt_peer::SessionState::Connected { generation: 2 }
                ) {
                    break;
                }
                state.changed().await.unwrap();
            }
        })
        .await;
        assert!(redialed.is_ok(), "the session did not redial");
        let _: String = session
            .pull("/echo", &"two")
            .await
            .unwrap()
            .decode()
            .unwrap();
        let after = session.stats();
        assert_eq!((after.sent_frames, after.received_frames), (2, 2));
        assert!(after.sent_bytes > first.sent_bytes);
        // The server had two sessions; its totals hold both, and match.
        let matched = eventually(WAIT, || {
            let s = server.stats();
            [
                s.received_bytes,
                s.received_frames,
                s.sent_bytes,
                s.sent_frames,
            ] == [after.sent_bytes, 2, after.received_bytes, 2]
        })
        .await;
        assert!(matched, "server {:?} vs client {:?}", server.stats(), after);
        assert_eq!(totals(&client.stats()), wire(&after));
        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_displaced_by_a_new_id_stays_in_the_totals() {
    within(async {
        let (server, addr) = tcp_server(echo_router()).await;
        let Addr::Tcp(sa) = addr else { unreachable!() };
        let mut a = TcpStream::connect(sa).await.unwrap();
        let mut b = TcpStream::connect(sa).await.unwrap();
        for conn in [&mut a, &mut b] {
            conn.write_all(&echo_pull(1, "hi")).await.unwrap();
            read_frames(conn, 1).await;
        }
        wait_sessions(&server, 2).await;
        // (A sent frame counts right after its write: allow that moment.)
        let counted = eventually(WAIT, || totals(&server.stats())[3] == 2).await;
        assert!(counted, "{:?}", server.stats());
        let before = totals(&server.stats());
        assert_eq!(before[1], 2);
        // Held here, so neither session's counters are dropped: the totals
        // must keep the displaced one's counts by themselves.
        let session_a = server
            .get_session(&a.local_addr().unwrap().to_string())
            .unwrap();
        let session_b = server
            .get_session(&b.local_addr().unwrap().to_string())
            .unwrap();
        session_b.set_id(session_a.id());
        assert!(session_a.is_closed());
        assert_eq!(server.session_count(), 1);
        assert_eq!(totals(&server.stats()), before);
        drop((a, b));
        server.close().await;
    })
    .await;
}
