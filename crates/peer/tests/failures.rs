//! Failure paths: 404, 400, panicking handlers (500), user statuses, a peer
//! closed in the middle of a pull, and an oversized frame.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use common::{eventually, read_frame, tcp_server, wait_sessions, within};
use jaunt_peer::{Peer, PeerConfig, PullCtx, PushCtx, Router};
use jaunt_socket::{code, Packet, PacketType, Proto, RawProto, Status};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

fn failing_routes(sum_calls: Arc<AtomicUsize>) -> Router {
    let mut routes = Router::new();
    routes
        .pull("/sum", move |_: PullCtx, nums: Vec<i64>| {
            let calls = sum_calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Status>(nums.iter().sum::<i64>())
            }
        })
        .unwrap();
    routes
        .pull("/panic/async", |_: PullCtx, n: i64| async move {
            if n > 0 {
                panic!("boom in the future ({n})");
            }
            Ok::<_, Status>(n)
        })
        .unwrap();
    // Panics while building its future, before any await.
    routes
        .pull("/panic/sync", |_: PullCtx, n: i64| {
            if n > 0 {
                panic!("boom before the future");
            }
            async move { Ok::<_, Status>(n) }
        })
        .unwrap();
    routes
        .pull("/custom", |_: PullCtx, with_cause: bool| async move {
            let st = Status::new(1001, "custom");
            Err::<(), _>(if with_cause {
                st.with_cause("the reason & more = 100% ✓")
            } else {
                st
            })
        })
        .unwrap();
    routes
        .push("/push/panic", |_: PushCtx, n: i64| async move {
            if n > 0 {
                panic!("push handler boom");
            }
        })
        .unwrap();
    routes
}

/// 404 for an unknown uri, 400 for an undecodable argument, 500 for a
/// panicking handler (the same session goes on serving), and a user status
/// with message and cause carried to the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_statuses_reach_the_caller() {
    within(async {
        let sum_calls = Arc::new(AtomicUsize::new(0));
        let (server, addr) = tcp_server(failing_routes(sum_calls.clone())).await;
        let client = Peer::new(Router::new());
        let s = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 1).await;
        let server_side = server.sessions().pop().unwrap();

        // 404.
        let err = s.pull("/nope", &1).await.unwrap_err();
        assert_eq!((err.code(), err.msg()), (code::NOT_FOUND, "Not Found"));
        assert!(err.cause().unwrap().contains("/nope"), "{err}");

        // 400: a string where the handler wants Vec<i64>; the handler never runs.
        let err = s.pull("/sum", &"not a list").await.unwrap_err();
        assert_eq!((err.code(), err.msg()), (code::BAD_MESSAGE, "Bad Message"));
        assert!(!err.cause().unwrap_or_default().is_empty(), "{err}");
        assert_eq!(sum_calls.load(Ordering::SeqCst), 0);
        let sum: i64 = s
            .pull("/sum", &vec![1, 2, 39])
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(sum, 42);

        // 500 from a panic inside the handler's future...
        let err = s.pull("/panic/async", &1).await.unwrap_err();
        assert_eq!(err.code(), code::INTERNAL_SERVER_ERROR);
        // (its message stays in the server's log: see below)
        assert_eq!(err.cause(), Some("internal error"), "{err}");
        // ...and from a panic while the handler builds its future.
        let err = s.pull("/panic/sync", &1).await.unwrap_err();
        assert_eq!(err.code(), code::INTERNAL_SERVER_ERROR);
        assert_eq!(err.cause(), Some("internal error"), "{err}");
        // A panicking push handler is contained as well.
        s.push("/push/panic", &1).await.unwrap();

        // The same session still serves, on both ends.
        let ok: i64 = s.pull("/panic/async", &0).await.unwrap().decode().unwrap();
        assert_eq!(ok, 0);
        let sum: i64 = s.pull("/sum", &vec![5, 5]).await.unwrap().decode().unwrap();
        assert_eq!(sum, 10);
        assert!(!s.is_closed());
        assert_eq!(server.session_count(), 1);
        assert!(
            server.sessions()[0].ptr_eq(&server_side),
            "no new connection was made"
        );

        // A user-defined status, with and without a cause.
        let err = s.pull("/custom", &true).await.unwrap_err();
        assert_eq!(err.code(), 1001);
        assert_eq!(err.msg(), "custom");
        assert_eq!(err.cause(), Some("the reason & more = 100% ✓"));
        let err = s.pull("/custom", &false).await.unwrap_err();
        assert_eq!((err.code(), err.msg(), err.cause()), (1001, "custom", None));

        client.close().await;
        server.close().await;
    })
    .await;
}

