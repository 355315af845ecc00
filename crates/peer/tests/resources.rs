//! Resource accounting through real loopback sockets: handler slots shared
//! fairly, byte budgets (write queue, gzip bombs, large bodies never read),
//! no reserving on a frame's header, duplicate seqs, the dropped-frame
//! limit and its log, the first-frame, frame and write timeouts, the listen
//! backlog, and large bodies decoded off the reading task. Bounds are
//! asserted through the library's own accounting (`Peer::stats`).

mod common;

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{eventually, read_frame, wait_sessions, within};
use jaunt_codec::RawBody;
use jaunt_peer::{Addr, Peer, PeerConfig, PullCtx, PullOptions, Router};
use jaunt_socket::{code, Packet, PacketType, Proto, RawProto, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

const MIB: usize = 1 << 20;

async fn server_with(config: PeerConfig, router: Router) -> (Peer, std::net::SocketAddr) {
    let peer = Peer::builder(router).config(config).build().unwrap();
    let Addr::Tcp(addr) = peer.listen("127.0.0.1:0").await.unwrap() else {
        unreachable!()
    };
    (peer, addr)
}

/// One pull frame, as any client would send it.
fn frame(seq: i32, uri: &str, codec: u8, body: &[u8], xfer: &[u8]) -> BytesMut {
    let mut pull = Packet::new(PacketType::Pull, seq, uri);
    pull.body_codec = codec;
    pull.body = Bytes::copy_from_slice(body);
    pull.xfer = xfer.to_vec();
    let mut wire = BytesMut::new();
    RawProto::default().encode(&pull, &mut wire).unwrap();
    wire
}

/// Whether the server closed `conn` (end of stream or reset) within `limit`.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> bool {
    let mut sink = vec![0; 64 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match conn.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A router whose `/hold` pulls wait until `gate` opens, `/echo` answers
/// its raw body at once, and `/big` answers 1 MiB.
fn router(gate: Arc<Notify>, held: Arc<AtomicUsize>) -> Router {
    let mut router = Router::new();
    router
        .pull("/hold", move |_: PullCtx| {
            let (gate, held) = (gate.clone(), held.clone());
            async move {
                held.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                Ok::<_, Status>(0u8)
            }
        })
        .unwrap();
    router
        .pull("/echo", |ctx: PullCtx| async move {
            Ok::<RawBody, Status>(ctx.raw_body())
        })
        .unwrap();
    router
        .pull("/big", |_: PullCtx| async move {
            Ok::<_, Status>(RawBody::new(b's', Bytes::from(vec![b'b'; MIB])))
        })
        .unwrap();
    router
}

/// Three sessions pull far more handlers than the peer has (8): they fill
/// the pool and wait there. A fourth session's pull is still served at once,
/// from its fair share. Without fair sharing it would wait until the others
/// finished, which they never do here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_is_served_while_others_hold_the_handler_pool() {
    within(async {
        let gate = Arc::new(Notify::new());
        let held = Arc::new(AtomicUsize::new(0));
        let config = PeerConfig::builder()
            .max_handlers(8)
            .max_handlers_per_session(8)
            .build();
        let (server, addr) = server_with(config, router(gate.clone(), held.clone())).await;
        let client = Peer::new(Router::new());
        let mut hogs = Vec::new();
        for _ in 0..3 {
            hogs.push(client.dial(addr).await.unwrap());
        }
        let pulls: Vec<_> = (0..24)
            .map(|i| hogs[i % 3].async_pull("/hold", &(), PullOptions::default()))
            .collect();
        assert!(
            eventually(Duration::from_secs(5), || server.stats().handlers >= 8).await,
            "the hogs fill the pool: {:?}",
            server.stats()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let filled = server.stats().handlers;
        assert!(filled <= 2 * 8, "{filled} handlers for a pool of 8");
        assert!(filled < 24, "the pool holds some of the hogs' pulls back");

        let newcomer = client.dial(addr).await.unwrap();
        let reply = newcomer
            .pull_with(
                "/echo",
                &"hi",
                PullOptions::new().timeout(Duration::from_secs(3)),
            )
            .await
            .expect("the newcomer is served while the pool is full");
        assert_eq!(reply.decode::<String>().unwrap(), "hi");
        assert!(server.stats().handlers <= 2 * 8);

        // Let everything go: every held pull gets its reply.
        let release = tokio::spawn({
            let gate = gate.clone();
            async move {
                loop {
                    gate.notify_waiters();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        for pull in pulls {
            pull.await.expect("a held pull is answered once released");
        }
        release.abort();
        assert_eq!(held.load(Ordering::SeqCst), 24);
        client.close().await;
        server.close().await;
    })
    .await;
}

/// A client that pulls 1 MiB replies and never reads them: the server's
/// write queue and handlers stop at the session's byte budget, the client's
/// own writes then block (the server stops reading it), and the write
/// timeout closes the session. Without byte budgets the server would queue
/// 1,024 replies (1 GiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_bounded_in_bytes_and_closed_after_the_write_timeout() {
    within(async {
        let config = PeerConfig::builder()
            .max_session_memory(2 * MIB)
            .write_timeout(Duration::from_millis(1500))
            .build();
        assert!(
            PeerConfig::default().write_timeout.is_some(),
            "on by default"
        );
        let gate = Arc::new(Notify::new());
        let (server, addr) = server_with(config, router(gate, Arc::default())).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let mut sent = 0;
        let mut peak = 0;
        // 300 pulls of 64 KiB, each asking for a 1 MiB reply: far more than
        // the socket buffers hold either way.
        let padding = vec![b'p'; 64 * 1024];
        for seq in 1..=300 {
            let pull = frame(seq, "/big", b's', &padding, &[]);
            let write = tokio::time::timeout(Duration::from_millis(300), conn.write_all(&pull));
            match write.await {
                Ok(Ok(())) => sent += 1,
                _ => break,
            }
            peak = peak.max(server.stats().bytes_held);
        }
        for _ in 0..20 {
            peak = peak.max(server.stats().bytes_held);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = server.stats();
        assert!(
            stats.peak_bytes_held <= 2 * 2 * MIB + 2 * MIB,
            "held {} bytes at the peak (budget 2 MiB each way): {stats:?}",
            stats.peak_bytes_held
        );
        assert!(peak > 0, "the replies were counted");
        // Replies waiting for room count as their handlers' bytes, so the
        // server stopped reading after a couple of 1 MiB replies, not after
        // 2 MiB of requests (32 of them, each then holding 1 MiB).
        assert!(
            stats.handlers <= 4,
            "{} handlers hold replies: {stats:?}",
            stats.handlers
        );
        assert!(
            sent < 300,
            "the server stopped reading the client ({sent} pulls sent)"
        );
        // (Without reading: reading would let the writes go on.)
        assert!(
            eventually(Duration::from_secs(8), || server.session_count() == 0).await,
            "closed by the write timeout"
        );
        drop(conn);
        assert!(
            eventually(Duration::from_secs(2), || server.stats().bytes_held == 0).await,
            "everything given back: {:?}",
            server.stats()
        );
        server.close().await;
    })
    .await;
}

/// Gzip bombs: frames of a few KiB that inflate to 4 MiB each, pipelined
/// and never read. Each inflated body counts at its full size, so the
/// server stops reading after the first ones: what it holds stays near the
/// budget, not at (frames sent × 4 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bombs_count_at_their_inflated_size() {
    within(async {
        let config = PeerConfig::builder().max_session_memory(2 * MIB).build();
        let gate = Arc::new(Notify::new());
        let (server, addr) = server_with(config, router(gate.clone(), Arc::default())).await;
        let zeros = vec![0u8; 4 * MIB];
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let mut written = 0usize;
        for seq in 1..=40 {
            // `/hold`: each handler keeps its inflated body until released.
            let bomb = frame(seq, "/hold", b's', &zeros, b"g");
            assert!(bomb.len() < 64 * 1024, "a bomb is small on the wire");
            let write = tokio::time::timeout(Duration::from_millis(200), conn.write_all(&bomb));
            if !matches!(write.await, Ok(Ok(()))) {
                break;
            }
            written += bomb.len();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let stats = server.stats();
        assert!(
            stats.bytes_in_handlers >= 4 * MIB,
            "inflated size counted: {stats:?}"
        );
        assert!(
            stats.peak_bytes_held <= 2 * MIB + 2 * 4 * MIB + MIB,
            "{stats:?} after {written} bytes of bombs"
        );
        assert!(
            stats.handlers <= 3,
            "reading stopped after the first bombs: {stats:?}"
        );
        drop(conn);
        gate.notify_waiters();
        assert!(
            eventually(Duration::from_secs(5), || {
                gate.notify_waiters();
                server.stats().bytes_held == 0
            })
            .await,
            "{:?}",
            server.stats()
        );
        server.close().await;
    })
    .await;
}

/// 50 connections each send only the 5 bytes of a frame header announcing
/// 16 MiB: the accounting counts what arrived (250 bytes), not what was
/// announced, and gives it back when they close. (That the buffers are not
/// reserved for the announced length either is `address_space.rs`'s test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_announcing_a_large_frame_costs_what_arrived() {
    within(async {
        let (server, addr) = server_with(PeerConfig::default(), Router::new()).await;
        let mut conns = Vec::new();
        for _ in 0..50 {
            let mut conn = TcpStream::connect(addr).await.unwrap();
            let mut header = BytesMut::new();
            header.put_u32((16 * MIB - 1) as u32);
            header.put_u8(0);
            conn.write_all(&header).await.unwrap();
            conns.push(conn);
        }
        assert!(
            eventually(Duration::from_secs(5), || server.stats().bytes_read == 250).await,
            "{:?}",
            server.stats()
        );
        assert!(server.stats().bytes_held < 64 * 1024);
        drop(conns);
        wait_sessions(&server, 0).await;
        assert_eq!(server.stats().bytes_held, 0);
        server.close().await;
    })
    .await;
}

/// Two pulls with the same seq in flight on one session: the second is
/// refused at once with 400 and the first is answered normally; two
/// replies for two pulls, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_seq_in_flight_is_refused_and_the_first_is_answered() {
    within(async {
        let gate = Arc::new(Notify::new());
        let held = Arc::new(AtomicUsize::new(0));
        let (server, addr) =
            server_with(PeerConfig::default(), router(gate.clone(), held.clone())).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(&frame(5, "/hold", b'j', b"", &[]))
            .await
            .unwrap();
        assert!(eventually(Duration::from_secs(5), || held.load(Ordering::SeqCst) == 1).await);
        conn.write_all(&frame(5, "/hold", b'j', b"", &[]))
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        let refused = read_frame(&mut conn, &mut buf).await.unwrap();
        assert_eq!(refused.seq, 5);
        assert_eq!(
            refused.status.code(),
            code::BAD_MESSAGE,
            "{}",
            refused.status
        );
        assert_eq!(
            held.load(Ordering::SeqCst),
            1,
            "the duplicate's handler did not run"
        );
        gate.notify_waiters();
        let answered = read_frame(&mut conn, &mut buf).await.unwrap();
        assert_eq!(answered.seq, 5);
        assert!(answered.status.is_ok(), "{}", answered.status);
        assert_eq!(&answered.body[..], b"0");
        server.close().await;
    })
    .await;
}

/// A frame whose seq is not base-36 (dropped whole, the stream intact).
fn bad_seq_frame(seq: i32) -> BytesMut {
    let mut wire = frame(seq, "/echo", b'j', b"1", &[]);
    // length (4), filter count (1), seq length (1), then the seq itself.
    wire[6] = b'!';
    wire
}

/// A log sink for the dropped-frame test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Malformed frames: 2,000 in a row with no limit are all dropped, counted,
/// and logged a few times, not 2,000 times; with `max_dropped_frames = 5`
/// the fifth in a row closes the connection, and a good frame in between
/// starts the count again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_frames_are_counted_rate_logged_and_too_many_in_a_row_close() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let log = log.clone();
            move || log.clone()
        })
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    // Global: the server's tasks log from the runtime's worker threads. No
    // other test of this binary drops frames.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    within(async {
        let config = PeerConfig::builder().max_dropped_frames(0).build();
        let (server, addr) = server_with(config, router(Arc::default(), Arc::default())).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let mut flood = BytesMut::new();
        for seq in 0..2000 {
            flood.extend_from_slice(&bad_seq_frame(seq));
        }
        conn.write_all(&flood).await.unwrap();
        conn.write_all(&frame(1, "/echo", b'j', b"7", &[]))
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        let reply = read_frame(&mut conn, &mut buf).await.unwrap();
        assert_eq!(&reply.body[..], b"7", "the connection goes on");
        assert_eq!(server.stats().frames_dropped, 2000);
        let lines = String::from_utf8_lossy(&log.0.lock().unwrap())
            .lines()
            .filter(|line| line.contains("malformed frame"))
            .count();
        assert!(
            (1..=5).contains(&lines),
            "{lines} log lines for 2,000 dropped frames"
        );
        server.close().await;

        let config = PeerConfig::builder().max_dropped_frames(5).build();
        let (server, addr) = server_with(config, router(Arc::default(), Arc::default())).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        for seq in 0..4 {
            conn.write_all(&bad_seq_frame(seq)).await.unwrap();
        }
        conn.write_all(&frame(9, "/echo", b'j', b"9", &[]))
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        let reply = read_frame(&mut conn, &mut buf)
            .await
            .expect("4 in a row: still open");
        assert_eq!(reply.seq, 9);
        for seq in 10..15 {
            conn.write_all(&bad_seq_frame(seq)).await.unwrap();
        }
        assert!(
            closed_within(&mut conn, Duration::from_secs(5)).await,
            "5 in a row close the connection"
        );
        server.close().await;
    })
    .await;
}

