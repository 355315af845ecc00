//! The completion hooks through real sessions on loopback:
//!
//! 1. `Plugin::post_pull_end` runs exactly once for every pull the client
//!    started, with the right outcome: an OK reply, an error reply, its own
//!    deadline (408), the session closed or the connection lost while it
//!    waited (102), a pull on a closed session (102, not written), a write
//!    hook's refusal, a dropped pull future and an aborted or dropped
//!    `async_pull` (abandoned), through `pull`, `pull_raw`, `async_pull` and
//!    `async_pull_to`;
//! 2. `RoutePlugin::post_serve_end` runs once per served pull whose route
//!    was found (OK, handler error, undecodable body, a `pre_read_pull_body`
//!    refusal) and per routed push, with its status and body sizes; never
//!    for a 404; a group plugin sees only its group's routes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{eventually, within};
use jaunt_codec::RawBody;
use jaunt_peer::{
    Peer, Plugin, PluginGroups, PullCtx, PullEnd, PullOptions, PullOutcome, PushCtx, RouteKind,
    RoutePlugin, Router, ServeEnd, Session,
};
use jaunt_socket::{code, Packet, Status};
use tokio::sync::mpsc;

/// One `post_pull_end` call.
#[derive(Debug, Clone, PartialEq)]
struct PullSeen {
    seq: i32,
    uri: String,
    /// `replied:CODE`, `failed:CODE` or `abandoned`.
    outcome: String,
    written: bool,
    request_body_len: usize,
    reply_body_len: usize,
}

/// One `post_serve_end` call.
#[derive(Debug, Clone, PartialEq)]
struct ServeSeen {
    kind: RouteKind,
    uri: String,
    seq: i32,
    code: i32,
    request_body_len: usize,
    reply_body_len: usize,
}

/// Records the completion hooks; refuses `pre_read_pull_body` of
/// `/refused`, `pre_read_push_body` of `/refused-push` and
/// `pre_write_pull` of `/unsent`.
#[derive(Default)]
struct Ends {
    name: &'static str,
    pulls: Mutex<Vec<PullSeen>>,
    served: Mutex<Vec<ServeSeen>>,
}

impl Ends {
    fn named(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            ..Self::default()
        })
    }

    fn pulls(&self) -> Vec<PullSeen> {
        self.pulls.lock().unwrap().clone()
    }

    fn served(&self) -> Vec<ServeSeen> {
        self.served.lock().unwrap().clone()
    }

    /// Waits (up to 5 s) for the `n`th `post_pull_end` and returns it.
    async fn nth_pull(&self, n: usize) -> PullSeen {
        let ok = eventually(Duration::from_secs(5), || self.pulls().len() > n).await;
        assert!(ok, "post_pull_end #{n} never came: {:#?}", self.pulls());
        self.pulls()[n].clone()
    }

    /// Waits (up to 5 s) for the `n`th `post_serve_end` and returns it.
    async fn nth_served(&self, n: usize) -> ServeSeen {
        let ok = eventually(Duration::from_secs(5), || self.served().len() > n).await;
        assert!(ok, "post_serve_end #{n} never came: {:#?}", self.served());
        self.served()[n].clone()
    }
}

#[async_trait]
impl RoutePlugin for Ends {
    fn name(&self) -> &str {
        self.name
    }

    async fn pre_read_pull_body(&self, _: &Session, packet: &mut Packet) -> Result<(), Status> {
        match packet.path() {
            "/refused" => Err(Status::new(1403, "refused by a plugin")),
            _ => Ok(()),
        }
    }

    async fn pre_read_push_body(&self, _: &Session, packet: &mut Packet) -> Result<(), Status> {
        match packet.path() {
            "/refused-push" => Err(Status::new(1403, "refused by a plugin")),
            _ => Ok(()),
        }
    }

