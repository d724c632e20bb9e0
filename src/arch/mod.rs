//! The architecture layer: the syscall instruction, `_start`, the clone child path, the
//! signal restorer and the cycle counter. One file per architecture, each exporting the
//! same names; no policy lives here.
//!
//! Safety contract shared by every `syscallN` (hence no `# Safety` section on each): the
//! caller passes arguments that are valid for syscall `n` as the kernel reads them —
//! pointers to live memory of the right size and mutability, for as long as the call lasts.
#![allow(clippy::missing_safety_doc)]

#[cfg_attr(target_arch = "x86_64", path = "x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "aarch64.rs")]
#[cfg_attr(target_arch = "powerpc64", path = "powerpc64.rs")]
#[cfg_attr(target_arch = "riscv64", path = "riscv64.rs")]
#[cfg_attr(target_arch = "s390x", path = "s390x.rs")]
#[cfg_attr(target_arch = "x86", path = "x86.rs")]
#[cfg_attr(target_arch = "arm", path = "arm.rs")]
mod imp;

pub use imp::*;

/// Syscalls whose arguments change shape on 32-bit arches: 64-bit lengths split over two
/// registers, and the time64 variants that take `__kernel_timespec`. Every 64-bit arch
/// shares these; the 32-bit arches share theirs in `bits32`.
#[cfg(target_pointer_width = "64")]
mod wide {
    use linux_raw_sys::general as k;

    pub const NR_FUTEX: u32 = k::__NR_futex;
    pub const NR_CLOCK_GETTIME: u32 = k::__NR_clock_gettime;
    pub const NR_CLOCK_NANOSLEEP: u32 = k::__NR_clock_nanosleep;

    /// ftruncate(fd, len).
    #[inline(always)]
    pub unsafe fn ftruncate(fd: usize, len: u64) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { super::syscall2(k::__NR_ftruncate as usize, fd, len as usize) }
    }

    /// fallocate(fd, mode, off, len).
    #[inline(always)]
    pub unsafe fn fallocate(fd: usize, mode: usize, off: u64, len: u64) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { super::syscall4(k::__NR_fallocate as usize, fd, mode, off as usize, len as usize) }
    }
}
#[cfg(target_pointer_width = "64")]
pub use wide::*;

/// The 32-bit arches' shared wrappers (x86, arm); their files keep only what differs.
#[cfg(target_pointer_width = "32")]
mod bits32;
#[cfg(target_pointer_width = "32")]
pub use bits32::*;

/// mmap(addr, len, prot, flags, fd, off): six registers and a byte offset, on every 64-bit
/// arch but s390x (one pointer to the six, in its file); the 32-bit files use mmap2.
#[cfg(all(target_pointer_width = "64", not(target_arch = "s390x")))]
#[inline(always)]
pub unsafe fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: usize, off: u64) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { syscall6(linux_raw_sys::general::__NR_mmap as usize, addr, len, prot, flags, fd, off as usize) }
}

/// Point a signal action's return path at the arch file's `restore_rt`, where the kernel
/// takes one (SA_RESTORER); powerpc64 ignores a restorer and riscv64's sigaction has no
/// field for it, so there the kernel picks the return path and the action stays as it is.
pub fn set_restorer(sa: &mut linux_raw_sys::general::kernel_sigaction) {
    #[cfg(not(any(target_arch = "powerpc64", target_arch = "riscv64")))]
    {
        sa.sa_flags |= SA_RESTORER as core::ffi::c_ulong;
        // SAFETY: restore_rt has the shape the kernel jumps to on handler return.
        sa.sa_restorer = unsafe { core::mem::transmute::<usize, linux_raw_sys::general::__sigrestore_t>(restore_rt as *const () as usize) };
    }
    #[cfg(any(target_arch = "powerpc64", target_arch = "riscv64"))]
    let _ = sa;
}

/// The address to give the kernel for a signal handler: the handler itself, but on x86 the
/// arch file's `signal_entry`, which realigns the stack and calls the handler stored here
/// (one handler at a time goes through it).
#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
pub fn signal_entry_for(handler: usize) -> usize {
    handler
}
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
static SIGNAL_TARGET: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub fn signal_entry_for(handler: usize) -> usize {
    SIGNAL_TARGET.store(handler, core::sync::atomic::Ordering::Release);
    imp::signal_entry as *const () as usize
}

/// fork through the old clone, for kernels before 5.3 that lack clone3: only the flags
/// matter, and s390x takes the stack before them.
///
/// # Safety
/// As `syscallN`: the child resumes here on a copy-on-write copy of the caller's stack.
#[inline(always)]
pub unsafe fn clone_fork(flags: usize) -> usize {
    let n = linux_raw_sys::general::__NR_clone as usize;
    #[cfg(target_arch = "s390x")]
    // SAFETY: forwarded; s390x's clone is (stack, flags, ...).
    return unsafe { syscall5(n, 0, flags, 0, 0, 0) };
    #[cfg(not(target_arch = "s390x"))]
    // SAFETY: forwarded; clone is (flags, stack, ...) everywhere else.
    return unsafe { syscall5(n, flags, 0, 0, 0, 0) };
}

/// The kernel reports failure as a return value in -4095..-1 on every architecture we
/// support (ppc64 and s390x included, after their arch file has normalised it).
#[inline(always)]
pub fn is_error(r: usize) -> bool {
    r > (-4096isize) as usize
}
