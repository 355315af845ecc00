//! `async_pull` through real sockets: pulls reach the wire in call order
//! (a full write queue, slow plugin write hooks), they are pending as soon
//! as `async_pull` returns, and dropping a `PullHandle` cancels the pull on
//! the callee while `detach` lets it run.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{eventually, jitter, within};
use jaunt_peer::{
    Handling, Peer, PeerConfig, Plugin, PullCtx, PullDone, PullOptions, RoutePlugin, Router,
    Session,
};
use jaunt_socket::{Packet, Status};
use tokio::sync::{mpsc, Notify};

const N: u64 = 200;

/// A server that handles pulls one at a time in arrival order and records
/// each `/record` pull's number.
async fn recording_server() -> (Peer, jaunt_peer::Addr, Arc<Mutex<Vec<u64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut routes = Router::new();
    let log = seen.clone();
    routes
        .pull("/record", move |_: PullCtx, (n, _pad): (u64, String)| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(n);
                Ok::<_, Status>(n)
            }
        })
        .unwrap();
    let config = PeerConfig::builder().handling(Handling::InOrder).build();
    let server = Peer::builder(routes).config(config).build().unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    (server, addr, seen)
}

/// Starts `N` async pulls in a row (bodies large enough, with a two-frame
/// write queue, that many find the queue full) and checks that the server
/// saw them in call order and that each reply is its own. Issued from a
/// runtime task (as a handler would), where tokio runs the task spawned last
/// first.
async fn pulls_arrive_in_call_order(client: Peer) {
    tokio::spawn(pulls_arrive_in_call_order_from_a_task(client))
        .await
        .unwrap();
}

async fn pulls_arrive_in_call_order_from_a_task(client: Peer) {
    let (server, addr, seen) = recording_server().await;
    let session = client.dial(&addr).await.unwrap();
    let pad = "p".repeat(16 * 1024);
    let handles: Vec<_> = (0..N)
        .map(|n| session.async_pull("/record", &(n, pad.clone()), PullOptions::new()))
        .collect();
    for (n, handle) in (0..N).zip(handles) {
        assert_eq!(handle.await.unwrap().decode::<u64>().unwrap(), n);
    }
    assert_eq!(*seen.lock().unwrap(), (0..N).collect::<Vec<_>>());

    // The same with async_pull_to.
    seen.lock().unwrap().clear();
    let (done_tx, mut done_rx) = mpsc::channel::<PullDone>(N as usize);
    for n in 0..N {
        session.async_pull_to(
            "/record",
            &(n, pad.clone()),
            PullOptions::new(),
            done_tx.clone(),
        );
    }
    for _ in 0..N {
        done_rx.recv().await.unwrap().result.unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), (0..N).collect::<Vec<_>>());

    client.close().await;
    server.close().await;
}

