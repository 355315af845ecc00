//! [`Turns`]: the order in which a session's background sends reach its
//! write queue.
//!
//! An `async_pull`, `async_pull_to` or broadcast push that cannot be queued
//! on the spot (the write queue is full, the session is redialing, plugins'
//! write hooks must run) finishes its send on a task. Tasks run in no set
//! order, so each such send takes a ticket, synchronously and in call order,
//! and queues its frame only when every ticket before it is done. A send
//! that holds the first ticket and can queue at once does so without a task.
//!
//! A ticket is given back by its [`Turn`]'s drop too, so an aborted task
//! never holds up the sends behind it; a ticket given back before its turn
//! is skipped when its turn comes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// A session's line of background sends.
#[derive(Default)]
pub(crate) struct Turns {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The next ticket to hand out.
    issued: u64,
    /// The ticket whose turn it is.
    next: u64,
    /// Tickets after `next`: `Some` wakes a waiting send, `None` is a ticket
    /// given back before its turn (skipped when it comes).
    later: HashMap<u64, Option<oneshot::Sender<()>>>,
}

impl Turns {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the next ticket.
    pub(crate) fn take(self: &Arc<Self>) -> Turn {
        let mut state = self.state();
        let ticket = state.issued;
        state.issued = state.issued.wrapping_add(1);
        let first = state.next == ticket;
        Turn {
            turns: self.clone(),
            ticket,
            first,
            done: false,
        }
    }

    /// Gives `ticket` back: the next ticket's turn comes if it was this
    /// one's, else it will be skipped.
    fn give_back(&self, ticket: u64) {
        let mut state = self.state();
        if state.next != ticket {
            state.later.insert(ticket, None);
            return;
        }
        loop {
            state.next = state.next.wrapping_add(1);
            let next = state.next;
            match state.later.remove(&next) {
                // Given back already: its turn passes at once.
                Some(None) => continue,
                Some(Some(waiter)) => {
                    // A waiter that is gone gives its ticket back itself
                    // (its drop finds `next` equal to its ticket).
                    let _ = waiter.send(());
                }
                None => {}
            }
            break;
        }
    }
}

/// One ticket in a session's line.
pub(crate) struct Turn {
    turns: Arc<Turns>,
    ticket: u64,
    /// Nobody was ahead when the ticket was taken.
    first: bool,
    done: bool,
}

impl Turn {
    /// Whether nobody was ahead when the ticket was taken (the turn is
    /// already this ticket's).
    pub(crate) fn is_first(&self) -> bool {
        self.first
    }

    /// Waits for this ticket's turn.
    pub(crate) async fn wait(&mut self) {
        if self.first {
            return;
        }
        let rx = {
            let mut state = self.turns.state();
            if state.next == self.ticket {
                self.first = true;
                return;
            }
            let (tx, rx) = oneshot::channel();
            state.later.insert(self.ticket, Some(tx));
            rx
        };
        // The sender is dropped only with the session's line.
        let _ = rx.await;
        self.first = true;
    }

    /// Ends this ticket's turn (the frame is queued, or the send failed).
    pub(crate) fn done(mut self) {
        self.release();
    }

    fn release(&mut self) {
        if !self.done {
            self.done = true;
            self.turns.give_back(self.ticket);
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_come_in_ticket_order_and_skip_given_back_tickets() {
        let turns = Arc::new(Turns::default());
        let a = turns.take();
        let b = turns.take();
        let mut c = turns.take();
        assert!(a.is_first() && !b.is_first() && !c.is_first());
        // b gives its ticket back before its turn; c waits for a only.
        drop(b);
        let waiting = tokio::spawn(async move {
            c.wait().await;
            c
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        a.done();
        let c = waiting.await.unwrap();
        c.done();
        assert!(turns.take().is_first());
    }

    #[tokio::test]
    async fn an_aborted_waiter_passes_its_turn_on() {
        let turns = Arc::new(Turns::default());
        let a = turns.take();
        let mut b = turns.take();
        let mut c = turns.take();
        let b_task = tokio::spawn(async move { b.wait().await });
        tokio::task::yield_now().await;
        a.done();
        // b's turn came, but b is aborted before it runs.
        b_task.abort();
        let _ = b_task.await;
        tokio::time::timeout(std::time::Duration::from_secs(5), c.wait())
            .await
            .expect("c's turn comes");
    }
}
