//! [`PeerStats`] and [`SessionStats`]: what a peer and a session hold now,
//! from the resource accounting (`limits/`), and what their connections
//! carried (`wire.rs`).

use serde::Serialize;

/// What a whole peer holds now ([`Peer::stats`](crate::Peer::stats)), and
/// what its connections carried since it started.
///
/// `bytes_held` is the peer's byte pool, which [`max_peer_memory`] bounds;
/// the three kinds are summed over the live sessions (bytes still held by
/// handlers of sessions that closed count in `bytes_held` only).
///
/// The wire totals (`received_bytes`, `sent_bytes`, `received_frames`,
/// `sent_frames`) count every session the peer had, live or closed: they
/// never go backwards. They are what the sockets carried, whole frames with
/// their length prefix, after transfer filters; see
/// [`SessionStats`] for what exactly counts. A closed session's bytes
/// written while it closes (the flush of its write queue) join the totals
/// once its connection is shut down
/// ([`Session::closed`](crate::Session::closed) returns).
///
/// The `max_session_*` fields are the largest value one live session has
/// now: how to spot the one slow session among many (a peer-wide sum hides
/// it). Sessions are deliberately not listed one by one; iterate
/// [`Peer::sessions`](crate::Peer::sessions) and call
/// [`Session::stats`](crate::Session::stats) for that.
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
    /// Bytes received on every session since the peer started (live and
    /// closed sessions).
    pub received_bytes: u64,
    /// Bytes sent on every session since the peer started.
    pub sent_bytes: u64,
    /// Frames received on every session since the peer started (malformed
    /// frames that were dropped included).
    pub received_frames: u64,
    /// Frames sent on every session since the peer started.
    pub sent_frames: u64,
    /// This side's pulls waiting for their reply, summed over the live
    /// sessions.
    pub pending_pulls: usize,
    /// The most bytes one live session has waiting in its write queue (a
    /// session whose other side does not read fast enough).
    pub max_session_bytes_queued: usize,
    /// The most pulls one live session has waiting for their reply (a
    /// session whose other side answers slowly).
    pub max_session_pending_pulls: usize,
    /// The most handlers one live session has running.
    pub max_session_handlers: usize,
}

/// What one session holds now ([`Session::stats`](crate::Session::stats)),
/// and what its connections carried since it started.
///
/// The wire counters count what the socket carried: whole frames with
/// their length prefix, after transfer filters (compressed, encrypted by an
/// AEAD filter), handshake frames, heartbeats and cancels included. A byte
/// counts when the socket delivers it or takes it: received bytes include
/// malformed frames (dropped or not) and a frame cut short by the end of
/// the connection; a frame counts once it is whole (received: decoded or
/// dropped as malformed; sent: its last byte written). Over TLS the bytes
/// are those of the frames inside the encryption (TLS records add their own
/// overhead, not counted). A session that redials keeps counting on its new
/// connection: the counters are the session's, since it started, across its
/// connections.
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
    /// Bytes received since the session started (see above).
    pub received_bytes: u64,
    /// Bytes sent since the session started.
    pub sent_bytes: u64,
    /// Frames received since the session started (malformed ones included).
    pub received_frames: u64,
    /// Frames sent since the session started.
    pub sent_frames: u64,
}
