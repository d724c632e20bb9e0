//! The hugetlb file the race runs on: a memfd when the kernel offers one (no mount, no root),
//! else an unlinked file on an existing hugetlbfs mount, else on a private mount of our own
//! that disappears as soon as the file is open.

use crate::out::Line;
use crate::parse;
use crate::step::{Step, Stop};
use crate::sys::{self, k, Errno, Fd, Mapping, PathBuf};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    Memfd,
    Mount,
    PrivateMount,
}

pub struct HugeFile {
    fd: Fd,
    pub size: u64,
    pub source: Source,
    /// Where the file was (for TINFO), empty for a memfd.
    pub dir: PathBuf,
    /// The file's length in pages; the last one is the contested page.
    pages: u64,
}

const HUGETLBFS_MAGIC: u64 = k::HUGETLBFS_MAGIC as u64;

impl HugeFile {
    /// A file on the hugetlbfs mount `dir` if given, else a memfd (unless `memfd` is false),
    /// else a file on a mount found or made. On failure the reason is in `why`.
    pub fn open(size: u64, dir: Option<&[u8]>, memfd: bool, why: &mut Line) -> Step<HugeFile> {
        if let Some(dir) = dir {
            return Self::on_mount(dir, size, Source::Mount, why);
        }
        let mut memfd_err = None;
        if memfd {
            let flags = k::MFD_HUGETLB | (size.trailing_zeros() << k::MFD_HUGE_SHIFT);
            match sys::memfd_create(c"hugerace", flags) {
                Ok(fd) => return Ok(HugeFile { fd, size, source: Source::Memfd, dir: PathBuf::new(), pages: 0 }),
                Err(e) => memfd_err = Some(e),
            }
        }
        if let Some(f) = Self::existing_mount(size) {
            return Ok(f);
        }
        Self::private_mount(size, why).inspect_err(|_| {
            if let Some(e) = memfd_err {
                why.s(" (memfd_create with MFD_HUGETLB: ").errno(e).c(b')');
            }
        })
    }

    /// A hugetlbfs mount of this size from /proc/mounts that lets us create a file.
    fn existing_mount(size: u64) -> Option<HugeFile> {
        let mut buf = [0u8; 8192];
        let n = sys::read_file(c"/proc/mounts", &mut buf).ok()?;
        let default = crate::pool::default_size().unwrap_or(0);
        // Why a mount is unusable goes nowhere: the next one, or a private mount, is tried.
        let mut ignored = Line::new();
        for m in parse::mounts(&buf[..n]) {
            if m.fstype != b"hugetlbfs" || parse::mount_pagesize(m.opts, default) != Some(size) {
                continue;
            }
            let mut dir = [0u8; 200];
            let Some(len) = parse::unescape(m.dir, &mut dir) else { continue };
            if let Ok(f) = Self::on_mount(&dir[..len], size, Source::Mount, &mut ignored) {
                return Some(f);
            }
            ignored.clear();
        }
        None
    }

    /// An unlinked file on the hugetlbfs mounted at `dir`, which must really be hugetlbfs of
    /// this page size (statfs magic and block size), reached without following a symlink.
    fn on_mount(dir: &[u8], size: u64, source: Source, why: &mut Line) -> Step<HugeFile> {
        let (path, d, bsize) = Self::check_mount(dir, why)?;
        if bsize != size {
            return Err(Stop::conf(why.b(dir).f(" serves {size} pages, not {size}", &[bsize, size])));
        }
        let mut name = PathBuf::from(&[b"hugerace."]).map_err(|e| Stop::sys(why, "name", e))?;
        name.push_u64(sys::getpid() as u64).map_err(|e| Stop::sys(why, "name", e))?;
        let fd = sys::openat(d.raw(), name.cstr(), k::O_RDWR | k::O_CREAT | k::O_EXCL, 0o600)
            .map_err(|e| Stop::conf(why.s("cannot create a file on ").b(dir).s(": ").errno(e)))?;
        let _ = sys::unlinkat(d.raw(), name.cstr(), 0);
        Ok(HugeFile { fd, size, source, dir: path, pages: 0 })
    }

    /// Open `dir` without following a symlink and check by its statfs magic that it is a
    /// hugetlbfs mount; returns it with its page size.
    fn check_mount(dir: &[u8], why: &mut Line) -> Step<(PathBuf, Fd, u64)> {
        let path = PathBuf::from(&[dir]).map_err(|e| Stop::sys(why, "hugetlbfs path", e))?;
        let d = sys::open(path.cstr(), k::O_RDONLY | k::O_DIRECTORY | k::O_NOFOLLOW).map_err(|e| {
            why.s("cannot open hugetlbfs directory ").arg(dir).s(": ").errno(e);
            if e == Errno::ELOOP || e == Errno::ENOTDIR {
                why.s(" (a symlink or not a directory)");
            }
            Stop::conf(why)
        })?;
        let st = sys::fstatfs(&d).map_err(|e| Stop::sys(why, "statfs", e))?;
        if st.magic != HUGETLBFS_MAGIC {
            return Err(Stop::conf(why.arg(dir).f(" is not a hugetlbfs mount (statfs magic {hex})", &[st.magic])));
        }
        Ok((path, d, st.bsize))
    }

