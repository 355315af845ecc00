//! Observability: one trace through three peers, and their metrics on a
//! Prometheus endpoint.
//!
//! A client pulls `/a/relay` on peer A, whose handler pulls `/b/leaf` on
//! peer B (client → A → B). Every peer has a [`W3cPropagator`], so the call's
//! trace context travels in the frames' meta, and the spans go through
//! `tracing-opentelemetry` to the OpenTelemetry SDK (here its in-memory
//! exporter: the program prints the spans itself; docs/observability.md
//! says how to send them to a collector with OTLP instead).
//!
//! Peer A also has the [`Metrics`] plugin and serves `GET /metrics` while
//! the program runs; the program scrapes it once over HTTP and prints it.
//!
//! It exits non-zero if the four spans of the relayed pull do not share one
//! trace id, or the scrape fails or does not count the calls made. Run it
//! from the workspace root:
//!
//! ```text
//! cargo run --example observability
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt_otel::W3cPropagator;
use jaunt_plugins::metrics::Metrics;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::layer::SubscriberExt;

/// A peer that carries trace context in its frames' meta.
fn traced(router: Router, metrics: Option<Arc<Metrics>>) -> Result<Peer, Box<dyn Error>> {
    let mut builder = Peer::builder(router).trace_propagator(Arc::new(W3cPropagator::new()));
    if let Some(metrics) = metrics {
        builder = builder.plugin_arc(metrics);
    }
    Ok(builder.build()?)
}

/// `GET /metrics` on `addr`: the body of a 200 answer.
async fn scrape(addr: std::net::SocketAddr) -> Result<String, Box<dyn Error>> {
    let mut http = tokio::net::TcpStream::connect(addr).await?;
    http.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    http.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("no HTTP head in the answer")?;
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(format!("scrape answered {head:?}").into());
    }
    Ok(body.to_owned())
}

/// The value of the sample `series` (name and labels as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Spans: tracing → tracing-opentelemetry → the SDK → an exporter.
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("observability")));
    tracing::subscriber::set_global_default(subscriber)?;

    // B: the leaf.
    let mut b_routes = Router::new();
    b_routes.pull("/b/leaf", |_: PullCtx, n: i64| async move {
        if n < 0 {
            Err(Status::new(1001, "negative"))
        } else {
            Ok(n + 1)
        }
    })?;
    let b = traced(b_routes, None)?;
    let b_addr = b.listen("127.0.0.1:0").await?;

    // A: relays to B on a session it dialed, with the metrics plugin on both
    // sides (what it serves, what it sends to B) and a /metrics endpoint.
    let metrics = Arc::new(Metrics::new());
    let a_dialer = traced(Router::new(), Some(metrics.clone()))?;
    let to_b = a_dialer.dial(&b_addr).await?;
    let mut a_routes = Router::new();
    a_routes.pull("/a/relay", move |_: PullCtx, n: i64| {
        let to_b = to_b.clone();
        async move { to_b.pull("/b/leaf", &n).await?.decode::<i64>() }
    })?;
    let a = traced(a_routes, Some(metrics.clone()))?;
    let a_addr = a.listen("127.0.0.1:0").await?;
    let endpoint = metrics.serve("127.0.0.1:0", Some(a.clone())).await?;
    println!(
        "peer B on {b_addr}, peer A on {a_addr}, A's metrics on http://{}/metrics",
        endpoint.local_addr()
    );

    // The client: one traced pull through A to B, then two more, one failing.
    let client = traced(Router::new(), None)?;
    let session = client.dial(&a_addr).await?;
    let reply: i64 = session.pull("/a/relay", &41i64).await?.decode()?;
    println!("client → A → B: 41 + 1 = {reply}");
    session.pull("/a/relay", &1i64).await?;
    let refused = session.pull("/a/relay", &-1i64).await;
    println!(
        "a negative number: {:?}",
        refused.as_ref().err().map(Status::code)
    );

    // A scrape of A's endpoint while everything runs. (A served pull is
    // counted just after its reply is queued, so the last one may be a
    // moment behind the client: a few tries.)
    let mut text = scrape(endpoint.local_addr()).await?;
    for _ in 0..100 {
        if sample(&text, r#"jaunt_requests_total{uri="/a/relay",kind="pull"}"#) == Some(3.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        text = scrape(endpoint.local_addr()).await?;
    }
    println!("\n--- GET /metrics on A ---\n{text}---");
    let served = sample(&text, r#"jaunt_requests_total{uri="/a/relay",kind="pull"}"#);
    let failed = sample(&text, r#"jaunt_errors_total{uri="/a/relay",code="1001"}"#);
    let sent = sample(&text, r#"jaunt_client_requests_total{uri="/b/leaf"}"#);
    if (served, failed, sent) != (Some(3.0), Some(1.0), Some(3.0)) {
        return Err(format!(
            "the scrape does not count the calls: served {served:?}, failed {failed:?}, sent to B {sent:?}"
        )
        .into());
    }

    endpoint.stop().await;
    for peer in [client, a, a_dialer, b] {
        if !peer.shutdown(Duration::from_secs(5)).await {
            return Err("a peer did not shut down in 5 s".into());
        }
    }

    // The first pull's spans: the client's, A's (server, then its client
    // span to B) and B's.
    let spans = exporter.get_finished_spans()?;
    let root = spans
        .iter()
        .filter(|s| s.name == "a/relay" && s.span_kind == SpanKind::Client)
        .min_by_key(|s| s.start_time)
        .ok_or("no client span for a/relay")?;
    let trace = root.span_context.trace_id();
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect();
    println!("\nthe spans of trace {trace}:");
    for span in &in_trace {
        println!(
            "  {:<8} {:<10} span {} parent {}",
            format!("{:?}", span.span_kind),
            span.name,
            span.span_context.span_id(),
            span.parent_span_id
        );
    }
    let expected = [
        ("a/relay", SpanKind::Client),
        ("a/relay", SpanKind::Server),
        ("b/leaf", SpanKind::Client),
        ("b/leaf", SpanKind::Server),
    ];
    for (name, kind) in &expected {
        let n = in_trace
            .iter()
            .filter(|s| s.name == *name && s.span_kind == *kind)
            .count();
        if n != 1 {
            return Err(format!("trace {trace} has {n} {kind:?} spans {name}, not 1").into());
        }
    }
    if in_trace.len() != expected.len() {
        return Err(format!("trace {trace} has {} spans, not 4", in_trace.len()).into());
    }
    provider.shutdown()?;
    println!("\none trace id through client → A → B; the scrape counted every call");
    Ok(())
}
