//! riscv64 Linux ABI.
//!
//! Syscall: number in a7, arguments in a0..a5, `ecall`; the result comes back in a0, where
//! -4095..-1 is -errno. The kernel preserves every other register (riscv has no flags).
//! clone: `syscall(SYS_clone, flags, stack, ptid, tls, ctid)`; the child resumes after the
//! `ecall` with a0 = 0 and sp = stack.
//! Process entry: sp points at argc, with argv, envp and auxv above it; sp is 16-byte aligned.
//! Signal return: there is no SA_RESTORER; the kernel returns through the vDSO's trampoline
//! (qemu-user through its own), so `restore_rt` exists only to keep the interface whole.
//! gp is left alone: the linker relaxes nothing against __global_pointer$ unless asked to.

use core::arch::{asm, naked_asm};
use linux_raw_sys::general as k;

#[inline(always)]
pub unsafe fn syscall0(n: usize) -> usize {
    let r;
    // SAFETY: the caller guarantees the syscall's arguments are valid for it.
    unsafe { asm!("ecall", in("a7") n, lateout("a0") r, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("ecall", in("a7") n, inlateout("a0") a => r, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall2(n: usize, a: usize, b: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("ecall", in("a7") n, inlateout("a0") a => r, in("a1") b, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("ecall", in("a7") n, inlateout("a0") a => r, in("a1") b, in("a2") c,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("ecall", in("a7") n, inlateout("a0") a => r, in("a1") b, in("a2") c, in("a3") d,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("ecall", in("a7") n, inlateout("a0") a => r, in("a1") b, in("a2") c, in("a3") d,
             in("a4") e, options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("ecall", in("a7") n, inlateout("a0") a => r, in("a1") b, in("a2") c, in("a3") d,
             in("a4") e, in("a5") f, options(nostack, preserves_flags))
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
            "ecall",
            "bnez a0, 2f",
            // Child: fresh stack, no frame to return to.
            "mv s0, zero",
            "mv ra, zero",
            "andi sp, sp, -16",
            "mv a0, t1",
            "jalr t0",
            "li a7, {exit}",
            "ecall",
            "unimp",
            "2:",
            exit = const k::__NR_exit,
            in("a7") k::__NR_clone as usize,
            inlateout("a0") flags => r, in("a1") stack, in("a2") ptid, in("a3") tls, in("a4") ctid,
            in("t0") entry, in("t1") arg,
            options(nostack)
        )
    };
    r
}

/// The trampoline the kernel would use; never installed, since riscv has no SA_RESTORER.
#[unsafe(naked)]
pub unsafe extern "C" fn restore_rt() {
    naked_asm!("li a7, {n}", "ecall", "unimp", n = const k::__NR_rt_sigreturn)
}

/// The `time` CSR: a constant-rate counter that Linux lets user space read (unlike `cycle`,
/// which it has closed since 6.6). `fence` keeps the read from drifting ahead of earlier
/// loads and stores.
#[inline(always)]
pub fn cycles() -> u64 {
    let t: u64;
    // SAFETY: rdtime only reads the counter.
    unsafe { asm!("fence", "rdtime {t}", t = out(reg) t, options(nostack, nomem, preserves_flags)) };
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
            "mv s0, zero",
            "mv ra, zero",
            "mv a0, sp",
            "andi sp, sp, -16",
            "call {start}",
            "unimp",
            start = sym $start,
        );
    };
}

/// riscv's sigaction has no restorer.
pub const SA_RESTORER: u32 = 0;
