//! `Metrics::global`: the plugin records into the recorder the application
//! installed (a process-wide one, hence a test binary of its own), and has
//! nothing to render itself.

#![cfg(feature = "metrics")]

use std::time::Duration;

use jaunt::prelude::*;
use jaunt_plugins::metrics::Metrics;
use metrics_exporter_prometheus::PrometheusBuilder;

mod support;
use support::{eventually, sample, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_metrics_record_into_the_installed_recorder() {
    within(async {
        let installed = PrometheusBuilder::new().install_recorder().unwrap();
        let metrics = std::sync::Arc::new(Metrics::global());
        let mut routes = Router::new();
        routes
            .pull("/twice", |_: PullCtx, n: i64| async move {
                Ok::<_, Status>(n * 2)
            })
            .unwrap();
        let server = Peer::builder(routes)
            .plugin_arc(metrics.clone())
            .build()
            .unwrap();
        let addr = server.listen("127.0.0.1:0").await.unwrap();
        let client = Peer::new(Router::new());
        let session = client.dial(&addr).await.unwrap();
        for n in 0..3i64 {
            let twice: i64 = session.pull("/twice", &n).await.unwrap().decode().unwrap();
            assert_eq!(twice, n * 2);
        }
        let series = r#"jaunt_requests_total{uri="/twice",kind="pull"}"#;
        assert!(
            eventually(|| sample(&installed.render(), series) == 3.0).await,
            "{}",
            installed.render()
        );
        // Its own rendering is empty: the application exports the metrics.
        assert!(metrics.handle().is_none());
        assert_eq!(metrics.prometheus(), "");
        assert!(metrics.snapshot().per_uri.is_empty());
        assert!(format!("{metrics:?}").contains("own_recorder: false"));
        assert!(client.shutdown(Duration::from_secs(5)).await);
        assert!(server.shutdown(Duration::from_secs(5)).await);
    })
    .await;
}
