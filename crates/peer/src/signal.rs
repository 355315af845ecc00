//! [`Signal`]: a one-way "it happened" (a connection went down, a session
//! closed) that costs one atomic load to check, and can be awaited.
//!
//! tokio-util's `CancellationToken` takes a lock even to answer
//! `is_cancelled`; senders ask on every frame, so the answer is mirrored in
//! an atomic flag and the token is used only for waiting.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

/// Fired once, checked often, awaitable.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    fired: AtomicBool,
    token: CancellationToken,
}

impl Signal {
    /// A signal not fired yet.
    pub(crate) fn new() -> Signal {
        Signal::default()
    }

    /// Fires the signal (again is a no-op).
    pub(crate) fn cancel(&self) {
        self.fired.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether the signal fired.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Completes once the signal fired.
    pub(crate) async fn cancelled(&self) {
        self.token.cancelled().await;
    }
}
