//! Unix sockets in the abstract namespace: a name that needs no filesystem, vanishes with
//! its last holder (even after SIGKILL), and tells a peer who holds it (SO_PEERCRED).

use super::errno::Errno;
use super::fs::Fd;
use super::raw::{sc, Result};
use linux_raw_sys::general as k;
use linux_raw_sys::net as n;

/// A sockaddr_un for an abstract name: a NUL, then the name (no terminator); returns it
/// with its length.
fn abstract_addr(name: &[u8]) -> Result<(n::sockaddr_un, usize)> {
    // SAFETY: sockaddr_un is a u16 and a byte array; all-zero is valid.
    let mut a: n::sockaddr_un = unsafe { core::mem::zeroed() };
    if name.is_empty() || name.len() >= a.sun_path.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    a.sun_family = n::AF_UNIX as _;
    for (d, s) in a.sun_path[1..].iter_mut().zip(name) {
        *d = *s as _;
    }
    Ok((a, 2 + 1 + name.len()))
}

/// A new AF_UNIX stream socket, close-on-exec, optionally non-blocking.
pub fn unix_socket(nonblock: bool) -> Result<Fd> {
    let flags = n::SOCK_STREAM | k::O_CLOEXEC | if nonblock { k::O_NONBLOCK } else { 0 };
    // SAFETY: plain integer arguments.
    sc!(k::__NR_socket, n::AF_UNIX, flags, 0).map(|fd| Fd(fd as i32))
}

/// Bind `fd` to the abstract name `name` (EADDRINUSE while another socket holds it).
pub fn bind_abstract(fd: &Fd, name: &[u8]) -> Result<()> {
    let (a, len) = abstract_addr(name)?;
    // SAFETY: a is a valid sockaddr_un of at least len bytes and outlives the call.
    sc!(k::__NR_bind, fd.raw(), &a as *const n::sockaddr_un, len).map(drop)
}

pub fn listen(fd: &Fd, backlog: u32) -> Result<()> {
    // SAFETY: plain integer arguments.
    sc!(k::__NR_listen, fd.raw(), backlog).map(drop)
}

/// Connect `fd` to the abstract name `name`.
pub fn connect_abstract(fd: &Fd, name: &[u8]) -> Result<()> {
    let (a, len) = abstract_addr(name)?;
    // SAFETY: as bind_abstract.
    sc!(k::__NR_connect, fd.raw(), &a as *const n::sockaddr_un, len).map(drop)
}

/// The pid of the process that created the peer socket (for a connected client: the pid
/// that called listen), as seen from our pid namespace (0 if outside it).
pub fn peer_pid(fd: &Fd) -> Result<i32> {
    let mut c = n::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = core::mem::size_of::<n::ucred>() as u32;
    // SAFETY: c and len are writable and len says how large c is.
    sc!(k::__NR_getsockopt, fd.raw(), n::SOL_SOCKET, n::SO_PEERCRED, &mut c as *mut n::ucred, &mut len as *mut u32)?;
    Ok(c.pid as i32)
}
