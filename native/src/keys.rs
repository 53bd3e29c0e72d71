//! Locked key memory and key handles.
//!
//! Key bytes live in 32-byte slots of 4096-byte anonymous pages (128 slots a
//! page). Each page is `madvise(MADV_DONTDUMP)`ed and `mlock`ed when mapped;
//! when either fails the keys on that page report `locked = false` and the
//! reason is kept for [`memory_status`], but the page is still used. A slot is
//! wiped with volatile writes when its [`Slot`] is dropped; a page is unmapped
//! once all its slots are free (the last remaining page is kept).
//!
//! A [`KeyHandle`] owns at most one slot; it is what a JS key external points
//! to. Handles are used only from the JS thread that created them.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{compiler_fence, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::{code, Error, Result};
use crate::sys;

/// Length of every key: AES-256 / HMAC-SHA-256 key material.
pub const KEY_LEN: usize = 32;
pub(crate) const PAGE_LEN: usize = 4096;
const SLOTS_PER_PAGE: usize = PAGE_LEN / KEY_LEN;
const _: () = assert!(SLOTS_PER_PAGE == 128);

/// Overwrites `buf` with zeros in a way the compiler may not elide.
pub fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to one byte.
        unsafe { ptr::write_volatile(b, 0) };
    }
    compiler_fence(Ordering::SeqCst);
}

struct Page {
    base: NonNull<u8>,
    /// Bit i set = slot i in use.
    used: u128,
    locked: bool,
}

struct Slab {
    pages: Vec<Page>,
    live: usize,
    lock_error: Option<String>,
}

// SAFETY: a `Slab` only holds addresses of private anonymous mappings plus
// bookkeeping; it is only reached through the `SLAB` mutex, and key bytes are
// only read or written through the `Slot` that owns them.
unsafe impl Send for Slab {}

static SLAB: Mutex<Slab> = Mutex::new(Slab {
    pages: Vec::new(),
    live: 0,
    lock_error: None,
});

fn slab() -> MutexGuard<'static, Slab> {
    // A poisoned lock only means another thread panicked (tests); the
    // bookkeeping is updated atomically with respect to panics, so continue.
    SLAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One private anonymous page, `madvise(MADV_DONTDUMP)`ed and `mlock`ed:
