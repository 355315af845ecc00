//! The log events of a session's life: "session closed" comes once per
//! session on each side, however the session was closed.
//!
//! (Its own test binary: the capturing subscriber is process-wide, since
//! the sessions log from the runtime's worker threads.)

mod common;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{eventually, tcp_server, wait_sessions, within};
use jaunt_peer::{Peer, Router};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Every "session closed" event seen: (session id, dialed side).
type Closes = Arc<Mutex<Vec<(String, bool)>>>;

/// A layer that records "session closed" events.
struct Capture(Closes);

#[derive(Default)]
struct Fields {
    message: String,
    id: String,
    dialed: Option<bool>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "id" => self.id = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "dialed" {
            self.dialed = Some(value);
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "session closed" {
            let dialed = fields.dialed.expect("the event names the side");
            self.0.lock().unwrap().push((fields.id, dialed));
        }
    }
}

fn closes() -> &'static Closes {
    static CLOSES: OnceLock<Closes> = OnceLock::new();
    CLOSES.get_or_init(|| {
        let closes = Closes::default();
        let subscriber = tracing_subscriber::registry().with(Capture(closes.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per process");
        closes
    })
}

/// How many "session closed" events each (id, side) had.
fn counts(of: &[String]) -> HashMap<(String, bool), usize> {
    let mut counts = HashMap::new();
    for (id, dialed) in closes().lock().unwrap().iter() {
        if of.contains(id) {
            *counts.entry((id.clone(), *dialed)).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_closed_is_logged_once_per_session_on_each_side() {
    let _ = closes();
    within(async {
        let (server, addr) = tcp_server(Router::new()).await;
        let client = Peer::new(Router::new());
        // Closed by the client, by the server, and by closing the client peer.
        let by_client = client.dial(&addr).await.unwrap();
        let by_server = client.dial(&addr).await.unwrap();
        let by_peer = client.dial(&addr).await.unwrap();
        wait_sessions(&server, 3).await;
        // A dialed session is named after its local address, an accepted one
        // after its remote address: both sides use the same id.
        let ids: Vec<String> = [&by_client, &by_server, &by_peer]
            .iter()
            .map(|s| s.id().to_string())
            .collect();

        by_client.close();
        by_client.closed().await;
        let server_side = server.get_session(&ids[1]).unwrap();
        server_side.close();
        server_side.closed().await;
        assert!(eventually(Duration::from_secs(3), || by_server.is_closed()).await);
        client.close().await;
        wait_sessions(&server, 0).await;
        server.close().await;

        // Give late duplicates a moment to show.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let counts = counts(&ids);
        for id in &ids {
            for dialed in [true, false] {
                assert_eq!(
                    counts.get(&(id.clone(), dialed)),
                    Some(&1),
                    "\"session closed\" events of {id} on the {} side: {counts:?}",
                    if dialed { "dialing" } else { "accepting" }
                );
            }
        }
    })
    .await;
}