    fn post_serve_end(&self, _: &Session, end: &ServeEnd<'_>) {
        self.served.lock().unwrap().push(ServeSeen {
            kind: end.kind,
            uri: end.uri.to_owned(),
            seq: end.seq,
            code: end.code,
            request_body_len: end.request_body_len,
            reply_body_len: end.reply_body_len,
        });
    }
}

#[async_trait]
impl Plugin for Ends {
    async fn pre_write_pull(&self, _: &Session, pull: &mut Packet) -> Result<(), Status> {
        match pull.path() {
            "/unsent" => Err(Status::new(1499, "not sent by a plugin")),
            _ => Ok(()),
        }
    }

    fn post_pull_end(&self, _: &Session, end: &PullEnd<'_>) {
        let outcome = match end.outcome {
            PullOutcome::Replied(status) => format!("replied:{}", status.code()),
            PullOutcome::Failed(status) => format!("failed:{}", status.code()),
            PullOutcome::Abandoned => "abandoned".to_owned(),
            _ => "unknown".to_owned(),
        };
        self.pulls.lock().unwrap().push(PullSeen {
            seq: end.seq,
            uri: end.uri.to_owned(),
            outcome,
            written: end.written,
            request_body_len: end.request_body_len,
            reply_body_len: end.reply_body_len,
        });
    }
}

/// Drops the caller's time budget from every pull, so that the server never
/// answers 408 itself: a pull's deadline is then always the caller's own
/// (a `Failed` outcome), never a race with the server's 408 reply.
struct NoServerDeadline;

impl RoutePlugin for NoServerDeadline {
    fn name(&self) -> &str {
        "no-server-deadline"
    }
}

#[async_trait]
impl Plugin for NoServerDeadline {
    async fn post_read_pull_header(&self, _: &Session, pull: &mut Packet) -> Result<(), Status> {
        pull.meta.remove(jaunt_peer::TIMEOUT_META);
        Ok(())
    }
}

/// A server: `/echo` returns its string, `/fail` fails with 1001, `/slow`
/// sleeps its argument in ms, `/number` wants an i64.
async fn server() -> (Peer, jaunt_peer::Addr) {
    let mut router = Router::new();
    router
        .pull("/echo", |_: PullCtx, s: String| async move {
            Ok::<_, Status>(s)
        })
        .unwrap();
    router
        .pull("/fail", |_: PullCtx, _: String| async move {
            Err::<String, _>(Status::new(1001, "failed on purpose"))
        })
        .unwrap();
    router
        .pull("/slow", |_: PullCtx, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, Status>(ms)
        })
        .unwrap();
    let server = Peer::builder(router)
        .plugin(NoServerDeadline)
        .build()
        .expect("build the server");
    let addr = server.listen("127.0.0.1:0").await.expect("listen");
    (server, addr)
}

/// A client peer with the recorder.
fn client(ends: &Arc<Ends>) -> Peer {
    Peer::builder(Router::new())
        .plugin_arc(ends.clone())
        .build()
        .expect("build the client")
}

fn ended(uri: &str, outcome: &str) -> (String, String) {
    (uri.to_owned(), outcome.to_owned())
}

fn key(seen: &PullSeen) -> (String, String) {
    (seen.uri.clone(), seen.outcome.clone())
}

