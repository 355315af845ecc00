//! Resource accounting: what a session may hold, counted in handler slots
//! and in bytes, and shared fairly between the sessions of a peer.
//!
//! Every session has a [`SessionLimits`]: a share of the peer's handler
//! slots and a byte [`Budget`]. The budget counts what the session makes the
//! peer hold: the frame being read (bytes received and not yet decoded),
//! the bodies its handlers hold while they run (after decompression), and
//! the frames waiting in its write queue. The read loop reads only while the
//! session has room, so a session over its budget stops being read and TCP
//! pushes back on its sender; the peer never buffers more on its behalf.
//! Both quantities are also pooled peer-wide and the pool is shared fairly
//! (`pool.rs`): a session within its fair share is always served, one over
//! it waits while the pool is full.
//!
//! The session's wire counters (`wire.rs`) live here too, shared by all its
//! connections. The counters are also what [`PeerStats`](crate::PeerStats) and
//! [`SessionStats`](crate::SessionStats) report.

mod budget;
mod dropped;
mod pool;

pub(crate) use budget::Budget;
pub(crate) use dropped::{AfterDrop, DroppedFrames};
pub(crate) use pool::{Pool, Share};

use std::sync::Arc;

use crate::wire::{SessionWire, WireTotals};

/// One session's share of the peer's handler slots and bytes.
#[derive(Debug)]
pub(crate) struct SessionLimits {
    /// Handler slots: one per running handler.
    pub(crate) slots: Share,
    /// Bytes held on the session's behalf.
    pub(crate) bytes: Budget,
    /// Frames dropped as malformed, and their log.
    pub(crate) dropped: DroppedFrames,
    /// Bytes and frames the session's connections carried.
    pub(crate) wire: SessionWire,
}

impl SessionLimits {
    /// A new session's limits in the peer's pools.
    pub(crate) fn join(
        slots: &Arc<Pool>,
        bytes: &Arc<Pool>,
        max_handlers: usize,
        max_bytes: usize,
        wire_gone: &Arc<WireTotals>,
    ) -> Arc<SessionLimits> {
        Arc::new(SessionLimits {
            slots: slots.join(max_handlers),
            bytes: Budget::new(bytes.join(max_bytes)),
            dropped: DroppedFrames::default(),
            wire: SessionWire::new(wire_gone.clone()),
        })
    }

    /// Whether one more handler may start now.
    fn slot_free(&self) -> bool {
        self.slots.admits(self.slots.held(), 1)
    }

    /// A handler slot if one is free now. The returned [`Held`] gives it
    /// back when dropped, with the bytes it was given.
    pub(crate) fn try_slot(self: &Arc<Self>) -> Option<Held> {
        self.slot_free().then(|| {
            self.slots.add(1);
            Held {
                limits: self.clone(),
                bytes: 0,
            }
        })
    }

    /// A handler slot, waiting for one if need be.
    pub(crate) async fn take_slot(self: &Arc<Self>) -> Held {
        loop {
            if let Some(held) = self.try_slot() {
                return held;
            }
            self.slots.wait_until(|| self.slot_free()).await;
        }
    }

    /// The session has ended: it no longer counts toward the fair shares.
    pub(crate) fn leave(&self) {
        self.slots.leave();
        self.bytes.share().leave();
    }
}

/// A running handler's slot and the bytes of its message; given back when
/// dropped.
#[derive(Debug)]
pub(crate) struct Held {
    limits: Arc<SessionLimits>,
    bytes: usize,
}

impl Held {
    /// The handler now holds its message: `consumed` bytes read from the
    /// wire, `size` bytes in memory (more than `consumed` once decompressed).
    pub(crate) fn hold_message(&mut self, consumed: usize, size: usize) {
        self.limits.bytes.read_to_handler(consumed, size);
        self.bytes += size;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.limits.bytes.handler_done(self.bytes);
        self.limits.slots.sub(1);
    }
}
