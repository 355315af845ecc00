//! Redial through real sockets: a server restarted while its client redials.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jaunt_peer::{
    Peer, PeerConfig, Plugin, PullCtx, PullOptions, RedialConfig, RoutePlugin, Router, Session,
    SessionState,
};
use jaunt_socket::{code, Status};

const LIMIT: Duration = Duration::from_secs(20);

fn server_router(tag: &'static str) -> Router {
    let mut router = Router::new();
    router
        .pull(
            "/who",
            move |_: PullCtx| async move { Ok::<_, Status>(tag) },
        )
        .unwrap()
        .pull("/sleep", |_: PullCtx, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, Status>(ms)
        })
        .unwrap();
    router
}

/// Records `post_dial` calls with their redial flag.
#[derive(Clone, Default)]
struct DialLog(Arc<Mutex<Vec<bool>>>);

#[async_trait::async_trait]
impl RoutePlugin for DialLog {
    fn name(&self) -> &str {
        "dial-log"
    }
}

#[async_trait::async_trait]
impl Plugin for DialLog {
    async fn post_dial(&self, _: &Session, is_redial: bool) -> Result<(), Status> {
        self.0.lock().unwrap().push(is_redial);
        Ok(())
    }
}

fn client(redial: RedialConfig, log: DialLog) -> Peer {
    let config = PeerConfig::builder().redial(redial).build();
    Peer::builder(Router::new())
        .config(config)
        .plugin(log)
        .build()
        .unwrap()
}

fn fast_redial() -> RedialConfig {
    RedialConfig::builder()
        .interval(Duration::from_millis(30))
        .backoff(1.5)
        .max_interval(Duration::from_millis(200))
        .max_attempts(None)
        .build()
}

async fn wait_state(session: &Session, want: impl Fn(SessionState) -> bool) -> bool {
    let mut watch = session.watch_state();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if want(*watch.borrow_and_update()) {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, watch.changed()).await.is_err() {
            return false;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_gets_its_clients_back() {
    tokio::time::timeout(LIMIT, async {
        let first = Peer::new(server_router("first"));
        let addr = first.listen("127.0.0.1:0").await.unwrap();
        let log = DialLog::default();
        let client = client(fast_redial(), log.clone());
        let session = client.dial(&addr).await.unwrap();
        let id = session.id();
        session.data().insert(42_u32);
        assert_eq!(session.state(), SessionState::Connected { generation: 1 });
        let who: String = session.pull("/who", &()).await.unwrap().decode().unwrap();
        assert_eq!(who, "first");

        // A pull pending when the connection is lost ends with 102.
        let pending = session.async_pull("/sleep", &5_000_u64, PullOptions::new());
        tokio::time::sleep(Duration::from_millis(50)).await;
        first.close().await;
        let lost = pending.await.unwrap_err();
        assert_eq!(lost.code(), code::CONN_CLOSED, "{lost}");
        assert!(wait_state(&session, |s| s == SessionState::Reconnecting).await);
        assert!(!session.is_closed());

        // A pull issued during the outage waits for the reconnection.
        let during = session.async_pull(
            "/who",
            &(),
            PullOptions::new().timeout(Duration::from_secs(10)),
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let second = Peer::new(server_router("second"));
        second.listen(&addr).await.unwrap();

        let who: String = during.await.unwrap().decode().unwrap();
        assert_eq!(who, "second", "the pull waited and went to the new server");
        assert!(matches!(
            session.state(),
            SessionState::Connected { generation: 2 }
        ));
        assert_eq!(session.id(), id, "the session keeps its id");
        assert_eq!(session.data().get::<u32>(), Some(42), "and its data");
        assert_eq!(client.session_count(), 1);
        let dials = log.0.lock().unwrap().clone();
        assert_eq!(dials.first(), Some(&false));
        assert_eq!(
            dials.last(),
            Some(&true),
            "post_dial ran with is_redial = true"
        );

        client.close().await;
        second.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_pulls_respect_their_deadline_and_redial_gives_up() {
    tokio::time::timeout(LIMIT, async {
        let server = Peer::new(server_router("only"));
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let redial = RedialConfig::builder()
            .max_attempts(3)
            .interval(Duration::from_millis(100))
            .backoff(1.0)
            .max_interval(Duration::from_millis(100))
            .build();
        let client = client(redial, DialLog::default());
        let session = client.dial(&addr).await.unwrap();
        server.close().await;
        assert!(wait_state(&session, |s| s != SessionState::Connected { generation: 1 }).await);

        // Nobody comes back: a pull with a short budget ends with 408 ...
        let started = Instant::now();
        let err = session
            .pull_with(
                "/who",
                &(),
                PullOptions::new().timeout(Duration::from_millis(100)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT, "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // ... and after three failed attempts the session is closed for good.
        assert!(wait_state(&session, |s| s == SessionState::Closed).await);
        assert!(session.is_closed());
        let err = session.pull("/who", &()).await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED);
        assert_eq!(client.session_count(), 0);
        client.close().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redial_a_lost_connection_closes_the_session() {
    tokio::time::timeout(LIMIT, async {
        let server = Peer::new(server_router("only"));
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        server.close().await;
        assert!(wait_state(&session, |s| s == SessionState::Closed).await);
        assert_eq!(client.session_count(), 0);
        client.close().await;
    })
    .await
    .expect("test timed out");
}
