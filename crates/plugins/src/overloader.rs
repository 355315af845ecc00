//! Overload protection: a limit on live accepted sessions and token-bucket
//! limits on the rate of incoming pulls and pushes, for the whole peer and
//! per uri.
//!
//! - [`max_sessions`](Overloader::max_sessions): an accepted connection
//!   beyond the limit is closed at once (its `post_accept` fails), before it
//!   reads anything; the dialer sees its first pull fail with 102. Dialed
//!   sessions are not counted.
//! - [`total_rate`](Overloader::total_rate) and
//!   [`uri_rate`](Overloader::uri_rate): token buckets holding up to `burst`
//!   tokens, refilled at `per_sec` tokens a second; each incoming pull or push
//!   takes one token from the peer's bucket and one from its uri's (matched
//!   on the path, without the query string). A pull that finds a bucket empty
//!   is answered with status 500 (`Internal Server Error`, cause
//!   `overloaded: ...`) and its handler does not run; such a push is dropped.
//!
//! A rejected message consumes no token. Limits apply to the uri as it
//! arrives: put the overloader after plugins that rewrite uris (such as
//! [`ignorecase`](crate::ignorecase)) to limit the rewritten ones.
//!
//! ```
//! use jaunt::prelude::*;
//! use jaunt::plugins::overloader::Overloader;
//!
//! let mut routes = Router::new();
//! routes.pull("/search", |_: PullCtx, q: String| async move { Ok::<_, Status>(q) }).unwrap();
//! let server = Peer::builder(routes)
//!     .plugin(
//!         Overloader::new()
//!             .max_sessions(10_000)
//!             .total_rate(5_000.0, 500)
//!             .uri_rate("/search", 100.0, 20),
//!     )
//!     .build()
//!     .unwrap();
//! # drop(server);
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use jaunt_peer::{Plugin, RoutePlugin, Session};
use jaunt_socket::{code, Packet, Status};

/// A token bucket: up to `burst` tokens, refilled continuously at `per_sec`.
#[derive(Debug)]
struct Bucket {
    per_sec: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(per_sec: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_sec: per_sec.max(0.0),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token if there is one.
    fn try_take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        let refill = now.duration_since(*last).as_secs_f64() * self.per_sec;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back a token taken by a message that was then rejected by
    /// another bucket.
    fn refund(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = (state.0 + 1.0).min(self.burst);
    }
}

/// Marks a session counted in the live-session total.
#[derive(Debug, Clone, Copy)]
struct Counted;

/// The overload plugin (see the [module docs](self)). Add it to a peer with
/// `PeerBuilder::plugin`; it has no group hooks.
#[derive(Debug, Default)]
pub struct Overloader {
    max_sessions: Option<usize>,
    live: AtomicUsize,
    total: Option<Bucket>,
    uris: HashMap<String, Bucket>,
}

impl Overloader {
    /// No limits yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` accepted sessions at once; more are closed when accepted.
    #[must_use]
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = Some(n);
        self
    }

    /// At most `per_sec` incoming pulls and pushes a second over the whole
    /// peer, with bursts of up to `burst` (at least 1).
    #[must_use]
    pub fn total_rate(mut self, per_sec: f64, burst: u32) -> Self {
        self.total = Some(Bucket::new(per_sec, burst));
        self
    }

    /// At most `per_sec` incoming pulls and pushes a second to the path
    /// `uri` (without query string), with bursts of up to `burst` (at least
    /// 1). Setting the same uri again replaces its limit.
    #[must_use]
    pub fn uri_rate(mut self, uri: impl Into<String>, per_sec: f64, burst: u32) -> Self {
        self.uris.insert(uri.into(), Bucket::new(per_sec, burst));
        self
    }

    /// How many accepted sessions are live (counted by this plugin).
    pub fn live_sessions(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Takes a token for a message to `path`, or says why not.
    fn admit(&self, path: &str) -> Result<(), Status> {
        let uri_bucket = self.uris.get(path);
        if let Some(bucket) = uri_bucket {
            if !bucket.try_take() {
                return Err(Status::standard(
                    code::INTERNAL_SERVER_ERROR,
                    format!("overloaded: rate limit of {path} exceeded"),
                ));
            }
        }
        if let Some(total) = &self.total {
            if !total.try_take() {
                if let Some(bucket) = uri_bucket {
                    bucket.refund();
                }
                return Err(Status::standard(
                    code::INTERNAL_SERVER_ERROR,
                    "overloaded: total rate limit exceeded",
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl RoutePlugin for Overloader {
    fn name(&self) -> &str {
        "overloader"
    }
}

#[async_trait]
impl Plugin for Overloader {
    async fn post_accept(&self, session: &Session) -> Result<(), Status> {
        let Some(max) = self.max_sessions else {
            return Ok(());
        };
        let admitted = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |live| {
                (live < max).then_some(live + 1)
            });
        match admitted {
            Ok(_) => {
                session.data().insert(Counted);
                Ok(())
            }
            Err(live) => Err(Status::standard(
                code::INTERNAL_SERVER_ERROR,
                format!("overloaded: {live} sessions, the limit is {max}"),
            )),
        }
    }

    async fn post_disconnect(&self, session: &Session) {
        if session.data().remove::<Counted>().is_some() {
            self.live.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn post_read_pull_header(
        &self,
        _session: &Session,
        pull: &mut Packet,
    ) -> Result<(), Status> {
        self.admit(pull.path())
    }

    async fn post_read_push_header(
        &self,
        _session: &Session,
        push: &mut Packet,
    ) -> Result<(), Status> {
        self.admit(push.path())
    }
}
