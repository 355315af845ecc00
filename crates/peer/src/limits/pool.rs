//! [`Pool`] and [`Share`]: a peer-wide quantity (handler slots, bytes) that
//! the sessions share fairly, each with a hard limit of its own.
//!
//! The rule, for a session holding `held` that asks for `n` more, where the
//! fair share is the pool's limit divided by the sessions sharing it:
//!
//! - its own limit: `held + n <= own_limit`, or it holds nothing yet (so one
//!   request larger than the limit can still go through, alone);
//! - within its fair share (`held + n <= fair`) it is admitted up to twice
//!   the pool's limit (the ceiling, which nothing passes);
//! - past its fair share, only while the pool is under its limit.
//!
//! So no session can take what the others need: however greedy some
//! sessions are and however full they made the pool, a new, well-behaved
//! session is served at once, from its own fair share; the greedy ones wait
//! while the pool is full, and cannot take back what they release while it
//! stays full. No rule that keeps the limit hard can promise that (held
//! slots cannot be taken back: greedy sessions would keep a full pool full),
//! so the limit is the level past which only sessions within their share
//! get more, and twice the limit is the hard ceiling. (Without the ceiling,
//! sessions joining one by one, each taking its then-larger share, could
//! add up to limit × (1 + 1/2 + … + 1/n).)
//!
//! Waiting: a release wakes the waiters of its own session (all of them:
//! there are few) and passes one wake-up to the pool's waiters; a pool waiter
//! that cannot go on either way re-checks on a short tick, so a release that
//! woke the "wrong" waiter never strands the others. No release costs more
//! than a few atomic operations and at most two wake-ups.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// How often a waiter blocked by the pool (not by its own session) looks
/// again without being woken.
const POOL_RECHECK: Duration = Duration::from_millis(20);

/// A peer-wide quantity shared by sessions.
#[derive(Debug)]
pub(crate) struct Pool {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    /// Sessions sharing the pool.
    members: AtomicUsize,
    /// Waiters blocked by the pool.
    waiting: AtomicUsize,
    released: Notify,
}

impl Pool {
    /// A pool of `limit` units (at least 1).
    pub(crate) fn new(limit: usize) -> Arc<Pool> {
        Arc::new(Pool {
            limit: limit.max(1),
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            members: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            released: Notify::new(),
        })
    }

    /// A new member's share, with its own hard limit.
    pub(crate) fn join(self: &Arc<Self>, own_limit: usize) -> Share {
        self.members.fetch_add(1, Ordering::SeqCst);
        Share {
            pool: self.clone(),
            own_limit: own_limit.max(1),
            held: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            released: Notify::new(),
            left: AtomicBool::new(false),
        }
    }

    /// Units held now, by every member.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// The most units ever held at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// What one member may hold regardless of the others: the limit divided
    /// by the members (at least 1).
    pub(crate) fn fair_share(&self) -> usize {
        (self.limit / self.members.load(Ordering::Relaxed).max(1)).max(1)
    }

