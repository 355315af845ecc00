//! Unix domain sockets: listen and dial `unix:/path`, distinct sessions.

mod common;

use common::{wait_sessions, within};
use jaunt_peer::{Addr, Peer, PullCtx, Router};
use jaunt_socket::{code, Status};

fn routes() -> Router {
    let mut routes = Router::new();
    routes
        .pull("/who", |ctx: PullCtx, n: u32| async move {
            Ok::<_, Status>((ctx.session().id().to_string(), n + 1))
        })
        .unwrap();
    routes
}

/// Pulls over a Unix socket work; two clients at once are two sessions with
/// distinct ids on the server; closing the server removes the socket file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_pull_and_distinct_sessions() {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let server = Peer::new(routes());
        let addr = server
            .listen(format!("unix:{}", path.display()))
            .await
            .unwrap();
        assert_eq!(addr, Addr::Unix(path.clone()));
        assert!(path.exists());

        // Two clients of one peer, plus a client of another peer.
        let client = Peer::new(Router::new());
        let a = client.dial(&addr).await.unwrap();
        let b = client
            .dial(format!("unix:{}", path.display()))
            .await
            .unwrap();
        let other = Peer::new(Router::new());
        let c = other.dial(&addr).await.unwrap();
        assert!(
            !a.is_closed() && !b.is_closed(),
            "dialing one path twice must keep both sessions"
        );
        assert_eq!(client.session_count(), 2);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.remote_addr(), &addr);

        let (id_a, na): (String, u32) = a.pull("/who", &1).await.unwrap().decode().unwrap();
        let (id_b, nb): (String, u32) = b.pull("/who", &2).await.unwrap().decode().unwrap();
        let (id_c, nc): (String, u32) = c.pull("/who", &3).await.unwrap().decode().unwrap();
        assert_eq!((na, nb, nc), (2, 3, 4));
        wait_sessions(&server, 3).await;
        assert!(
            id_a != id_b && id_b != id_c && id_a != id_c,
            "{id_a} {id_b} {id_c}"
        );
        let mut ids: Vec<String> = server
            .sessions()
            .iter()
            .map(|s| s.id().to_string())
            .collect();
        ids.sort();
        let mut seen = vec![id_a.clone(), id_b, id_c];
        seen.sort();
        assert_eq!(ids, seen);
        assert!(server.get_session(&id_a).is_some());

        // One client goes away: the server notices.
        a.close();
        a.closed().await;
        wait_sessions(&server, 2).await;
        assert!(server.get_session(&id_a).is_none());
        let (_, nb): (String, u32) = b.pull("/who", &10).await.unwrap().decode().unwrap();
        assert_eq!(nb, 11);

        other.close().await;
        client.close().await;
        server.close().await;
        assert!(
            !path.exists(),
            "the socket file is removed when the listener stops"
        );
        // Nothing listens any more.
        let err = Peer::new(Router::new()).dial(&addr).await.unwrap_err();
        assert_eq!(err.code(), code::DIAL_FAILED);
    })
    .await;
}
