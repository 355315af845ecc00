//! The proxy through real sessions: client → proxy → backend on loopback.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jaunt::prelude::*;
use jaunt::{Addr, Meta};
use jaunt_plugins::proxy::{self, Proxy, REAL_IP};
use tokio::sync::mpsc;

/// Fails the test if `body` takes longer than 20 s.
async fn within<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), body)
        .await
        .expect("the test did not finish within 20 s")
}

/// Polls `cond` every 5 ms for up to 5 s.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

/// What the backend saw of the last pull to `/echo`.
#[derive(Debug, Clone, Default)]
struct Seen {
    meta: Meta,
    xfer: Vec<u8>,
    codec: u8,
    uri: String,
}

struct Backend {
    peer: Peer,
    addr: Addr,
    seen: Arc<Mutex<Option<Seen>>>,
    pushes: mpsc::Receiver<(String, Option<String>)>,
}

/// A backend with `/echo` (echoes the body as it came, records what it
/// saw, adds reply meta), `/fail` (status 1001) and push `/note`.
async fn backend() -> Backend {
    let seen = Arc::new(Mutex::new(None));
    let (tx, pushes) = mpsc::channel(8);
    let mut router = Router::new();
    let record = seen.clone();
    router
        .pull("/echo", move |ctx: PullCtx| {
            let record = record.clone();
            async move {
                *record.lock().unwrap() = Some(Seen {
                    meta: ctx.meta().clone(),
                    xfer: ctx.xfer().to_vec(),
                    codec: ctx.body_codec(),
                    uri: ctx.uri().to_owned(),
                });
                ctx.set_reply_meta("served-by", "backend");
                ctx.add_reply_meta("tag", "one");
                ctx.add_reply_meta("tag", "two");
                Ok::<_, Status>(ctx.raw_body())
            }
        })
        .unwrap()
        .pull("/fail", |_: PullCtx| async move {
            Err::<(), _>(Status::new(1001, "custom failure").with_cause("because"))
        })
        .unwrap()
        .push("/note", move |ctx: PushCtx, text: String| {
            let tx = tx.clone();
            async move {
                let ip = ctx.meta().get_str(REAL_IP).map(str::to_owned);
                tx.send((text, ip)).await.ok();
            }
        })
        .unwrap();
    let peer = Peer::new(router);
    let addr = peer.listen("127.0.0.1:0").await.unwrap();
    Backend {
        peer,
        addr,
        seen,
        pushes,
    }
}

