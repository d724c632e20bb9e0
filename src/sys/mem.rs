//! Memory mappings: owned, unmapped on drop, and reached only through safe accessors.

use super::errno::Errno;
use super::fs::Fd;
use super::raw::{check, sc, Result};
use linux_raw_sys::general as k;
use core::marker::PhantomData;

/// An owned mapping of `len` bytes at `addr`.
#[derive(Debug)]
pub struct Mapping {
    addr: usize,
    len: usize,
}

pub const PROT_RW: u32 = k::PROT_READ | k::PROT_WRITE;

fn mmap(addr: usize, len: usize, prot: u32, flags: u32, fd: i32, off: u64) -> Result<usize> {
    // SAFETY: either a fresh placement chosen by the kernel, or MAP_FIXED over a range the
    // caller owns (a reservation made by `map_aligned`).
    unsafe { check(crate::arch::mmap(addr, len, prot as usize, flags as usize, fd as usize, off)) }
}

impl Mapping {
    /// Anonymous memory, private to this process or shared with its fork-style children.
    pub fn anon(len: usize, shared: bool) -> Result<Mapping> {
        let share = if shared { k::MAP_SHARED } else { k::MAP_PRIVATE };
        let addr = mmap(0, len, PROT_RW, share | k::MAP_ANONYMOUS, -1, 0)?;
        Ok(Mapping { addr, len })
    }

    /// Map `len` bytes of `fd` at `off`, at an address aligned to `align`. A kernel places a
    /// hugetlb mapping itself, aligned: that is tried first, and it is the only way on the
    /// ppc64 hash MMU, where a hugepage mapping MAP_FIXED into a window of base pages fails
    /// with EBUSY (the page size is per address-space slice). qemu-user places mappings at
    /// guest-page alignment, which a hugetlb file refuses (EINVAL): then we reserve a PROT_NONE
    /// window, map the file MAP_FIXED at an aligned address inside it and give back the slack.
    pub fn map_aligned(fd: &Fd, off: u64, len: usize, align: usize, flags: u32) -> Result<Mapping> {
        Self::aligned(fd.raw(), off, len, align, flags)
    }

    /// One mmap of `len` bytes of `fd` at `off`, where the kernel places it: no second try
    /// (a check that counts the kernel's reservations must make exactly one request).
    pub fn map_once(fd: &Fd, off: u64, len: usize, flags: u32) -> Result<Mapping> {
        let addr = mmap(0, len, PROT_RW, flags, fd.raw(), off)?;
        Ok(Mapping { addr, len })
    }

    /// As `map_aligned`, anonymous hugetlb memory of page size `align` (MAP_HUGETLB with the
    /// size in the flags) and MAP_PRIVATE.
    pub fn anon_hugetlb(len: usize, align: usize, flags: u32) -> Result<Mapping> {
        Self::aligned(-1, 0, len, align, anon_hugetlb_flags(align, flags))
    }

    fn aligned(fd: i32, off: u64, len: usize, align: usize, flags: u32) -> Result<Mapping> {
        if let Ok(addr) = mmap(0, len, PROT_RW, flags, fd, off) {
            if addr & (align - 1) == 0 {
                return Ok(Mapping { addr, len });
            }
            let _ = unmap(addr, len);
        }
        let window = len.checked_add(align).ok_or(Errno::ENOMEM)?;
        let base = mmap(0, window, k::PROT_NONE, k::MAP_PRIVATE | k::MAP_ANONYMOUS | k::MAP_NORESERVE, -1, 0)?;
        let reserve = Mapping { addr: base, len: window };
        let start = (base + align - 1) & !(align - 1);
        let addr = mmap(start, len, PROT_RW, flags | k::MAP_FIXED, fd, off)?;
        core::mem::forget(reserve);
        if start > base {
            let _ = unmap(base, start - base);
        }
        let end = start + len;
        if base + window > end {
            let _ = unmap(end, base + window - end);
        }
        Ok(Mapping { addr, len })
    }

    /// Map `fd` at `off` afresh over this whole mapping, in place (MAP_FIXED): the old
    /// pages and their reservation go, new ones are made for the same addresses.
    pub fn remap(&self, fd: &Fd, off: u64, flags: u32) -> Result<()> {
        self.remap_raw(fd.raw(), off, flags)
    }

