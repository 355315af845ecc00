//! Pull and push in both directions on one connection, many concurrent pulls
//! on one session, async pulls and per-session data.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{jitter, tcp_server, wait_sessions, within};
use jaunt_peer::{Peer, PullCtx, PullDone, PullOptions, PushCtx, Router};
use jaunt_socket::Status;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Event {
    kind: String,
    n: u32,
}

/// Client pulls server; the server's handler pulls the client back and
/// pushes to it through `ctx.session()`; the server pulls and pushes the
/// client outside a handler; the client pushes to the server. One TCP
/// connection carries all of it, and seq 1 is in flight in both directions at
/// once (the client's pull and the server's pull back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_and_push_both_ways_on_one_connection() {
    within(async {
        // Server side.
        let handler_sessions: Arc<Mutex<Vec<Arc<str>>>> = Arc::default();
        let (event_tx, mut event_rx) = mpsc::channel::<(Event, Arc<str>)>(8);
        let mut server_routes = Router::new();
        let seen = handler_sessions.clone();
        server_routes
            .pull("/server/greet", move |ctx: PullCtx, name: String| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(ctx.session().id());
                    // Pull the caller back while its pull is still pending.
                    let back: String = ctx
                        .session()
                        .pull("/client/whoami", &name.len())
                        .await?
                        .decode()?;
                    ctx.session()
                        .push("/client/notice", &format!("greeted {name}"))
                        .await?;
                    Ok::<_, Status>(format!("hello {name} (seq {}), you are {back}", ctx.seq()))
                }
            })
            .unwrap();
        server_routes
            .push("/server/event", move |ctx: PushCtx, ev: Event| {
                let tx = event_tx.clone();
                async move {
                    tx.send((ev, ctx.session().id())).await.unwrap();
                }
            })
            .unwrap();
        let (server, addr) = tcp_server(server_routes).await;

        // Client side.
        let (notice_tx, mut notice_rx) = mpsc::channel::<String>(8);
        let mut client_routes = Router::new();
        client_routes
            .pull("/client/whoami", |ctx: PullCtx, n: usize| async move {
                Ok::<_, Status>(format!("client#{n}@seq{}", ctx.seq()))
            })
            .unwrap();
        client_routes
            .push("/client/notice", move |_: PushCtx, text: String| {
                let tx = notice_tx.clone();
                async move {
                    tx.send(text).await.unwrap();
                }
            })
            .unwrap();
        let client = Peer::new(client_routes);
        let session = client.dial(&addr).await.unwrap();

        // 1. client pulls server, which pulls back (its seq 1) and pushes (its seq 2).
        let reply = session.pull("/server/greet", &"ann").await.unwrap();
        let greeting: String = reply.decode().unwrap();
        assert_eq!(greeting, "hello ann (seq 1), you are client#3@seq1");
        assert_eq!(notice_rx.recv().await.unwrap(), "greeted ann");

        // The server-side session is this connection: its id is our local address.
        let server_id = handler_sessions.lock().unwrap()[0].clone();
        assert_eq!(&*server_id, session.local_addr().to_string());
        assert_eq!(server.session_count(), 1);
        assert_eq!(client.session_count(), 1);

        // 2. client pushes server.
        let ev = Event {
            kind: "click".into(),
            n: 7,
        };
        session.push("/server/event", &ev).await.unwrap();
        let (got, via) = event_rx.recv().await.unwrap();
        assert_eq!(got, ev);
        assert_eq!(via, server_id, "the push came over the same connection");

        // 3. server pushes (its seq 3) and pulls (its seq 4) outside any handler.
        let server_side = server.get_session(&server_id).expect("server-side session");
        server_side.push("/client/notice", &"direct").await.unwrap();
        assert_eq!(notice_rx.recv().await.unwrap(), "direct");
        let answer: String = server_side
            .pull("/client/whoami", &9_usize)
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(answer, "client#9@seq4");

        // 4. the client's counter went on independently: this pull is its seq 3
        // (seq 1 = /server/greet, seq 2 = the push).
        let again: String = session
            .pull("/server/greet", &"bo")
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(again, "hello bo (seq 3), you are client#2@seq5");
        assert_eq!(notice_rx.recv().await.unwrap(), "greeted bo");
        assert_eq!(server.session_count(), 1);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[derive(Debug, Serialize, Deserialize)]
struct Echoed {
    n: u64,
    twice: u64,
    tag: String,
    seq: i32,
}

