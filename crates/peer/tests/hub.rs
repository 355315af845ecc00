//! The session hub: counting, lookup by id, renaming (displacing the holder
//! of an id), broadcast, and closing from either side.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, tcp_server, wait_sessions, within};
use jaunt_peer::{Peer, PullCtx, PushCtx, Router};
use jaunt_socket::Status;
use tokio::sync::mpsc;

const N: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_counts_finds_renames_broadcasts_and_closes() {
    within(async {
        let mut server_routes = Router::new();
        server_routes
            .pull("/id", |ctx: PullCtx| async move {
                Ok::<_, Status>(ctx.session().id().to_string())
            })
            .unwrap();
        let (server, addr) = tcp_server(server_routes).await;

        // Every client session reports the broadcasts it receives.
        let (tx, mut rx) = mpsc::channel::<(Arc<str>, String)>(64);
        let mut client_routes = Router::new();
        client_routes
            .push("/news", move |ctx: PushCtx, text: String| {
                let tx = tx.clone();
                async move {
                    tx.send((ctx.session().id(), text)).await.unwrap();
                }
            })
            .unwrap();
        let client = Peer::new(client_routes);

        // N dials: N sessions on each side.
        let mut sessions = Vec::new();
        for _ in 0..N {
            sessions.push(client.dial(&addr).await.unwrap());
        }
        wait_sessions(&server, N).await;
        assert_eq!(client.session_count(), N, "each dial is its own session");
        assert!(sessions.iter().all(|s| !s.is_closed()));

        // get_session finds each one, by the id the server gives it.
        for s in &sessions {
            let id: String = s.pull("/id", &()).await.unwrap().decode().unwrap();
            let found = server.get_session(&id).expect("get_session");
            assert_eq!(&*found.id(), id);
            assert_eq!(found.remote_addr(), &s.local_addr());
            assert!(client.get_session(&s.id()).unwrap().ptr_eq(s));
        }
        assert!(server.get_session("no such id").is_none());

        // broadcast_push reaches every client exactly once.
        let report = server.broadcast_push("/news", &"extra!").await.unwrap();
        assert_eq!((report.sent, report.sessions()), (N, N));
        let mut got = HashSet::new();
        for _ in 0..N {
            let (via, text) = rx.recv().await.unwrap();
            assert_eq!(text, "extra!");
            assert!(
                got.insert(via.clone()),
                "session {via} got the broadcast twice"
            );
        }
        let expected: HashSet<Arc<str>> = sessions.iter().map(|s| s.id()).collect();
        assert_eq!(got, expected);
        assert!(tokio::time::timeout(Duration::from_millis(100), rx.recv())
            .await
            .is_err());

        // set_id to a fresh id: found under it, not under the old one.
        let server_side =
            |s: &jaunt_peer::Session| server.get_session(&s.local_addr().to_string()).unwrap();
        let s0 = server_side(&sessions[0]);
        let s1 = server_side(&sessions[1]);
        let old0 = s0.id();
        s0.set_id("alpha");
        assert_eq!(&*s0.id(), "alpha");
        assert!(server.get_session("alpha").unwrap().ptr_eq(&s0));
        assert!(server.get_session(&old0).is_none());
        assert_eq!(server.session_count(), N);
        let seen: String = sessions[0]
            .pull("/id", &())
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(seen, "alpha");

        // set_id to an id in use closes the older session.
        s1.set_id("alpha");
        assert!(s0.is_closed(), "the session that held the id is closed");
        assert!(!s1.is_closed());
        assert!(server.get_session("alpha").unwrap().ptr_eq(&s1));
        assert_eq!(server.session_count(), N - 1);
        // ...and its client notices.
        assert!(eventually(Duration::from_secs(3), || sessions[0].is_closed()).await);
        assert!(eventually(Duration::from_secs(3), || client.session_count() == N - 1).await);
        let seen: String = sessions[1]
            .pull("/id", &())
            .await
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(seen, "alpha");

        // A broadcast now reaches the N - 1 live sessions.
        assert_eq!(
            server
                .broadcast_push("/news", &"second")
                .await
                .unwrap()
                .sent,
            N - 1
        );
        for _ in 0..N - 1 {
            assert_eq!(rx.recv().await.unwrap().1, "second");
        }

        // Closing a session on the client side drops the server's count...
        sessions[2].close();
        sessions[2].closed().await;
        wait_sessions(&server, N - 2).await;
        assert_eq!(client.session_count(), N - 2);
        // ...and on the server side, the client's.
        let s3 = server_side(&sessions[3]);
        s3.close();
        assert!(eventually(Duration::from_secs(3), || client.session_count() == N - 3).await);
        assert!(sessions[3].is_closed());
        wait_sessions(&server, N - 3).await;

        // Closing the client peer closes the rest.
        client.close().await;
        assert_eq!(client.session_count(), 0);
        wait_sessions(&server, 0).await;
        server.close().await;
    })
    .await;
}