/// The server peer is closed while a handler is still sleeping on the
/// client's pull: the pull ends at once with 102 and the client's session
/// goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_closed_mid_pull() {
    within(async {
        let (started_tx, mut started_rx) = mpsc::channel::<()>(1);
        let mut routes = Router::new();
        routes
            .pull("/sleep", move |_: PullCtx| {
                let started = started_tx.clone();
                async move {
                    started.send(()).await.unwrap();
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok::<_, Status>("too late")
                }
            })
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());
        let s = client.dial(&addr).await.unwrap();

        let pulling = s.clone();
        let pull = tokio::spawn(async move { pulling.pull("/sleep", &()).await });
        started_rx.recv().await.unwrap();
        assert_eq!(client.session_count(), 1);

        let closed_at = Instant::now();
        server.close().await;
        assert_eq!(server.session_count(), 0);
        let outcome = tokio::time::timeout(Duration::from_secs(5), pull)
            .await
            .expect("the pull must end promptly when the other side goes away")
            .unwrap();
        let took = closed_at.elapsed();
        let err = outcome.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        assert!(took < Duration::from_secs(2), "took {took:?}");

        assert!(eventually(Duration::from_secs(2), || client.session_count() == 0).await);
        assert!(s.is_closed());
        // Further use of the dead session fails at once with 102.
        assert_eq!(
            s.pull("/sleep", &()).await.unwrap_err().code(),
            code::CONN_CLOSED
        );
        assert_eq!(
            s.push("/x", &()).await.unwrap_err().code(),
            code::CONN_CLOSED
        );
        // The server no longer accepts.
        assert_eq!(
            client.dial(&addr).await.unwrap_err().code(),
            code::DIAL_FAILED
        );

        client.close().await;
    })
    .await;
}

/// A frame over the server's limit closes that session (the pull ends with
/// 102); another session of the same client to the same server is unaffected.
/// On the sending side, a frame over its own limit is refused locally (400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes_only_that_session() {
    within(async {
        let mut routes = Router::new();
        routes
            .pull("/len", |_: PullCtx, text: String| async move {
                Ok::<_, Status>(text.len())
            })
            .unwrap();
        let cfg = PeerConfig::builder().max_frame_len(64 * 1024).build();
        let server = Peer::builder(routes).config(cfg.clone()).build().unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();

        let client = Peer::new(Router::new());
        let a = client.dial(&addr).await.unwrap();
        let b = client.dial(&addr).await.unwrap();
        assert!(
            !a.is_closed(),
            "dialing the same address twice must keep both sessions"
        );
        assert_eq!(client.session_count(), 2);
        wait_sessions(&server, 2).await;

        let fits: usize = a
            .pull("/len", &"x".repeat(60 * 1024))
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(fits, 60 * 1024);

        let big = "y".repeat(1024 * 1024);
        let err = a.pull("/len", &big).await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");
        assert!(eventually(Duration::from_secs(3), || a.is_closed()).await);
        wait_sessions(&server, 1).await;
        assert!(eventually(Duration::from_secs(3), || client.session_count() == 1).await);

        // The other session is fine.
        let n: usize = b.pull("/len", &"abc").await.unwrap().decode().unwrap();
        assert_eq!(n, 3);
        assert!(!b.is_closed());

        // A sender with the same limit refuses to frame it: 400, no close.
        let small = Peer::builder(Router::new()).config(cfg).build().unwrap();
        let c = small.dial(&addr).await.unwrap();
        let err = c.pull("/len", &big).await.unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE, "{err}");
        assert!(!c.is_closed());
        let n: usize = c.pull("/len", &"abcd").await.unwrap().decode().unwrap();
        assert_eq!(n, 4);

        small.close().await;
        client.close().await;
        server.close().await;
    })
    .await;
}

/// A raw erpc pull frame for `/sum` with a JSON body.
fn raw_pull(seq: i32, nums: &str) -> BytesMut {
    let mut pull = Packet::new(PacketType::Pull, seq, "/sum");
    pull.body_codec = b'j';
    pull.body = bytes::Bytes::copy_from_slice(nums.as_bytes());
    let mut wire = BytesMut::new();
    RawProto::default().encode(&pull, &mut wire).unwrap();
    wire
}

/// A frame naming transfer filter `id`, with a payload that filter cannot undo.
fn raw_bad_filter_frame(id: u8) -> BytesMut {
    let junk = b"this is not what the filter produced";
    let mut wire = BytesMut::new();
    wire.put_u32((4 + 1 + 1 + junk.len()) as u32);
    wire.put_u8(1);
    wire.put_u8(id);
    wire.put_slice(junk);
    wire
}

