//! The secure plugin through real sessions, and on the wire.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jaunt::prelude::*;
use jaunt::{Addr, Packet, Plugin, RoutePlugin};
use jaunt_plugins::secure::{self, Secure, DECRYPTION_FAILED, SECURE};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

const KEY: [u8; 32] = [7; 32];
const OTHER_KEY: [u8; 32] = [9; 32];
const SECRET: &str = "the eagle lands at midnight";

/// Fails the test if `body` takes longer than 20 s.
async fn within<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), body)
        .await
        .expect("the test did not finish within 20 s")
}

/// Records bodies as they are on the wire: pulls as the server reads them
/// (`post_read_pull_header`, before any route hook decrypts), pulls as the
/// caller sent them (`post_write_pull`, after every write hook) and replies
/// as the caller reads them (registered before `Secure`, so its reply hooks
/// run first). `tamper` flips the last body byte of incoming pulls.
#[derive(Default)]
struct Capture {
    pulls_read: Mutex<Vec<Packet>>,
    pulls_written: Mutex<Vec<Packet>>,
    replies_read: Mutex<Vec<Packet>>,
    tamper: bool,
}

fn flip_last(body: &Bytes) -> Bytes {
    let mut bytes = body.to_vec();
    if let Some(last) = bytes.last_mut() {
        *last ^= 1;
    }
    bytes.into()
}

#[async_trait]
impl RoutePlugin for Capture {
    fn name(&self) -> &str {
        "capture"
    }
}

#[async_trait]
impl Plugin for Capture {
    async fn post_read_pull_header(&self, _: &Session, pull: &mut Packet) -> Result<(), Status> {
        if self.tamper {
            pull.body = flip_last(&pull.body);
        }
        self.pulls_read.lock().unwrap().push(pull.clone());
        Ok(())
    }

    async fn post_write_pull(&self, _: &Session, pull: &Packet) -> Result<(), Status> {
        self.pulls_written.lock().unwrap().push(pull.clone());
        Ok(())
    }

    async fn post_read_reply_header(&self, _: &Session, reply: &mut Packet) -> Result<(), Status> {
        self.replies_read.lock().unwrap().push(reply.clone());
        Ok(())
    }
}

/// Flips the last body byte of outgoing replies (registered after `Secure`,
/// so it sees the encrypted reply).
struct TamperReplies;

#[async_trait]
impl RoutePlugin for TamperReplies {
    fn name(&self) -> &str {
        "tamper-replies"
    }

    async fn pre_write_reply(&self, _: &Session, reply: &mut Packet) -> Result<(), Status> {
        reply.body = flip_last(&reply.body);
        Ok(())
    }
}

impl Plugin for TamperReplies {}

struct Server {
    peer: Peer,
    addr: Addr,
    /// How many times `/upper` ran.
    calls: Arc<AtomicUsize>,
    pushes: mpsc::Receiver<String>,
}

/// A server with pull `/upper` (uppercases a string), pull `/ignore` (no
/// argument) and push `/note`, and `plugins` in that order.
async fn server(plugins: Vec<Arc<dyn Plugin>>) -> Server {
    let calls = Arc::new(AtomicUsize::new(0));
    let (tx, pushes) = mpsc::channel(8);
    let mut router = Router::new();
    let counter = calls.clone();
    router
        .pull("/upper", move |_: PullCtx, text: String| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, Status>(text.to_uppercase()) }
        })
        .unwrap()
        .pull(
            "/ignore",
            |_: PullCtx| async move { Ok::<_, Status>(SECRET) },
        )
        .unwrap()
        .push("/note", move |_: PushCtx, text: String| {
            let tx = tx.clone();
            async move {
                tx.send(text).await.ok();
            }
        })
        .unwrap();
    let mut builder = Peer::builder(router);
    for plugin in plugins {
        builder = builder.plugin_arc(plugin);
    }
    let peer = builder.build().unwrap();
    let addr = peer.listen("127.0.0.1:0").await.unwrap();
    Server {
        peer,
        addr,
        calls,
        pushes,
    }
}

fn client(plugins: Vec<Arc<dyn Plugin>>) -> Peer {
    let mut builder = Peer::builder(Router::new());
    for plugin in plugins {
        builder = builder.plugin_arc(plugin);
    }
    builder.build().unwrap()
}