/// its base, and what went wrong with the two protections (`None` when both
/// held). Only mapping failure is an error: unprotected memory is still used.
pub(crate) fn map_locked_page() -> Result<(NonNull<u8>, Option<String>)> {
    // SAFETY: requests a fresh private anonymous mapping; no existing
    // memory is affected.
    let p = unsafe {
        sys::mmap(
            ptr::null_mut(),
            PAGE_LEN,
            sys::PROT_READ | sys::PROT_WRITE,
            sys::MAP_PRIVATE | sys::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    let base = match NonNull::new(p.cast::<u8>()) {
        Some(base) if p != sys::MAP_FAILED => base,
        _ => {
            let msg = format!("mmap of key memory failed: {}", io::Error::last_os_error());
            return Err(Error::new(code::KEY_MEMORY, msg));
        }
    };
    let mut problems = Vec::new();
    // SAFETY: `p` is the start of the PAGE_LEN-byte mapping just created.
    if unsafe { sys::madvise(p, PAGE_LEN, sys::MADV_DONTDUMP) } != 0 {
        problems.push(format!(
            "madvise(MADV_DONTDUMP): {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: as above; mlock only pins the pages of our own mapping.
    if unsafe { sys::mlock(p, PAGE_LEN) } != 0 {
        problems.push(format!("mlock: {}", io::Error::last_os_error()));
    }
    Ok((base, (!problems.is_empty()).then(|| problems.join("; "))))
}

/// Unmaps a page of [`map_locked_page`].
///
/// # Safety
/// `base` came from [`map_locked_page`], is unmapped only once, its bytes
/// are already wiped, and no reference into the page remains.
pub(crate) unsafe fn unmap_locked_page(base: NonNull<u8>) {
    let p = base.as_ptr().cast::<c_void>();
    // SAFETY: per the contract, `p` is our own live PAGE_LEN mapping.
    unsafe {
        sys::munlock(p, PAGE_LEN);
        sys::munmap(p, PAGE_LEN);
    }
}

impl Slab {
    /// Maps, `madvise`s and `mlock`s a new page; returns its index.
    fn new_page(&mut self) -> Result<usize> {
        let (base, problem) = match map_locked_page() {
            Ok(page) => page,
            Err(err) => {
                self.lock_error = Some(err.message.clone());
                return Err(err);
            }
        };
        let locked = problem.is_none();
        self.lock_error = problem;
        self.pages.push(Page {
            base,
            used: 0,
            locked,
        });
        Ok(self.pages.len() - 1)
    }

    /// Reserves a free slot; returns its address and whether its page is locked.
    fn alloc(&mut self) -> Result<(NonNull<u8>, bool)> {
        let index = match self.pages.iter().position(|p| p.used != u128::MAX) {
            Some(i) => i,
            None => self.new_page()?,
        };
        let page = self
            .pages
            .get_mut(index)
            .ok_or_else(|| Error::internal("key page index"))?;
        let slot = (!page.used).trailing_zeros() as usize;
        page.used |= 1u128 << slot;
        self.live += 1;
        // SAFETY: slot < 128, so the offset slot*32 stays inside the 4096-byte
        // mapping starting at `base`.
        let addr = unsafe { page.base.as_ptr().add(slot * KEY_LEN) };
        // SAFETY: `addr` is inside a mapping whose base is non-null.
        Ok((unsafe { NonNull::new_unchecked(addr) }, page.locked))
    }

    /// Returns the (already wiped) slot at `addr` to its page.
    fn free(&mut self, addr: NonNull<u8>) {
        let a = addr.as_ptr() as usize;
        let Some(index) = self.pages.iter().position(|p| {
            let base = p.base.as_ptr() as usize;
            a >= base && a < base + PAGE_LEN
        }) else {
            return;
        };
        let Some(page) = self.pages.get_mut(index) else {
            return;
        };
        let slot = (a - page.base.as_ptr() as usize) / KEY_LEN;
        if page.used & (1u128 << slot) != 0 {
            page.used &= !(1u128 << slot);
            self.live -= 1;
        }
        // Keep one empty page: with every other page full, a transient data key
        // would otherwise map, lock, unlock and unmap a page on every call.
        let empty = self.pages.iter().filter(|p| p.used == 0).count();
        if empty > 1 {
            let page = self.pages.swap_remove(index);
            // SAFETY: the page came from map_locked_page, leaves the slab
            // here, every slot on it is free (and was wiped), and no
            // reference into it remains.
            unsafe { unmap_locked_page(page.base) };
        }
    }
}

/// Exclusive ownership of one 32-byte slot of key memory.
///
/// A new slot reads as zeros. Dropping it wipes the bytes and frees the slot.
pub struct Slot {
    ptr: NonNull<[u8; KEY_LEN]>,
    locked: bool,
}

// SAFETY: a Slot owns its 32 bytes alone (nothing else points at them), and
// the slab it returns them to on drop is behind a Mutex: moving it to another
// thread (the native front's key ring) is sound.
unsafe impl Send for Slot {}

impl Slot {
    /// Reserves a slot (mapping a new page if all are full).
    pub fn alloc() -> Result<Slot> {
        let (addr, locked) = slab().alloc()?;
        Ok(Slot {
            ptr: addr.cast(),
            locked,
        })
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        // SAFETY: `ptr` is 32 bytes inside a live mapping (a page is only
        // unmapped once all its slots are free) reserved for this Slot alone.
        unsafe { self.ptr.as_ref() }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8; KEY_LEN] {
        // SAFETY: as in `bytes`; `&mut self` makes the access exclusive.
        unsafe { self.ptr.as_mut() }
    }

    /// True when the slot's page is mlock'ed and excluded from core dumps.
    pub fn is_locked(&self) -> bool {
        self.locked
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        wipe(self.bytes_mut());
        slab().free(self.ptr.cast());
    }
}

/// Key-memory facts for `status()`.
#[derive(Debug, Clone)]
pub struct MemoryStatus {
    /// Slots in use (live keys, plus any transient data key of a running call).
    pub live_keys: usize,
    /// False when the most recent page could not be locked.
    pub lockable: bool,
    pub lock_error: Option<String>,
}

/// Reports key-memory state, mapping a first page if none exists yet so that
/// `lockable` reflects a real `mlock` attempt.
pub fn memory_status() -> MemoryStatus {
    let mut s = slab();
    if s.pages.is_empty() {
        // A failure is recorded in `lock_error`.
        let _ = s.new_page();
    }
    MemoryStatus {
        live_keys: s.live,
        lockable: s.lock_error.is_none(),
        lock_error: s.lock_error.clone(),
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Snapshot of a handle, as returned by `keyInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: u64,
    pub locked: bool,
    pub destroyed: bool,
    pub encryptions: u64,
}

/// A key as seen from JS: an id, a slot (gone once destroyed) and a counter of
/// AES-GCM encryptions made under it.
///
/// A *transport* key ([`KeyHandle::new_transport`]) left the module once,
/// RSA-OAEP-encrypted to a caller-supplied public key (transport.rs), so it is
/// not secret from whoever holds that private key: it may only wrap data keys
/// for that holder (the `…ForTransport` exports) and is refused as the key of
/// every other operation, so no long-lived key can ever be wrapped under it.
pub struct KeyHandle {
    id: u64,
    locked: bool,
    transport: bool,
    slot: RefCell<Option<Slot>>,
    encryptions: Cell<u64>,
}

impl KeyHandle {
    /// Takes ownership of `slot`; assigns the next process-unique id (1, 2, …).
    pub fn new(slot: Slot) -> Self {
        KeyHandle::make(slot, false)
    }

    /// Like [`new`](Self::new), for a transport key (see the type's comment).
    pub fn new_transport(slot: Slot) -> Self {
        KeyHandle::make(slot, true)
    }

    fn make(slot: Slot, transport: bool) -> Self {
        KeyHandle {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            locked: slot.is_locked(),
            transport,
            slot: RefCell::new(Some(slot)),
            encryptions: Cell::new(0),
        }
    }

    /// True for a transport key (usable only by the `…ForTransport` exports).
    pub fn is_transport(&self) -> bool {
        self.transport
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn info(&self) -> KeyInfo {
        let destroyed = match self.slot.try_borrow() {
            Ok(s) => s.is_none(),
            Err(_) => false,
        };
        KeyInfo {
            id: self.id,
            locked: self.locked,
            destroyed,
            encryptions: self.encryptions.get(),
        }
    }

    /// Wipes and frees the key bytes. Idempotent.
    pub fn destroy(&self) -> Result<()> {
        let mut slot = self
            .slot
            .try_borrow_mut()
            .map_err(|_| Error::internal("key is in use"))?;
        // Dropping the Slot wipes it.
        drop(slot.take());
        Ok(())
    }

    /// Runs `f` on the key bytes; `[key_destroyed]` after [`destroy`](Self::destroy).
    pub fn with_key<R>(&self, f: impl FnOnce(&[u8; KEY_LEN]) -> Result<R>) -> Result<R> {
        let slot = self
            .slot
            .try_borrow()
            .map_err(|_| Error::internal("key is in use"))?;
        match slot.as_ref() {
            Some(s) => f(s.bytes()),
            None => Err(Error::new(
                code::KEY_DESTROYED,
                format!("key #{} has been destroyed", self.id),
            )),
        }
    }

    /// Fails with `[key_destroyed]` if the key was destroyed.
    pub fn ensure_live(&self) -> Result<()> {
        self.with_key(|_| Ok(()))
    }

    /// Adds `n` to the encryption counter (saturating).
    pub fn count_encryptions(&self, n: u64) {
        self.encryptions
            .set(self.encryptions.get().saturating_add(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_zeroed_locked_and_distinct() {
        let mut slots: Vec<Slot> = (0..300).map(|_| Slot::alloc().unwrap()).collect();
        for (i, s) in slots.iter_mut().enumerate() {
            assert_eq!(s.bytes(), &[0u8; KEY_LEN]);
            s.bytes_mut().fill(i as u8);
        }
        for (i, s) in slots.iter().enumerate() {
            assert_eq!(s.bytes(), &[i as u8; KEY_LEN]);
        }
        // Running as root here, so mlock works.
        if is_root() {
            assert!(slots.iter().all(Slot::is_locked));
        }
        assert!(memory_status().live_keys >= 300);
        drop(slots);
        // Reused slots come back zeroed.
        let s = Slot::alloc().unwrap();
        assert_eq!(s.bytes(), &[0u8; KEY_LEN]);
    }

    fn is_root() -> bool {
        extern "C" {
            fn geteuid() -> u32;
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { geteuid() == 0 }
    }

    #[test]
    fn slab_keeps_one_empty_page() {
        let mut slab = Slab {
            pages: Vec::new(),
            live: 0,
            lock_error: None,
        };
        let full: Vec<NonNull<u8>> = (0..128).map(|_| slab.alloc().unwrap().0).collect();
        assert_eq!(slab.pages.len(), 1);
        // A transient slot past a full page maps a second page once and keeps it.
        for _ in 0..3 {
            let (t, _) = slab.alloc().unwrap();
            slab.free(t);
            assert_eq!(slab.pages.len(), 2);
        }
        // Emptying the first page too leaves two empty pages: one is released.
        for a in full {
            slab.free(a);
        }
        assert_eq!((slab.pages.len(), slab.live), (1, 0));
    }

    #[test]
    fn handle_lifecycle() {
        let mut slot = Slot::alloc().unwrap();
        slot.bytes_mut().fill(7);
        let h = KeyHandle::new(slot);
        assert!(h.id() >= 1);
        assert_eq!(h.with_key(|k| Ok(k[0])).unwrap(), 7);
        h.count_encryptions(3);
        let info = h.info();
        assert_eq!((info.destroyed, info.encryptions), (false, 3));
        h.destroy().unwrap();
        h.destroy().unwrap();
        assert!(h.info().destroyed);
        assert_eq!(
            h.with_key(|_| Ok(())).unwrap_err().code,
            code::KEY_DESTROYED
        );
        let h2 = KeyHandle::new(Slot::alloc().unwrap());
        assert!(h2.id() > h.id());
    }
}
