//! Timers of a session or a peer (Tao's `RunAfter` / `RunEvery`):
//! [`Session::run_after`], [`Session::run_every`], [`Peer::run_after`],
//! [`Peer::run_every`], and their [`TimerHandle`].
//!
//! Each timer is one tokio task on tokio's timer (a hierarchical timing
//! wheel, so ten thousand timers cost no more per tick than one). A session's
//! timers end when the session closes for good (a redial keeps them); a
//! peer's when the peer is closed ([`Peer::close`] or [`Peer::shutdown`]).

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{Peer, Session};

/// The shortest period of [`run_every`](Session::run_every): shorter ones
/// (zero included) are raised to it.
pub const MIN_TIMER_PERIOD: Duration = Duration::from_millis(1);

/// A timer started by [`Session::run_after`], [`Session::run_every`],
/// [`Peer::run_after`] or [`Peer::run_every`].
///
/// Dropping the handle does **not** cancel the timer (as dropping a tokio
/// `JoinHandle` detaches its task): the timer then runs until its session
/// or peer closes. [`cancel`](Self::cancel) stops it.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use jaunt_peer::{Peer, Router};
///
/// let peer = Peer::new(Router::new());
/// let timer = peer.run_every(Duration::from_secs(60), |_peer| async {});
/// assert!(!timer.is_finished());
/// timer.cancel();
/// # });
/// ```
#[derive(Debug)]
pub struct TimerHandle {
    task: JoinHandle<()>,
}

impl TimerHandle {
    /// Stops the timer: no callback starts after this, and one that is
    /// running is dropped at its next `.await`.
    pub fn cancel(&self) {
        self.task.abort();
    }

    /// Whether the timer is over: fired (`run_after`), cancelled, or ended
    /// with its session or peer.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// What a timer belongs to, and the signal that ends its timers.
trait Owner: Clone + Send + Sync + 'static {
    fn ended(&self) -> impl Future<Output = ()> + Send + '_;
}

impl Owner for Session {
    fn ended(&self) -> impl Future<Output = ()> + Send + '_ {
        self.closing()
    }
}

impl Owner for Peer {
    fn ended(&self) -> impl Future<Output = ()> + Send + '_ {
        self.shared().closed_token().cancelled()
    }
}

fn after<O, F, Fut>(owner: &O, delay: Duration, f: F) -> TimerHandle
where
    O: Owner,
    F: FnOnce(O) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let owner = owner.clone();
    let task = tokio::spawn(async move {
        let fire = async {
            tokio::time::sleep(delay).await;
            f(owner.clone()).await;
        };
        tokio::select! {
            biased;
            () = owner.ended() => {}
            () = fire => {}
        }
    });
    TimerHandle { task }
}

fn every<O, F, Fut>(owner: &O, period: Duration, mut f: F) -> TimerHandle
where
    O: Owner,
    F: FnMut(O) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let owner = owner.clone();
    let period = period.max(MIN_TIMER_PERIOD);
    let task = tokio::spawn(async move {
        let ticks = async {
            let mut interval = tokio::time::interval_at(Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                interval.tick().await;
                // Awaited before the next tick: a call never overlaps the
                // one before it.
                f(owner.clone()).await;
            }
        };
        tokio::select! {
            biased;
            () = owner.ended() => {}
            () = ticks => {}
        }
    });
    TimerHandle { task }
}

impl Session {
    /// Calls `f` with the session once, `delay` from now, unless the session
    /// closes first (or the timer is cancelled). A redial does not stop it.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use jaunt_peer::{Peer, Router, Session};
    ///
    /// let server = Peer::new(Router::new());
    /// let addr = server.listen("127.0.0.1:0").await.unwrap();
    /// let client = Peer::new(Router::new());
    /// let session = client.dial(&addr).await.unwrap();
    ///
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// session.run_after(Duration::from_millis(10), |s: Session| async move {
    ///     let _ = tx.send(s.id());
    /// });
    /// assert_eq!(rx.await.unwrap(), session.id());
    ///
    /// client.close().await;
    /// server.close().await;
    /// # });
    /// ```
    pub fn run_after<F, Fut>(&self, delay: Duration, f: F) -> TimerHandle
    where
        F: FnOnce(Session) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        after(self, delay, f)
    }

    /// Calls `f` with the session every `period` (the first call one period
    /// from now) until the session closes for good or the timer is
    /// cancelled; a redial does not stop it.
    ///
    /// Each call is awaited before the next tick, so calls never overlap.
    /// Ticks missed meanwhile (a call that took longer than the period, a
    /// busy runtime) are skipped, not made up: the next call comes at the
    /// next multiple of `period` from the start
    /// ([`MissedTickBehavior::Skip`]). A period under [`MIN_TIMER_PERIOD`]
    /// is raised to it.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use jaunt_peer::{Peer, Router, Session};
    ///
    /// let server = Peer::new(Router::new());
    /// let addr = server.listen("127.0.0.1:0").await.unwrap();
    /// let client = Peer::new(Router::new());
    /// let session = client.dial(&addr).await.unwrap();
    ///
    /// // A heartbeat of sorts: a push every 10 ms.
    /// let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    /// let timer = session.run_every(Duration::from_millis(10), move |s: Session| {
    ///     let tx = tx.clone();
    ///     async move {
    ///         let _ = s.push("/tick", &()).await;
    ///         let _ = tx.send(()).await;
    ///     }
    /// });
    /// rx.recv().await.unwrap();
    /// rx.recv().await.unwrap();
    /// timer.cancel();
    ///
    /// client.close().await;
    /// server.close().await;
    /// # });
    /// ```
    pub fn run_every<F, Fut>(&self, period: Duration, f: F) -> TimerHandle
    where
        F: FnMut(Session) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        every(self, period, f)
    }
}

impl Peer {
    /// Calls `f` with the peer once, `delay` from now, unless the peer is
    /// closed first ([`close`](Self::close), [`shutdown`](Self::shutdown))
    /// or the timer is cancelled.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use jaunt_peer::{Peer, Router};
    ///
    /// let peer = Peer::new(Router::new());
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// peer.run_after(Duration::from_millis(10), |peer: Peer| async move {
    ///     let _ = tx.send(peer.session_count());
    /// });
    /// assert_eq!(rx.await.unwrap(), 0);
    /// peer.close().await;
    /// # });
    /// ```
    pub fn run_after<F, Fut>(&self, delay: Duration, f: F) -> TimerHandle
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        after(self, delay, f)
    }

    /// Calls `f` with the peer every `period` until the peer is closed or
    /// the timer is cancelled; missed ticks are skipped and calls never
    /// overlap, as with [`Session::run_every`].
    ///
    /// ```
    /// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use jaunt_peer::{Peer, Router};
    ///
    /// let peer = Peer::new(Router::new());
    /// // Say something to every session once a second.
    /// let timer = peer.run_every(Duration::from_secs(1), |peer: Peer| async move {
    ///     let _ = peer.broadcast_push("/time", &"tick").await;
    /// });
    /// peer.close().await; // ends the timer
    /// # let _ = timer;
    /// # });
    /// ```
    pub fn run_every<F, Fut>(&self, period: Duration, f: F) -> TimerHandle
    where
        F: FnMut(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        every(self, period, f)
    }
}
