//! [`Signal`]: a one-way "it happened" (a connection went down, a session
//! closed) that costs one atomic load to check, and can be awaited.
//!
//! tokio-util's `CancellationToken` takes a lock even to answer
//! `is_cancelled`; senders ask on every frame, so the answer is mirrored in
//! an atomic flag and the token is used only for waiting. The read and write
//! loops keep one [`Fired`] future for their whole life and poll it on every
//! frame: after the first poll has registered the task's waker with the
//! token, a poll by the same task only loads the flag (no lock, and no touch
//! of the token's memory, which with many connections is a cache miss).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

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
        // The flag first: a waiter woken by the token must find it set.
        self.fired.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether the signal fired.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Completes once the signal fired.
    pub(crate) fn cancelled(&self) -> Fired<'_> {
        Fired {
            signal: self,
            registered: None,
            wait: self.token.cancelled(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Signal::cancelled`].
    pub(crate) struct Fired<'a> {
        signal: &'a Signal,
        // The waker the token's wait was registered with.
        registered: Option<Waker>,
        #[pin]
        wait: WaitForCancellationFuture<'a>,
    }
}

impl Future for Fired<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.signal.is_cancelled() {
            return Poll::Ready(());
        }
        // Registered with this task already: `cancel` sets the flag before it
        // wakes that waker, so there is nothing more to look at.
        if this
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        match this.wait.poll(cx) {
            Poll::Ready(()) => Poll::Ready(()),
            Poll::Pending => {
                *this.registered = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_with(fired: Pin<&mut Fired<'_>>, waker: &Waker) -> Poll<()> {
        fired.poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn fired_before_the_first_poll_is_ready_at_once() {
        let signal = Signal::new();
        signal.cancel();
        let fired = std::pin::pin!(signal.cancelled());
        assert_eq!(poll_with(fired, Waker::noop()), Poll::Ready(()));
    }

    #[test]
    fn a_waker_that_changed_is_the_one_woken() {
        let signal = Signal::new();
        let mut fired = std::pin::pin!(signal.cancelled());
        let first = Arc::new(Count::default());
        let second = Arc::new(Count::default());
        let first_waker = Waker::from(first.clone());
        let second_waker = Waker::from(second.clone());
        assert_eq!(poll_with(fired.as_mut(), &first_waker), Poll::Pending);
        assert_eq!(poll_with(fired.as_mut(), &first_waker), Poll::Pending);
        // Polled by another task now: that task must be the one woken.
        assert_eq!(poll_with(fired.as_mut(), &second_waker), Poll::Pending);
        signal.cancel();
        assert_eq!(
            second.0.load(Ordering::SeqCst),
            1,
            "the new waker was not woken"
        );
        assert_eq!(poll_with(fired.as_mut(), &second_waker), Poll::Ready(()));
    }

    #[tokio::test]
    async fn a_wait_polled_on_every_turn_of_a_loop_still_wakes() {
        let signal = Arc::new(Signal::new());
        let waiting = signal.clone();
        let waiter = tokio::spawn(async move {
            let fired = waiting.cancelled();
            tokio::pin!(fired);
            let mut turns = 0u32;
            loop {
                tokio::select! {
                    biased;
                    () = &mut fired => return turns,
                    () = tokio::time::sleep(Duration::from_millis(1)) => turns += 1,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        signal.cancel();
        let turns = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter was never woken")
            .expect("the waiter panicked");
        assert!(
            turns >= 3,
            "the loop turned only {turns} times before the signal"
        );
    }
}
