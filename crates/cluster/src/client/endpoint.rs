//! One instance as the balanced client sees it: a pool of sessions kept dialed, the calls
//! in flight, and its health.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use jaunt_peer::{Peer, Session};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::outlier::{Ejection, Health};
use crate::Instance;

/// The first wait before dialing an instance again after a failed dial; it doubles with
/// every failure in a row up to [`MAX_REDIAL_WAIT`].
const FIRST_REDIAL_WAIT: Duration = Duration::from_millis(100);
/// The longest wait between dials of an unreachable instance.
const MAX_REDIAL_WAIT: Duration = Duration::from_secs(10);

/// A session that lived at least this long is redialed at once when it ends.
const STABLE_SESSION: Duration = Duration::from_secs(1);

/// An instance and its pool of sessions.
pub(crate) struct Endpoint {
    pub(crate) instance: Instance,
    /// One session per slot once dialed; `None` while (re)dialing.
    slots: Vec<Mutex<Option<Session>>>,
    next_slot: AtomicUsize,
    /// Pulls and pushes of the balanced client under way through this endpoint.
    pub(crate) in_flight: AtomicUsize,
    pub(crate) health: Health,
    dialers: Mutex<Vec<AbortHandle>>,
}

/// What the dialers of every endpoint share.
pub(crate) struct DialContext {
    pub(crate) peer: Peer,
    pub(crate) ejection: Ejection,
    /// Woken whenever a session connects (calls waiting for a first session).
    pub(crate) ready: Notify,
}

impl Endpoint {
    /// The endpoint of `instance`, with `pool` sessions dialed in the background.
    pub(crate) fn start(instance: Instance, pool: usize, ctx: &Arc<DialContext>) -> Arc<Endpoint> {
        let endpoint = Arc::new(Endpoint {
            instance,
            slots: (0..pool.max(1)).map(|_| Mutex::new(None)).collect(),
            next_slot: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            health: Health::default(),
            dialers: Mutex::new(Vec::new()),
        });
        let handles = (0..endpoint.slots.len())
            .map(|slot| {
                tokio::spawn(keep_dialed(Arc::downgrade(&endpoint), slot, ctx.clone()))
                    .abort_handle()
            })
            .collect();
        *endpoint.dialers.lock().expect("not poisoned") = handles;
        endpoint
    }

    /// A connected session of the pool (round-robin over the connected ones), if any.
    pub(crate) fn session(&self) -> Option<Session> {
        let n = self.slots.len();
        let start = self.next_slot.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            let slot = self.slots[(start + i) % n].lock().expect("not poisoned");
            slot.as_ref().filter(|s| s.is_connected()).cloned()
        })
    }

    /// Sessions of the pool that are connected now.
    pub(crate) fn connected(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| {
                let slot = slot.lock().expect("not poisoned");
                slot.as_ref().is_some_and(Session::is_connected)
            })
            .count()
    }

    /// Leaves the cluster: no more dials; the sessions close once the calls under way
    /// through them are done, or after `grace`.
    pub(crate) fn retire(self: Arc<Self>, grace: Duration) {
        for dialer in self.dialers.lock().expect("not poisoned").drain(..) {
            dialer.abort();
        }
        tokio::spawn(async move {
            let until = Instant::now() + grace;
            while self.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for slot in &self.slots {
                if let Some(session) = slot.lock().expect("not poisoned").take() {
                    session.close();
                }
            }
        });
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        for dialer in self.dialers.get_mut().expect("not poisoned").drain(..) {
            dialer.abort();
        }
    }
}

/// Keeps slot `slot` of the endpoint dialed: dials, waits for the session to close, dials
/// again; after a failed dial waits (doubling, with jitter) before the next, so an instance
/// that refuses connections is never dialed in a hot loop. Ends with the endpoint.
async fn keep_dialed(endpoint: Weak<Endpoint>, slot: usize, ctx: Arc<DialContext>) {
    let mut wait = FIRST_REDIAL_WAIT;
    loop {
        let Some(ep) = endpoint.upgrade() else { return };
        let Some(addr) = ep.instance.addr().map(str::to_owned) else {
            tracing::warn!(instance = %ep.instance.id, "instance has no address: not dialed");
            return;
        };
        drop(ep);
        let dialed = ctx.peer.dial(addr.as_str()).await;
        let Some(ep) = endpoint.upgrade() else {
            if let Ok(session) = dialed {
                session.close();
            }
            return;
        };
        match dialed {
            Ok(session) => {
                let connected_at = Instant::now();
                ep.health.success();
                *ep.slots[slot].lock().expect("not poisoned") = Some(session.clone());
                ctx.ready.notify_waiters();
                drop(ep);
                session.closed().await;
                let Some(ep) = endpoint.upgrade() else { return };
                ep.slots[slot].lock().expect("not poisoned").take();
                if let Some(length) = ep.health.failure(&ctx.ejection, Instant::now()) {
                    tracing::warn!(instance = %ep.instance.id, %addr, ?length, "connection lost: instance ejected");
                }
                drop(ep);
                // A session that ends as soon as it starts (a server that accepts and
                // closes) waits like a failed dial; one that lived is dialed again at once.
                if connected_at.elapsed() < STABLE_SESSION {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_REDIAL_WAIT);
                } else {
                    wait = FIRST_REDIAL_WAIT;
                }
            }
            Err(status) => {
                if let Some(length) = ep.health.failure(&ctx.ejection, Instant::now()) {
                    tracing::warn!(instance = %ep.instance.id, %addr, %status, ?length, "cannot dial: instance ejected");
                }
                drop(ep);
                let jitter = wait.mul_f64(fastrand::f64() * 0.2);
                tokio::time::sleep(wait + jitter).await;
                wait = (wait * 2).min(MAX_REDIAL_WAIT);
            }
        }
    }
}
