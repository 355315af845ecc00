//! One trace across three peers on loopback (client → A → B, A's handler
//! pulling B), and through a push, exported by the SDK's in-memory
//! exporter.

use std::sync::Arc;
use std::time::Duration;

use jaunt_otel::W3cPropagator;
use jaunt_peer::{Peer, PullCtx, PushCtx, Router, Session};
use jaunt_socket::Status;
use opentelemetry::trace::{SpanId, SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;

fn traced(router: Router) -> Peer {
    Peer::builder(router)
        .trace_propagator(Arc::new(W3cPropagator::new()))
        .build()
        .unwrap()
}

fn one<'a>(spans: &'a [SpanData], name: &str, kind: SpanKind) -> &'a SpanData {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.name == name && s.span_kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind:?} span {name}: {spans:#?}");
    found[0]
}

#[tokio::test]
async fn one_trace_follows_a_pull_through_three_peers_and_a_push() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("chain")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let test = async {
        // B: the leaf.
        let (heard_tx, mut heard_rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut b_router = Router::new();
        b_router
            .pull("/b/leaf", |_: PullCtx, n: i64| async move {
                Ok::<_, Status>(n + 1)
            })
            .unwrap();
        b_router
            .push("/b/note", move |_: PushCtx, _: String| {
                let heard = heard_tx.clone();
                async move {
                    let _ = heard.send(()).await;
                    Ok::<_, Status>(())
                }
            })
            .unwrap();
        let b = traced(b_router);
        let b_addr = b.listen("127.0.0.1:0").await.unwrap();

        // A: relays to B on a session it dialed.
        let a_to_b: Arc<tokio::sync::OnceCell<Session>> = Arc::default();
        let to_b = a_to_b.clone();
        let mut a_router = Router::new();
        a_router
            .pull("/a/relay", move |_: PullCtx, n: i64| {
                let to_b = to_b.clone();
                async move {
                    let session = to_b.get().expect("A dialed B");
                    session.pull("/b/leaf", &n).await?.decode::<i64>()
                }
            })
            .unwrap();
        let a = traced(a_router);
        let a_addr = a.listen("127.0.0.1:0").await.unwrap();
        let a_dialer = traced(Router::new());
        a_to_b.set(a_dialer.dial(&b_addr).await.unwrap()).unwrap();

        let client = traced(Router::new());
        let session = client.dial(&a_addr).await.unwrap();
        let reply = session.pull("/a/relay", &41i64).await.unwrap();
        assert_eq!(reply.decode::<i64>().unwrap(), 42);

        // A push straight to B, from the client's own session to B.
        let to_b = client.dial(&b_addr).await.unwrap();
        to_b.push("/b/note", &"hello").await.unwrap();
        heard_rx.recv().await.unwrap();

        for peer in [client, a_dialer, a, b] {
            assert!(peer.shutdown(Duration::from_secs(5)).await);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("the test finishes in time");
    // The push's server span closes when its handler is done: wait for it.
    let spans = {
        let mut spans = Vec::new();
        for _ in 0..100 {
            spans = exporter.get_finished_spans().unwrap();
            if spans.iter().filter(|s| s.name == "b/note").count() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        spans
    };

    // The pull: client → A (server), A (client) → B (server).
    let client_relay = one(&spans, "a/relay", SpanKind::Client);
    let a_relay = one(&spans, "a/relay", SpanKind::Server);
    let a_leaf = one(&spans, "b/leaf", SpanKind::Client);
    let b_leaf = one(&spans, "b/leaf", SpanKind::Server);
    let trace = client_relay.span_context.trace_id();
    for span in [a_relay, a_leaf, b_leaf] {
        assert_eq!(span.span_context.trace_id(), trace, "one trace: {span:#?}");
    }
    assert_eq!(client_relay.parent_span_id, SpanId::INVALID);
    assert_eq!(a_relay.parent_span_id, client_relay.span_context.span_id());
    assert_eq!(a_leaf.parent_span_id, a_relay.span_context.span_id());
    assert_eq!(b_leaf.parent_span_id, a_leaf.span_context.span_id());
    // Remote parents were extracted from meta, not taken from the context.
    assert!(a_relay.parent_span_is_remote);
    assert!(b_leaf.parent_span_is_remote);

    // The push: a trace of its own, the server span a child of the client's.
    let push_client = one(&spans, "b/note", SpanKind::Client);
    let push_server = one(&spans, "b/note", SpanKind::Server);
    assert_ne!(push_client.span_context.trace_id(), trace);
    assert_eq!(
        push_server.span_context.trace_id(),
        push_client.span_context.trace_id()
    );
    assert_eq!(
        push_server.parent_span_id,
        push_client.span_context.span_id()
    );
    provider.shutdown().unwrap();
}
