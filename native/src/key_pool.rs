//! Fresh key material for transient data keys, drawn from `RAND_priv_bytes`
//! one locked page (128 keys) at a time.
//!
//! Why: inside node 20 (OpenSSL 3.0) a `RAND_bytes` call has a fixed cost of
//! a few microseconds whatever its length (see the nonce pool in
//! [`crate::aead`]), and every envelope encryption (`dataKeySealBatch`, one
//! per proxied request or direct-API call) makes a fresh data key. From this
//! pool a key costs a 32-byte copy; measured in `bench/` (issue note).
//!
//! Contract, as for the nonce pool, plus what secrets need:
//! - every key is 256 bits of output of OpenSSL's private DRBG
//!   (`RAND_priv_bytes`, the instance OpenSSL reserves for secret values),
//!   handed out exactly once: the bytes are copied into the caller's slot
//!   and wiped here before the call returns;
//! - the block lives in its own `mlock`ed, `MADV_DONTDUMP` page (never in
//!   ordinary memory), wiped when the thread's pool drops and after a failed
//!   refill; if forks cannot be tracked, or the page cannot be mapped and
//!   locked, every key is drawn by its own call;
//! - after `fork()` the child never uses the parent's block: the page is
//!   `MADV_WIPEONFORK` (the kernel hands the child zeros, where supported),
//!   and a block mapped under another [`fork::epoch`] is wiped and unmapped
//!   unused, and a new page is mapped and locked (a child does not inherit
//!   `mlock`, so the old page is not reused);
//! - the pool is per thread (`thread_local!`), so two threads never share a
//!   block.
//!
//! Long-lived keys (`keyGenerate`) are drawn one call each: they are rare,
//! and nothing is gained by holding their bytes before they exist.

use std::cell::RefCell;
use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::fork;
use crate::keys::{map_locked_page, unmap_locked_page, wipe, KEY_LEN, PAGE_LEN};
use crate::ossl::private_random_bytes;
use crate::sys;

/// Keys per block: one page.
#[cfg(test)]
const BLOCK_KEYS: usize = PAGE_LEN / KEY_LEN;

struct KeyBlock {
    base: NonNull<u8>,
    /// Index of the first unused byte; `PAGE_LEN` = empty.
    next: usize,
    /// [`fork::epoch`] when the page was mapped (and locked).
    epoch: u64,
}

impl KeyBlock {
    fn map(epoch: u64) -> Result<KeyBlock> {
        #[cfg(test)]
        MAPS.with(|m| m.set(m.get() + 1));
        // Unlocked pages are refused here (unlike key slots, which report
        // `locked = false`): the caller then draws each key on its own.
        match map_locked_page()? {
            (base, None) => {
                // Best effort (Linux 4.14+): a forked child's copy reads as
                // zeros. The epoch check below does not depend on it.
                // SAFETY: `base` is the start of the PAGE_LEN mapping just
                // made; the advice only changes how a child sees it.
                unsafe { sys::madvise(base.as_ptr().cast(), PAGE_LEN, sys::MADV_WIPEONFORK) };
                Ok(KeyBlock {
                    base,
                    next: PAGE_LEN,
                    epoch,
                })
            }
            (base, Some(problem)) => {
                // SAFETY: just mapped by map_locked_page, never written.
                unsafe { unmap_locked_page(base) };
                Err(Error::new(crate::error::code::KEY_MEMORY, problem))
            }
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `base` is the start of a live PAGE_LEN mapping owned by
        // this block alone (unmapped only in Drop); `&mut self` makes the
        // access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), PAGE_LEN) }
    }

    /// Wipes what was not handed out and marks the block empty.
    fn discard(&mut self) {
        let next = self.next;
        if let Some(unused) = self.bytes().get_mut(next..) {
            wipe(unused);
        }
        self.next = PAGE_LEN;
    }

    /// Moves one unused key into `out`, refilling the block when empty.
    /// The caller has checked that the block belongs to this fork epoch.
    fn take(&mut self, out: &mut [u8; KEY_LEN]) -> Result<()> {
        if self.next >= PAGE_LEN {
            self.next = PAGE_LEN;
            if let Err(err) = private_random_bytes(self.bytes()) {
                let all = self.bytes();
                wipe(all);
                return Err(err);
            }
            self.next = 0;
        }
        let next = self.next;
        let src = self
            .bytes()
            .get_mut(next..next + KEY_LEN)
            .ok_or_else(|| Error::internal("key pool cursor"))?;
        out.copy_from_slice(src);
        wipe(src);
        self.next += KEY_LEN;
        Ok(())
    }
}

impl Drop for KeyBlock {
    fn drop(&mut self) {
        let all = self.bytes();
        wipe(all);
        // SAFETY: `base` came from map_locked_page, is unmapped only here,
        // its bytes were just wiped, and the block is going away.
        unsafe { unmap_locked_page(self.base) };
    }
}

enum Pool {
    /// Not used yet on this thread.
    Unmapped,
    /// No locked page could be had: every key is drawn by its own call, for
    /// the thread's life. Not retried on purpose: locked memory is short
    /// (`RLIMIT_MEMLOCK`) and belongs to long-lived keys first; a pool that
    /// came back would take a page the key slab then goes without.
    Unavailable,
    Ready(KeyBlock),
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool::Unmapped) };
}

