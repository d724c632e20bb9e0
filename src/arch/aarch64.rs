//! aarch64 Linux ABI.
//!
//! Syscall: number in x8, arguments in x0..x5, `svc #0`; the result comes back in x0, where
//! -4095..-1 is -errno. The kernel preserves every other register and NZCV.
//! clone: `syscall(SYS_clone, flags, stack, ptid, tls, ctid)`; the child resumes after the
//! `svc` with x0 = 0 and sp = stack.
//! Process entry: sp points at argc, with argv, envp and auxv above it; sp is 16-byte aligned.
//! Signal return: the kernel honours SA_RESTORER (else it uses the vDSO's trampoline).

use core::arch::{asm, naked_asm};
use linux_raw_sys::general as k;

#[inline(always)]
pub unsafe fn syscall0(n: usize) -> usize {
    let r;
    // SAFETY: the caller guarantees the syscall's arguments are valid for it.
    unsafe { asm!("svc #0", in("x8") n, lateout("x0") r, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("svc #0", in("x8") n, inlateout("x0") a => r, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall2(n: usize, a: usize, b: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, in("x2") c,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, in("x2") c, in("x3") d,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, in("x2") c, in("x3") d,
             in("x4") e, options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc #0", in("x8") n, inlateout("x0") a => r, in("x1") b, in("x2") c, in("x3") d,
             in("x4") e, in("x5") f, options(nostack, preserves_flags))
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
    // parent frame and ends in SYS_exit.
    unsafe {
        asm!(
            "svc #0",
            "cbnz x0, 2f",
            // Child: fresh stack, no frame to return to.
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x9, sp",
            "and sp, x9, #-16",
            "mov x0, x10",
            "blr x11",
            "mov x8, #{exit}",
            "svc #0",
            "udf #0",
            "2:",
            exit = const k::__NR_exit,
            in("x8") k::__NR_clone as usize,
            inlateout("x0") flags => r, in("x1") stack, in("x2") ptid, in("x3") tls, in("x4") ctid,
            in("x10") arg, in("x11") entry,
            options(nostack)
        )
    };
    r
}

/// sa_restorer: returning from a handler lands here, with the signal frame at sp.
#[unsafe(naked)]
pub unsafe extern "C" fn restore_rt() {
    naked_asm!("mov x8, #{n}", "svc #0", "udf #0", n = const k::__NR_rt_sigreturn)
}

/// The virtual counter (cntvct_el0), which runs at a fixed rate (cntfrq_el0), not CPU
/// cycles. `isb` keeps the read from being taken ahead of earlier instructions.
#[inline(always)]
pub fn cycles() -> u64 {
    let t: u64;
    // SAFETY: EL0 may read the virtual counter on Linux.
    unsafe { asm!("isb", "mrs {t}, cntvct_el0", t = out(reg) t, options(nostack, nomem, preserves_flags)) };
    t
}

/// The process entry point. The binary names its Rust start function, which takes the
/// initial stack pointer and never returns.
#[macro_export]
macro_rules! entry {
    ($start:path) => {
        core::arch::global_asm!(
            ".globl _start",
            ".type _start,@function",
            "_start:",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, sp",
            "and sp, x0, #-16",
            "bl {start}",
            "udf #0",
            start = sym $start,
        );
    };
}

/// We give the kernel our own restorer rather than rely on the vDSO being mapped.
pub const SA_RESTORER: u32 = k::SA_RESTORER;
