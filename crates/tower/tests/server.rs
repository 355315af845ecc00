//! Routes served by tower services and handlers under tower layers, pulled
//! by real clients over loopback.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bounded, dial, serve, Gauge};
use jaunt_peer::{PullCtx, Router};
use jaunt_socket::{code, Status};
use jaunt_tower::{layered, RoutesExt, OVERLOADED_CAUSE, TIMEOUT_CAUSE};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;
use tower::{service_fn, ServiceBuilder};

type SleepFuture = Pin<Box<dyn Future<Output = Result<u64, Status>> + Send>>;

/// A handler sleeping the milliseconds it is given, counted by `gauge`.
fn sleep_handler(
    gauge: Arc<Gauge>,
) -> impl Fn(PullCtx, u64) -> SleepFuture + Clone + Send + Sync + 'static {
    move |_: PullCtx, ms: u64| {
        let gauge = gauge.clone();
        Box::pin(async move {
            let _in = gauge.enter();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, Status>(ms)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layered_route_times_out_with_408() {
    bounded(async {
        let gauge = Gauge::new();
        let mut router = Router::new();
        router
            .pull(
                "/sleep",
                layered(
                    TimeoutLayer::new(Duration::from_millis(100)),
                    sleep_handler(gauge.clone()),
                ),
            )
            .unwrap();
        let (server, addr) = serve(router).await;
        let (client, session) = dial(&addr).await;

        assert_eq!(
            session
                .pull("/sleep", &1u64)
                .await
                .unwrap()
                .decode::<u64>()
                .unwrap(),
            1
        );
        let start = Instant::now();
        let err = session.pull("/sleep", &3_000u64).await.unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT, "{err}");
        assert_eq!(err.cause(), Some(TIMEOUT_CAUSE));
        assert!(
            start.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            start.elapsed()
        );
        // A body the handler cannot decode is still 400, through the layer.
        let err = session.pull("/sleep", &"not a number").await.unwrap_err();
        assert_eq!(err.code(), code::BAD_MESSAGE, "{err}");

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_served_by_a_tower_service_sheds_load_past_its_limit() {
    bounded(async {
        let gauge = Gauge::new();
        let counted = gauge.clone();
        let sleep = service_fn(move |ctx: PullCtx| {
            let gauge = counted.clone();
            async move {
                let ms: u64 = ctx.decode()?;
                let _in = gauge.enter();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, Status>(ms)
            }
        });
        let mut router = Router::new();
        router
            .route_service(
                "/sleep",
                ServiceBuilder::new()
                    .load_shed()
                    .concurrency_limit(1)
                    .service(sleep),
            )
            .unwrap();
        let (server, addr) = serve(router).await;
        let (client, session) = dial(&addr).await;

        let first = tokio::spawn({
            let session = session.clone();
            async move { session.pull("/sleep", &500u64).await }
        });
        while gauge.calls() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let err = session.pull("/sleep", &1u64).await.unwrap_err();
        assert_eq!(err.code(), code::INTERNAL_SERVER_ERROR, "{err}");
        assert_eq!(err.cause(), Some(OVERLOADED_CAUSE));
        assert_eq!(gauge.calls(), 1);
        assert_eq!(first.await.unwrap().unwrap().decode::<u64>().unwrap(), 500);
        assert_eq!(
            session
                .pull("/sleep", &1u64)
                .await
                .unwrap()
                .decode::<u64>()
                .unwrap(),
            1
        );

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layered_group_limits_its_routes_together_and_nested_groups_too() {
    bounded(async {
        let inside = Gauge::new();
        let outside = Gauge::new();
        let mut router = Router::new();
        {
            let mut jobs = router.layered_group("/jobs", GlobalConcurrencyLimitLayer::new(2));
            jobs.pull("/a", sleep_handler(inside.clone())).unwrap();
            jobs.pull("/b", sleep_handler(inside.clone())).unwrap();
            // Nested: same limit, plus a timeout of its own.
            jobs.group("/deep")
                .layer(TimeoutLayer::new(Duration::from_millis(150)))
                .pull("/c", sleep_handler(inside.clone()))
                .unwrap();
        }
        router
            .pull("/free", sleep_handler(outside.clone()))
            .unwrap();
        let (server, addr) = serve(router).await;
        let (client, session) = dial(&addr).await;

        let mut calls = Vec::new();
        for uri in ["/jobs/a", "/jobs/b", "/jobs/deep/c", "/free"] {
            for _ in 0..6 {
                let session = session.clone();
                calls.push(tokio::spawn(async move { session.pull(uri, &30u64).await }));
            }
        }
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap().decode::<u64>().unwrap(), 30);
        }
        assert_eq!(inside.calls(), 18);
        assert_eq!(inside.max(), 2, "the group's routes at once");
        assert_eq!(outside.calls(), 6);
        assert!(
            outside.max() > 2,
            "a route outside the group is not limited: {}",
            outside.max()
        );

        // The nested group's own timeout.
        let err = session.pull("/jobs/deep/c", &2_000u64).await.unwrap_err();
        assert_eq!(err.code(), code::HANDLE_TIMEOUT, "{err}");
        assert_eq!(
            session
                .pull("/jobs/a", &300u64)
                .await
                .unwrap()
                .decode::<u64>()
                .unwrap(),
            300
        );

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_error_becomes_the_reply_status() {
    bounded(async {
        let mut router = Router::new();
        router
            .route_service(
                "/own",
                service_fn(|_: PullCtx| async { Err::<u8, _>(Status::new(1234, "mine")) }),
            )
            .unwrap();
        router
            .route_service(
                "/boxed",
                service_fn(|_: PullCtx| async {
                    Err::<u8, tower::BoxError>("a secret detail".into())
                }),
            )
            .unwrap();
        let (server, addr) = serve(router).await;
        let (client, session) = dial(&addr).await;

        let err = session.pull("/own", &()).await.unwrap_err();
        assert_eq!((err.code(), err.msg()), (1234, "mine"));
        // Any other error: 500, its cause kept from the caller.
        let err = session.pull("/boxed", &()).await.unwrap_err();
        assert_eq!(err.code(), code::INTERNAL_SERVER_ERROR);
        assert_eq!(err.cause(), Some("internal error"));

        client.close().await;
        server.close().await;
    })
    .await;
}