/// 1,000 pulls in flight at once on one session, each handler sleeping a
/// pseudo-random 0–9 ms: every reply carries its own argument and the seq of
/// the pull it answers, and replies arrive out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_pulls_match_their_replies() {
    within(async {
        const N: u64 = 1000;
        let mut routes = Router::new();
        routes
            .pull("/slow/double", |ctx: PullCtx, n: u64| async move {
                tokio::time::sleep(Duration::from_millis(jitter(n, 10))).await;
                Ok::<_, Status>(Echoed {
                    n,
                    twice: n * 2,
                    tag: format!("#{n}"),
                    seq: ctx.seq(),
                })
            })
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        let arrivals: Arc<Mutex<Vec<i32>>> = Arc::default();
        let pulls = (0..N).map(|n| {
            let session = session.clone();
            let arrivals = arrivals.clone();
            async move {
                let reply = session.pull("/slow/double", &n).await.expect("pull");
                let body: Echoed = reply.decode().expect("decode");
                let seq = reply.into_packet().seq;
                arrivals.lock().unwrap().push(seq);
                (n, body, seq)
            }
        });
        let results = futures_util::future::join_all(pulls).await;

        assert_eq!(results.len(), N as usize);
        let mut seqs = std::collections::HashSet::new();
        for (n, body, seq) in &results {
            assert_eq!(body.n, *n, "reply of another pull");
            assert_eq!(body.twice, n * 2);
            assert_eq!(body.tag, format!("#{n}"));
            // The reply echoes the seq of the pull the handler served.
            assert_eq!(body.seq, *seq);
            assert!(seqs.insert(*seq), "seq {seq} answered twice");
        }
        assert_eq!(seqs.len(), N as usize);
        assert!(seqs.iter().all(|s| (1..=N as i32).contains(s)));

        // Replies came back in another order than the pulls were sent.
        let arrivals = arrivals.lock().unwrap().clone();
        let inversions = arrivals.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(
            inversions > 0,
            "replies arrived in send order: the test did not exercise reordering"
        );

        assert_eq!(session.peer().session_count(), 1);
        client.close().await;
        server.close().await;
    })
    .await;
}

/// `async_pull` resolves to the reply; `async_pull_to` delivers a `PullDone`
/// into the channel; session data persists across calls of one session and
/// is separate per session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_pull_and_session_data() {
    within(async {
        let mut routes = Router::new();
        routes
            .pull("/count", |ctx: PullCtx| async move {
                let n = ctx.data().update(|count: &mut u32| {
                    *count += 1;
                    *count
                });
                Ok::<_, Status>(n)
            })
            .unwrap();
        routes
            .pull("/name", |ctx: PullCtx, name: Option<String>| async move {
                if let Some(name) = name {
                    ctx.data().insert(name);
                }
                Ok::<_, Status>(ctx.data().get::<String>())
            })
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());
        let a = client.dial(&addr).await.unwrap();
        let b = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 2).await;

        // async_pull: the handle resolves to the reply.
        let h1 = a.async_pull("/count", &(), PullOptions::new());
        let first: u32 = h1.await.unwrap().decode().unwrap();
        assert_eq!(first, 1);
        let second: u32 = a
            .async_pull("/count", &(), PullOptions::new())
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(second, 2);

        // async_pull_to: the outcome arrives in the channel, ok or not.
        let (done_tx, mut done_rx) = mpsc::channel::<PullDone>(4);
        a.async_pull_to("/count", &(), PullOptions::new(), done_tx.clone());
        let done = done_rx.recv().await.unwrap();
        assert_eq!(done.uri, "/count");
        assert_eq!(done.result.unwrap().decode::<u32>().unwrap(), 3);
        a.async_pull_to("/missing", &(), PullOptions::new(), done_tx);
        let done = done_rx.recv().await.unwrap();
        assert_eq!(done.uri, "/missing");
        assert_eq!(done.result.unwrap_err().code(), 404);

        // Another session has its own data.
        let b_first: u32 = b.pull("/count", &()).await.unwrap().decode().unwrap();
        assert_eq!(b_first, 1);
        let named: Option<String> = a
            .pull("/name", &Some("alice"))
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(named.as_deref(), Some("alice"));
        let b_name: Option<String> = b
            .pull("/name", &None::<String>)
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(b_name, None);
        let a_name: Option<String> = a
            .pull("/name", &None::<String>)
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(a_name.as_deref(), Some("alice"));

        // The same data is visible from the server-side session handles.
        let sa = server.get_session(&a.local_addr().to_string()).unwrap();
        let sb = server.get_session(&b.local_addr().to_string()).unwrap();
        assert_eq!(sa.data().get::<u32>(), Some(3));
        assert_eq!(sb.data().get::<u32>(), Some(1));
        assert_eq!(sa.data().get::<String>().as_deref(), Some("alice"));
        assert!(!sb.data().contains::<String>());

        // Many async pulls at once, each counted once.
        let handles: Vec<_> = (0..20)
            .map(|_| a.async_pull("/count", &(), PullOptions::new()))
            .collect();
        let mut counts = Vec::new();
        for h in handles {
            counts.push(h.await.unwrap().decode::<u32>().unwrap());
        }
        counts.sort_unstable();
        assert_eq!(counts, (4..24).collect::<Vec<u32>>());

        client.close().await;
        server.close().await;
    })
    .await;
}

/// A dropped (timed-out) pull does not disturb the following ones, and the
/// callee is told: the abandoned handlers are dropped, only the fast pull's
/// handler finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_pull_leaves_session_usable() {
    within(async {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut routes = Router::new();
        let counter = calls.clone();
        routes
            .pull("/wait", move |_: PullCtx, ms: u64| {
                let counter = counter.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Status>(ms)
                }
            })
            .unwrap();
        let (server, addr) = tcp_server(routes).await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        let gave_up =
            tokio::time::timeout(Duration::from_millis(50), session.pull("/wait", &300_u64)).await;
        assert!(gave_up.is_err(), "the slow pull should have timed out");
        let handle = session.async_pull("/wait", &400_u64, PullOptions::new());
        // Give the pull time to be sent before abandoning it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        handle.abort();
        let fast: u64 = session
            .pull("/wait", &1_u64)
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(fast, 1);
        // Past the abandoned handlers' sleeps, only the fast one has finished:
        // the other two were cancelled by their callers.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let last: u64 = session
            .pull("/wait", &2_u64)
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(last, 2);
        assert!(!session.is_closed());

        client.close().await;
        server.close().await;
    })
    .await;
}