#[tokio::test]
async fn post_pull_end_runs_once_per_pull_with_its_outcome() {
    within(async {
        let (server, addr) = server().await;
        let ends = Ends::named("ends");
        let client = client(&ends);
        let session = client.dial(&addr).await.expect("dial");
        let mut n = 0;

        // An OK reply: written, bodies measured (JSON `"hi"` both ways).
        let reply = session.pull("/echo", &"hi").await.expect("echo");
        assert_eq!(reply.decode::<String>().unwrap(), "hi");
        let seen = ends.nth_pull(n).await;
        n += 1;
        assert_eq!(key(&seen), ended("/echo", "replied:0"));
        assert!(seen.written);
        assert_eq!((seen.request_body_len, seen.reply_body_len), (4, 4));

        // An error reply: the other side's code.
        let err = session.pull("/fail", &"x").await.unwrap_err();
        assert_eq!(err.code(), 1001);
        assert_eq!(key(&ends.nth_pull(n).await), ended("/fail", "replied:1001"));
        n += 1;

        // No route: the 404 is a reply too.
        let err = session.pull("/nowhere?q=1", &"x").await.unwrap_err();
        assert_eq!(err.code(), code::NOT_FOUND);
        let seen = ends.nth_pull(n).await;
        n += 1;
        assert_eq!(key(&seen), ended("/nowhere", "replied:404"));

        // Its own deadline: 408, written.
        let slow = PullOptions::new().timeout(Duration::from_millis(100));
        let err = session
            .pull_with("/slow", &2_000u64, slow)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT);
        let seen = ends.nth_pull(n).await;
        n += 1;
        assert_eq!(key(&seen), ended("/slow", "failed:408"));
        assert!(seen.written);

        // A write hook's refusal: that status, nothing written.
        let err = session.pull("/unsent", &"x").await.unwrap_err();
        assert_eq!(err.code(), 1499);
        let seen = ends.nth_pull(n).await;
        n += 1;
        assert_eq!(key(&seen), ended("/unsent", "failed:1499"));
        assert!(!seen.written);
        assert_eq!(seen.request_body_len, 0);

        // pull_raw.
        let body = RawBody::new(b'j', Bytes::from_static(b"\"raw\""));
        session
            .pull_raw("/echo", body, PullOptions::new())
            .await
            .expect("raw echo");
        let seen = ends.nth_pull(n).await;
        n += 1;
        assert_eq!(key(&seen), ended("/echo", "replied:0"));
        assert_eq!(seen.request_body_len, 5);

        // async_pull, awaited.
        let reply = session
            .async_pull("/echo", &"a", PullOptions::new())
            .await
            .expect("async echo");
        assert_eq!(reply.decode::<String>().unwrap(), "a");
        assert_eq!(key(&ends.nth_pull(n).await), ended("/echo", "replied:0"));
        n += 1;

        // async_pull_to with a deadline: 408 into the channel.
        let (done_tx, mut done_rx) = mpsc::channel(1);
        let slow = PullOptions::new().timeout(Duration::from_millis(100));
        session.async_pull_to("/slow", &2_000u64, slow, done_tx);
        let done = done_rx.recv().await.expect("the outcome");
        assert_eq!(done.result.unwrap_err().code(), code::HANDLE_TIMEOUT);
        assert_eq!(key(&ends.nth_pull(n).await), ended("/slow", "failed:408"));
        n += 1;

        // A pull future dropped while it waits: abandoned.
        let dropped =
            tokio::time::timeout(Duration::from_millis(100), session.pull("/slow", &2_000u64))
                .await;
        assert!(dropped.is_err(), "the pull should still have been waiting");
        let seen = ends.nth_pull(n).await;
        n += 1;
        assert_eq!(key(&seen), ended("/slow", "abandoned"));
        assert!(seen.written);

        // An async_pull aborted while it waits: abandoned.
        let handle = session.async_pull("/slow", &2_000u64, PullOptions::new());
        tokio::time::sleep(Duration::from_millis(50)).await;
        handle.abort();
        assert_eq!(key(&ends.nth_pull(n).await), ended("/slow", "abandoned"));
        n += 1;

        // An async_pull handle dropped: abandoned.
        let handle = session.async_pull("/slow", &2_000u64, PullOptions::new());
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(handle);
        assert_eq!(key(&ends.nth_pull(n).await), ended("/slow", "abandoned"));
        n += 1;

        // The session closed while a pull and an async_pull wait: 102 each.
        let waiting = {
            let session = session.clone();
            tokio::spawn(async move { session.pull("/slow", &5_000u64).await })
        };
        let handle = session.async_pull("/slow", &5_000u64, PullOptions::new());
        assert!(eventually(Duration::from_secs(5), || session.pending_pulls() == 2).await);
        session.close();
        let err = waiting.await.unwrap().unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED);
        assert_eq!(handle.await.unwrap_err().code(), code::CONN_CLOSED);
        let a = ends.nth_pull(n).await;
        let b = ends.nth_pull(n + 1).await;
        n += 2;
        for seen in [&a, &b] {
            assert_eq!(key(seen), ended("/slow", "failed:102"));
            assert!(seen.written);
        }

        // A pull on the closed session: 102, nothing written; both kinds.
        let err = session.pull("/echo", &"late").await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED);
        let seen = ends.nth_pull(n).await;
        n += 1;
        assert_eq!(key(&seen), ended("/echo", "failed:102"));
        assert!(!seen.written);
        let late = session.async_pull("/echo", &"late", PullOptions::new());
        assert_eq!(late.await.unwrap_err().code(), code::CONN_CLOSED);
        assert_eq!(key(&ends.nth_pull(n).await), ended("/echo", "failed:102"));
        n += 1;

        // The connection lost (the server went away) while a pull waits.
        let session = client.dial(&addr).await.expect("dial again");
        let waiting = {
            let session = session.clone();
            tokio::spawn(async move { session.pull("/slow", &5_000u64).await })
        };
        assert!(eventually(Duration::from_secs(5), || session.pending_pulls() == 1).await);
        server.close().await;
        let err = waiting.await.unwrap().unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED);
        assert_eq!(key(&ends.nth_pull(n).await), ended("/slow", "failed:102"));
        n += 1;

        // Exactly once: nothing more comes, and no pull is seen twice.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let all = ends.pulls();
        assert_eq!(all.len(), n, "one post_pull_end per pull: {all:#?}");
        // Two sessions: seqs are unique per session; the second session's
        // single pull is the last.
        let mut seqs: Vec<i32> = all[..n - 1].iter().map(|s| s.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), n - 1, "a pull was seen twice: {all:#?}");

        client.close().await;
    })
    .await;
}