/// On the wire: a frame that is malformed but whole (unknown filter id,
/// corrupt gzip, bad checksum) is dropped and the connection goes on; an
/// unknown message type closes it (405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_dropped_unknown_types_close() {
    within(async {
        let (server, addr) = tcp_server(failing_routes(Arc::default())).await;
        let jaunt_peer::Addr::Tcp(sa) = addr else {
            unreachable!()
        };
        let mut conn = TcpStream::connect(sa).await.unwrap();
        let mut buf = BytesMut::new();

        let mut wire = BytesMut::new();
        wire.extend_from_slice(&raw_bad_filter_frame(b'z')); // no such filter
        wire.extend_from_slice(&raw_bad_filter_frame(b'g')); // not gzip
        wire.extend_from_slice(&raw_bad_filter_frame(b'm')); // wrong md5
        wire.extend_from_slice(&raw_pull(7, "[20,22]"));
        conn.write_all(&wire).await.unwrap();
        let reply = read_frame(&mut conn, &mut buf)
            .await
            .expect("a reply, not a closed connection");
        assert_eq!(reply.ptype, PacketType::Reply);
        assert_eq!(reply.seq, 7);
        assert!(reply.status.is_ok(), "{}", reply.status);
        assert_eq!(&reply.body[..], b"42");
        assert_eq!(server.session_count(), 1);

        // An unknown message type: the server closes the connection.
        let mut bad_type = raw_pull(8, "[1]");
        // length (4), filter count (1), seq length (1), seq "8" (1), then the type.
        assert_eq!(bad_type[7], PacketType::Pull.as_u8());
        bad_type[7] = 9;
        conn.write_all(&bad_type).await.unwrap();
        conn.write_all(&raw_pull(9, "[1]")).await.ok();
        let next = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut conn, &mut buf))
            .await
            .expect("the server must close the connection");
        assert!(next.is_none(), "got {next:?} after an unknown message type");
        wait_sessions(&server, 0).await;

        server.close().await;
    })
    .await;
}

/// A remote that stops reading must not make `Peer::close` hang: the write
/// in progress is given a bounded time once the session is closing. Its
/// write queue meanwhile stays within the session's byte budget: pushes
/// past it fail with 104 (slow consumer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_does_not_hang_on_a_remote_that_stops_reading() {
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let jaunt_peer::Addr::Tcp(sa) = addr else {
            unreachable!()
        };
        // Connects and never reads.
        let conn = TcpStream::connect(sa).await.unwrap();
        wait_sessions(&server, 1).await;
        let session = server.sessions().pop().unwrap();
        let chunk = "z".repeat(1024 * 1024);
        // Far more than the socket buffers hold (plain: no encoding cost),
        // until the write queue is full in bytes (`max_session_memory`).
        let mut pushed = 0;
        for _ in 0..64 {
            let push =
                session.push_with("/flood", &chunk, jaunt_peer::PullOptions::new().codec(b's'));
            match push.await {
                Ok(()) => pushed += 1,
                Err(status) => {
                    assert_eq!(status.code(), jaunt_socket::code::WRITE_FAILED, "{status}");
                    break;
                }
            }
        }
        assert!(pushed >= 8, "only {pushed} pushes were queued");
        assert!(pushed < 64, "the write queue must be bounded in bytes");
        let queued = session.stats().bytes_queued;
        assert!(
            queued <= 9 << 20,
            "{queued} bytes queued, over the 8 MiB budget"
        );
        // Let the writer fill the socket buffers and block.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let start = Instant::now();
        let closed = tokio::time::timeout(Duration::from_secs(12), server.close()).await;
        assert!(closed.is_ok(), "Peer::close hung on a blocked write");
        println!("close took {:?}", start.elapsed());
        assert_eq!(server.session_count(), 0);
        drop(conn);
    })
    .await;
}

/// A server told to show internal causes tells the caller what panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_messages_reach_the_caller_only_when_the_server_exposes_them() {
    within(async {
        let config = jaunt_peer::PeerConfig::builder()
            .expose_internal_errors(true)
            .build();
        let server = Peer::builder(failing_routes(Arc::new(AtomicUsize::new(0))))
            .config(config)
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let s = client.dial(&addr).await.unwrap();
        let err = s.pull("/panic/async", &1).await.unwrap_err();
        assert_eq!(err.code(), code::INTERNAL_SERVER_ERROR);
        assert!(
            err.cause().unwrap().contains("boom in the future (1)"),
            "{err}"
        );
        let err = s.pull("/panic/sync", &1).await.unwrap_err();
        assert!(
            err.cause().unwrap().contains("boom before the future"),
            "{err}"
        );
        client.close().await;
        server.close().await;
    })
    .await;
}
