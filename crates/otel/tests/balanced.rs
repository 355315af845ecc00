//! One trace through the cluster's balanced client: a caller's span, the pull the
//! balanced client sends (to whichever instance it picks), and the instance's server span,
//! exported by the SDK's in-memory exporter.

use std::sync::Arc;
use std::time::Duration;

use jaunt_cluster::client::Balanced;
use jaunt_cluster::discovery::StaticList;
use jaunt_cluster::Instance;
use jaunt_otel::W3cPropagator;
use jaunt_peer::{Peer, PullCtx, PullOptions, Router};
use jaunt_service::Stub;
use jaunt_socket::Status;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

fn traced(router: Router) -> Peer {
    Peer::builder(router)
        .trace_propagator(Arc::new(W3cPropagator::new()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_pull_through_the_balanced_client_stays_in_its_callers_trace() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("balanced")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let test = async {
        let mut servers = Vec::new();
        let mut instances = Vec::new();
        for name in ["one", "two"] {
            let mut router = Router::new();
            router
                .pull("/kv/get", move |_: PullCtx, key: String| async move {
                    Ok::<_, Status>(format!("{name}:{key}"))
                })
                .unwrap();
            let server = traced(router);
            let addr = server.listen("127.0.0.1:0").await.unwrap();
            instances.push(Instance::new(name, "kv", addr.to_string()));
            servers.push(server);
        }
        let balanced = Balanced::builder("kv", StaticList::new(instances))
            .peer(traced(Router::new()))
            .build()
            .await
            .unwrap();
        assert!(balanced.wait_connected(Duration::from_secs(5)).await);
        // Two pulls, each under a request span of the caller's own.
        for key in ["x", "y"] {
            let request = tracing::info_span!("request", key);
            let reply = balanced
                .pull("/kv/get", &key, PullOptions::new())
                .instrument(request)
                .await
                .unwrap();
            assert!(reply.decode::<String>().unwrap().ends_with(key));
        }
        balanced.peer().close().await;
        for server in servers {
            assert!(server.shutdown(Duration::from_secs(5)).await);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("the test finishes in time");

    let spans = exporter.get_finished_spans().unwrap();
    let requests: Vec<_> = spans.iter().filter(|s| s.name == "request").collect();
    assert_eq!(requests.len(), 2, "{spans:#?}");
    for request in requests {
        let trace = request.span_context.trace_id();
        let in_trace: Vec<_> = spans
            .iter()
            .filter(|s| s.span_context.trace_id() == trace && s.name == "kv/get")
            .collect();
        let client = in_trace
            .iter()
            .find(|s| s.span_kind == SpanKind::Client)
            .expect("the balanced client's pull is in the caller's trace");
        let server = in_trace
            .iter()
            .find(|s| s.span_kind == SpanKind::Server)
            .expect("the instance's server span is in the caller's trace");
        assert_eq!(client.parent_span_id, request.span_context.span_id());
        assert_eq!(server.parent_span_id, client.span_context.span_id());
        assert!(server.parent_span_is_remote);
    }
    provider.shutdown().unwrap();
}
