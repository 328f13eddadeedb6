//! A number of places that tasks wait for: the one mechanism under both
//! a partition's window (`pacer`) and the limit on all partitions
//! (`limit`), each with its own rule for how many places there are.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// A count of places taken, and how many there may be.
pub(crate) trait Places {
    fn taken(&mut self) -> &mut usize;
    fn places(&self) -> usize;
    /// A place was just taken (under the same lock).
    fn entered(&mut self) {}
}

pub(crate) struct Gate<S> {
    state: Mutex<S>,
    freed: Notify,
}

/// A place, given back when dropped.
pub(crate) struct Pass<'g, S: Places>(&'g Gate<S>);

impl<S: Places> Drop for Pass<'_, S> {
    fn drop(&mut self) {
        let free = {
            let mut s = self.0.lock();
            *s.taken() -= 1;
            let taken = *s.taken();
            s.places().saturating_sub(taken)
        };
        // The places may have grown (a limit can double): wake a few.
        for _ in 0..free.min(4) {
            self.0.freed.notify_one();
        }
    }
}

impl<S: Places> Gate<S> {
    pub(crate) fn new(state: S) -> Gate<S> {
        Gate {
            state: Mutex::new(state),
            freed: Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().expect("not poisoned")
    }

    /// Waits for a place (there is always at least one).
    pub(crate) async fn enter(&self) -> Pass<'_, S> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.lock();
                let places = s.places().max(1);
                if *s.taken() < places {
                    *s.taken() += 1;
                    s.entered();
                    return Pass(self);
                }
            }
            freed.await;
        }
    }
}
