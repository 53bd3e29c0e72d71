//! The few epoll and eventfd calls the native front needs (level-triggered),
//! declared by hand: the crate builds without crates.io. bench/native-floor
//! uses them too.

use std::io;

pub const READ: u32 = 0x001 | 0x2000; // EPOLLIN | EPOLLRDHUP
pub const WRITE: u32 = 0x004; // EPOLLOUT
pub const HUP: u32 = 0x010 | 0x008; // EPOLLHUP | EPOLLERR

const CTL_ADD: i32 = 1;
const CTL_DEL: i32 = 2;
const CTL_MOD: i32 = 3;
const CLOEXEC: i32 = 0o2000000;
const EFD_NONBLOCK: i32 = 0o4000;

/// `struct epoll_event` as Linux lays it out: packed on x86-64 (the kernel's
/// `EPOLL_PACKED`), naturally aligned elsewhere.
#[cfg_attr(target_arch = "x86_64", repr(C, packed))]
#[cfg_attr(not(target_arch = "x86_64"), repr(C))]
#[derive(Clone, Copy)]
struct Event {
    events: u32,
    data: u64,
}

extern "C" {
    fn epoll_create1(flags: i32) -> i32;
    fn epoll_ctl(epfd: i32, op: i32, fd: i32, event: *mut Event) -> i32;
    fn epoll_wait(epfd: i32, events: *mut Event, max: i32, timeout: i32) -> i32;
    fn eventfd(initval: u32, flags: i32) -> i32;
    fn read(fd: i32, buf: *mut u8, count: usize) -> isize;
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    fn close(fd: i32) -> i32;
}

pub struct Poll {
    fd: i32,
}

pub struct Events {
    list: Vec<Event>,
    len: usize,
}

impl Events {
    pub fn with_capacity(n: usize) -> Self {
        Events { list: vec![Event { events: 0, data: 0 }; n], len: 0 }
    }
    /// (token, flags) of the events of the last wait.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.list[..self.len].iter().map(|e| {
            let Event { events, data } = *e;
            (data, events)
        })
    }
}

fn check(ret: i32) -> io::Result<i32> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Poll {
    pub fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes a flag word and returns a new descriptor or -1.
        let fd = check(unsafe { epoll_create1(CLOEXEC) })?;
        Ok(Poll { fd })
    }
    fn ctl(&self, op: i32, fd: i32, token: u64, events: u32) -> io::Result<()> {
        let mut ev = Event { events, data: token };
        // SAFETY: `ev` lives across the call; the kernel only reads it.
        check(unsafe { epoll_ctl(self.fd, op, fd, &mut ev) }).map(|_| ())
    }
    pub fn add(&self, fd: i32, token: u64, events: u32) -> io::Result<()> {
        self.ctl(CTL_ADD, fd, token, events)
    }
    pub fn modify(&self, fd: i32, token: u64, events: u32) -> io::Result<()> {
        self.ctl(CTL_MOD, fd, token, events)
    }
    pub fn delete(&self, fd: i32) -> io::Result<()> {
        self.ctl(CTL_DEL, fd, 0, 0)
    }
    /// Waits for events (no timeout), retrying on EINTR.
    pub fn wait(&self, events: &mut Events) -> io::Result<()> {
        self.wait_for(events, -1)
    }
    /// Waits for events at most `timeout_ms` (-1: no limit), retrying on EINTR.
    pub fn wait_for(&self, events: &mut Events, timeout_ms: i32) -> io::Result<()> {
        loop {
            // SAFETY: the buffer holds `list.len()` events and the kernel writes at most that many.
            let n = unsafe { epoll_wait(self.fd, events.list.as_mut_ptr(), events.list.len() as i32, timeout_ms) };
            match check(n) {
                Ok(n) => {
                    events.len = n as usize;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Poll {
    fn drop(&mut self) {
        // SAFETY: `fd` is this Poll's own descriptor, closed once.
        unsafe { close(self.fd) };
    }
}

/// An eventfd: another thread wakes the loop by writing to it.
pub struct Waker {
    fd: i32,
}

impl Waker {
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes an initial value and flags, and returns a new descriptor or -1.
        let fd = check(unsafe { eventfd(0, CLOEXEC | EFD_NONBLOCK) })?;
        Ok(Waker { fd })
    }
    pub fn fd(&self) -> i32 {
        self.fd
    }
    /// Makes the eventfd readable (any thread).
    pub fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live stack buffer to this Waker's descriptor.
        unsafe { write(self.fd, one.as_ptr(), one.len()) };
    }
    /// Clears it (the loop's thread).
    pub fn reset(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live stack buffer from this Waker's descriptor.
        unsafe { read(self.fd, buf.as_mut_ptr(), buf.len()) };
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        // SAFETY: `fd` is this Waker's own descriptor, closed once.
        unsafe { close(self.fd) };
    }
}
