//! The few libc functions used (std already links libc), with Linux constants.

use std::ffi::{c_int, c_void};
use std::io;

pub const PROT_READ: c_int = 0x1;
pub const PROT_WRITE: c_int = 0x2;
pub const MAP_PRIVATE: c_int = 0x02;
pub const MAP_ANONYMOUS: c_int = 0x20;
pub const MADV_DONTDUMP: c_int = 16;
pub const MADV_WIPEONFORK: c_int = 18;
pub const RLIMIT_CORE: c_int = 4;
pub const MAP_FAILED: *mut c_void = usize::MAX as *mut c_void;

/// `struct rlimit` on 64-bit Linux (`rlim_t` = `unsigned long`).
#[repr(C)]
pub struct Rlimit {
    pub rlim_cur: u64,
    pub rlim_max: u64,
}

extern "C" {
    pub fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    pub fn munmap(addr: *mut c_void, len: usize) -> c_int;
    pub fn mlock(addr: *const c_void, len: usize) -> c_int;
    pub fn munlock(addr: *const c_void, len: usize) -> c_int;
    pub fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    pub fn setrlimit(resource: c_int, rlim: *const Rlimit) -> c_int;
    pub fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> c_int;
}

/// Sets `RLIMIT_CORE` to 0/0 so this process never writes a core dump.
pub fn disable_core_dumps() -> io::Result<()> {
    let zero = Rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `zero` is a valid, initialised rlimit that outlives the call.
    if unsafe { setrlimit(RLIMIT_CORE, &zero) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