#[tokio::test]
async fn post_serve_end_runs_once_per_routed_pull_and_push() {
    within(async {
        let ends = Ends::named("ends");
        let group = Ends::named("group");
        let (pushed_tx, mut pushed_rx) = mpsc::unbounded_channel::<String>();
        let mut router = Router::new();
        router
            .pull("/echo", |_: PullCtx, s: String| async move {
                Ok::<_, Status>(s)
            })
            .unwrap();
        router
            .pull("/fail", |_: PullCtx, _: String| async move {
                Err::<String, _>(Status::new(1001, "failed on purpose"))
            })
            .unwrap();
        router
            .pull(
                "/number",
                |_: PullCtx, n: i64| async move { Ok::<_, Status>(n) },
            )
            .unwrap();
        router
            .pull("/refused", |_: PullCtx, s: String| async move {
                Ok::<_, Status>(s)
            })
            .unwrap();
        let tx = pushed_tx.clone();
        router
            .push("/note", move |_: PushCtx, s: String| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(s);
                }
            })
            .unwrap();
        router
            .push("/refused-push", |_: PushCtx, _: String| async move {})
            .unwrap();
        {
            let tx = pushed_tx.clone();
            let mut g = router.plugin_group("/g", vec![group.clone()]);
            g.pull("/echo", |_: PullCtx, s: String| async move {
                Ok::<_, Status>(s)
            })
            .unwrap();
            g.push("/note", move |_: PushCtx, s: String| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(s);
                }
            })
            .unwrap();
        }
        let server = Peer::builder(router)
            .plugin_arc(ends.clone())
            .build()
            .expect("build the server");
        let addr = server.listen("127.0.0.1:0").await.expect("listen");
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.expect("dial");
        let mut n = 0;

        // OK: JSON `"hello"` in and out (7 bytes each).
        let reply = session.pull("/echo", &"hello").await.expect("echo");
        let seen = ends.nth_served(n).await;
        n += 1;
        assert_eq!(
            seen,
            ServeSeen {
                kind: RouteKind::Pull,
                uri: "/echo".into(),
                seq: seen.seq,
                code: 0,
                request_body_len: 7,
                reply_body_len: 7,
            }
        );
        assert_eq!(reply.decode::<String>().unwrap(), "hello");

        // The handler's error.
        assert_eq!(session.pull("/fail", &"x").await.unwrap_err().code(), 1001);
        let seen = ends.nth_served(n).await;
        n += 1;
        assert_eq!(
            (seen.uri.as_str(), seen.code, seen.reply_body_len),
            ("/fail", 1001, 0)
        );

        // An undecodable body (a string for an i64), the query string not
        // part of the uri.
        let err = session.pull("/number?x=1", &"seven").await.unwrap_err();
        let seen = ends.nth_served(n).await;
        n += 1;
        assert_eq!((seen.uri.as_str(), seen.code), ("/number", err.code()));
        assert_ne!(seen.code, 0);
        assert_eq!(seen.request_body_len, 7);

        // A plugin refusing in pre_read_pull_body.
        assert_eq!(
            session.pull("/refused", &"x").await.unwrap_err().code(),
            1403
        );
        let seen = ends.nth_served(n).await;
        n += 1;
        assert_eq!((seen.uri.as_str(), seen.code), ("/refused", 1403));

        // No route: not seen.
        let err = session.pull("/nowhere", &"x").await.unwrap_err();
        assert_eq!(err.code(), code::NOT_FOUND);

        // A push handed to its handler, and one a hook dropped.
        session.push("/note", &"pushed").await.expect("push");
        assert_eq!(pushed_rx.recv().await.as_deref(), Some("pushed"));
        let seen = ends.nth_served(n).await;
        n += 1;
        assert_eq!(
            (
                seen.kind,
                seen.uri.as_str(),
                seen.code,
                seen.request_body_len
            ),
            (RouteKind::Push, "/note", 0, 8)
        );
        session.push("/refused-push", &"x").await.expect("push");
        let seen = ends.nth_served(n).await;
        n += 1;
        assert_eq!(
            (seen.kind, seen.uri.as_str(), seen.code),
            (RouteKind::Push, "/refused-push", 1403)
        );

        // The group's routes: both the peer plugin and the group plugin.
        session
            .pull("/g/echo", &"in group")
            .await
            .expect("group echo");
        session.push("/g/note", &"group push").await.expect("push");
        assert_eq!(pushed_rx.recv().await.as_deref(), Some("group push"));
        let pull = ends.nth_served(n).await;
        let push = ends.nth_served(n + 1).await;
        n += 2;
        assert_eq!((pull.kind, pull.uri.as_str()), (RouteKind::Pull, "/g/echo"));
        assert_eq!((push.kind, push.uri.as_str()), (RouteKind::Push, "/g/note"));
        let in_group = group.nth_served(1).await;
        assert_eq!(group.served(), vec![pull, in_group.clone()]);
        assert_eq!(in_group, push);

        // Exactly once each.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(ends.served().len(), n, "{:#?}", ends.served());
        assert_eq!(group.served().len(), 2, "{:#?}", group.served());
        // The client side of the server sent nothing.
        assert!(ends.pulls().is_empty());

        client.close().await;
        server.close().await;
    })
    .await;
}

/// With no plugin, nothing changes: the same pulls end as before (this
/// path has no hooks to call; the guard must not get in the way).
#[tokio::test]
async fn pulls_without_plugins_end_as_before() {
    within(async {
        let (server, addr) = server().await;
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.expect("dial");
        let reply = session.pull("/echo", &"x").await.expect("echo");
        assert_eq!(reply.decode::<String>().unwrap(), "x");
        let slow = PullOptions::new().timeout(Duration::from_millis(50));
        let err = session
            .pull_with("/slow", &1_000u64, slow)
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT);
        let handle = session.async_pull("/slow", &1_000u64, PullOptions::new());
        drop(handle);
        assert!(eventually(Duration::from_secs(5), || session.pending_pulls() == 0).await);
        client.close().await;
        server.close().await;
    })
    .await;
}
