//! The heartbeat plugins through real sessions and on the wire.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use jaunt::prelude::*;
use jaunt::socket::Proto;
use jaunt::{Packet, PacketType, RawProto};
use jaunt_plugins::heartbeat::{self, LastActivity, PeerRate, Ping, Pong};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

async fn pong_server() -> (Peer, jaunt::Addr) {
    let mut routes = Router::new();
    heartbeat::routes(&mut routes).unwrap();
    routes
        .pull("/echo", |_: PullCtx, s: String| async move {
            Ok::<_, Status>(s)
        })
        .unwrap();
    let server = Peer::builder(routes).plugin(Pong::new()).build().unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    (server, addr)
}

async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await.ok()?;
    let len = u32::from_be_bytes(prefix) as usize;
    let mut frame = prefix.to_vec();
    frame.resize(len, 0);
    stream.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}

fn decode(frame: &[u8]) -> Packet {
    let mut buf = BytesMut::from(frame);
    RawProto::default().decode(&mut buf).unwrap().unwrap()
}

fn encode(packet: &Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RawProto::default().encode(packet, &mut buf).unwrap();
    buf.to_vec()
}

/// A heartbeat frame as the reference describes it.
fn heartbeat_frame(ptype: PacketType, seq: u8, hb: &[u8]) -> Vec<u8> {
    let meta = [b"hb_=", hb].concat();
    let len = 4 + 1 + 2 + 1 + 1 + 10 + 2 + 6 + 2 + meta.len() + 1;
    [
        &(len as u32).to_be_bytes()[..],
        &[0],             // no filters
        &[1, seq],        // seq, one base-36 digit
        &[ptype.as_u8()], // PULL or PUSH
        &[10],            // uri length
        b"/heartbeat",    // uri
        &[0, 6],          // status length
        b"code=0",        // status
        &(meta.len() as u16).to_be_bytes(),
        &meta,  // meta
        &[106], // codec j, then an empty body
    ]
    .concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_keeps_a_quiet_session_alive() {
    timeout(LIMIT, async {
        let (server, addr) = pong_server().await;
        let client = Peer::builder(Router::new())
            .plugin(Ping::new(Duration::from_secs(1)))
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();
        // Quiet for more than twice the rate: only heartbeats flow.
        tokio::time::sleep(Duration::from_millis(3300)).await;
        assert!(!session.is_closed());
        assert_eq!(server.session_count(), 1);
        let accepted = &server.sessions()[0];
        // The server saw hb_=1 and is watching the session.
        assert_eq!(
            accepted.data().get::<PeerRate>(),
            Some(PeerRate(Duration::from_secs(1)))
        );
        let idle = accepted.data().get::<LastActivity>().unwrap().0.elapsed();
        assert!(idle < Duration::from_millis(1500), "idle for {idle:?}");
        let echo: String = session
            .pull("/echo", &"still here")
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(echo, "still here");
        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pong_closes_a_half_open_session() {
    timeout(LIMIT, async {
        let (server, addr) = pong_server().await;
        let mut raw = TcpStream::connect(addr.to_string()).await.unwrap();
        let started = Instant::now();
        raw.write_all(&heartbeat_frame(PacketType::Pull, b'1', b"1"))
            .await
            .unwrap();
        // The heartbeat pull is answered: REPLY, same seq, code=0, `null`.
        let reply = read_frame(&mut raw).await.unwrap();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 0, 0, 24][..],
            &[0],
            &[1, b'1'],
            &[2],               // REPLY
            &[0],               // empty uri
            &[0, 6], b"code=0",
            &[0, 0],
            &[106],
            b"null",
        ]
        .concat();
        assert_eq!(reply, expected);
        assert_eq!(server.session_count(), 1);
        // Now silent, socket open: the server closes it after 2 × 1 s.
        let mut buf = [0u8; 16];
        let n = timeout(Duration::from_secs(4), raw.read(&mut buf))
            .await
            .expect("the server did not close the silent session")
            .unwrap_or(0);
        assert_eq!(n, 0);
        let after = started.elapsed();
        assert!(
            after >= Duration::from_millis(1900),
            "closed too early: {after:?}"
        );
        assert!(
            after < Duration::from_millis(3200),
            "closed too late: {after:?}"
        );
        timeout(Duration::from_secs(1), async {
            while server.session_count() != 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the session stayed in the hub");
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pong_does_not_watch_sessions_without_heartbeats_and_hb_0_stops_the_watch() {
    timeout(LIMIT, async {
        let (server, addr) = pong_server().await;
        // No heartbeat at all: never closed.
        let quiet = Peer::new(Router::new());
        let quiet_session = quiet.dial(&addr).await.unwrap();
        // A push heartbeat with hb_=1, then hb_=0: the watch stops.
        let mut raw = TcpStream::connect(addr.to_string()).await.unwrap();
        raw.write_all(&heartbeat_frame(PacketType::Push, b'1', b"1"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(server.session_count(), 2);
        let watched = server
            .sessions()
            .into_iter()
            .find(|s| s.data().contains::<PeerRate>())
            .expect("the push heartbeat started a watch");
        raw.write_all(&heartbeat_frame(PacketType::Push, b'2', b"0"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2700)).await;
        assert!(!watched.data().contains::<PeerRate>());
        assert!(!watched.is_closed());
        assert!(!quiet_session.is_closed());
        assert_eq!(server.session_count(), 2);
        drop(raw);
        quiet.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ping_frames_on_the_wire() {
    timeout(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A sub-second rate is announced as hb_=1.
        let client = Peer::builder(Router::new())
            .plugin(Ping::new(Duration::from_millis(200)))
            .build()
            .unwrap();
        let session = client.dial(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        let started = Instant::now();
        let frame = read_frame(&mut conn).await.unwrap();
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150),
            "pinged after {waited:?}"
        );
        assert_eq!(frame, heartbeat_frame(PacketType::Pull, b'1', b"1"));
        let ping = decode(&frame);
        assert_eq!(ping.ptype, PacketType::Pull);
        assert_eq!(ping.uri, "/heartbeat");
        assert_eq!(ping.meta.get_str("hb_"), Some("1"));
        assert_eq!(ping.body_codec, 106);
        assert!(ping.body.is_empty());
        // Answer it as a Go pong would; the next ping uses the next seq.
        let mut reply = Packet::new(PacketType::Reply, ping.seq, "");
        reply.body_codec = b'j';
        reply.body = Bytes::from_static(b"null");
        conn.write_all(&encode(&reply)).await.unwrap();
        let frame = read_frame(&mut conn).await.unwrap();
        assert_eq!(frame, heartbeat_frame(PacketType::Pull, b'2', b"1"));
        // Not answered: the ping side closes the session after 2 × rate.
        timeout(Duration::from_secs(2), session.closed())
            .await
            .expect("the unanswered ping did not close the session");
        client.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pings_announce_whole_seconds_rounded_up() {
    timeout(LIMIT, async {
        assert_eq!(heartbeat::rate_secs(Duration::from_millis(1)), 1);
        assert_eq!(heartbeat::rate_secs(Duration::from_secs(1)), 1);
        assert_eq!(heartbeat::rate_secs(Duration::from_millis(1500)), 2);
        assert_eq!(heartbeat::rate_secs(Duration::from_secs(30)), 30);

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = Peer::builder(Router::new())
            .plugin(Ping::new(Duration::from_millis(150)).use_push())
            .build()
            .unwrap();
        let session = client.dial(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        // An ordinary pull first: it takes seq 1 and counts as activity.
        let pull = session.async_pull("/x", &(), PullOptions::new());
        let first = decode(&read_frame(&mut conn).await.unwrap());
        assert_eq!((first.ptype, first.seq), (PacketType::Pull, 1));
        let mut reply = Packet::new(PacketType::Reply, 1, "");
        reply.body_codec = b'j';
        reply.body = Bytes::from_static(b"1");
        conn.write_all(&encode(&reply)).await.unwrap();
        pull.await.unwrap();
        // Pushes are not answered and the session stays up.
        for seq in [b'2', b'3'] {
            let frame = read_frame(&mut conn).await.unwrap();
            assert_eq!(frame, heartbeat_frame(PacketType::Push, seq, b"1"));
        }
        assert!(!session.is_closed());
        client.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_pong_on_both_sides() {
    timeout(LIMIT, async {
        let mut routes = Router::new();
        heartbeat::routes(&mut routes).unwrap();
        let server = Peer::builder(routes)
            .plugin(Ping::new(Duration::from_millis(300)))
            .plugin(Pong::new())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let mut routes = Router::new();
        heartbeat::routes(&mut routes).unwrap();
        let client = Peer::builder(routes)
            .plugin(Ping::new(Duration::from_millis(300)))
            .plugin(Pong::new())
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!session.is_closed());
        assert_eq!(server.session_count(), 1);
        assert!(session.data().contains::<PeerRate>());
        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

/// The server's default-on idle and first-frame timeouts do not close a
/// long-lived idle session that heartbeats: with `read_timeout` and
/// `first_frame_timeout` at 1.5 s, a client pinging every second stays
/// connected through 4 s of quiet, while one without heartbeats is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_session_past_the_servers_idle_timeout() {
    timeout(LIMIT, async {
        let mut routes = Router::new();
        heartbeat::routes(&mut routes).unwrap();
        let config = jaunt::PeerConfig::builder()
            .read_timeout(Duration::from_millis(1500))
            .first_frame_timeout(Duration::from_millis(1500))
            .build();
        let server = Peer::builder(routes)
            .config(config)
            .plugin(Pong::new())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let pinging = Peer::builder(Router::new())
            .plugin(Ping::new(Duration::from_secs(1)))
            .build()
            .unwrap();
        let silent = Peer::new(Router::new());
        let kept = pinging.dial(&addr).await.unwrap();
        let dropped = silent.dial(&addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(4000)).await;
        assert!(!kept.is_closed(), "the heartbeating session was closed");
        assert!(
            dropped.is_closed(),
            "the silent one outlived the idle timeout"
        );
        assert_eq!(server.session_count(), 1);
        pinging.close().await;
        silent.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}
