//! Non-blocking connects (std's `connect` blocks the loop until the peer
//! answers): TCP to an upstream, and a Unix stream to the pipeline's
//! internal listener. libc calls declared by hand, as `sys.rs` does.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

const AF_UNIX: i32 = 1;
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
const SOCK_STREAM: i32 = 1;
const SOCK_NONBLOCK: i32 = 0o4000;
const SOCK_CLOEXEC: i32 = 0o2000000;
const EINPROGRESS: i32 = 115;

extern "C" {
    fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
    fn connect(fd: i32, addr: *const u8, len: u32) -> i32;
    fn close(fd: i32) -> i32;
}

/// Opens a non-blocking socket and starts connecting it to `addr` (`len`
/// bytes of a sockaddr). Ok also while the connect is in progress: the
/// socket becomes writable once it is done (then check `take_error`).
fn start(domain: i32, addr: &[u8]) -> io::Result<i32> {
    // SAFETY: socket takes three integers and returns a new descriptor or -1.
    let fd = unsafe { socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `addr` is a live buffer of `addr.len()` bytes holding a sockaddr of `domain`.
    let ret = unsafe { connect(fd, addr.as_ptr(), addr.len() as u32) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(EINPROGRESS) {
            // SAFETY: `fd` is the socket opened above, closed once.
            unsafe { close(fd) };
            return Err(err);
        }
    }
    Ok(fd)
}

/// Starts a TCP connect to `addr` (see [`start`]).
pub fn connect_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let mut sa = [0u8; 28];
    let len = match addr {
        SocketAddr::V4(a) => {
            sa[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
            sa[2..4].copy_from_slice(&a.port().to_be_bytes());
            sa[4..8].copy_from_slice(&a.ip().octets());
            16
        }
        SocketAddr::V6(a) => {
            sa[..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
            sa[2..4].copy_from_slice(&a.port().to_be_bytes());
            sa[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            sa[8..24].copy_from_slice(&a.ip().octets());
            sa[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            28
        }
    };
    let fd = start(if addr.is_ipv4() { AF_INET } else { AF_INET6 }, &sa[..len])?;
    // SAFETY: `fd` is a fresh TCP socket this function owns; the stream takes it over.
    Ok(unsafe { TcpStream::from_raw_fd(fd) })
}

/// Starts a connect to the Unix socket at `path` (see [`start`]); an error
/// when the path is too long, or the listener's backlog is full (EAGAIN).
pub fn connect_unix(path: &Path) -> io::Result<UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    let p = path.as_os_str().as_bytes();
    let mut sa = [0u8; 110];
    if p.len() + 1 > sa.len() - 2 || p.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "unix socket path too long"));
    }
    sa[..2].copy_from_slice(&(AF_UNIX as u16).to_ne_bytes());
    sa[2..2 + p.len()].copy_from_slice(p);
    let fd = start(AF_UNIX, &sa[..2 + p.len() + 1])?;
    // SAFETY: `fd` is a fresh Unix socket this function owns; the stream takes it over.
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}
