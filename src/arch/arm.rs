//! armv7 (32-bit ARM, EABI, ARM state) Linux ABI.
//!
//! Syscall: number in r7, arguments in r0..r5, `svc #0`; the result comes back in r0, where
//! -4095..-1 is -errno. The kernel preserves every other register and the flags.
//! clone: `syscall(SYS_clone, flags, stack, ptid, tls, ctid)`; the child resumes after the
//! `svc` with r0 = 0 and sp = stack.
//! 64-bit arguments go in an even/odd register pair, low half first (ftruncate64 skips r1 to
//! reach r2:r3); the time syscalls are the time64 ones, which take `__kernel_timespec`
//! (Linux 5.1 and later). mmap is mmap2, whose offset counts 4096-byte units.
//! Process entry: sp points at argc, with argv, envp and auxv above it.
//! Signal return: the kernel honours SA_RESTORER.

use core::arch::{asm, naked_asm};
use linux_raw_sys::general as k;

#[inline(always)]
pub unsafe fn syscall0(n: usize) -> usize {
    let r;
    // SAFETY: the caller guarantees the syscall's arguments are valid for it.
    unsafe { asm!("svc #0", in("r7") n, lateout("r0") r, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("svc #0", in("r7") n, inlateout("r0") a => r, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall2(n: usize, a: usize, b: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("svc #0", in("r7") n, inlateout("r0") a => r, in("r1") b, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc #0", in("r7") n, inlateout("r0") a => r, in("r1") b, in("r2") c,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc #0", in("r7") n, inlateout("r0") a => r, in("r1") b, in("r2") c, in("r3") d,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc #0", in("r7") n, inlateout("r0") a => r, in("r1") b, in("r2") c, in("r3") d,
             in("r4") e, options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc #0", in("r7") n, inlateout("r0") a => r, in("r1") b, in("r2") c, in("r3") d,
             in("r4") e, in("r5") f, options(nostack, preserves_flags))
    };
    r
}

/// Raw clone whose child runs `entry(arg)` on `stack` and then exits with its return value.
/// The child never returns into a Rust frame of the parent's: it starts on a fresh stack.
#[inline(always)]
pub unsafe fn clone(
    flags: usize,
    stack: usize,
    ptid: usize,
    ctid: usize,
    tls: usize,
    entry: extern "C" fn(usize) -> usize,
    arg: usize,
) -> usize {
    let r;
    // SAFETY: the caller gives a stack the child may own; the child path below touches no
    // parent frame and ends in SYS_exit. entry and arg ride in r5/r8, which the kernel
    // preserves in both parent and child.
    unsafe {
        asm!(
            "svc #0",
            "cmp r0, #0",
            "bne 2f",
            // Child: fresh stack, no frame to return to.
            "mov r11, #0",
            "mov lr, #0",
            "bic sp, sp, #15",
            "mov r0, r8",
            "blx r5",
            "mov r7, #{exit}",
            "svc #0",
            "udf #0",
            "2:",
            exit = const k::__NR_exit,
            in("r7") k::__NR_clone as usize,
            inlateout("r0") flags => r, in("r1") stack, in("r2") ptid, in("r3") tls, in("r4") ctid,
            in("r5") entry, in("r8") arg,
            options(nostack)
        )
    };
    r
}

/// sa_restorer: returning from a handler lands here, with the signal frame at sp.
#[unsafe(naked)]
pub unsafe extern "C" fn restore_rt() {
    naked_asm!("mov r7, #{n}", "svc #0", "udf #0", n = const k::__NR_rt_sigreturn)
}

/// The monotonic clock in ns, through clock_gettime64. ARMv7 has no counter that user
/// space may always read: CNTVCT exists only with the generic timer (not on Cortex-A8/A9)
/// and qemu-user traps it, and PMCCNTR is closed to EL0 by Linux. A syscall costs more than
/// a counter read, so the racers' skew is coarser here, but it is still in real time.
#[inline(always)]
pub fn cycles() -> u64 {
    let mut ts = k::__kernel_timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is writable for the kernel.
    let _ = unsafe { syscall2(k::__NR_clock_gettime64 as usize, k::CLOCK_MONOTONIC as usize, &mut ts as *mut _ as usize) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The process entry point. The binary names its Rust start function, which takes the
/// initial stack pointer and never returns.
#[macro_export]
macro_rules! entry {
    ($start:path) => {
        core::arch::global_asm!(
            ".globl _start",
            ".type _start,%function",
            "_start:",
            "mov r11, #0",
            "mov lr, #0",
            "mov r0, sp",
            "bic sp, sp, #15",
            "bl {start}",
            "udf #0",
            start = sym $start,
        );
    };
}

/// ftruncate64(fd, pad, lo, hi): the 64-bit length starts at an even register.
#[inline(always)]
pub unsafe fn ftruncate(fd: usize, len: u64) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { syscall4(k::__NR_ftruncate64 as usize, fd, 0, len as usize, (len >> 32) as usize) }
}

/// The kernel honours a restorer here.
pub const SA_RESTORER: u32 = k::SA_RESTORER;
