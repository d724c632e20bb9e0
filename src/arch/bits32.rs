//! What the 32-bit arches (x86, arm) call alike: mmap2, fallocate with its 64-bit
//! arguments split into halves, and the time64 syscall numbers. (ftruncate64 differs: arm
//! aligns its 64-bit length to an even register pair, so it stays in each arch file.)

use super::imp::syscall6;
use linux_raw_sys::general as k;

/// mmap2: the offset counts 4096-byte units, whatever the page size.
#[inline(always)]
pub unsafe fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: usize, off: u64) -> usize {
    if off % 4096 != 0 || off / 4096 > usize::MAX as u64 {
        return (linux_raw_sys::errno::EINVAL as usize).wrapping_neg();
    }
    // SAFETY: forwarded from the caller.
    unsafe { syscall6(k::__NR_mmap2 as usize, addr, len, prot, flags, fd, (off / 4096) as usize) }
}

/// fallocate(fd, mode, off_lo, off_hi, len_lo, len_hi), low half first; on arm both pairs
/// already start at an even register, so no padding goes in.
#[inline(always)]
pub unsafe fn fallocate(fd: usize, mode: usize, off: u64, len: u64) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe {
        syscall6(k::__NR_fallocate as usize, fd, mode, off as usize, (off >> 32) as usize, len as usize,
                 (len >> 32) as usize)
    }
}

/// The time64 syscalls, which take `__kernel_timespec`.
pub const NR_FUTEX: u32 = k::__NR_futex_time64;
pub const NR_CLOCK_GETTIME: u32 = k::__NR_clock_gettime64;
pub const NR_CLOCK_NANOSLEEP: u32 = k::__NR_clock_nanosleep_time64;
