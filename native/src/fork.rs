//! Fork epochs for the per-thread random pools ([`crate::aead`]'s nonce
//! pool, [`crate::key_pool`]'s data-key pool).
//!
//! A pool holds random bytes drawn ahead of use; after `fork()` the child has
//! a copy of them, so the parent and the child would hand out the same bytes.
//! A `pthread_atfork` child handler bumps the epoch, and a pool drops any
//! block drawn under another epoch. When the handler cannot be registered
//! [`epoch`] is `None` and the pools must be bypassed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::sys;

/// Bumped in the child after every `fork()`.
static FORK_EPOCH: AtomicU64 = AtomicU64::new(0);

pub(crate) extern "C" fn bump_fork_epoch() {
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
}

fn handler_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    // SAFETY: registers a child handler that only increments an atomic
    // (async-signal-safe, as a post-fork child handler must be).
    *REGISTERED
        .get_or_init(|| unsafe { sys::pthread_atfork(None, None, Some(bump_fork_epoch)) } == 0)
}

/// The current fork epoch, or `None` when forks cannot be tracked (then
/// nothing may be drawn ahead of use).
pub(crate) fn epoch() -> Option<u64> {
    handler_registered().then(|| FORK_EPOCH.load(Ordering::Relaxed))
}

/// Held by every test that bumps the epoch or depends on it staying put
/// (the epoch is process-wide and tests run in parallel).
#[cfg(test)]
pub(crate) static TEST_EPOCH_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
