//! Files, directories and mounts.

use super::errno::Errno;
use super::raw::{check, sc, Result};
use linux_raw_sys::general as k;
use core::ffi::CStr;

pub const AT_FDCWD: i32 = k::AT_FDCWD;

/// An owned file descriptor, closed on drop.
#[derive(Debug)]
pub struct Fd(pub(super) i32);

impl Fd {
    pub fn raw(&self) -> i32 {
        self.0
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor and nobody uses it after drop.
        let _ = sc!(k::__NR_close, self.0);
    }
}

pub fn openat(dir: i32, path: &CStr, flags: u32, mode: u32) -> Result<Fd> {
    // SAFETY: path is NUL-terminated and outlives the call.
    sc!(k::__NR_openat, dir, path.as_ptr(), flags | k::O_CLOEXEC, mode).map(|fd| Fd(fd as i32))
}

pub fn open(path: &CStr, flags: u32) -> Result<Fd> {
    openat(AT_FDCWD, path, flags, 0)
}

pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize> {
    loop {
        // SAFETY: buf is writable for buf.len() bytes.
        match sc!(k::__NR_read, fd, buf.as_mut_ptr(), buf.len()) {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

pub fn write(fd: i32, buf: &[u8]) -> Result<usize> {
    // SAFETY: buf is readable for buf.len() bytes.
    sc!(k::__NR_write, fd, buf.as_ptr(), buf.len())
}

pub fn write_all(fd: i32, mut buf: &[u8]) -> Result<()> {
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(Errno(linux_raw_sys::errno::EIO as u16)),
            Ok(n) => buf = &buf[n.min(buf.len())..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read a whole small file (a /proc or /sys entry) into buf; returns the bytes read.
pub fn read_file(path: &CStr, buf: &mut [u8]) -> Result<usize> {
    let fd = open(path, k::O_RDONLY)?;
    let mut n = 0;
    while n < buf.len() {
        match read(fd.raw(), &mut buf[n..])? {
            0 => break,
            m => n += m,
        }
    }
    Ok(n)
}

/// Read an open file again from its start (a sysfs attribute is produced anew by each read
/// at offset 0): one seek and one read instead of an open, a read and a close.
pub fn reread(fd: &Fd, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: plain integers; fd is open.
    sc!(k::__NR_lseek, fd.raw(), 0usize, k::SEEK_SET)?;
    read(fd.raw(), buf)
}

/// Write a /proc or /sys knob. O_NOFOLLOW: a knob is never reached through a symlink.
pub fn write_file(path: &CStr, data: &[u8]) -> Result<()> {
    let fd = open(path, k::O_WRONLY | k::O_NOFOLLOW)?;
    write_all(fd.raw(), data)
}

pub fn ftruncate(fd: &Fd, len: u64) -> Result<()> {
    // SAFETY: plain integer arguments (split in two on 32-bit arches by the arch layer).
    check(unsafe { crate::arch::ftruncate(fd.raw() as usize, len) }).map(drop)
}

pub fn fallocate(fd: &Fd, mode: u32, off: u64, len: u64) -> Result<()> {
    loop {
        // SAFETY: plain integer arguments (split in two on 32-bit arches by the arch layer).
        match check(unsafe { crate::arch::fallocate(fd.raw() as usize, mode as usize, off, len) }) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

pub fn memfd_create(name: &CStr, flags: u32) -> Result<Fd> {
    // SAFETY: name is NUL-terminated.
    sc!(k::__NR_memfd_create, name.as_ptr(), flags | k::MFD_CLOEXEC).map(|fd| Fd(fd as i32))
}

pub fn mkdir(path: &CStr, mode: u32) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    sc!(k::__NR_mkdirat, AT_FDCWD, path.as_ptr(), mode).map(drop)
}

pub fn unlinkat(dir: i32, path: &CStr, flags: u32) -> Result<()> {
    // SAFETY: path is NUL-terminated.
    sc!(k::__NR_unlinkat, dir, path.as_ptr(), flags).map(drop)
}

pub fn rmdir(path: &CStr) -> Result<()> {
    unlinkat(AT_FDCWD, path, k::AT_REMOVEDIR)
}

/// What statfs says about a filesystem: its magic and its block size (a hugetlbfs mount
/// reports its page size there).
pub struct FsInfo {
    pub magic: u64,
    pub bsize: u64,
}

pub fn fstatfs(fd: &Fd) -> Result<FsInfo> {
    let mut st = core::mem::MaybeUninit::<k::statfs>::zeroed();
    // SAFETY: st is a writable statfs, the struct this arch's fstatfs fills.
    sc!(k::__NR_fstatfs, fd.raw(), st.as_mut_ptr())?;
    // SAFETY: zero-initialised and filled by the kernel; every field is an integer.
    let st = unsafe { st.assume_init() };
    Ok(FsInfo { magic: st.f_type as u64 & 0xffff_ffff, bsize: st.f_bsize as u64 })
}

pub fn mount(src: &CStr, target: &CStr, fstype: &CStr, flags: u32, data: &CStr) -> Result<()> {
    // SAFETY: all strings are NUL-terminated.
    sc!(k::__NR_mount, src.as_ptr(), target.as_ptr(), fstype.as_ptr(), flags, data.as_ptr()).map(drop)
}

pub fn umount(target: &CStr, flags: u32) -> Result<()> {
    // SAFETY: target is NUL-terminated.
    sc!(k::__NR_umount2, target.as_ptr(), flags).map(drop)
}

/// Call `f` with each entry name of a directory (".", ".." excluded).
pub fn read_dir(path: &CStr, mut f: impl FnMut(&[u8])) -> Result<()> {
    let fd = open(path, k::O_RDONLY | k::O_DIRECTORY)?;
    let mut buf = [0u64; 256];
    loop {
        // SAFETY: buf is writable for its whole size.
        let n = sc!(k::__NR_getdents64, fd.raw(), buf.as_mut_ptr(), core::mem::size_of_val(&buf))?;
        if n == 0 {
            return Ok(());
        }
        // SAFETY: the kernel wrote n bytes of u64-aligned records into buf.
        let bytes = unsafe { core::slice::from_raw_parts(buf.as_ptr() as *const u8, n) };
        let mut off = 0;
        // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[].
        while off + 19 <= n {
            let reclen = u16::from_ne_bytes([bytes[off + 16], bytes[off + 17]]) as usize;
            if reclen == 0 || off + reclen > n {
                break;
            }
            let name = &bytes[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                f(name);
            }
            off += reclen;
        }
    }
}

pub fn ioctl_is_tty(fd: i32) -> bool {
    let mut t = [0u8; 128];
    // SAFETY: TCGETS writes a termios (60 bytes on every arch) into t.
    sc!(k::__NR_ioctl, fd, linux_raw_sys::ioctl::TCGETS, t.as_mut_ptr()).is_ok()
}

/// Whether two descriptors are one file (the same device and inode), as stdout and stderr
/// are when both are one terminal; None when statx (Linux 4.11) cannot tell.
pub fn same_file(a: i32, b: i32) -> Option<bool> {
    let id = |fd: i32| {
        let mut st = core::mem::MaybeUninit::<k::statx>::zeroed();
        // SAFETY: "" is NUL-terminated; st is a writable statx, the struct statx fills.
        sc!(k::__NR_statx, fd, c"".as_ptr(), k::AT_EMPTY_PATH, k::STATX_INO, st.as_mut_ptr()).ok()?;
        // SAFETY: zero-initialised and filled by the kernel; every field is an integer.
        let st = unsafe { st.assume_init() };
        Some((st.stx_dev_major, st.stx_dev_minor, st.stx_ino))
    };
    Some(id(a)? == id(b)?)
}

/// A path assembled on the stack, always NUL-terminated. Overlong paths are refused.
pub struct PathBuf {
    buf: [u8; 256],
    len: usize,
}

impl Default for PathBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl PathBuf {
    pub const fn new() -> PathBuf {
        PathBuf { buf: [0; 256], len: 0 }
    }
    pub fn from(parts: &[&[u8]]) -> Result<PathBuf> {
        let mut p = PathBuf::new();
        for part in parts {
            p.push(part)?;
        }
        Ok(p)
    }
    pub fn push(&mut self, s: &[u8]) -> Result<&mut Self> {
        if s.contains(&0) || self.len + s.len() >= self.buf.len() {
            return Err(Errno::ENAMETOOLONG);
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
        self.buf[self.len] = 0;
        Ok(self)
    }
    pub fn push_u64(&mut self, v: u64) -> Result<&mut Self> {
        let mut d = [0u8; 20];
        self.push(decimal(v, &mut d))
    }
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }
}

/// `v` in decimal, in the tail of `d`: one digit loop for paths here and for `out`'s lines.
pub fn decimal(mut v: u64, d: &mut [u8; 20]) -> &[u8] {
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &d[i..]
}
