//! The auth plugin through real sessions and on the wire.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use jaunt::prelude::*;
use jaunt::socket::Proto;
use jaunt::{Packet, PacketType, RawProto};
use jaunt_plugins::auth::{AuthReply, Bearer, Checker, Credentials};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

/// A server whose `/seq` route returns the pull's seq and records that it ran.
async fn server(checker: Checker, ran: Arc<AtomicBool>) -> (Peer, jaunt::Addr) {
    let mut routes = Router::new();
    routes
        .pull("/seq", move |ctx: PullCtx| {
            let ran = ran.clone();
            async move {
                ran.store(true, Ordering::SeqCst);
                Ok::<_, Status>(ctx.seq())
            }
        })
        .unwrap();
    let server = Peer::builder(routes).plugin(checker).build().unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    (server, addr)
}

async fn wait_no_sessions(peer: &Peer) {
    timeout(Duration::from_secs(3), async {
        while peer.session_count() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server still has sessions");
}

/// Reads one whole raw frame (length prefix included); `None` at EOF.
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

/// Waits for the other side to close: EOF (or reset) and no frame.
async fn expect_closed_without_reply(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let n = timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("the connection was not closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "the server answered: {:?}", &buf[..n]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_credentials_open_the_session() {
    timeout(LIMIT, async {
        let ran = Arc::new(AtomicBool::new(false));
        let (server, addr) = server(Checker::expect("s3cret"), ran.clone()).await;
        let client = Peer::builder(Router::new())
            .plugin(Bearer::new("s3cret"))
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();
        assert_eq!(
            session.data().get::<AuthReply>(),
            Some(AuthReply(json!("ok")))
        );
        // The AUTH_PULL took seq 1: the first ordinary pull is seq 2.
        let seq: i32 = session.pull("/seq", &()).await.unwrap().decode().unwrap();
        assert_eq!(seq, 2);
        let seq: i32 = session.pull("/seq", &()).await.unwrap().decode().unwrap();
        assert_eq!(seq, 3);
        assert!(ran.load(Ordering::SeqCst));
        let accepted = server.sessions();
        assert_eq!(accepted.len(), 1);
        assert_eq!(
            accepted[0].data().get::<Credentials>(),
            Some(Credentials(json!("s3cret")))
        );
        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_checker_with_structured_credentials_stores_identity() {
    #[derive(Clone, Debug, PartialEq)]
    struct UserId(u64);

    timeout(LIMIT, async {
        let checker = Checker::new_async(|session: Session, creds: Value| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            match (creds["user"].as_u64(), creds["pass"].as_str()) {
                (Some(id), Some("pw")) => {
                    session.data().insert(UserId(id));
                    Ok(())
                }
                _ => Err(format!("bad password for {}", creds["user"])),
            }
        });
        let mut routes = Router::new();
        routes
            .pull("/me", |ctx: PullCtx| async move {
                Ok::<_, Status>(ctx.session().data().get::<UserId>().map(|u| u.0))
            })
            .unwrap();
        let server = Peer::builder(routes).plugin(checker).build().unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();

        #[derive(serde::Serialize)]
        struct Login<'a> {
            user: u64,
            pass: &'a str,
        }
        let client = Peer::builder(Router::new())
            .plugin(
                Bearer::from_serialize(&Login {
                    user: 42,
                    pass: "pw",
                })
                .unwrap(),
            )
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();
        let me: Option<u64> = session.pull("/me", &()).await.unwrap().decode().unwrap();
        assert_eq!(me, Some(42));

        let wrong = Peer::builder(Router::new())
            .plugin(Bearer::new(json!({"user": 7, "pass": "nope"})))
            .build()
            .unwrap();
        let err = wrong.dial(&addr).await.unwrap_err();
        assert_eq!(err.code(), code::DIAL_FAILED);
        assert!(err.cause().unwrap().contains("bad password for 7"), "{err}");

        wrong.close().await;
        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_the_dial_with_105_and_the_reason() {
    timeout(LIMIT, async {
        let ran = Arc::new(AtomicBool::new(false));
        let checker = Checker::new(|_, creds| match creds.as_str() {
            Some("s3cret") => Ok(()),
            _ => Err(format!("unknown token {creds}")),
        });
        let (server, addr) = server(checker, ran.clone()).await;
        let client = Peer::builder(Router::new())
            .plugin(Bearer::new("guess"))
            .build()
            .unwrap();
        let err = client.dial(&addr).await.unwrap_err();
        assert_eq!(err.code(), code::DIAL_FAILED);
        let cause = err.cause().unwrap();
        assert!(cause.contains("401"), "{cause}");
        assert!(cause.contains("Unauthorized"), "{cause}");
        assert!(cause.contains("unknown token \"guess\""), "{cause}");
        assert_eq!(client.session_count(), 0);
        wait_no_sessions(&server).await;
        assert!(!ran.load(Ordering::SeqCst));
        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_auth_is_closed_before_any_handler_runs() {
    timeout(LIMIT, async {
        let ran = Arc::new(AtomicBool::new(false));
        let (server, addr) = server(Checker::expect("s3cret"), ran.clone()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        let err = session.pull("/seq", &()).await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        assert!(!ran.load(Ordering::SeqCst), "the handler ran");
        wait_no_sessions(&server).await;
        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_reachable_before_authentication() {
    timeout(LIMIT, async {
        let ran = Arc::new(AtomicBool::new(false));
        let (server, addr) = server(Checker::expect("s3cret"), ran.clone()).await;
        let mut raw = TcpStream::connect(addr.to_string()).await.unwrap();
        let mut pull = Packet::new(PacketType::Pull, 1, "/seq");
        pull.body_codec = b'j';
        raw.write_all(&encode(&pull)).await.unwrap();
        expect_closed_without_reply(&mut raw).await;
        assert!(!ran.load(Ordering::SeqCst), "the handler ran");
        wait_no_sessions(&server).await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_pull_on_the_wire() {
    timeout(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = Peer::builder(Router::new())
            .plugin(Bearer::new("tok"))
            .build()
            .unwrap();
        let dialer = client.clone();
        let dial = tokio::spawn(async move { dialer.dial(addr).await });
        let (mut conn, _) = listener.accept().await.unwrap();

        let frame = read_frame(&mut conn).await.unwrap();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 0, 0, 25][..], // frame length, counting itself
            &[0],               // no filters
            &[1, b'1'],         // seq "1"
            &[4],               // AUTH_PULL
            &[0],               // empty uri
            &[0, 6], b"code=0", // status
            &[0, 0],            // no meta
            &[106],             // codec j
            b"\"tok\"",         // JSON body
        ]
        .concat();
        assert_eq!(frame, expected);
        let packet = decode(&frame);
        assert_eq!(packet.ptype, PacketType::AuthPull);
        assert_eq!(packet.seq, 1);
        assert_eq!(packet.uri, "");
        assert!(packet.status.is_ok());
        assert!(packet.meta.is_empty());
        assert_eq!(packet.body_codec, 106);
        assert_eq!(&packet.body[..], b"\"tok\"");

        // Answer as Go's checker does, with the server's own seq 1.
        conn.write_all(&encode(&Checker::auth_reply(1, Ok(()))))
            .await
            .unwrap();
        let session = dial.await.unwrap().unwrap();
        // The next frame the client sends is an ordinary pull with seq 2.
        let pending = session.async_pull("/x", &(), PullOptions::new());
        let frame = read_frame(&mut conn).await.unwrap();
        let pull = decode(&frame);
        assert_eq!(
            (pull.ptype, pull.seq, pull.uri.as_str()),
            (PacketType::Pull, 2, "/x")
        );
        drop(conn);
        assert_eq!(pending.await.unwrap_err().code(), code::CONN_CLOSED);
        client.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_replies_on_the_wire() {
    timeout(LIMIT, async {
        let ran = Arc::new(AtomicBool::new(false));
        let (server, addr) = server(Checker::expect("s3cret"), ran.clone()).await;

        // Accepted: AUTH_REPLY seq 1, code=0, codec j, body "ok".
        let mut raw = TcpStream::connect(addr.to_string()).await.unwrap();
        let mut auth = Packet::new(PacketType::AuthPull, 7, "");
        auth.body_codec = b'j';
        auth.body = Bytes::from_static(b"\"s3cret\"");
        raw.write_all(&encode(&auth)).await.unwrap();
        let frame = read_frame(&mut raw).await.unwrap();
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &[0, 0, 0, 24][..],
            &[0],
            &[1, b'1'],         // the server's own seq, not 7
            &[5],               // AUTH_REPLY
            &[0],
            &[0, 6], b"code=0",
            &[0, 0],
            &[106],
            b"\"ok\"",
        ]
        .concat();
        assert_eq!(frame, expected);
        // Normal traffic follows.
        let mut pull = Packet::new(PacketType::Pull, 8, "/seq");
        pull.body_codec = b'j';
        raw.write_all(&encode(&pull)).await.unwrap();
        let reply = decode(&read_frame(&mut raw).await.unwrap());
        assert_eq!((reply.ptype, reply.seq), (PacketType::Reply, 8));
        assert_eq!(&reply.body[..], b"8");
        drop(raw);

        // Rejected: AUTH_REPLY with 401, empty body, then the connection closes.
        let mut raw = TcpStream::connect(addr.to_string()).await.unwrap();
        let mut auth = Packet::new(PacketType::AuthPull, 1, "");
        auth.body_codec = b'j';
        auth.body = Bytes::from_static(b"\"wrong\"");
        raw.write_all(&encode(&auth)).await.unwrap();
        let frame = read_frame(&mut raw).await.unwrap();
        let status = b"code=401&msg=Unauthorized&cause=invalid%20credentials";
        let mut expected = Vec::new();
        expected.extend_from_slice(
            &(4 + 1 + 2 + 1 + 1 + 2 + status.len() as u32 + 2 + 1).to_be_bytes(),
        );
        expected.extend_from_slice(&[0, 1, b'1', 5, 0]);
        expected.extend_from_slice(&(status.len() as u16).to_be_bytes());
        expected.extend_from_slice(status);
        expected.extend_from_slice(&[0, 0, 106]);
        assert_eq!(frame, expected);
        expect_closed_without_reply(&mut raw).await;
        wait_no_sessions(&server).await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_against_a_server_without_auth_fails_the_dial() {
    timeout(LIMIT, async {
        let server = Peer::new(Router::new());
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::builder(Router::new())
            .plugin(Bearer::new("s3cret"))
            .build()
            .unwrap();
        // The server drops a connection whose first frame is an AUTH_PULL.
        let err = client.dial(&addr).await.unwrap_err();
        assert_eq!(err.code(), code::DIAL_FAILED, "{err}");
        assert_eq!(client.session_count(), 0);
        wait_no_sessions(&server).await;
        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

/// `Checker::expect` (which compares digests in constant time) accepts the
/// exact token and refuses a wrong one of the same length, shorter and
/// longer ones, and another type; structured credentials match whatever
/// the order of their keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_accepts_only_the_exact_credentials() {
    timeout(LIMIT, async {
        let ran = Arc::new(AtomicBool::new(false));
        let (server, addr) = server(Checker::expect("s3cret-token"), ran.clone()).await;
        let dial = |credentials: Value| {
            let addr = addr.clone();
            async move {
                let client = Peer::builder(Router::new())
                    .plugin(Bearer::new(credentials))
                    .build()
                    .unwrap();
                let outcome = client.dial(&addr).await.map(|_| ());
                client.close().await;
                outcome
            }
        };
        dial(json!("s3cret-token")).await.unwrap();
        for wrong in [
            json!("s3cret-tokeN"), // same length, last byte differs
            json!("x3cret-token"), // same length, first byte differs
            json!("s3cret-toke"),  // a prefix
            json!("s3cret-token!"),
            json!(""),
            json!(["s3cret-token"]),
        ] {
            let err = dial(wrong.clone()).await.unwrap_err();
            assert_eq!(err.code(), code::DIAL_FAILED, "{wrong}: {err}");
            let cause = err.cause().unwrap();
            assert!(cause.contains("invalid credentials"), "{wrong}: {cause}");
        }
        server.close().await;

        let (server, addr) = server_with(Checker::expect(json!({"user": "ann", "key": 7}))).await;
        let client = Peer::builder(Router::new())
            .plugin(Bearer::new(json!({"key": 7, "user": "ann"})))
            .build()
            .unwrap();
        client.dial(&addr).await.unwrap();
        let stranger = Peer::builder(Router::new())
            .plugin(Bearer::new(json!({"key": 8, "user": "ann"})))
            .build()
            .unwrap();
        assert_eq!(
            stranger.dial(&addr).await.unwrap_err().code(),
            code::DIAL_FAILED
        );
        stranger.close().await;
        client.close().await;
        server.close().await;
    })
    .await
    .expect("test timed out");
}

async fn server_with(checker: Checker) -> (Peer, jaunt::Addr) {
    server(checker, Arc::new(AtomicBool::new(false))).await
}
