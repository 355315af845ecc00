//! The metrics plugin through real sessions: exact counts, latency buckets
//! and Prometheus text that parses.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jaunt::prelude::*;
use jaunt::RoutePlugin;
use jaunt_plugins::metrics::{Histogram, Metrics, BUCKETS_MS, OTHER_URI};
use tokio::sync::mpsc;

/// Fails the test if `body` takes longer than 20 s.
async fn within<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), body)
        .await
        .expect("the test did not finish within 20 s")
}

/// Waits (up to 5 s) until `metrics` counts `n` served pulls in all: a
/// pull is counted just after its reply is queued, so the caller may hold
/// the reply a moment before.
async fn served_pulls(metrics: &Metrics, n: u64) {
    let total = || {
        metrics
            .snapshot()
            .per_uri
            .values()
            .map(|s| s.pulls)
            .sum::<u64>()
    };
    for _ in 0..1000 {
        if total() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(total(), n, "served pulls counted");
}

/// How long `/slow` takes at least.
const SLOW: Duration = Duration::from_millis(25);

/// Routes `/ok` (echo an i64), `/fail` (status 1001 for odd numbers),
/// `/slow` and push `/note` (reported on the channel), under `prefix`.
fn routes(group: &mut jaunt::Group<'_>, notes: mpsc::Sender<i64>) {
    group
        .pull(
            "/ok",
            |_: PullCtx, n: i64| async move { Ok::<_, Status>(n) },
        )
        .unwrap()
        .pull("/fail", |_: PullCtx, n: i64| async move {
            if n % 2 == 1 {
                Err(Status::new(1001, "odd"))
            } else {
                Ok(n)
            }
        })
        .unwrap()
        .pull("/slow", |_: PullCtx| async move {
            tokio::time::sleep(SLOW).await;
            Ok::<_, Status>(())
        })
        .unwrap()
        .push("/note", move |_: PushCtx, n: i64| {
            let notes = notes.clone();
            async move {
                notes.send(n).await.ok();
            }
        })
        .unwrap();
}

/// Runs the standard traffic on `session` under `prefix`: 6 `/ok` (one with
/// an undecodable body), 6 `/fail` (3 odd), 2 `/slow`, 3 pushes, one pull to
/// a uri without route.
async fn traffic(session: &Session, prefix: &str, notes: &mut mpsc::Receiver<i64>) {
    for n in 0..5_i64 {
        session.pull(&format!("{prefix}/ok"), &n).await.unwrap();
    }
    let err = session
        .pull(&format!("{prefix}/ok"), &"not a number")
        .await
        .unwrap_err();
    assert_eq!(err.code(), code::BAD_MESSAGE);
    for n in 0..6_i64 {
        let _ = session.pull(&format!("{prefix}/fail?n={n}"), &n).await;
    }
    for _ in 0..2 {
        session.pull(&format!("{prefix}/slow"), &()).await.unwrap();
    }
    for n in 0..3_i64 {
        session.push(&format!("{prefix}/note"), &n).await.unwrap();
    }
    for _ in 0..3 {
        notes.recv().await.unwrap();
    }
    let err = session.pull("/missing", &()).await.unwrap_err();
    assert_eq!(err.code(), code::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact() {
    within(async {
        let metrics = Arc::new(Metrics::new());
        let (tx, mut notes) = mpsc::channel(8);
        let mut router = Router::new();
        routes(&mut router.group("/"), tx);
        let server = Peer::builder(router)
            .plugin_arc(metrics.clone())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        traffic(&session, "", &mut notes).await;
        served_pulls(&metrics, 14).await;

        let snap = metrics.snapshot();
        let uris: Vec<&str> = snap.per_uri.keys().map(String::as_str).collect();
        assert_eq!(
            uris,
            ["/fail", "/note", "/ok", "/slow"],
            "no /missing, no query"
        );

        let ok = &snap.per_uri["/ok"];
        assert_eq!((ok.pulls, ok.pushes, ok.errors), (6, 0, 1));
        let fail = &snap.per_uri["/fail"];
        assert_eq!((fail.pulls, fail.pushes, fail.errors), (6, 0, 3));
        let note = &snap.per_uri["/note"];
        assert_eq!((note.pulls, note.pushes, note.errors), (0, 3, 0));
        assert_eq!(note.latency.count(), 0);

        let slow = &snap.per_uri["/slow"];
        assert_eq!((slow.pulls, slow.errors), (2, 0));
        assert_eq!(slow.latency.count(), 2);
        assert!(slow.latency.sum >= SLOW * 2);
        // Nothing below 25 ms: every bucket up to 10 ms is empty.
        for (bound, n) in slow.latency.cumulative() {
            if bound < 25.0 {
                assert_eq!(n, 0, "bucket le={bound} ms");
            }
        }
        let cumulative = slow.latency.cumulative();
        assert_eq!(cumulative.len(), BUCKETS_MS.len() + 1);
        assert_eq!(cumulative.last(), Some(&(f64::INFINITY, 2)));
        // ... and none over 1 s: each sits in the bucket of its duration.
        assert_eq!(
            slow.latency.counts[BUCKETS_MS.len()],
            0,
            "{:?}",
            slow.latency
        );
        for stats in snap.per_uri.values() {
            assert_eq!(stats.latency.count(), stats.pulls);
            assert_eq!(stats.latency.counts.len(), BUCKETS_MS.len() + 1);
        }

        // The server sent no pull: nothing on its client side.
        assert!(snap.sent.is_empty());

        client.close().await;
        server.close().await;
    })
    .await;
}

/// One sample line: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus text line by line; panics on any malformed line.
/// Checks that every sample's metric family was announced by `# TYPE`.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut typed: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_metric_name(name) && !help.is_empty(), "{line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_metric_name(name), "{line}");
            assert!(["counter", "histogram", "gauge"].contains(&kind), "{line}");
            typed.push(name.to_owned());
            continue;
        }
        if line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (name, labels, value) = match line.split_once('{') {
            Some((name, rest)) => {
                let (labels, value) = parse_labels(rest);
                (name, labels, value)
            }
            None => {
                let i = line.find(' ').expect("name value");
                (&line[..i], BTreeMap::new(), &line[i..])
            }
        };
        assert!(is_metric_name(name), "{line}");
        let value = value.strip_prefix(' ').expect("one space before the value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| typed.iter().any(|t| t == f))
            .unwrap_or(name);
        assert!(typed.iter().any(|t| t == family), "no # TYPE for {line}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `k="v",k2="v2"}` and returns the labels and what follows `}`.
fn parse_labels(mut rest: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
        assert!(is_metric_name(key), "label name {key}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("bad escape \\{c}"),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The sum of the samples with these labels (whatever their other labels, e.g. `code`).
fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(samples, name, labels).iter().map(|s| s.value).sum()
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, labels);
    assert_eq!(found.len(), 1, "{name} {labels:?}");
    found[0].value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_parses() {
    within(async {
        let metrics = Arc::new(Metrics::new());
        let (tx, mut notes) = mpsc::channel(8);
        let mut router = Router::new();
        routes(&mut router.group("/"), tx);
        router
            .pull(
                "/we\"ird\\uri",
                |_: PullCtx| async move { Ok::<_, Status>(()) },
            )
            .unwrap();
        let server = Peer::builder(router)
            .plugin_arc(metrics.clone())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        traffic(&session, "", &mut notes).await;
        session.pull("/we\"ird\\uri", &()).await.unwrap();
        served_pulls(&metrics, 15).await;

        let text = metrics.prometheus();
        let samples = parse_prometheus(&text);

        let total = "jaunt_requests_total";
        assert_eq!(
            value(&samples, total, &[("uri", "/ok"), ("kind", "pull")]),
            6.0
        );
        // A series nobody touched is not there (the recorder makes it on first use).
        assert!(find(&samples, total, &[("uri", "/ok"), ("kind", "push")]).is_empty());
        assert_eq!(
            value(&samples, total, &[("uri", "/note"), ("kind", "push")]),
            3.0
        );
        assert_eq!(
            value(
                &samples,
                total,
                &[("uri", "/we\"ird\\uri"), ("kind", "pull")]
            ),
            1.0
        );
        assert_eq!(
            sum(&samples, "jaunt_errors_total", &[("uri", "/fail")]),
            3.0
        );
        assert_eq!(sum(&samples, "jaunt_errors_total", &[("uri", "/ok")]), 1.0);

        // Histograms: cumulative, ending in +Inf = _count; _sum in seconds.
        // (A push-only uri has no histogram: no series is made for it.)
        for uri in ["/ok", "/fail", "/slow"] {
            let buckets = find(
                &samples,
                "jaunt_request_duration_seconds_bucket",
                &[("uri", uri)],
            );
            assert_eq!(buckets.len(), BUCKETS_MS.len() + 1);
            let mut last = 0.0;
            for (bucket, bound) in buckets.iter().zip(BUCKETS_MS) {
                assert_eq!(bucket.labels["le"].parse::<f64>().unwrap(), bound / 1000.0);
                assert!(bucket.value >= last, "cumulative");
                last = bucket.value;
            }
            let inf = buckets.last().unwrap();
            assert_eq!(inf.labels["le"], "+Inf");
            let count = value(
                &samples,
                "jaunt_request_duration_seconds_count",
                &[("uri", uri)],
            );
            assert_eq!(inf.value, count);
            assert!(inf.value >= last);
            let sum = value(
                &samples,
                "jaunt_request_duration_seconds_sum",
                &[("uri", uri)],
            );
            assert!(sum >= 0.0);
        }
        let slow_sum = value(
            &samples,
            "jaunt_request_duration_seconds_sum",
            &[("uri", "/slow")],
        );
        assert!(slow_sum >= 2.0 * SLOW.as_secs_f64(), "{slow_sum}");
        let slow_10ms = value(
            &samples,
            "jaunt_request_duration_seconds_bucket",
            &[("uri", "/slow"), ("le", "0.01")],
        );
        assert_eq!(slow_10ms, 0.0);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_a_group_plugin_only_that_group_counts() {
    within(async {
        let metrics = Arc::new(Metrics::new());
        let (tx, mut notes) = mpsc::channel(8);
        let (other_tx, _other_notes) = mpsc::channel(8);
        let mut router = Router::new();
        let plugin: Arc<dyn RoutePlugin> = metrics.clone();
        routes(&mut router.plugin_group("/api", vec![plugin]), tx);
        routes(&mut router.group("/plain"), other_tx);
        let server = Peer::new(router);
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        traffic(&session, "/api", &mut notes).await;
        for n in 0..4_i64 {
            session.pull("/plain/ok", &n).await.unwrap();
        }
        served_pulls(&metrics, 14).await;

        let snap = metrics.snapshot();
        let uris: Vec<&str> = snap.per_uri.keys().map(String::as_str).collect();
        assert_eq!(uris, ["/api/fail", "/api/note", "/api/ok", "/api/slow"]);
        assert_eq!(snap.per_uri["/api/ok"].pulls, 6);
        assert_eq!(snap.per_uri["/api/fail"].errors, 3);
        assert_eq!(snap.per_uri["/api/note"].pushes, 3);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_uris_are_capped() {
    within(async {
        let metrics = Arc::new(Metrics::new().with_max_uris(2));
        let mut router = Router::new();
        router
            .unknown_pull(|ctx: PullCtx| async move { Ok::<_, Status>(ctx.path().to_owned()) })
            .unwrap();
        let server = Peer::builder(router)
            .plugin_arc(metrics.clone())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();

        // One at a time, counted before the next: the table fills in the
        // order the pulls are counted.
        for (n, uri) in ["/a", "/b", "/c", "/a", "/d"].into_iter().enumerate() {
            session.pull(uri, &()).await.unwrap();
            served_pulls(&metrics, n as u64 + 1).await;
        }
        let snap = metrics.snapshot();
        let counts: Vec<(&str, u64)> = snap
            .per_uri
            .iter()
            .map(|(uri, s)| (uri.as_str(), s.pulls))
            .collect();
        assert_eq!(counts, [("/a", 2), ("/b", 1), (OTHER_URI, 2)]);

        client.close().await;
        server.close().await;
    })
    .await;
}

#[test]
fn a_histogram_adds_its_buckets_up_to_infinity() {
    let mut histogram = Histogram::default();
    histogram.counts[0] = 1; // up to 0.1 ms
    histogram.counts[2] = 2; // up to 1 ms
    histogram.counts[BUCKETS_MS.len()] = 3; // over 1 s
    assert_eq!(histogram.count(), 6);
    let cumulative = histogram.cumulative();
    assert_eq!(cumulative[..3], [(0.1, 1), (0.5, 1), (1.0, 3)]);
    assert_eq!(cumulative[BUCKETS_MS.len() - 1], (1000.0, 3));
    assert_eq!(cumulative.last(), Some(&(f64::INFINITY, 6)));
    assert!(format!("{:?}", Metrics::new()).contains("own_recorder: true"));
}