/// An accepted connection that never sends a whole frame is closed after
/// `first_frame_timeout`; one that starts a frame and stalls, after
/// `frame_timeout`; a session that keeps talking outlives both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_stalled_connections_are_closed_active_ones_stay() {
    within(async {
        let defaults = PeerConfig::default();
        assert!(defaults.first_frame_timeout.is_some() && defaults.frame_timeout.is_some());
        assert!(defaults.read_timeout.is_some() && defaults.max_sessions.is_some());
        let config = PeerConfig::builder()
            .first_frame_timeout(Duration::from_millis(300))
            .frame_timeout(Duration::from_millis(300))
            .read_timeout(Duration::from_millis(600))
            .build();
        let (server, addr) = server_with(config, router(Arc::default(), Arc::default())).await;

        let mut silent = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut silent, Duration::from_secs(3)).await,
            "never spoke"
        );

        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled
            .write_all(&frame(1, "/echo", b'j', b"1", &[]))
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        read_frame(&mut stalled, &mut buf)
            .await
            .expect("a first frame");
        let half = frame(2, "/echo", b'j', b"2", &[]);
        stalled.write_all(&half[..8]).await.unwrap();
        let started = std::time::Instant::now();
        assert!(
            closed_within(&mut stalled, Duration::from_secs(3)).await,
            "a stalled frame"
        );
        assert!(
            started.elapsed() < Duration::from_millis(580),
            "closed by the frame timeout, not the idle one: {:?}",
            started.elapsed()
        );

        let mut active = TcpStream::connect(addr).await.unwrap();
        for seq in 1..=12 {
            active
                .write_all(&frame(seq, "/echo", b'j', b"3", &[]))
                .await
                .unwrap();
            let reply = read_frame(&mut active, &mut buf).await;
            assert!(reply.is_some(), "an active session stays ({seq})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.close().await;
    })
    .await;
}

