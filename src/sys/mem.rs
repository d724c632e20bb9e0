//! Memory mappings: owned, unmapped on drop, and reached only through safe accessors.

use super::{k, sc, Fd, Result};
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
    unsafe { super::check(crate::arch::mmap(addr, len, prot as usize, flags as usize, fd as usize, off)) }
}

impl Mapping {
    /// Anonymous memory, private to this process or shared with its fork-style children.
    pub fn anon(len: usize, shared: bool) -> Result<Mapping> {
        let share = if shared { k::MAP_SHARED } else { k::MAP_PRIVATE };
        let addr = mmap(0, len, PROT_RW, share | k::MAP_ANONYMOUS, -1, 0)?;
        Ok(Mapping { addr, len })
    }

    /// Map `len` bytes of `fd` at `off`, at an address aligned to `align`. qemu-user places
    /// mappings at guest-page alignment, which a hugetlb file refuses, so we reserve a
    /// PROT_NONE window, map the file MAP_FIXED at an aligned address inside it and give back
    /// the slack. Natively this costs two extra cheap syscalls.
    pub fn map_aligned(fd: &Fd, off: u64, len: usize, align: usize, flags: u32) -> Result<Mapping> {
        let window = len.checked_add(align).ok_or(super::Errno::ENOMEM)?;
        let base = mmap(0, window, k::PROT_NONE, k::MAP_PRIVATE | k::MAP_ANONYMOUS | k::MAP_NORESERVE, -1, 0)?;
        let reserve = Mapping { addr: base, len: window };
        let start = (base + align - 1) & !(align - 1);
        let addr = mmap(start, len, PROT_RW, flags | k::MAP_FIXED, fd.raw(), off)?;
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
            return Err(super::Errno::EINVAL);
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

fn unmap(addr: usize, len: usize) -> Result<()> {
    // SAFETY: the caller owns [addr, addr+len).
    sc!(k::__NR_munmap, addr, len).map(drop)
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let _ = unmap(self.addr, self.len);
    }
}

/// Types that are valid when all-zero and are only ever touched through atomics, so they
/// may live in memory shared between processes and threads.
///
/// # Safety
/// The implementor must be valid when zeroed and `Sync` through interior atomics only.
pub unsafe trait SharedZeroed: Sync {}

/// A value of type T in a MAP_SHARED anonymous mapping: it stays shared across fork-style
/// clones, which is what lets racer processes and the parent see one control page.
pub struct Shared<T: SharedZeroed> {
    map: Mapping,
    _t: PhantomData<T>,
}

impl<T: SharedZeroed> Shared<T> {
    pub fn new() -> Result<Self> {
        Self::with_tail(0)
    }
    /// Room for T plus `tail` more bytes behind it (for a trailing array of slots).
    pub fn with_tail(tail: usize) -> Result<Self> {
        let map = Mapping::anon(core::mem::size_of::<T>() + tail, true)?;
        Ok(Shared { map, _t: PhantomData })
    }
    pub fn get(&self) -> &T {
        // SAFETY: the mapping is page-aligned, zero-filled, large enough, and T is valid
        // zeroed and only mutated through atomics.
        unsafe { &*(self.map.addr as *const T) }
    }
    /// The i-th element of a trailing array of U placed right after T.
    pub fn tail<U: SharedZeroed>(&self, i: usize) -> Option<&U> {
        let off = core::mem::size_of::<T>().next_multiple_of(core::mem::align_of::<U>());
        let at = off + i.checked_mul(core::mem::size_of::<U>())?;
        if at + core::mem::size_of::<U>() > self.map.len {
            return None;
        }
        // SAFETY: in bounds, aligned (page base + multiple of U's alignment), zeroed U is valid.
        Some(unsafe { &*((self.map.addr + at) as *const U) })
    }
}
