//! What the tests share: servers on loopback, a gauge of handlers in flight.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jaunt_peer::{Addr, Peer, Router, Session};

/// Every test is bounded in time.
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test ran past 30s")
}

/// A server on loopback with these routes.
pub async fn serve(router: Router) -> (Peer, Addr) {
    let server = Peer::new(router);
    let addr = server.listen("127.0.0.1:0").await.expect("listen");
    (server, addr)
}

/// A client peer and its session to `addr`.
pub async fn dial(addr: &Addr) -> (Peer, Session) {
    let client = Peer::new(Router::new());
    let session = client.dial(addr).await.expect("dial");
    (client, session)
}

/// Handlers running now, the most that ever ran at once, and how many ran.
#[derive(Debug, Default)]
pub struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
    calls: AtomicUsize,
}

impl Gauge {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Counts a handler in until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> GaugeGuard {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(self.clone())
    }

    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

pub struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}