    /// The page size a hugetlbfs mount serves.
    pub fn mount_page_size(dir: &[u8], why: &mut Line) -> Step<u64> {
        Self::check_mount(dir, why).map(|(_, _, s)| s)
    }

    /// Mount a private hugetlbfs in a fresh 0700 directory under /run, open a file there, and
    /// detach the mount and remove the directory at once: the open file keeps it alive, and
    /// nothing is left behind however the run ends.
    fn private_mount(size: u64, why: &mut Line) -> Step<HugeFile> {
        let mut dir = PathBuf::from(&[b"/run/hugerace."]).map_err(|e| Stop::sys(why, "path", e))?;
        dir.push_u64(sys::getpid() as u64).map_err(|e| Stop::sys(why, "path", e))?;
        sys::mkdir(dir.cstr(), 0o700).map_err(|e| {
            Stop::conf(why.s("no memfd hugetlb support and no usable hugetlbfs mount; creating ").b(dir.bytes()).f(" failed: {errno}", &[e.0 as u64]))
        })?;
        let mut opts = Line::new();
        opts.f("pagesize={}K,mode=0700", &[size / 1024]);
        let r = match PathBuf::from(&[opts.as_bytes()]) {
            Err(e) => Err(Stop::sys(why, "options", e)),
            Ok(o) => sys::mount(c"hugerace", dir.cstr(), c"hugetlbfs", 0, o.cstr()).map_err(|e| {
                Stop::conf(why.s("no memfd hugetlb support and no usable hugetlbfs mount; mounting one failed: ").errno(e))
            }),
        };
        if let Err(s) = r {
            let _ = sys::rmdir(dir.cstr());
            return Err(s);
        }
        let f = Self::on_mount(dir.bytes(), size, Source::PrivateMount, why);
        let _ = sys::umount(dir.cstr(), k::MNT_DETACH);
        let _ = sys::rmdir(dir.cstr());
        f
    }

    pub fn source_name(&self) -> &'static str {
        match self.source {
            Source::Memfd => "memfd_create(MFD_HUGETLB)",
            Source::Mount => "hugetlbfs mount",
            Source::PrivateMount => "private hugetlbfs mount (already detached)",
        }
    }

    pub fn set_len(&mut self, pages: u64) -> Result<(), Errno> {
        sys::ftruncate(&self.fd, pages.checked_mul(self.size).ok_or(Errno::EINVAL)?)?;
        self.pages = pages;
        Ok(())
    }

    /// Instantiate pages [0, n): fallocate where the kernel has it (4.3+), else map and touch.
    pub fn fill(&self, n: u64) -> Result<(), Errno> {
        if n == 0 {
            return Ok(());
        }
        let len = n.checked_mul(self.size).ok_or(Errno::EINVAL)?;
        match sys::fallocate(&self.fd, 0, 0, len) {
            Err(Errno::EOPNOTSUPP) | Err(Errno::ENOSYS) => {}
            r => return r,
        }
        let m = self.map(0, n, true, false)?;
        let mut off = 0;
        while (off as u64) < len {
            m.store_u32(off, 1);
            off += self.size as usize;
        }
        Ok(())
    }

    /// Map `n` pages from page `first`, MAP_SHARED or MAP_PRIVATE, optionally MAP_NORESERVE.
    pub fn map(&self, first: u64, n: u64, shared: bool, noreserve: bool) -> Result<Mapping, Errno> {
        let mut flags = if shared { k::MAP_SHARED } else { k::MAP_PRIVATE };
        if noreserve {
            flags |= k::MAP_NORESERVE;
        }
        let len = usize::try_from(n.checked_mul(self.size).ok_or(Errno::ENOMEM)?).map_err(|_| Errno::ENOMEM)?;
        let off = first.checked_mul(self.size).ok_or(Errno::EINVAL)?;
        Mapping::map_aligned(&self.fd, off, len, self.size as usize, flags)
    }

    /// Give the last page (the contested one) back to the pool: the hole punch frees it,
    /// unmaps it from every process and deletes its reservation.
    pub fn punch_last(&self) -> Result<(), Errno> {
        sys::fallocate(&self.fd, k::FALLOC_FL_PUNCH_HOLE | k::FALLOC_FL_KEEP_SIZE, self.last(), self.size)
    }

    fn last(&self) -> u64 {
        self.pages.saturating_sub(1) * self.size
    }

    /// Put the contested page (the file's last) back in race 1's state under `page`, in the
    /// calling process. Shared: punch it out of the file, then map the range again over
    /// `page`, which reserves it on the file again (the punch deleted the reservation).
    /// Private: map a fresh private page over `page`, which frees the old one and reserves
    /// anew (a madvise that drops the page restores the reservation only on kernels with the
    /// 2024 fix).
    /// ENOMEM: the reservation cannot be had, someone took the free page meanwhile.
    pub fn renew(&self, page: &Mapping, shared: bool, noreserve: bool) -> Result<(), Errno> {
        let mut flags = if shared { k::MAP_SHARED } else { k::MAP_PRIVATE };
        if noreserve {
            flags |= k::MAP_NORESERVE;
        }
        if shared {
            self.punch_last()?;
        }
        page.remap(&self.fd, self.last(), flags)
    }
}