/// A burst of connections that the accept loop has not taken yet waits in
/// the listen backlog: 600 connects complete while the (single-threaded)
/// runtime is busy, with the default backlog. With `listen_backlog = 16` the
/// queue overflows and connects fail, which is what tokio's default of 128
/// did to a burst of 5,000.
#[tokio::test(flavor = "current_thread")]
async fn the_listen_backlog_takes_a_burst_of_connections() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map(|s| s.trim().parse().unwrap_or(0))
        .unwrap_or(0);
    let (server, addr) = server_with(PeerConfig::default(), Router::new()).await;
    // No await until they are all connected: the accept loop cannot run.
    let burst = somaxconn.min(600) as usize;
    let connected = (0..burst)
        .filter(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
        .count();
    assert_eq!(connected, burst, "backlog {somaxconn}");
    server.close().await;

    let config = PeerConfig::builder().listen_backlog(16).build();
    let (server, addr) = server_with(config, Router::new()).await;
    let mut kept = Vec::new();
    let mut refused = false;
    for _ in 0..64 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(conn) => kept.push(conn),
            Err(_) => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "{} connects fitted a backlog of 16", kept.len());
    drop(kept);
    server.close().await;
    let _ = std::io::stdout().flush();
}

/// A body over `inline_body_limit` is decoded off the reading task: while
/// one session's large body takes 600 ms to decode, another session on the
/// same single worker thread is served. (Decoded inline, the worker would
/// be blocked for those 600 ms.)
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_large_body_is_decoded_off_the_reading_task() {
    within(async {
        static DECODING: AtomicBool = AtomicBool::new(false);
        /// A body whose decoding takes 600 ms of CPU (here: a sleep).
        struct SlowToDecode;
        impl<'de> serde::Deserialize<'de> for SlowToDecode {
            fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                DECODING.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(600));
                let _ = serde::de::IgnoredAny::deserialize(de)?;
                DECODING.store(false, Ordering::SeqCst);
                Ok(SlowToDecode)
            }
        }
        let served_during_decode = Arc::new(AtomicBool::new(false));
        let mut router = Router::new();
        router
            .pull("/slow-decode", |_: PullCtx, _: SlowToDecode| async move {
                Ok::<_, Status>(1u8)
            })
            .unwrap();
        let during = served_during_decode.clone();
        router
            .pull("/quick", move |_: PullCtx| {
                let during = during.clone();
                async move {
                    if DECODING.load(Ordering::SeqCst) {
                        during.store(true, Ordering::SeqCst);
                    }
                    Ok::<_, Status>(2u8)
                }
            })
            .unwrap();
        let config = PeerConfig::builder().inline_body_limit(1024).build();
        let (server, addr) = server_with(config, router).await;
        let client = Peer::new(Router::new());
        let big = client.dial(addr).await.unwrap();
        let quick = client.dial(addr).await.unwrap();
        let body: Vec<u32> = (0..2000).collect();
        let slow = big.async_pull("/slow-decode", &body, PullOptions::default());
        assert!(eventually(Duration::from_secs(5), || DECODING.load(Ordering::SeqCst)).await);
        let reply = quick.pull("/quick", &()).await.unwrap();
        assert_eq!(reply.decode::<u8>().unwrap(), 2);
        assert!(
            served_during_decode.load(Ordering::SeqCst),
            "the other session waited for the decode"
        );
        assert_eq!(slow.await.unwrap().decode::<u8>().unwrap(), 1);
        client.close().await;
        server.close().await;
    })
    .await;
}
