//! Transfer filters end to end: gzip (and gzip + md5), and ChaCha20-Poly1305
//! encryption with matching and mismatching keys.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{tcp_server, wait_sessions, within};
use jaunt_peer::{Peer, PullCtx, PullOptions, Router};
use jaunt_socket::Status;
use jaunt_xfer::{AeadFilter, AeadKey, XferRegistry};

/// Echoes its text with the filters the pull came through; counts calls.
fn echo_router(calls: Arc<AtomicUsize>) -> Router {
    let mut routes = Router::new();
    routes
        .pull("/echo", move |ctx: PullCtx, text: String| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Status>((String::from_utf8_lossy(ctx.xfer()).into_owned(), text))
            }
        })
        .unwrap();
    routes
}

fn aead_registry(key: [u8; 32]) -> XferRegistry {
    let mut registry = XferRegistry::new();
    registry
        .register(AeadFilter::new(b'e', AeadKey::from_bytes(key)))
        .unwrap();
    registry
}

/// A gzip pull is served through gzip and answered through gzip; chains work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_end_to_end() {
    within(async {
        let (server, addr) = tcp_server(echo_router(Arc::default())).await;
        let client = Peer::new(Router::new());
        let s = client.dial(&addr).await.unwrap();
        let text = "the quick brown fox jumps over the lazy dog; ".repeat(500);

        let r = s
            .pull_with("/echo", &text, PullOptions::new().xfer(b'g'))
            .await
            .unwrap();
        assert_eq!(r.xfer(), b"g", "the reply goes through the pull's filters");
        let (seen, back): (String, String) = r.decode().unwrap();
        assert_eq!(seen, "g", "the handler saw the gzip filter");
        assert_eq!(back, text);

        // gzip then md5 (outer-most first).
        let r = s
            .pull_with("/echo", &text, PullOptions::new().xfer(b'm').xfer(b'g'))
            .await
            .unwrap();
        assert_eq!(r.xfer(), b"mg");
        let (seen, back): (String, String) = r.decode().unwrap();
        assert_eq!((seen.as_str(), back.len()), ("mg", text.len()));

        // Without filters, none either way.
        let r = s.pull("/echo", &"plain").await.unwrap();
        assert!(r.xfer().is_empty());
        assert_eq!(
            r.decode::<(String, String)>().unwrap(),
            (String::new(), "plain".to_owned())
        );

        // An id no peer registered cannot be sent: a local 400, session intact.
        let err = s
            .pull_with("/echo", &"x", PullOptions::new().xfer(b'z'))
            .await
            .unwrap_err();
        assert_eq!(err.code(), 400);
        assert!(!s.is_closed());

        client.close().await;
        server.close().await;
    })
    .await;
}

/// Both peers with the AEAD filter under the same id and key: encrypted pulls
/// work and are answered encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_with_shared_key() {
    within(async {
        let key = [7_u8; 32];
        let server = Peer::builder(echo_router(Arc::default()))
            .xfer(aead_registry(key))
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::builder(Router::new())
            .xfer(aead_registry(key))
            .build()
            .unwrap();
        let s = client.dial(&addr).await.unwrap();

        let r = s
            .pull_with("/echo", &"secret", PullOptions::new().xfer(b'e'))
            .await
            .unwrap();
        assert_eq!(r.xfer(), b"e");
        let (seen, back): (String, String) = r.decode().unwrap();
        assert_eq!((seen.as_str(), back.as_str()), ("e", "secret"));

        // gzip is not registered on these peers: refused locally.
        let err = s
            .pull_with("/echo", &"x", PullOptions::new().xfer(b'g'))
            .await
            .unwrap_err();
        assert_eq!(err.code(), 400);

        client.close().await;
        server.close().await;
    })
    .await;
}

/// Different keys: the server cannot decrypt the frame and drops it (no
/// reply, the handler never runs), but the connection stays up and an
/// unfiltered pull afterwards is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_with_wrong_key_drops_the_frame() {
    within(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let server = Peer::builder(echo_router(calls.clone()))
            .xfer(aead_registry([7; 32]))
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::builder(Router::new())
            .xfer(aead_registry([9; 32]))
            .build()
            .unwrap();
        let s = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 1).await;

        let start = Instant::now();
        let outcome = tokio::time::timeout(
            Duration::from_millis(800),
            s.pull_with("/echo", &"secret", PullOptions::new().xfer(b'e')),
        )
        .await;
        match outcome {
            Err(_) => {} // no reply: the frame was dropped
            Ok(Err(status)) => panic!("expected no reply at all, got {status}"),
            Ok(Ok(_)) => panic!("a frame encrypted with another key was accepted"),
        }
        assert!(start.elapsed() >= Duration::from_millis(800));
        assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler must not run");

        // The connection survived on both ends.
        assert!(!s.is_closed());
        assert_eq!(server.session_count(), 1);
        let r = s.pull("/echo", &"clear").await.unwrap();
        assert_eq!(
            r.decode::<(String, String)>().unwrap(),
            (String::new(), "clear".to_owned())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        client.close().await;
        server.close().await;
    })
    .await;
}
