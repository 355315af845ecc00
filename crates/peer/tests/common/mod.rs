//! Helpers shared by the integration tests: time limits, polling, and a
//! server listening on a free loopback port.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use jaunt_peer::{Addr, Peer, Router};

/// The limit of every test body.
pub const TEST_LIMIT: Duration = Duration::from_secs(20);

/// Runs a test body, failing the test if it takes longer than [`TEST_LIMIT`].
pub async fn within<F: Future>(body: F) -> F::Output {
    match tokio::time::timeout(TEST_LIMIT, body).await {
        Ok(out) => out,
        Err(_) => panic!("the test did not finish within {TEST_LIMIT:?}"),
    }
}

/// Polls `cond` every 5 ms until it holds (true) or `limit` passes (false).
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (up to 5 s) until `peer` has exactly `n` sessions; panics otherwise.
pub async fn wait_sessions(peer: &Peer, n: usize) {
    let ok = eventually(Duration::from_secs(5), || peer.session_count() == n).await;
    assert!(
        ok,
        "expected {n} sessions, the peer has {}",
        peer.session_count()
    );
}

/// A peer with `router`, listening on 127.0.0.1 on a free port.
pub async fn tcp_server(router: Router) -> (Peer, Addr) {
    let server = Peer::new(router);
    let addr = server
        .listen("127.0.0.1:0")
        .await
        .expect("listen on 127.0.0.1:0");
    (server, addr)
}

/// A deterministic "random" number in `0..modulo` for `n` (a multiplicative
/// hash), so that tests need no random number crate.
pub fn jitter(n: u64, modulo: u64) -> u64 {
    (n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) % modulo
}

/// Reads from a raw connection until one whole frame has arrived; `None`
/// once the connection ends.
pub async fn read_frame(
    conn: &mut tokio::net::TcpStream,
    buf: &mut bytes::BytesMut,
) -> Option<jaunt_socket::Packet> {
    use jaunt_socket::Proto;
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(packet) = jaunt_socket::RawProto::default().decode(buf).unwrap() {
            return Some(packet);
        }
        if conn.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}
