//! A session as a tower service, under real tower layers, against real
//! servers on loopback.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bounded, dial, serve, Gauge};
use jaunt_peer::{PullCtx, Router};
use jaunt_socket::{code, Status};
use jaunt_tower::{
    PullRequest, RetryOn, SessionService, StatusLayer, OVERLOADED_CAUSE, TIMEOUT_CAUSE,
};
use tower::{ServiceBuilder, ServiceExt};

/// `/sleep` sleeps the milliseconds it is given, counted by `gauge`.
fn sleeper(gauge: Arc<Gauge>) -> Router {
    let mut router = Router::new();
    router
        .pull("/sleep", move |_: PullCtx, ms: u64| {
            let gauge = gauge.clone();
            async move {
                let _in = gauge.enter();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, Status>(ms)
            }
        })
        .unwrap();
    router
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_timeout_ends_a_slow_pull_with_408() {
    bounded(async {
        let (server, addr) = serve(sleeper(Gauge::new())).await;
        let (client, session) = dial(&addr).await;
        let svc = ServiceBuilder::new()
            .layer(StatusLayer)
            .timeout(Duration::from_millis(100))
            .service(SessionService::new(session.clone()));

        let reply = svc
            .clone()
            .oneshot(PullRequest::new("/sleep", 1u64))
            .await
            .unwrap();
        assert_eq!(reply.decode::<u64>().unwrap(), 1);

        let start = Instant::now();
        let err = svc
            .clone()
            .oneshot(PullRequest::new("/sleep", 3_000u64))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT, "{err}");
        assert_eq!(err.cause(), Some(TIMEOUT_CAUSE));
        assert!(
            start.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            start.elapsed()
        );
        // The abandoned pull is no longer pending.
        assert_eq!(session.pending_pulls(), 0);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_bounds_the_pulls_the_server_sees_at_once() {
    bounded(async {
        let gauge = Gauge::new();
        let (server, addr) = serve(sleeper(gauge.clone())).await;
        let (client, session) = dial(&addr).await;
        let svc = ServiceBuilder::new()
            .concurrency_limit(3)
            .service(SessionService::new(session));

        let calls: Vec<_> = (0..24)
            .map(|_| tokio::spawn(svc.clone().oneshot(PullRequest::new("/sleep", 30u64))))
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap().decode::<u64>().unwrap(), 30);
        }
        assert_eq!(gauge.calls(), 24);
        assert_eq!(gauge.max(), 3, "handlers in flight at once");

        client.close().await;
        server.close().await;
    })
    .await;
}

/// `/flaky` fails with 1001 the first `fails` times a key is pulled; `/slow_once`
/// sleeps 3s the first time a key is pulled. Returns the router and the
/// pulls counted by key.
fn flaky() -> (Router, Arc<Mutex<HashMap<String, usize>>>) {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let count = |seen: &Mutex<HashMap<String, usize>>, key: &str| {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(key.to_owned()).or_default();
        *n += 1;
        *n
    };
    let mut router = Router::new();
    let flaky_seen = seen.clone();
    router
        .pull(
            "/flaky",
            move |_: PullCtx, (key, fails): (String, usize)| {
                let n = count(&flaky_seen, &key);
                async move {
                    match n <= fails {
                        true => Err(Status::new(1001, "flaky")),
                        false => Ok(n),
                    }
                }
            },
        )
        .unwrap();
    let slow_seen = seen.clone();
    router
        .pull("/slow_once", move |_: PullCtx, key: String| {
            let n = count(&slow_seen, &key);
            async move {
                if n == 1 {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                Ok::<_, Status>(n)
            }
        })
        .unwrap();
    (router, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_resends_idempotent_pulls_on_the_given_codes_only() {
    bounded(async {
        let (router, seen) = flaky();
        let (server, addr) = serve(router).await;
        let (client, session) = dial(&addr).await;
        let pulls = |key: &str| seen.lock().unwrap().get(key).copied().unwrap_or(0);
        let svc = |policy: RetryOn| {
            ServiceBuilder::new()
                .retry(policy)
                .service(SessionService::new(session.clone()))
        };

        // Fails twice, succeeds on the third attempt.
        let reply = svc(RetryOn::new([1001], 3))
            .oneshot(PullRequest::new("/flaky", ("a", 2)).idempotent())
            .await
            .unwrap();
        assert_eq!(reply.decode::<usize>().unwrap(), 3);
        assert_eq!(pulls("a"), 3);

        // Not idempotent: never retried.
        let err = svc(RetryOn::new([1001], 3))
            .oneshot(PullRequest::new("/flaky", ("b", 2)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), 1001);
        assert_eq!(pulls("b"), 1);

        // Out of retries.
        let err = svc(RetryOn::new([1001], 1))
            .oneshot(PullRequest::new("/flaky", ("c", 5)).idempotent())
            .await
            .unwrap_err();
        assert_eq!(err.code(), 1001);
        assert_eq!(pulls("c"), 2);

        // Another code: not retried.
        let err = svc(RetryOn::connection_failures(3))
            .oneshot(PullRequest::new("/flaky", ("d", 1)).idempotent())
            .await
            .unwrap_err();
        assert_eq!(err.code(), 1001);
        assert_eq!(pulls("d"), 1);

        // With a backoff between attempts.
        let start = Instant::now();
        svc(RetryOn::new([1001], 2).backoff(Duration::from_millis(100)))
            .oneshot(PullRequest::new("/flaky", ("e", 2)).idempotent())
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert_eq!(pulls("e"), 3);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_over_a_timeout_resends_a_pull_that_timed_out() {
    bounded(async {
        let (router, seen) = flaky();
        let (server, addr) = serve(router).await;
        let (client, session) = dial(&addr).await;
        // The policy sees tower's BoxError (a timeout's Elapsed) here.
        let svc = ServiceBuilder::new()
            .layer(StatusLayer)
            .retry(RetryOn::new([code::HANDLE_TIMEOUT], 1))
            .timeout(Duration::from_millis(200))
            .service(SessionService::new(session));

        let start = Instant::now();
        let reply = svc
            .oneshot(PullRequest::new("/slow_once", "k").idempotent())
            .await
            .unwrap();
        assert_eq!(reply.decode::<usize>().unwrap(), 2);
        assert_eq!(seen.lock().unwrap()["k"], 2);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_shed_refuses_a_pull_past_the_limit_with_500_overloaded() {
    bounded(async {
        let gauge = Gauge::new();
        let (server, addr) = serve(sleeper(gauge.clone())).await;
        let (client, session) = dial(&addr).await;
        let svc = ServiceBuilder::new()
            .layer(StatusLayer)
            .load_shed()
            .concurrency_limit(1)
            .service(SessionService::new(session.clone()));

        let first = tokio::spawn(svc.clone().oneshot(PullRequest::new("/sleep", 500u64)));
        while gauge.calls() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let err = svc
            .clone()
            .oneshot(PullRequest::new("/sleep", 1u64))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::INTERNAL_SERVER_ERROR, "{err}");
        assert_eq!(err.cause(), Some(OVERLOADED_CAUSE));
        assert_eq!(gauge.calls(), 1, "the shed pull never reached the server");

        assert_eq!(first.await.unwrap().unwrap().decode::<u64>().unwrap(), 500);
        // Room again.
        svc.oneshot(PullRequest::new("/sleep", 1u64)).await.unwrap();
        assert_eq!(gauge.calls(), 2);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_session_is_not_ready() {
    bounded(async {
        let (server, addr) = serve(sleeper(Gauge::new())).await;
        let (client, session) = dial(&addr).await;
        let mut svc = SessionService::new(session.clone());
        session.close();
        let err = svc.ready().await.unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffer_over_a_closed_session_fails_with_the_sessions_status() {
    bounded(async {
        let (server, addr) = serve(sleeper(Gauge::new())).await;
        let (client, session) = dial(&addr).await;
        let svc = ServiceBuilder::new()
            .layer(StatusLayer)
            .buffer(4)
            .service(SessionService::new(session.clone()));
        svc.clone()
            .oneshot(PullRequest::new("/sleep", 1u64))
            .await
            .unwrap();

        session.close();
        // The buffer wraps the session's 102 in its own error: found through the chain.
        let err = svc
            .oneshot(PullRequest::new("/sleep", 1u64))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code::CONN_CLOSED, "{err}");

        client.close().await;
        server.close().await;
    })
    .await;
}
