//! [`BroadcastReport`]: what [`Peer::broadcast_push`](crate::Peer::broadcast_push)
//! did with each session.

/// What a [`Peer::broadcast_push`](crate::Peer::broadcast_push) did, counted
/// in sessions. The broadcast returns without waiting for any session: each
/// session's slow-consumer policy (`PeerConfig::slow_consumer`) decides what
/// happens to a push that finds its write queue full.
///
/// ```
/// use jaunt_peer::BroadcastReport;
///
/// let report = BroadcastReport { sent: 3, waiting: 1, ..BroadcastReport::default() };
/// assert_eq!(report.sessions(), 4);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Queued for writing (or written) before the broadcast returned.
    pub sent: usize,
    /// With `SlowConsumer::Wait`: the write queue was full (or the session
    /// was redialing), so the push waits for room in the background, at most
    /// `slow_consumer_wait`, and is dropped after that. A session's
    /// broadcasts reach it in broadcast order.
    pub waiting: usize,
    /// Not sent: the write queue was full under `SlowConsumer::Drop`, the
    /// session was redialing under `Drop` or `Close`, or a plugin's
    /// `pre_write_push` hook refused it.
    pub dropped: usize,
    /// Not sent because the session is closed: it was closed already (or
    /// its connection lost for good), or `SlowConsumer::Close` closed it now
    /// for its full write queue.
    pub closed: usize,
}

impl BroadcastReport {
    /// How many sessions the broadcast went to (every count added up).
    pub fn sessions(&self) -> usize {
        self.sent + self.waiting + self.dropped + self.closed
    }

    pub(crate) fn count(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Sent => self.sent += 1,
            Delivery::Waiting => self.waiting += 1,
            Delivery::Dropped => self.dropped += 1,
            Delivery::Closed => self.closed += 1,
        }
    }
}

/// What became of one session's copy of a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    Sent,
    Waiting,
    Dropped,
    Closed,
}
