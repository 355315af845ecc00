//! Wire counters: the bytes and frames a session's connections carried, and
//! the peer's totals over every session it had.
//!
//! Each session counts in [`SessionWire`], relaxed atomics of its own, next
//! to the session's other accounting (its byte budget), which the same
//! tasks update on the same paths: no counter is shared across sessions.
//! (They are not padded to a cache line of their own: measured with
//! `idle-sessions`, the 64-byte alignment cost 30 to 130 bytes per idle
//! session, and callgrind showed no difference on the hot path.) Unpadded
//! they add 88 bytes to a session's limits, about 100 bytes of heap in use;
//! what an idle session costs beyond that moves with how the allocator packs
//! the per-session allocations around tokio's 128-byte-aligned task cells
//! (docs/benchmarks.md, "Why the idle server grew more than the client").
//!
//! Bytes are counted as the socket takes or delivers them: a received byte
//! counts when a read returns it (a frame that is malformed, dropped, or cut
//! short by the end of the connection counts too: it crossed the wire), a
//! sent byte when a write takes it. Frames are
//! counted whole: a received one when it was decoded (or dropped as
//! malformed), a sent one when its last byte was written. With a stream
//! that is not a plain socket (TLS), the bytes are those of the frames, as
//! handed to and returned by the stream (before encryption, after
//! decryption).
//!
//! The peer's totals ([`PeerStats`](crate::PeerStats)) are the live
//! sessions' counts plus [`WireTotals`], what the sessions that left the hub
//! had: a session's counts are folded in when it leaves the hub (under the
//! hub's lock, so the totals are read consistently with it), and what it
//! still carried after that (the flush of its write queue at close) when
//! each of its connections finishes, and finally when its counters are
//! dropped. So the totals never go backwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes and frames, each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WireCount {
    pub(crate) received_bytes: u64,
    pub(crate) received_frames: u64,
    pub(crate) sent_bytes: u64,
    pub(crate) sent_frames: u64,
}

impl WireCount {
    fn minus(self, earlier: WireCount) -> WireCount {
        WireCount {
            received_bytes: self.received_bytes.wrapping_sub(earlier.received_bytes),
            received_frames: self.received_frames.wrapping_sub(earlier.received_frames),
            sent_bytes: self.sent_bytes.wrapping_sub(earlier.sent_bytes),
            sent_frames: self.sent_frames.wrapping_sub(earlier.sent_frames),
        }
    }

    pub(crate) fn add(&mut self, more: WireCount) {
        self.received_bytes = self.received_bytes.wrapping_add(more.received_bytes);
        self.received_frames = self.received_frames.wrapping_add(more.received_frames);
        self.sent_bytes = self.sent_bytes.wrapping_add(more.sent_bytes);
        self.sent_frames = self.sent_frames.wrapping_add(more.sent_frames);
    }
}

/// Four counters.
#[derive(Debug, Default)]
struct Counters {
    received_bytes: AtomicU64,
    received_frames: AtomicU64,
    sent_bytes: AtomicU64,
    sent_frames: AtomicU64,
}

impl Counters {
    fn load(&self) -> WireCount {
        WireCount {
            received_bytes: self.received_bytes.load(Ordering::Relaxed),
            received_frames: self.received_frames.load(Ordering::Relaxed),
            sent_bytes: self.sent_bytes.load(Ordering::Relaxed),
            sent_frames: self.sent_frames.load(Ordering::Relaxed),
        }
    }

    fn add(&self, count: WireCount) {
        self.received_bytes
            .fetch_add(count.received_bytes, Ordering::Relaxed);
        self.received_frames
            .fetch_add(count.received_frames, Ordering::Relaxed);
        self.sent_bytes
            .fetch_add(count.sent_bytes, Ordering::Relaxed);
        self.sent_frames
            .fetch_add(count.sent_frames, Ordering::Relaxed);
    }
}

/// What the sessions that left a peer's hub carried (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct WireTotals {
    counters: Counters,
}

impl WireTotals {
    pub(crate) fn load(&self) -> WireCount {
        self.counters.load()
    }
}

/// One session's counters, over all its connections (a redialing session
/// keeps counting on its new connection).
#[derive(Debug)]
pub(crate) struct SessionWire {
    counters: Counters,
    /// The peer's totals of sessions gone.
    gone: Arc<WireTotals>,
    /// The counts folded into `gone` when the session left the hub.
    folded: Mutex<Option<WireCount>>,
}

impl SessionWire {
    pub(crate) fn new(gone: Arc<WireTotals>) -> SessionWire {
        SessionWire {
            counters: Counters::default(),
            gone,
            folded: Mutex::new(None),
        }
    }

    /// `bytes` came off the socket.
    #[inline]
    pub(crate) fn received_bytes(&self, bytes: usize) {
        self.counters
            .received_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A whole frame was read (decoded, or dropped as malformed).
    #[inline]
    pub(crate) fn received_frame(&self) {
        self.counters
            .received_frames
            .fetch_add(1, Ordering::Relaxed);
    }

    /// `bytes` went onto the socket.
    #[inline]
    pub(crate) fn sent_bytes(&self, bytes: usize) {
        self.counters
            .sent_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// `frames` whole frames were written.
    #[inline]
    pub(crate) fn sent_frames(&self, frames: usize) {
        self.counters
            .sent_frames
            .fetch_add(frames as u64, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn load(&self) -> WireCount {
        self.counters.load()
    }

    /// The session left the hub: its counts so far move to the peer's
    /// totals of sessions gone (once). The caller holds the hub's lock.
    pub(crate) fn fold(&self) {
        let mut folded = self.folded.lock().unwrap_or_else(|e| e.into_inner());
        if folded.is_none() {
            let now = self.load();
            self.gone.counters.add(now);
            *folded = Some(now);
        }
    }

    /// After [`fold`](Self::fold): what the session carried since then
    /// (the flush of its queue at close) joins the totals too. Before the
    /// fold it does nothing (the live session is counted by the hub).
    pub(crate) fn settle(&self) {
        let mut folded = self.folded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(earlier) = folded.as_mut() {
            let now = self.load();
            self.gone.counters.add(now.minus(*earlier));
            *earlier = now;
        }
    }
}

impl Drop for SessionWire {
    fn drop(&mut self) {
        // What was carried after the fold (or everything, if the session
        // never was in the hub).
        let folded = self
            .folded
            .get_mut()
            .map_or_else(|e| *e.into_inner(), |f| *f)
            .unwrap_or_default();
        self.gone.counters.add(self.load().minus(folded));
    }
}