/// A proxy peer forwarding through `proxy`, with one local route `/local`.
async fn front(proxy: Proxy) -> (Peer, Addr) {
    let mut router = Router::new();
    router
        .pull(
            "/local",
            |_: PullCtx| async move { Ok::<_, Status>("local") },
        )
        .unwrap();
    proxy::routes(&mut router, proxy).unwrap();
    let peer = Peer::new(router);
    let addr = peer.listen("127.0.0.1:0").await.unwrap();
    (peer, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_is_forwarded_with_meta_filters_and_codec() {
    within(async {
        let backend = backend().await;
        let (front, front_addr) = front(Proxy::dial(&backend.addr).unwrap()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&front_addr).await.unwrap();

        // JSON body, gzip filter, meta, a query string.
        let opts = PullOptions::new().meta("trace", "abc").xfer(b'g');
        let reply = session
            .pull_with("/echo?lang=en", &vec![1, 2, 3], opts)
            .await
            .unwrap();
        assert_eq!(reply.decode::<Vec<i32>>().unwrap(), vec![1, 2, 3]);
        assert_eq!(reply.codec(), b'j');
        assert_eq!(reply.xfer(), b"g", "the reply comes back gzipped too");
        assert_eq!(reply.meta().get_str("served-by"), Some("backend"));
        let tags: Vec<&[u8]> = reply.meta().get_all("tag").collect();
        assert_eq!(tags, vec![&b"one"[..], &b"two"[..]]);

        let seen = backend.seen.lock().unwrap().take().unwrap();
        assert_eq!(seen.uri, "/echo?lang=en");
        assert_eq!(seen.meta.get_str("trace"), Some("abc"));
        assert_eq!(seen.meta.get_str(REAL_IP), Some("127.0.0.1"));
        assert_eq!(seen.xfer, b"g");
        assert_eq!(seen.codec, b'j');

        // A plain-codec body is forwarded untouched, its codec kept.
        let reply = session
            .pull_with("/echo", &"raw text", PullOptions::new().codec(b's'))
            .await
            .unwrap();
        assert_eq!(reply.codec(), b's');
        assert_eq!(&reply.body()[..], b"raw text");
        assert_eq!(backend.seen.lock().unwrap().take().unwrap().codec, b's');

        // Local routes are served by the proxy itself.
        let local: String = session.pull("/local", &()).await.unwrap().decode().unwrap();
        assert_eq!(local, "local");

        client.close().await;
        front.close().await;
        backend.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ip_is_the_callers_unless_trusted() {
    within(async {
        let backend = backend().await;
        let spoofed = PullOptions::new().meta(REAL_IP, "6.6.6.6");

        let (front1, addr1) = front(Proxy::dial(&backend.addr).unwrap()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr1).await.unwrap();
        session
            .pull_with("/echo", &1, spoofed.clone())
            .await
            .unwrap();
        let seen = backend.seen.lock().unwrap().take().unwrap();
        let ips: Vec<&[u8]> = seen.meta.get_all(REAL_IP).collect();
        assert_eq!(ips, vec![&b"127.0.0.1"[..]], "replaced, not added");

        let trusted = Proxy::dial(&backend.addr).unwrap().keep_real_ip(true);
        let (front2, addr2) = front(trusted).await;
        let session = client.dial(&addr2).await.unwrap();
        session.pull_with("/echo", &1, spoofed).await.unwrap();
        let seen = backend.seen.lock().unwrap().take().unwrap();
        assert_eq!(seen.meta.get_str(REAL_IP), Some("6.6.6.6"));

        client.close().await;
        front1.close().await;
        front2.close().await;
        backend.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_forwarded() {
    within(async {
        let mut backend = backend().await;
        let (front, front_addr) = front(Proxy::dial(&backend.addr).unwrap()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&front_addr).await.unwrap();

        session.push("/note", &"hello").await.unwrap();
        let (text, ip) = backend.pushes.recv().await.unwrap();
        assert_eq!(text, "hello");
        assert_eq!(ip.as_deref(), Some("127.0.0.1"));

        client.close().await;
        front.close().await;
        backend.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_error_status_passes_unchanged() {
    within(async {
        let backend = backend().await;
        let (front, front_addr) = front(Proxy::dial(&backend.addr).unwrap()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&front_addr).await.unwrap();

        let err = session.pull("/fail", &()).await.unwrap_err();
        assert_eq!(
            err,
            Status::new(1001, "custom failure").with_cause("because")
        );

        // The backend's own 404 is passed through as well.
        let err = session.pull("/nowhere", &()).await.unwrap_err();
        assert_eq!(err.code(), code::NOT_FOUND);

        client.close().await;
        front.close().await;
        backend.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_is_bad_gateway() {
    within(async {
        // A port that nothing listens on any more.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = listener.local_addr().unwrap();
        drop(listener);

        let (front, front_addr) = front(Proxy::dial(dead).unwrap()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&front_addr).await.unwrap();

        let err = session.pull("/echo", &1).await.unwrap_err();
        assert_eq!(err.code(), code::BAD_GATEWAY, "{err}");
        let cause = err.cause().unwrap_or_default();
        assert!(cause.contains(&dead.to_string()), "{cause}");

        // The proxy's session to the client is unaffected.
        assert!(!session.is_closed());
        client.close().await;
        front.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_upstream_is_redialed_or_bad_gateway() {
    within(async {
        let backend = backend().await;

        // A dialed upstream: dialed again after the backend dropped it.
        let (front1, addr1) = front(Proxy::dial(&backend.addr).unwrap()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr1).await.unwrap();
        session.pull("/echo", &1).await.unwrap();
        assert_eq!(backend.peer.session_count(), 1);
        for s in backend.peer.sessions() {
            s.close();
        }
        assert!(
            eventually(|| front1.session_count() == 1).await,
            "upstream session gone"
        );
        session.pull("/echo", &2).await.unwrap();
        assert_eq!(backend.peer.session_count(), 1, "redialed once");

        // A given session: once closed, 502.
        let dialer = Peer::new(Router::new());
        let upstream = dialer.dial(&backend.addr).await.unwrap();
        let (front2, addr2) = front(Proxy::session(upstream.clone())).await;
        let session2 = client.dial(&addr2).await.unwrap();
        session2.pull("/echo", &3).await.unwrap();
        upstream.close();
        let err = session2.pull("/echo", &4).await.unwrap_err();
        assert_eq!(err.code(), code::BAD_GATEWAY, "{err}");

        client.close().await;
        dialer.close().await;
        front1.close().await;
        front2.close().await;
        backend.peer.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_via_a_given_peer() {
    within(async {
        let backend = backend().await;
        let dialer = Peer::new(Router::new());
        let (front, front_addr) =
            front(Proxy::dial_via(dialer.clone(), &backend.addr).unwrap()).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&front_addr).await.unwrap();

        session.pull("/echo", &1).await.unwrap();
        assert_eq!(
            dialer.session_count(),
            1,
            "the upstream is the given peer's"
        );
        assert_eq!(front.session_count(), 1, "only the client's session");

        client.close().await;
        front.close().await;
        dialer.close().await;
        backend.peer.close().await;
    })
    .await;
}
