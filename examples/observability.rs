//! Observability: one trace through three peers, and their metrics on a
//! Prometheus endpoint.
//!
//! A client pulls `/a/relay` on peer A, whose handler pulls `/b/leaf` on
//! peer B (client → A → B). Every peer has a [`W3cPropagator`], so the call's
//! trace context travels in the frames' meta, and the spans go through
//! `tracing-opentelemetry` to the OpenTelemetry SDK, whose stdout exporter
//! prints each span as it ends (docs/observability.md says how to send them
//! to a collector with OTLP instead). The client's three pulls run inside
//! one span of the program's own, `demo`, so every span printed belongs to
//! one trace: `demo`, and for each pull the client's span, A's server span,
//! A's client span to B and B's server span. (Only call spans and `demo`
//! are exported: session spans start traces of their own.)
//!
//! Peer A also has the [`Metrics`] plugin and serves `GET /metrics` while
//! the program runs; the program scrapes it once over HTTP and prints it.
//!
//! It checks what it printed (a second, in-memory exporter gets the same
//! spans) and exits non-zero if the 13 spans do not share one trace id, a
//! span's parent is not the one the call path gives it, or the scrape fails
//! or does not count the calls made. Run it from the workspace root:
//!
//! ```text
//! cargo run --example observability
//! ```
//!
//! To scrape it yourself, or point a Prometheus at it, give the endpoint an
//! address and keep it up after the checks:
//!
//! ```text
//! cargo run --example observability -- --metrics-addr 127.0.0.1:9464 --linger 60
//! curl http://127.0.0.1:9464/metrics
//! ```

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use jaunt::prelude::*;
use jaunt_otel::W3cPropagator;
use jaunt_plugins::metrics::Metrics;
use opentelemetry::trace::{SpanId, SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use opentelemetry_sdk::Resource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Instrument;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Layer, SubscriberExt};

/// One trace through three peers, and peer A's metrics on a Prometheus endpoint.
#[derive(Parser)]
struct Args {
    /// Where peer A serves `GET /metrics`.
    #[arg(long, default_value = "127.0.0.1:0")]
    metrics_addr: String,
    /// Seconds to keep everything up (and `/metrics` served) after the checks.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    linger: u64,
}

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

/// The one span in `spans` with this name and kind.
fn the_span<'a>(
    spans: &[&'a SpanData],
    name: &str,
    kind: &SpanKind,
) -> Result<&'a SpanData, String> {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.name == name && s.span_kind == *kind)
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(format!(
            "{} {kind:?} spans named {name}, not 1",
            found.len()
        )),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    // Spans: tracing → tracing-opentelemetry → the SDK → the stdout
    // exporter (what you read) and an in-memory one (what the program
    // checks at the end).
    let checked = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .with_simple_exporter(checked.clone())
        .with_resource(
            Resource::builder()
                .with_service_name("jaunt-observability")
                .build(),
        )
        .build();
    let calls_only = filter_fn(|meta| {
        meta.is_span() && matches!(meta.name(), "jaunt.client" | "jaunt.server" | "demo")
    });
    let subscriber = tracing_subscriber::registry().with(
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("observability"))
            .with_filter(calls_only),
    );
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
    let endpoint = metrics.serve(&args.metrics_addr, Some(a.clone())).await?;
    println!(
        "peer B on {b_addr}, peer A on {a_addr}, A's metrics on http://{}/metrics",
        endpoint.local_addr()
    );

    // The client: three pulls through A to B in one `demo` span, one of
    // them failing at B. The stdout exporter prints each span as it ends.
    println!("\n--- the spans, as the stdout exporter prints them ---");
    let client = traced(Router::new(), None)?;
    let session = client.dial(&a_addr).await?;
    let (reply, refused) = async {
        let reply: i64 = session.pull("/a/relay", &41i64).await?.decode()?;
        session.pull("/a/relay", &1i64).await?;
        let refused = session.pull("/a/relay", &-1i64).await;
        Ok::<_, Status>((reply, refused))
    }
    .instrument(tracing::info_span!("demo"))
    .await?;
    println!("---\nclient → A → B: 41 + 1 = {reply}");
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

    if args.linger > 0 {
        println!(
            "serving http://{}/metrics for {} s",
            endpoint.local_addr(),
            args.linger
        );
        tokio::time::sleep(Duration::from_secs(args.linger)).await;
    }
    endpoint.stop().await;
    for peer in [client, a, a_dialer, b] {
        if !peer.shutdown(Duration::from_secs(5)).await {
            return Err("a peer did not shut down in 5 s".into());
        }
    }
    provider.force_flush()?;

    // What was printed: one trace, and each span's parent the one the call
    // path gives it.
    let spans = checked.get_finished_spans()?;
    let demo = spans
        .iter()
        .find(|s| s.name == "demo")
        .ok_or("no demo span")?;
    let trace = demo.span_context.trace_id();
    let strays = spans
        .iter()
        .filter(|s| s.span_context.trace_id() != trace)
        .count();
    if strays > 0 || spans.len() != 13 {
        return Err(format!(
            "{} spans printed, {strays} outside trace {trace}; want 13 in that trace",
            spans.len()
        )
        .into());
    }
    // The first pull's four spans: the earliest client span, and the spans
    // that descend from it.
    let first = spans
        .iter()
        .filter(|s| s.name == "a/relay" && s.span_kind == SpanKind::Client)
        .min_by_key(|s| s.start_time)
        .ok_or("no client span for a/relay")?;
    let mut chain: Vec<&SpanData> = vec![first];
    let mut parents = vec![first.span_context.span_id()];
    while let Some(child) = spans.iter().find(|s| {
        parents.contains(&s.parent_span_id) && !chain.iter().any(|c| std::ptr::eq(*c, *s))
    }) {
        chain.push(child);
        parents.push(child.span_context.span_id());
    }
    let links = [
        (("a/relay", SpanKind::Client), None),
        (
            ("a/relay", SpanKind::Server),
            Some(("a/relay", SpanKind::Client)),
        ),
        (
            ("b/leaf", SpanKind::Client),
            Some(("a/relay", SpanKind::Server)),
        ),
        (
            ("b/leaf", SpanKind::Server),
            Some(("b/leaf", SpanKind::Client)),
        ),
    ];
    for ((name, kind), parent) in &links {
        let span = the_span(&chain, name, kind)?;
        let want: SpanId = match parent {
            Some((pname, pkind)) => the_span(&chain, pname, pkind)?.span_context.span_id(),
            None => demo.span_context.span_id(),
        };
        if span.parent_span_id != want {
            return Err(format!(
                "{kind:?} span {name}: parent {}, want {want}",
                span.parent_span_id
            )
            .into());
        }
    }
    if chain.len() != links.len() {
        return Err(format!("the first pull has {} spans, not 4", chain.len()).into());
    }
    println!(
        "\n13 spans printed, all of trace {trace}: demo, then per pull client → A (server, client) → B;"
    );
    println!("the scrape counted every call");
    provider.shutdown()?;
    Ok(())
}