fn small_queue() -> PeerConfig {
    PeerConfig::builder().write_queue_len(2).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_pulls_reach_the_wire_in_call_order() {
    within(async {
        let client = Peer::builder(Router::new())
            .config(small_queue())
            .build()
            .unwrap();
        pulls_arrive_in_call_order(client).await;
    })
    .await;
}

/// A plugin whose `pre_write_pull` hook sleeps 0-2 ms.
struct Sleepy(std::sync::atomic::AtomicU64);

#[async_trait]
impl RoutePlugin for Sleepy {
    fn name(&self) -> &str {
        "sleepy"
    }
}

#[async_trait]
impl Plugin for Sleepy {
    async fn pre_write_pull(&self, _: &Session, _: &mut Packet) -> Result<(), Status> {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_micros(jitter(n, 2000))).await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_pulls_keep_call_order_through_slow_write_hooks() {
    within(async {
        let client = Peer::builder(Router::new())
            .config(small_queue())
            .plugin(Sleepy(Default::default()))
            .build()
            .unwrap();
        pulls_arrive_in_call_order(client).await;
    })
    .await;
}

/// Tells when its handler's future is dropped, and whether it finished.
struct DropFlag {
    finished: bool,
    tx: mpsc::UnboundedSender<bool>,
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        let _ = self.tx.send(self.finished);
    }
}

/// A server whose `/hold` handler waits for `release` (or `ms`
/// milliseconds, whichever comes first) and reports its end.
async fn holding_server() -> (
    Peer,
    jaunt_peer::Addr,
    Arc<Notify>,
    Arc<Notify>,
    mpsc::UnboundedReceiver<bool>,
) {
    let (ends_tx, ends_rx) = mpsc::unbounded_channel();
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let mut routes = Router::new();
    let (s, r) = (started.clone(), release.clone());
    routes
        .pull("/hold", move |_: PullCtx, ms: u64| {
            let (started, release, tx) = (s.clone(), r.clone(), ends_tx.clone());
            async move {
                let mut flag = DropFlag {
                    finished: false,
                    tx,
                };
                started.notify_one();
                tokio::select! {
                    () = release.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                }
                flag.finished = true;
                Ok::<_, Status>(ms)
            }
        })
        .unwrap();
    let (server, addr) = common::tcp_server(routes).await;
    (server, addr, started, release, ends_rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_pulls_are_pending_when_async_pull_returns() {
    within(async {
        let (server, addr, _started, _release, mut ends) = holding_server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let handle = session.async_pull("/hold", &10_000_u64, PullOptions::new());
                assert_eq!(
                    session.pending_pulls(),
                    i + 1,
                    "after {} async pulls",
                    i + 1
                );
                handle
            })
            .collect();
        assert_eq!(session.stats().pending_pulls, 50);
        // Dropping the handles cancels the pulls.
        drop(handles);
        assert!(eventually(Duration::from_secs(3), || session.pending_pulls() == 0).await);
        for _ in 0..50 {
            let finished = tokio::time::timeout(Duration::from_secs(3), ends.recv())
                .await
                .expect("every handler is dropped")
                .unwrap();
            assert!(!finished);
        }
        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_pull_handle_cancels_the_callees_handler() {
    within(async {
        let (server, addr, started, _release, mut ends) = holding_server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        let handle = session.async_pull("/hold", &10_000_u64, PullOptions::new());
        started.notified().await;
        assert_eq!(session.pending_pulls(), 1);
        drop(handle);
        let finished = tokio::time::timeout(Duration::from_secs(3), ends.recv())
            .await
            .expect("the callee's handler is dropped soon after the handle")
            .unwrap();
        assert!(!finished, "the handler was dropped, not finished");
        assert!(eventually(Duration::from_secs(3), || session.pending_pulls() == 0).await);
        // The session goes on.
        let ms: u64 = session
            .pull("/hold", &1_u64)
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(ms, 1);
        assert_eq!(ends.recv().await, Some(true));

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_pull_runs_to_its_end() {
    within(async {
        let (server, addr, started, _release, mut ends) = holding_server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        session
            .async_pull("/hold", &300_u64, PullOptions::new())
            .detach();
        started.notified().await;
        let finished = tokio::time::timeout(Duration::from_secs(3), ends.recv())
            .await
            .expect("the handler ends within its 300 ms")
            .unwrap();
        assert!(finished, "a detached pull is not cancelled");
        // Its reply came and took the pending entry.
        assert!(eventually(Duration::from_secs(3), || session.pending_pulls() == 0).await);

        client.close().await;
        server.close().await;
    })
    .await;
}

/// A plugin that makes every redial take 200 ms.
struct SlowRedial;

#[async_trait]
impl RoutePlugin for SlowRedial {
    fn name(&self) -> &str {
        "slow-redial"
    }
}

#[async_trait]
impl Plugin for SlowRedial {
    async fn pre_dial(&self, _: &jaunt_peer::Addr, is_redial: bool) -> Result<(), Status> {
        if is_redial {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

/// Async pulls started while the session redials wait for the new
/// connection and then reach it in call order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_pulls_keep_call_order_through_a_redial() {
    within(async {
        let (server, addr, seen) = recording_server().await;
        let config = PeerConfig::builder()
            .redial(
                jaunt_peer::RedialConfig::builder()
                    .interval(Duration::from_millis(100))
                    .build(),
            )
            .build();
        let client = Peer::builder(Router::new())
            .config(config)
            .plugin(SlowRedial)
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();
        common::wait_sessions(&server, 1).await;
        let mut state = session.watch_state();
        server.sessions().pop().unwrap().close();
        state
            .wait_for(|s| *s == jaunt_peer::SessionState::Reconnecting)
            .await
            .unwrap();
        let handles = tokio::spawn({
            let session = session.clone();
            async move {
                (0..N)
                    .map(|n| session.async_pull("/record", &(n, "p"), PullOptions::new()))
                    .collect::<Vec<_>>()
            }
        })
        .await
        .unwrap();
        assert_eq!(session.pending_pulls(), N as usize);
        assert_eq!(session.state(), jaunt_peer::SessionState::Reconnecting);
        for (n, handle) in (0..N).zip(handles) {
            assert_eq!(handle.await.unwrap().decode::<u64>().unwrap(), n);
        }
        assert_eq!(*seen.lock().unwrap(), (0..N).collect::<Vec<_>>());
        client.close().await;
        server.close().await;
    })
    .await;
}
