//! Errno values as the kernel returns them, printable by name.

use linux_raw_sys::errno as e;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Errno(pub u16);

macro_rules! names {
    ($($n:ident)*) => {
        const NAMES: &[(u32, &str)] = &[$((e::$n, stringify!($n)),)*];
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
    pub fn name(self) -> Option<&'static str> {
        NAMES.iter().find(|(n, _)| *n == self.0 as u32).map(|(_, s)| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names() {
        assert_eq!(Errno::ENOMEM.name(), Some("ENOMEM"));
        assert_eq!(Errno(4000).name(), None);
    }
}
