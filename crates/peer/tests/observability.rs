//! Spans of pulls and pushes sent and served, trace context carried in
//! meta, and the per-call run log, seen by a recording subscriber through
//! real loopback sockets.
//!
//! Each test runs on a current-thread runtime with its own thread-local
//! subscriber, so tests do not see each other's spans.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, within};
use jaunt_peer::{
    Peer, PeerConfig, PullCtx, PullOptions, PushCtx, Router, Session, TracePropagator,
    TRACEPARENT_META,
};
use jaunt_socket::{Meta, Status};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// One span seen: its name, fields (as recorded so far) and parent (an
/// index into the spans seen: the registry reuses ids).
#[derive(Clone, Debug)]
struct SpanSeen {
    id: u64,
    name: &'static str,
    fields: BTreeMap<String, String>,
    parent: Option<usize>,
}

/// One event seen: target, fields, and the span it is in (an index).
#[derive(Clone, Debug)]
struct EventSeen {
    target: String,
    fields: BTreeMap<String, String>,
    span: Option<usize>,
}

#[derive(Default)]
struct Seen {
    spans: Vec<SpanSeen>,
    /// The live span ids, to index.
    live: BTreeMap<u64, usize>,
    events: Vec<EventSeen>,
}

/// A layer that records every span and event.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

struct FieldMap<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldMap<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent_id = match attrs.parent() {
            Some(parent) => Some(parent.clone()),
            None if attrs.is_contextual() => ctx.current_span().id().cloned(),
            None => None,
        };
        let mut fields = BTreeMap::new();
        attrs.record(&mut FieldMap(&mut fields));
        let mut seen = self.0.lock().unwrap();
        let parent = parent_id.and_then(|p| seen.live.get(&p.into_u64()).copied());
        let index = seen.spans.len();
        seen.spans.push(SpanSeen {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            fields,
            parent,
        });
        seen.live.insert(id.into_u64(), index);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        if let Some(&index) = seen.live.get(&id.into_u64()) {
            values.record(&mut FieldMap(&mut seen.spans[index].fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut FieldMap(&mut fields));
        let mut seen = self.0.lock().unwrap();
        let span = ctx
            .event_span(event)
            .and_then(|span| seen.live.get(&span.id().into_u64()).copied());
        seen.events.push(EventSeen {
            target: event.metadata().target().to_owned(),
            fields,
            span,
        });
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        self.0.lock().unwrap().live.remove(&id.into_u64());
    }
}

impl Recorder {
    /// Records on this thread until the guard is dropped.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    fn spans(&self) -> Vec<SpanSeen> {
        self.0.lock().unwrap().spans.clone()
    }

    fn events(&self) -> Vec<EventSeen> {
        self.0.lock().unwrap().events.clone()
    }

    /// The index of the one span named `name` with `field` = `value`.
    fn span(&self, name: &str, field: &str, value: &str) -> (usize, SpanSeen) {
        let found: Vec<_> = self
            .spans()
            .into_iter()
            .enumerate()
            .filter(|(_, s)| {
                s.name == name && s.fields.get(field).map(String::as_str) == Some(value)
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {name} span with {field}={value}: {found:?}"
        );
        found.into_iter().next().unwrap()
    }
}

fn field<'a>(span: &'a SpanSeen, name: &str) -> &'a str {
    span.fields
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("{} has no field {name}: {:?}", span.name, span.fields))
}

fn math_router() -> Router {
    let mut router = Router::new();
    router
        .pull("/math/add", |_: PullCtx, args: Vec<i64>| async move {
            tracing::info!(n = args.len(), "adding");
            Ok::<_, Status>(args.iter().sum::<i64>())
        })
        .unwrap();
    router
        .pull("/math/fail", |_: PullCtx, _: ()| async move {
            Err::<i64, _>(Status::new(1042, "no can do"))
        })
        .unwrap();
    // Asks its caller back: the nested pull is a child of this server span.
    router
        .pull("/math/ask_back", |ctx: PullCtx, _: ()| async move {
            let reply = ctx.session().pull("/client/echo", &7i64).await?;
            reply.decode::<i64>()
        })
        .unwrap();
    router
}

fn client_router() -> Router {
    let mut router = Router::new();
    router
        .pull("/client/echo", |_: PullCtx, n: i64| async move {
            Ok::<_, Status>(n)
        })
        .unwrap();
    router
}

async fn pair(server_config: PeerConfig, client_config: PeerConfig) -> (Peer, Peer, Session) {
    let server = Peer::builder(math_router())
        .config(server_config)
        .build()
        .unwrap();
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    let client = Peer::builder(client_router())
        .config(client_config)
        .build()
        .unwrap();
    let session = client.dial(&addr).await.unwrap();
    (server, client, session)
}

