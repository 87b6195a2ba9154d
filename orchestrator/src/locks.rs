//! Locks that outlive a panic elsewhere: a thread that panicked while holding one leaves data
//! that is still whole for what the run does with it (counts, queues, memos), and a run must
//! not lose every other result to one panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `m`, locked, whether or not a panic poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