#[cfg(test)]
thread_local! {
    /// Pages this thread's pool has mapped.
    static MAPS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Fills `out` with a fresh random data key (see the module docs).
pub fn fresh_data_key(out: &mut [u8; KEY_LEN]) -> Result<()> {
    let Some(epoch) = fork::epoch() else {
        return private_random_bytes(out);
    };
    let pooled = POOL.try_with(|cell| {
        let mut pool = cell.try_borrow_mut().ok()?;
        if let Pool::Ready(block) = &mut *pool {
            if block.epoch != epoch {
                // A block of the parent process: wiped and unmapped (Drop),
                // never used; the child maps and locks its own page.
                block.discard();
                *pool = Pool::Unmapped;
            }
        }
        if matches!(*pool, Pool::Unmapped) {
            *pool = KeyBlock::map(epoch).map_or(Pool::Unavailable, Pool::Ready);
        }
        match &mut *pool {
            Pool::Ready(block) => Some(block.take(out)),
            _ => None,
        }
    });
    match pooled {
        Ok(Some(result)) => result,
        // No locked page, thread teardown or re-entry: one call for this key.
        _ => private_random_bytes(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashSet;

    fn state() -> (usize, u64, Vec<u8>) {
        POOL.with(|cell| {
            let Pool::Ready(block) = &mut *cell.borrow_mut() else {
                panic!("pool not mapped (tests run as a user that can mlock a page)");
            };
            let (next, epoch) = (block.next, block.epoch);
            (next, epoch, block.bytes().to_vec())
        })
    }

    #[test]
    fn hands_out_each_key_once_and_wipes_it() {
        let _epochs = fork::TEST_EPOCH_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut seen = HashSet::new();
        let mut key = [0u8; KEY_LEN];
        for _ in 0..(2 * BLOCK_KEYS + 5) {
            fresh_data_key(&mut key).unwrap();
            assert!(key.iter().any(|&b| b != 0));
            assert!(seen.insert(key), "key handed out twice");
        }
        let (next, _, bytes) = state();
        assert!(next > 0 && next <= PAGE_LEN);
        assert!(
            bytes[..next].iter().all(|&b| b == 0),
            "handed-out bytes left in the pool"
        );
        assert!(
            bytes[next..].iter().any(|&b| b != 0),
            "the rest of the block is drawn"
        );
    }

    #[test]
    fn a_block_drawn_before_fork_is_wiped_unused() {
        let _epochs = fork::TEST_EPOCH_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut key = [0u8; KEY_LEN];
        fresh_data_key(&mut key).unwrap();
        let maps = MAPS.with(Cell::get);
        let (next, _, bytes) = state();
        assert!(next < PAGE_LEN - KEY_LEN);
        let upcoming = bytes[next..next + KEY_LEN].to_vec();
        // What the child handler of pthread_atfork does in a forked child.
        fork::bump_fork_epoch();
        fresh_data_key(&mut key).unwrap();
        assert_ne!(key.to_vec(), upcoming, "pre-fork block reused");
        let (next, epoch, _) = state();
        assert_eq!(next, KEY_LEN, "a fresh block was drawn");
        assert_eq!(Some(epoch), fork::epoch());
        // Into a newly mapped (and so newly locked) page, not the old one.
        assert_eq!(MAPS.with(Cell::get), maps + 1);
    }
}