    /// Waits until nothing is held any more.
    pub(crate) async fn drained(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            if self.used() == 0 {
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            let _ = tokio::time::timeout(POOL_RECHECK, released).await;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn add(&self, n: usize) {
        let now = self.used.fetch_add(n, Ordering::SeqCst) + n;
        // A load first: the peak's cache line is shared, rarely written.
        if now > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn sub(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.released.notify_one();
        }
    }
}

/// One session's part of a [`Pool`].
#[derive(Debug)]
pub(crate) struct Share {
    pool: Arc<Pool>,
    own_limit: usize,
    held: AtomicUsize,
    /// Waiters of this session.
    waiting: AtomicUsize,
    released: Notify,
    left: AtomicBool,
}

impl Share {
    /// Units this session holds.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Whether `n` more units may be taken now, given that this session's
    /// own count toward its limit is `own` (a caller may count only part of
    /// what it holds against the limit: see `Budget`).
    pub(crate) fn admits(&self, own: usize, n: usize) -> bool {
        if own > 0 && own + n > self.own_limit {
            return false;
        }
        let pool = &*self.pool;
        let used = pool.used.load(Ordering::SeqCst);
        used + n <= pool.limit
            || (self.held() + n <= pool.fair_share() && used + n <= pool.limit.saturating_mul(2))
    }

    /// Takes `n` units if [`admits`](Self::admits) says so.
    #[cfg(test)]
    pub(crate) fn try_take(&self, own: usize, n: usize) -> bool {
        if !self.admits(own, n) {
            return false;
        }
        self.add(n);
        true
    }

    /// Takes `n` units, whatever the limits say (for what is already in
    /// memory and must be counted).
    pub(crate) fn add(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.held.fetch_add(n, Ordering::SeqCst);
        self.pool.add(n);
    }

    /// Gives `n` units back.
    pub(crate) fn sub(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.held.fetch_sub(n, Ordering::SeqCst);
        self.pool.sub(n);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.released.notify_waiters();
        }
    }

    /// Waits until `ready()` holds, re-checking whenever this session or
    /// the pool releases something. `ready` is checked once before any
    /// waiting, so the common case costs no future state.
    pub(crate) async fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        loop {
            if ready() {
                return;
            }
            let own = self.released.notified();
            let shared = self.pool.released.notified();
            tokio::pin!(own, shared);
            own.as_mut().enable();
            shared.as_mut().enable();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            self.pool.waiting.fetch_add(1, Ordering::SeqCst);
            let go_on = ready();
            if !go_on {
                let _ = tokio::time::timeout(POOL_RECHECK, async {
                    tokio::select! {
                        () = &mut own => {}
                        () = &mut shared => {}
                    }
                })
                .await;
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            self.pool.waiting.fetch_sub(1, Ordering::SeqCst);
            if go_on {
                // Pass on a wake-up this waiter may have swallowed.
                if self.pool.used() < self.pool.limit {
                    self.pool.released.notify_one();
                }
                return;
            }
        }
    }

    /// The session is gone: it stops counting toward the fair share (what it
    /// still holds is given back by its holders as they finish).
    pub(crate) fn leave(&self) {
        if !self.left.swap(true, Ordering::SeqCst) {
            self.pool.members.fetch_sub(1, Ordering::SeqCst);
            // Fair shares grew: waiters may go on.
            self.pool.released.notify_one();
        }
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.leave();
        let held = *self.held.get_mut();
        if held > 0 {
            self.pool.sub(held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_limit_holds_but_one_request_may_exceed_it_alone() {
        let pool = Pool::new(1000);
        let share = pool.join(10);
        assert!(
            share.try_take(0, 25),
            "a lone request larger than the limit goes through"
        );
        assert!(!share.try_take(25, 1), "then nothing more");
        share.sub(25);
        assert!(share.try_take(0, 10));
        assert!(!share.try_take(10, 1));
        share.sub(10);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn a_session_within_its_fair_share_is_admitted_when_the_pool_is_full() {
        let pool = Pool::new(100);
        let hog = pool.join(1000);
        assert!(
            hog.try_take(0, 100),
            "alone, the hog may take the whole pool"
        );
        assert!(!hog.try_take(100, 1), "the pool is full");
        let newcomer = pool.join(1000);
        // Fair share is now 50: the newcomer holds nothing and is admitted.
        for i in 0..50 {
            assert!(newcomer.try_take(i, 1), "unit {i} of the fair share");
        }
        assert!(
            !newcomer.try_take(50, 1),
            "past its fair share the full pool refuses"
        );
        assert!(
            !hog.try_take(100, 1),
            "the hog is over its fair share and waits"
        );
        hog.sub(10);
        assert!(
            !hog.try_take(90, 1),
            "the pool is still full: released is not retaken"
        );
        assert_eq!(
            pool.used(),
            140,
            "exceeded only by a session within its share"
        );
        assert_eq!(pool.peak(), 150);
        drop(newcomer);
        assert_eq!(
            pool.used(),
            90,
            "a share gives back what it held when dropped"
        );
        assert_eq!(pool.fair_share(), 100);
        assert!(
            hog.try_take(90, 10),
            "under the limit again: the hog may take more"
        );
    }

    #[tokio::test]
    async fn a_waiter_goes_on_when_its_session_releases() {
        let pool = Pool::new(10);
        let share = Arc::new(pool.join(4));
        assert!(share.try_take(0, 4));
        let waiter = {
            let share = share.clone();
            tokio::spawn(async move {
                share.wait_until(|| share.admits(share.held(), 1)).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!waiter.is_finished());
        share.sub(1);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("woken by the release")
            .unwrap();
    }

    #[tokio::test]
    async fn drained_waits_for_the_last_release() {
        let pool = Pool::new(10);
        let share = pool.join(10);
        share.add(3);
        let waiting = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.drained().await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!waiting.is_finished());
        share.sub(3);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("drained")
            .unwrap();
    }
}