async fn stop(server: Peer, client: Peer) {
    assert!(client.shutdown(Duration::from_secs(5)).await);
    assert!(server.shutdown(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_pull_has_a_client_span_and_a_server_span_and_the_handlers_event_nests() {
    let recorder = Recorder::default();
    let _guard = recorder.install();
    within(async {
        let (server, client, session) = pair(PeerConfig::default(), PeerConfig::default()).await;
        let opts = PullOptions::new().timeout(Duration::from_secs(5));
        let reply = session
            .pull_with("/math/add", &vec![1i64, 2, 3], opts)
            .await
            .unwrap();
        assert_eq!(reply.decode::<i64>().unwrap(), 6);

        let (_, c) = recorder.span("jaunt.client", "jaunt.uri", "/math/add");
        let (server_index, s) = recorder.span("jaunt.server", "jaunt.uri", "/math/add");
        for span in [&c, &s] {
            assert_eq!(field(span, "rpc.system"), "jaunt");
            assert_eq!(field(span, "rpc.service"), "math");
            assert_eq!(field(span, "rpc.method"), "add");
            assert_eq!(field(span, "otel.name"), "math/add");
            assert_eq!(field(span, "jaunt.kind"), "pull");
            assert_eq!(field(span, "jaunt.codec"), "106");
            assert_eq!(field(span, "jaunt.filters"), "");
            assert_eq!(field(span, "jaunt.deadline_ms"), "5000");
            assert_eq!(field(span, "jaunt.status_code"), "0");
            assert!(field(span, "jaunt.cost_us").parse::<u64>().is_ok());
        }
        assert_eq!(field(&c, "otel.kind"), "client");
        assert_eq!(field(&s, "otel.kind"), "server");
        assert_eq!(field(&c, "jaunt.seq"), field(&s, "jaunt.seq"));
        assert_eq!(
            field(&c, "network.peer.address"),
            session.remote_addr().to_string()
        );
        assert_eq!(
            field(&s, "network.peer.address"),
            session.local_addr().to_string()
        );

        let adding: Vec<_> = recorder
            .events()
            .into_iter()
            .filter(|e| e.fields.get("message").map(String::as_str) == Some("adding"))
            .collect();
        assert_eq!(adding.len(), 1);
        assert_eq!(
            adding[0].span,
            Some(server_index),
            "the handler's event is in its server span"
        );

        // A pull the handler sends is a child of its server span.
        assert_eq!(
            session
                .pull("/math/ask_back", &())
                .await
                .unwrap()
                .decode::<i64>()
                .unwrap(),
            7
        );
        let (ask_index, _) = recorder.span("jaunt.server", "jaunt.uri", "/math/ask_back");
        let (_, nested) = recorder.span("jaunt.client", "jaunt.uri", "/client/echo");
        assert_eq!(nested.parent, Some(ask_index));
        assert_eq!(field(&nested, "rpc.service"), "client");

        // The session's connect and close have spans too.
        assert!(recorder
            .spans()
            .iter()
            .any(|s| s.name == "jaunt.session.connect"));
        stop(server, client).await;
        assert!(recorder
            .spans()
            .iter()
            .any(|s| s.name == "jaunt.session.close"));
    })
    .await;
}

#[tokio::test]
async fn error_statuses_are_recorded_on_both_spans() {
    let recorder = Recorder::default();
    let _guard = recorder.install();
    within(async {
        let (server, client, session) = pair(PeerConfig::default(), PeerConfig::default()).await;
        let err = session.pull("/math/fail", &()).await.unwrap_err();
        assert_eq!(err.code(), 1042);
        let (_, c) = recorder.span("jaunt.client", "jaunt.uri", "/math/fail");
        let (_, s) = recorder.span("jaunt.server", "jaunt.uri", "/math/fail");
        assert_eq!(field(&c, "jaunt.status_code"), "1042");
        assert_eq!(field(&s, "jaunt.status_code"), "1042");

        // No route: the server's own 404.
        let err = session.pull("/math/nothing", &()).await.unwrap_err();
        assert_eq!(err.code(), 404);
        let (_, c) = recorder.span("jaunt.client", "jaunt.uri", "/math/nothing");
        let (_, s) = recorder.span("jaunt.server", "jaunt.uri", "/math/nothing");
        assert_eq!(field(&c, "jaunt.status_code"), "404");
        assert_eq!(field(&s, "jaunt.status_code"), "404");
        stop(server, client).await;
    })
    .await;
}

#[tokio::test]
async fn a_push_has_a_client_span_and_a_server_span_with_the_handler_in_it() {
    let recorder = Recorder::default();
    let _guard = recorder.install();
    within(async {
        let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut router = Router::new();
        router
            .push("/chat/say", move |_: PushCtx, text: String| {
                let done = done_tx.clone();
                async move {
                    tracing::info!(%text, "heard");
                    let _ = done.send(()).await;
                    Ok::<_, Status>(())
                }
            })
            .unwrap();
        let server = Peer::new(router);
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        session.push("/chat/say", &"hi").await.unwrap();
        done_rx.recv().await.unwrap();
        assert!(
            eventually(Duration::from_secs(5), || recorder.spans().iter().any(
                |s| s.name == "jaunt.server" && s.fields.contains_key("jaunt.status_code")
            ))
            .await
        );
        let (_, c) = recorder.span("jaunt.client", "jaunt.uri", "/chat/say");
        let (server_index, s) = recorder.span("jaunt.server", "jaunt.uri", "/chat/say");
        for span in [&c, &s] {
            assert_eq!(field(span, "jaunt.kind"), "push");
            assert_eq!(field(span, "rpc.service"), "chat");
            assert_eq!(field(span, "rpc.method"), "say");
            assert_eq!(field(span, "jaunt.status_code"), "0");
        }
        assert_eq!(
            field(&s, "network.peer.address"),
            session.local_addr().to_string()
        );
        let heard = recorder
            .events()
            .into_iter()
            .find(|e| e.fields.get("message").map(String::as_str) == Some("heard"))
            .expect("the handler's event");
        assert_eq!(heard.span, Some(server_index));
        stop(server, client).await;
    })
    .await;
}

/// Writes a traceparent naming the span's tracing id; remembers what the
/// serving side extracted.
#[derive(Default)]
struct IdPropagator {
    extracted: Mutex<Vec<String>>,
}

impl IdPropagator {
    fn traceparent(span: &tracing::Span) -> String {
        let id = span.id().map_or(0, |id| id.into_u64());
        format!("00-{:032x}-{id:016x}-01", 0xfeed_u64)
    }
}

impl TracePropagator for IdPropagator {
    fn inject(&self, span: &tracing::Span, meta: &mut Meta) {
        meta.set(TRACEPARENT_META, Self::traceparent(span));
    }

    fn extract(&self, meta: &Meta, _span: &tracing::Span) {
        if let Some(parent) = meta.get_str(TRACEPARENT_META) {
            self.extracted.lock().unwrap().push(parent.to_owned());
        }
    }
}

#[tokio::test]
async fn the_trace_context_travels_in_meta_to_the_serving_side() {
    let recorder = Recorder::default();
    let _guard = recorder.install();
    within(async {
        let propagator = Arc::new(IdPropagator::default());
        let seen_by_handler = Arc::new(Mutex::new(None::<String>));
        let seen = seen_by_handler.clone();
        let mut router = Router::new();
        router
            .pull("/trace/me", move |ctx: PullCtx, _: ()| {
                *seen.lock().unwrap() = ctx.meta().get_str(TRACEPARENT_META).map(str::to_owned);
                async { Ok::<_, Status>(()) }
            })
            .unwrap();
        let server = Peer::builder(router)
            .trace_propagator(propagator.clone())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::builder(Router::new())
            .trace_propagator(propagator.clone())
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();

        session.pull("/trace/me", &()).await.unwrap();
        let (_, c) = recorder.span("jaunt.client", "jaunt.uri", "/trace/me");
        // The traceparent names the client span (the test propagator's
        // convention) and reaches both the serving side's hook and the handler.
        let expected = format!("00-{:032x}-{:016x}-01", 0xfeed_u64, c.id);
        let arrived = seen_by_handler.lock().unwrap().clone();
        assert_eq!(arrived.as_deref(), Some(expected.as_str()));
        assert_eq!(propagator.extracted.lock().unwrap().as_slice(), [expected]);
        assert_eq!(field(&c, "jaunt.status_code"), "0");
        stop(server, client).await;
    })
    .await;
}

#[tokio::test]
async fn no_traceparent_is_sent_when_the_subscriber_does_not_want_the_spans() {
    // A subscriber that wants WARN and above: call spans (INFO) are disabled,
    // the propagator is not asked.
    // (A global level filter: a per-layer one is not reliable with other
    // threads' subscribers in the same process.)
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::WARN)
        .with(Recorder::default());
    let _guard = tracing::subscriber::set_default(subscriber);
    within(async {
        let propagator = Arc::new(IdPropagator::default());
        let seen_by_handler = Arc::new(Mutex::new(Some(String::new())));
        let seen = seen_by_handler.clone();
        let mut router = Router::new();
        router
            .pull("/trace/me", move |ctx: PullCtx, _: ()| {
                *seen.lock().unwrap() = ctx.meta().get_str(TRACEPARENT_META).map(str::to_owned);
                async { Ok::<_, Status>(()) }
            })
            .unwrap();
        let server = Peer::builder(router)
            .trace_propagator(propagator.clone())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::builder(Router::new())
            .trace_propagator(propagator.clone())
            .build()
            .unwrap();
        let session = client.dial(&addr).await.unwrap();
        session.pull("/trace/me", &()).await.unwrap();
        assert_eq!(*seen_by_handler.lock().unwrap(), None);
        assert!(propagator.extracted.lock().unwrap().is_empty());
        stop(server, client).await;
    })
    .await;
}

fn run_lines(recorder: &Recorder, arrow: &str) -> Vec<EventSeen> {
    recorder
        .events()
        .into_iter()
        .filter(|e| {
            e.target == "jaunt::runlog" && e.fields.get("kind").map(String::as_str) == Some(arrow)
        })
        .collect()
}

fn message(event: &EventSeen) -> &str {
    event.fields.get("message").map_or("", String::as_str)
}

#[tokio::test]
async fn the_run_log_writes_go_style_lines_when_asked() {
    let recorder = Recorder::default();
    let _guard = recorder.install();
    within(async {
        let server_config = PeerConfig::builder().print_detail(true).build();
        let client_config = PeerConfig::builder().count_time(true).build();
        let (server, client, session) = pair(server_config, client_config).await;
        session.pull("/math/add", &vec![20i64, 22]).await.unwrap();
        session.push("/math/nowhere", &1).await.unwrap();

        let sent = run_lines(&recorder, "PULL->");
        assert_eq!(sent.len(), 1, "{sent:?}");
        let line = message(&sent[0]);
        let prefix = format!("PULL-> {} ", session.remote_addr());
        assert!(line.starts_with(&prefix), "{line}");
        assert!(line.contains("(fast) \"/math/add\" SEND(seq="), "{line}");
        assert!(
            line.contains("RECV(seq=") && line.contains("status=0 codec=106"),
            "{line}"
        );
        assert!(
            !line.contains("body="),
            "count_time alone shows no body: {line}"
        );

        assert!(
            eventually(Duration::from_secs(5), || !run_lines(&recorder, "PUSH<-")
                .is_empty())
            .await
        );
        let served = run_lines(&recorder, "PULL<-");
        assert_eq!(served.len(), 1, "{served:?}");
        let line = message(&served[0]);
        let prefix = format!(
            "PULL<- {} (-) \"/math/add\" RECV(seq=",
            session.local_addr()
        );
        assert!(line.starts_with(&prefix), "{line}");
        assert!(
            line.contains("body=\"[20,22]\""),
            "print_detail shows the body: {line}"
        );
        assert!(
            line.contains("SEND(seq=") && line.contains("body=\"42\""),
            "{line}"
        );

        let pushed = run_lines(&recorder, "PUSH->");
        assert_eq!(pushed.len(), 1, "{pushed:?}");
        assert!(message(&pushed[0]).contains("\"/math/nowhere\" SEND(seq="));
        stop(server, client).await;
    })
    .await;
}

#[tokio::test]
async fn the_run_log_is_silent_by_default() {
    let recorder = Recorder::default();
    let _guard = recorder.install();
    within(async {
        let (server, client, session) = pair(PeerConfig::default(), PeerConfig::default()).await;
        session.pull("/math/add", &vec![1i64]).await.unwrap();
        stop(server, client).await;
        assert!(recorder
            .events()
            .iter()
            .all(|e| e.target != "jaunt::runlog"));
    })
    .await;
}

#[tokio::test]
async fn the_run_log_is_rate_limited_and_counts_the_lines_left_out() {
    let recorder = Recorder::default();
    let _guard = recorder.install();
    within(async {
        let config = PeerConfig::builder()
            .count_time(true)
            .run_log_per_second(2u32)
            .build();
        let (server, client, session) = pair(PeerConfig::default(), config).await;
        for _ in 0..5 {
            session.pull("/math/add", &vec![1i64]).await.unwrap();
        }
        // A new second: its first line is written and says how many were not.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        session.pull("/math/add", &vec![1i64]).await.unwrap();

        let lines = run_lines(&recorder, "PULL->");
        let suppressed: u64 = lines
            .iter()
            .map(|e| {
                e.fields
                    .get("suppressed")
                    .expect("a suppressed count")
                    .parse::<u64>()
                    .unwrap()
            })
            .sum();
        assert!(lines.len() <= 5, "at most two a second: {lines:?}");
        assert!(suppressed >= 1, "{lines:?}");
        assert_eq!(
            lines.len() as u64 + suppressed,
            6,
            "every call is written or counted: {lines:?}"
        );
        stop(server, client).await;
    })
    .await;
}
