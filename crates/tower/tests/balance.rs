//! tower's p2c balancer over sessions to three real servers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bounded, dial, serve, Gauge};
use jaunt_peer::{Peer, PullCtx, Router};
use jaunt_socket::Status;
use jaunt_tower::{PullRequest, SessionService, StatusLayer};
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::ServiceList;
use tower::{Service, ServiceBuilder, ServiceExt};

/// A server whose `/work` sleeps `ms` milliseconds, counted by its gauge.
async fn worker(ms: u64) -> (Peer, Arc<Gauge>, jaunt_peer::Addr) {
    let gauge = Gauge::new();
    let counted = gauge.clone();
    let mut router = Router::new();
    router
        .pull("/work", move |_: PullCtx| {
            let gauge = counted.clone();
            async move {
                let _in = gauge.enter();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, Status>(ms)
            }
        })
        .unwrap();
    let (server, addr) = serve(router).await;
    (server, gauge, addr)
}

/// Runs `workers` tasks each making `calls` pulls one after the other
/// through the balanced service.
async fn drive<S>(svc: S, workers: usize, calls: usize)
where
    S: Service<PullRequest, Response = jaunt_peer::Reply, Error = Status> + Clone + Send + 'static,
    S::Future: Send,
{
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                for _ in 0..calls {
                    svc.clone()
                        .oneshot(PullRequest::new("/work", ()))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

async fn balanced_over(
    delays: [u64; 3],
) -> (
    Vec<(Peer, Arc<Gauge>)>,
    Vec<Peer>,
    impl Service<PullRequest, Response = jaunt_peer::Reply, Error = Status, Future: Send>
        + Clone
        + Send
        + 'static,
) {
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    let mut sessions = Vec::new();
    for ms in delays {
        let (server, gauge, addr) = worker(ms).await;
        let (client, session) = dial(&addr).await;
        servers.push((server, gauge));
        clients.push(client);
        sessions.push(SessionService::new(session));
    }
    let balance = Balance::new(ServiceList::new(sessions));
    let svc = ServiceBuilder::new()
        .layer(StatusLayer)
        .service(Buffer::new(balance, 64));
    (servers, clients, svc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_spreads_pulls_over_three_servers() {
    bounded(async {
        let (servers, clients, svc) = balanced_over([2, 2, 2]).await;
        drive(svc, 12, 40).await;

        let calls: Vec<usize> = servers.iter().map(|(_, g)| g.calls()).collect();
        eprintln!("pulls per server: {calls:?}");
        assert_eq!(calls.iter().sum::<usize>(), 480);
        // An even share is 160: each server gets at least half of it.
        assert!(calls.iter().all(|&n| n >= 80), "{calls:?}");

        for client in clients {
            client.close().await;
        }
        for (server, _) in servers {
            server.close().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2c_sends_less_to_the_server_with_more_pending_pulls() {
    bounded(async {
        // The first server is 40 times slower: its pulls stay pending.
        let (servers, clients, svc) = balanced_over([40, 1, 1]).await;
        drive(svc, 12, 30).await;

        let calls: Vec<usize> = servers.iter().map(|(_, g)| g.calls()).collect();
        eprintln!("pulls per server: {calls:?}");
        assert_eq!(calls.iter().sum::<usize>(), 360);
        // Blind to load, the slow server would get a third (120).
        assert!(calls[0] < 60, "{calls:?}");

        for client in clients {
            client.close().await;
        }
        for (server, _) in servers {
            server.close().await;
        }
    })
    .await;
}
