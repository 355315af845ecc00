//! [`PeerStats`] and [`SessionStats`]: what a peer and a session hold now,
//! from the resource accounting (`limits/`).

use serde::Serialize;

/// What a whole peer holds now ([`Peer::stats`](crate::Peer::stats)).
///
/// `bytes_held` is the peer's byte pool, which [`max_peer_memory`] bounds;
/// the three kinds are summed over the live sessions (bytes still held by
/// handlers of sessions that closed count in `bytes_held` only).
///
/// [`max_peer_memory`]: crate::PeerConfig::max_peer_memory
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PeerStats {
    /// Live sessions.
    pub sessions: usize,
    /// Handlers running.
    pub handlers: usize,
    /// The most handlers that ever ran at once.
    pub peak_handlers: usize,
    /// All bytes held on the sessions' behalf.
    pub bytes_held: usize,
    /// The most bytes ever held at once.
    pub peak_bytes_held: usize,
    /// Bytes read and not yet decoded (frames being read).
    pub bytes_read: usize,
    /// Bodies held by running handlers (after decompression).
    pub bytes_in_handlers: usize,
    /// Frames waiting in write queues.
    pub bytes_queued: usize,
    /// Malformed frames dropped since the peer started.
    pub frames_dropped: u64,
}

/// What one session holds now ([`Session::stats`](crate::Session::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SessionStats {
    /// Handlers of this session running.
    pub handlers: usize,
    /// All bytes held on this session's behalf.
    pub bytes_held: usize,
    /// Bytes read and not yet decoded.
    pub bytes_read: usize,
    /// Bodies held by this session's running handlers.
    pub bytes_in_handlers: usize,
    /// Frames waiting in this session's write queue.
    pub bytes_queued: usize,
    /// Malformed frames dropped on this session.
    pub frames_dropped: u64,
    /// This side's pulls waiting for their reply.
    pub pending_pulls: usize,
}
