//! Errno values as the kernel returns them, printable by name.

use linux_raw_sys::errno as e;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Errno(pub u16);

// The numbers we name, and their names in the same order, NUL-separated: two byte strings
// instead of a table of (number, &str) pairs, a kilobyte less on 64-bit targets. Every errno
// of every architecture we build fits a byte (checked at compile time).
macro_rules! names {
    ($($n:ident)*) => {
        const NUMBERS: &[u8] = &[$(e::$n as u8,)*];
        const NAMES: &[u8] = concat!($(stringify!($n), "\0",)*).as_bytes();
        const _: () = { $(assert!(e::$n < 256);)* };
    };
}

names!(EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES
       EFAULT EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY
       EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE ERANGE EDEADLK ENAMETOOLONG ENOSYS ENOTEMPTY
       ELOOP EOVERFLOW EOPNOTSUPP EADDRINUSE ETIMEDOUT ESTALE EDQUOT ECANCELED EOWNERDEAD);

impl Errno {
    pub const EPERM: Errno = Errno(e::EPERM as u16);
    pub const ENOENT: Errno = Errno(e::ENOENT as u16);
    pub const EINTR: Errno = Errno(e::EINTR as u16);
    pub const EAGAIN: Errno = Errno(e::EAGAIN as u16);
    pub const EPIPE: Errno = Errno(e::EPIPE as u16);
    pub const ENOMEM: Errno = Errno(e::ENOMEM as u16);
    pub const EACCES: Errno = Errno(e::EACCES as u16);
    pub const EEXIST: Errno = Errno(e::EEXIST as u16);
    pub const EINVAL: Errno = Errno(e::EINVAL as u16);
    pub const ENOSYS: Errno = Errno(e::ENOSYS as u16);
    pub const EROFS: Errno = Errno(e::EROFS as u16);
    pub const ETIMEDOUT: Errno = Errno(e::ETIMEDOUT as u16);
    pub const EOPNOTSUPP: Errno = Errno(e::EOPNOTSUPP as u16);
    pub const ENAMETOOLONG: Errno = Errno(e::ENAMETOOLONG as u16);
    pub const ENOTDIR: Errno = Errno(e::ENOTDIR as u16);
    pub const ELOOP: Errno = Errno(e::ELOOP as u16);
    pub const ENODEV: Errno = Errno(e::ENODEV as u16);
    pub const EBUSY: Errno = Errno(e::EBUSY as u16);

    /// The symbolic name, or None for a value outside the table (printed as a number).
    pub fn name(self) -> Option<&'static [u8]> {
        let i = NUMBERS.iter().position(|&n| n as u16 == self.0)?;
        NAMES.split(|&c| c == 0).nth(i)
    }
}

/// The si_code of a SIGBUS, by name.
pub fn bus_code(code: i32) -> &'static str {
    match code {
        1 => "BUS_ADRALN",
        2 => "BUS_ADRERR",
        3 => "BUS_OBJERR",
        4 => "BUS_MCEERR_AR",
        5 => "BUS_MCEERR_AO",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names() {
        assert_eq!(Errno::ENOMEM.name(), Some(&b"ENOMEM"[..]));
        assert_eq!(Errno::EPERM.name(), Some(&b"EPERM"[..]));
        assert_eq!(Errno(e::EOWNERDEAD as u16).name(), Some(&b"EOWNERDEAD"[..]));
        assert_eq!(Errno(0).name(), None);
        assert_eq!(Errno(4000).name(), None);
    }
}
