//! [`Budget`]: the bytes one session makes its peer hold, by kind.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Share;

/// The bytes held on one session's behalf, in a share of the peer's byte
/// pool. The session's own limit applies to each direction: to what it
/// sends us (frames being read, bodies in handlers) and, as much again, to
/// what waits in its write queue.
#[derive(Debug)]
pub(crate) struct Budget {
    share: Share,
    /// Bytes read and not yet decoded.
    read: AtomicUsize,
    /// Bodies held by running handlers.
    handlers: AtomicUsize,
    /// Frames waiting to be written.
    queued: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(share: Share) -> Budget {
        Budget {
            share,
            read: AtomicUsize::new(0),
            handlers: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
        }
    }

    pub(crate) fn share(&self) -> &Share {
        &self.share
    }

    /// Bytes read and not yet decoded.
    pub(crate) fn read(&self) -> usize {
        self.read.load(Ordering::Relaxed)
    }

    /// Bytes held by running handlers.
    pub(crate) fn handlers(&self) -> usize {
        self.handlers.load(Ordering::Relaxed)
    }

    /// Bytes waiting in the write queue.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether more may be read. `lone_frame`: the only thing held incoming
    /// is one unfinished frame, which may then complete even if it is larger
    /// than the budget.
    pub(crate) fn read_room(&self, lone_frame: bool) -> bool {
        let incoming = self.read() + self.handlers();
        let own = if lone_frame && self.handlers() == 0 {
            0
        } else {
            incoming
        };
        self.share.admits(own, 1)
    }

    /// Waits until [`read_room`](Self::read_room).
    pub(crate) async fn wait_read_room(&self, lone_frame: bool) {
        self.share.wait_until(|| self.read_room(lone_frame)).await;
    }

    /// `n` bytes were read.
    pub(crate) fn add_read(&self, n: usize) {
        self.read.fetch_add(n, Ordering::Relaxed);
        self.share.add(n);
    }

    /// `n` bytes read were consumed (decoded and handed on, or dropped).
    pub(crate) fn read_done(&self, n: usize) {
        self.read.fetch_sub(n, Ordering::Relaxed);
        self.share.sub(n);
    }

    /// A frame of `consumed` bytes became a handler's message of `size`
    /// bytes.
    pub(crate) fn read_to_handler(&self, consumed: usize, size: usize) {
        self.read.fetch_sub(consumed, Ordering::Relaxed);
        self.handlers.fetch_add(size, Ordering::Relaxed);
        // One pool update for the difference (none for an unfiltered frame).
        match size.cmp(&consumed) {
            std::cmp::Ordering::Greater => self.share.add(size - consumed),
            std::cmp::Ordering::Less => self.share.sub(consumed - size),
            std::cmp::Ordering::Equal => {}
        }
    }

    /// A handler holds `size` more bytes (its reply, waiting for room in
    /// the write queue).
    pub(crate) fn add_handler_bytes(&self, size: usize) {
        self.handlers.fetch_add(size, Ordering::Relaxed);
        self.share.add(size);
    }

    /// A handler that held `size` bytes finished.
    pub(crate) fn handler_done(&self, size: usize) {
        if size > 0 {
            self.handlers.fetch_sub(size, Ordering::Relaxed);
            self.share.sub(size);
        }
    }

    /// Whether a frame of `n` bytes may join the write queue: the queue is
    /// empty (one frame always may), or it stays within the budget and the
    /// peer's pool admits it.
    pub(crate) fn queue_room(&self, n: usize) -> bool {
        let queued = self.queued();
        queued == 0 || self.share.admits(queued, n)
    }

    /// Waits until [`queue_room`](Self::queue_room) for `n` bytes.
    pub(crate) async fn wait_queue_room(&self, n: usize) {
        self.share.wait_until(|| self.queue_room(n)).await;
    }

    /// `n` bytes joined the write queue.
    pub(crate) fn add_queued(&self, n: usize) {
        self.queued.fetch_add(n, Ordering::Relaxed);
        self.share.add(n);
    }

    /// `n` queued bytes were written (or dropped with the connection).
    pub(crate) fn queued_done(&self, n: usize) {
        if n > 0 {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            self.share.sub(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Pool;
    use super::*;

    #[test]
    fn reading_stops_at_the_budget_but_a_lone_frame_may_complete() {
        let pool = Pool::new(1 << 30);
        let budget = Budget::new(pool.join(100));
        assert!(budget.read_room(false));
        budget.add_read(150);
        assert!(!budget.read_room(false), "150 of 100 read");
        assert!(
            budget.read_room(true),
            "one unfinished frame alone may go on"
        );
        budget.read_to_handler(150, 150);
        assert!(
            !budget.read_room(true),
            "a handler holds it: no longer alone"
        );
        budget.handler_done(150);
        assert!(budget.read_room(false));
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn decompression_is_counted_at_its_full_size() {
        let pool = Pool::new(1 << 30);
        let budget = Budget::new(pool.join(1 << 20));
        budget.add_read(15_000);
        budget.read_to_handler(15_000, 15 << 20);
        assert_eq!(budget.handlers(), 15 << 20);
        assert_eq!(budget.read(), 0);
        assert_eq!(pool.used(), 15 << 20);
        assert!(!budget.read_room(false));
        budget.handler_done(15 << 20);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn the_queue_takes_one_frame_always_and_more_within_the_budget() {
        let pool = Pool::new(1 << 30);
        let budget = Budget::new(pool.join(100));
        assert!(budget.queue_room(500), "an empty queue takes any frame");
        budget.add_queued(500);
        assert!(!budget.queue_room(1));
        budget.queued_done(500);
        budget.add_queued(60);
        assert!(budget.queue_room(40));
        assert!(!budget.queue_room(41));
        budget.queued_done(60);
        assert_eq!(pool.used(), 0);
    }
}