fn json(value: &str) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flagged_pull_round_trips_encrypted() {
    within(async {
        let server_capture = Arc::new(Capture::default());
        let srv = server(vec![server_capture.clone(), Arc::new(Secure::new(KEY))]).await;
        let client_capture = Arc::new(Capture::default());
        let client = client(vec![client_capture.clone(), Arc::new(Secure::new(KEY))]);
        let session = client.dial(&srv.addr).await.unwrap();

        let opts = secure::encrypted(PullOptions::new());
        for _ in 0..2 {
            let reply = session
                .pull_with("/upper", &SECRET, opts.clone())
                .await
                .unwrap();
            assert_eq!(reply.decode::<String>().unwrap(), SECRET.to_uppercase());
        }
        assert_eq!(srv.calls.load(Ordering::SeqCst), 2);

        // The pulls as the server read them: encrypted, flagged, codec kept.
        let plain = json(SECRET);
        let read = server_capture.pulls_read.lock().unwrap().clone();
        assert_eq!(read.len(), 2);
        for pull in &read {
            assert_eq!(pull.meta.get_str(SECURE), Some("1"));
            assert_eq!(pull.body_codec, b'j');
            assert_eq!(pull.body.len(), 12 + plain.len() + 16);
            assert!(!contains(&pull.body, SECRET.as_bytes()));
        }
        assert_ne!(read[0].body, read[1].body, "a fresh nonce per message");
        // What the caller wrote is what the server read.
        let written = client_capture.pulls_written.lock().unwrap().clone();
        assert_eq!(written[0].body, read[0].body);

        // The replies as the caller read them: encrypted and flagged.
        let replies = client_capture.replies_read.lock().unwrap().clone();
        assert_eq!(replies.len(), 2);
        for reply in &replies {
            assert_eq!(reply.meta.get_str(SECURE), Some("1"));
            assert_eq!(
                reply.body.len(),
                12 + json(&SECRET.to_uppercase()).len() + 16
            );
            assert!(!contains(&reply.body, SECRET.to_uppercase().as_bytes()));
        }

        client.close().await;
        srv.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unflagged_bodies_stay_plain() {
    within(async {
        let server_capture = Arc::new(Capture::default());
        let srv = server(vec![server_capture.clone(), Arc::new(Secure::new(KEY))]).await;
        let client_capture = Arc::new(Capture::default());
        let client = client(vec![client_capture.clone(), Arc::new(Secure::new(KEY))]);
        let session = client.dial(&srv.addr).await.unwrap();

        let reply = session.pull("/upper", &SECRET).await.unwrap();
        assert_eq!(reply.decode::<String>().unwrap(), SECRET.to_uppercase());
        assert_eq!(reply.meta().get(SECURE), None);

        let read = server_capture.pulls_read.lock().unwrap().clone();
        assert_eq!(&read[0].body[..], &json(SECRET)[..]);
        let replies = client_capture.replies_read.lock().unwrap().clone();
        assert_eq!(&replies[0].body[..], &json(&SECRET.to_uppercase())[..]);

        client.close().await;
        srv.peer.close().await;
    })
    .await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads one whole frame from `conn` (the length prefix counts itself).
async fn read_frame(conn: &mut tokio::net::TcpStream) -> Vec<u8> {
    let len = conn.read_u32().await.unwrap() as usize;
    let mut rest = vec![0; len - 4];
    conn.read_exact(&mut rest).await.unwrap();
    rest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bytes_on_the_wire() {
    within(async {
        // A bare TCP listener stands in for the server: it sees the bytes.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = client(vec![Arc::new(Secure::new(KEY))]);
        let session = client.dial(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();

        session
            .push_with("/note", &SECRET, secure::encrypted(PullOptions::new()))
            .await
            .unwrap();
        let frame = read_frame(&mut conn).await;
        assert!(
            !contains(&frame, SECRET.as_bytes()),
            "the plaintext is hidden"
        );
        assert!(contains(&frame, b"X-Secure=1"), "the flag is in clear");

        session.push("/note", &SECRET).await.unwrap();
        let frame = read_frame(&mut conn).await;
        assert!(contains(&frame, SECRET.as_bytes()), "unflagged: plain");

        client.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_bad_message_and_the_handler_does_not_run() {
    within(async {
        let srv = server(vec![Arc::new(Secure::new(KEY))]).await;
        let client = client(vec![Arc::new(Secure::new(OTHER_KEY))]);
        let session = client.dial(&srv.addr).await.unwrap();

        let err = session
            .pull_with("/upper", &SECRET, secure::encrypted(PullOptions::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE);
        assert_eq!(err.cause(), Some(DECRYPTION_FAILED));
        assert_eq!(srv.calls.load(Ordering::SeqCst), 0);

        // The session survives and plain pulls work.
        session.pull("/upper", &"ok").await.unwrap();

        client.close().await;
        srv.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_pull_is_bad_message() {
    within(async {
        let tamper = Arc::new(Capture {
            tamper: true,
            ..Capture::default()
        });
        let srv = server(vec![tamper, Arc::new(Secure::new(KEY))]).await;
        let client = client(vec![Arc::new(Secure::new(KEY))]);
        let session = client.dial(&srv.addr).await.unwrap();

        let err = session
            .pull_with("/upper", &SECRET, secure::encrypted(PullOptions::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE);
        assert_eq!(err.cause(), Some(DECRYPTION_FAILED));
        assert_eq!(srv.calls.load(Ordering::SeqCst), 0);

        client.close().await;
        srv.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_reply_is_bad_message() {
    within(async {
        let srv = server(vec![Arc::new(Secure::new(KEY)), Arc::new(TamperReplies)]).await;
        let client = client(vec![Arc::new(Secure::new(KEY))]);
        let session = client.dial(&srv.addr).await.unwrap();

        let err = session
            .pull_with("/upper", &SECRET, secure::encrypted(PullOptions::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE);
        assert_eq!(err.cause(), Some(DECRYPTION_FAILED));
        assert_eq!(srv.calls.load(Ordering::SeqCst), 1, "the handler ran");

        client.close().await;
        srv.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_reply_to_a_secure_pull_is_refused() {
    within(async {
        // The server has no Secure plugin; /ignore takes no argument, so it
        // answers in clear.
        let srv = server(vec![]).await;
        let client = client(vec![Arc::new(Secure::new(KEY))]);
        let session = client.dial(&srv.addr).await.unwrap();

        let err = session
            .pull_with("/ignore", &(), secure::encrypted(PullOptions::new()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE);
        assert!(err.cause().unwrap().contains("not encrypted"), "{err}");

        client.close().await;
        srv.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_are_encrypted_and_bad_ones_dropped() {
    within(async {
        let mut srv = server(vec![Arc::new(Secure::new(KEY))]).await;
        let good = client(vec![Arc::new(Secure::new(KEY))]);
        let bad = client(vec![Arc::new(Secure::new(OTHER_KEY))]);
        let good_session = good.dial(&srv.addr).await.unwrap();
        let bad_session = bad.dial(&srv.addr).await.unwrap();
        let opts = secure::encrypted(PullOptions::new());

        bad_session
            .push_with("/note", &"forged", opts.clone())
            .await
            .unwrap();
        good_session
            .push_with("/note", &SECRET, opts)
            .await
            .unwrap();
        assert_eq!(srv.pushes.recv().await.unwrap(), SECRET);
        // The forged push was dropped, not delivered.
        let next = tokio::time::timeout(Duration::from_millis(100), srv.pushes.recv()).await;
        assert!(next.is_err(), "nothing else arrives: {next:?}");

        good.close().await;
        bad.close().await;
        srv.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_as_a_group_plugin() {
    within(async {
        // On the serving side only route hooks are needed.
        let mut router = Router::new();
        let secure: Arc<dyn RoutePlugin> = Arc::new(Secure::new(KEY));
        router
            .plugin_group("/vault", vec![secure])
            .pull("/upper", |_: PullCtx, text: String| async move {
                Ok::<_, Status>(text.to_uppercase())
            })
            .unwrap();
        let server = Peer::new(router);
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = client(vec![Arc::new(Secure::new(KEY))]);
        let session = client.dial(&addr).await.unwrap();

        let reply = session
            .pull_with(
                "/vault/upper",
                &"abc",
                secure::encrypted(PullOptions::new()),
            )
            .await
            .unwrap();
        assert_eq!(reply.decode::<String>().unwrap(), "ABC");

        client.close().await;
        server.close().await;
    })
    .await;
}

#[test]
fn keys_must_be_32_bytes() {
    assert!(Secure::try_from_slice(&[0; 32]).is_ok());
    let err = Secure::try_from_slice(&[0; 16]).unwrap_err();
    assert_eq!(err.to_string(), "a secure key is 32 bytes, not 16");
    assert_ne!(Secure::generate_key(), Secure::generate_key());
    assert_eq!(format!("{:?}", Secure::new(KEY)), "Secure(<key redacted>)");
}