    /// As `remap`, with anonymous hugetlb memory of page size `align` (see `anon_hugetlb`).
    pub fn remap_anon_hugetlb(&self, align: usize, flags: u32) -> Result<()> {
        self.remap_raw(-1, 0, anon_hugetlb_flags(align, flags))
    }

    fn remap_raw(&self, fd: i32, off: u64, flags: u32) -> Result<()> {
        let a = mmap(self.addr, self.len, PROT_RW, flags | k::MAP_FIXED, fd, off)?;
        if a != self.addr {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }

    pub fn addr(&self) -> usize {
        self.addr
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The store the racers race on. Volatile: it must reach memory, once, at this point.
    #[inline(always)]
    pub fn store_u32(&self, off: usize, v: u32) {
        if off + 4 <= self.len {
            // SAFETY: in bounds of a live mapping that we own, aligned by the caller's offset
            // being a multiple of 4 or the page start.
            unsafe { core::ptr::write_volatile((self.addr + (off & !3)) as *mut u32, v) }
        }
    }

    pub fn madvise(&self, off: usize, len: usize, advice: u32) -> Result<()> {
        if off.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(Errno::EINVAL);
        }
        // SAFETY: the range lies inside this mapping.
        sc!(k::__NR_madvise, self.addr + off, len, advice).map(drop)
    }

    /// The mapping's bytes. Only for memory this process alone writes (anonymous private).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: live mapping of len bytes; writers need &mut self.
        unsafe { core::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }

    /// As `bytes`, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: live mapping of len bytes, borrowed mutably through &mut self.
        unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) }
    }

    /// Leave the mapping in place for the rest of the process's life.
    pub fn leak(self) {
        core::mem::forget(self)
    }
}

fn anon_hugetlb_flags(size: usize, flags: u32) -> u32 {
    flags | k::MAP_PRIVATE | k::MAP_ANONYMOUS | k::MAP_HUGETLB | (size.trailing_zeros() << k::MAP_HUGE_SHIFT)
}

fn unmap(addr: usize, len: usize) -> Result<()> {
    // SAFETY: the caller owns [addr, addr+len).
    sc!(k::__NR_munmap, addr, len).map(drop)
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let _ = unmap(self.addr, self.len);
    }
}

/// A header T and `n` slots of U in one MAP_SHARED anonymous mapping: it stays shared
/// across fork-style clones, which is what lets racer processes, racer threads and the parent
/// see one control page. Both types are reached only through `&`, so they hold atomics.
pub struct Shared<T: Default + Sync, U: Default + Sync> {
    map: Mapping,
    n: usize,
    _t: PhantomData<(T, U)>,
}

impl<T: Default + Sync, U: Default + Sync> Shared<T, U> {
    fn slots_at() -> usize {
        core::mem::size_of::<T>().next_multiple_of(core::mem::align_of::<U>())
    }

    /// A header and `n` slots; `n` must be at least 1.
    pub fn new(n: usize) -> Result<Self> {
        if n == 0 || core::mem::align_of::<T>() > 4096 || core::mem::align_of::<U>() > 4096 {
            return Err(Errno::EINVAL);
        }
        let len = n.checked_mul(core::mem::size_of::<U>()).and_then(|s| s.checked_add(Self::slots_at())).ok_or(Errno::ENOMEM)?;
        let map = Mapping::anon(len.max(1), true)?;
        // SAFETY: the fresh mapping is page-aligned (enough for T and U, checked above), large
        // enough for T and n U's, and nothing else refers to it yet.
        unsafe {
            core::ptr::write(map.addr as *mut T, T::default());
            for i in 0..n {
                core::ptr::write((map.addr + Self::slots_at() + i * core::mem::size_of::<U>()) as *mut U, U::default());
            }
        }
        Ok(Shared { map, n, _t: PhantomData })
    }

    pub fn head(&self) -> &T {
        // SAFETY: initialised in `new`; only shared references are handed out.
        unsafe { &*(self.map.addr as *const T) }
    }

    /// Slot i; an index past the end gives the last slot, which a caller that may index out
    /// of range keeps as a spare (so that this never fails and never panics).
    pub fn slot(&self, i: usize) -> &U {
        let i = i.min(self.n - 1);
        // SAFETY: slot i < n was initialised in `new` (n >= 1) and lies inside the mapping.
        unsafe { &*((self.map.addr + Self::slots_at() + i * core::mem::size_of::<U>()) as *const U) }
    }
}
