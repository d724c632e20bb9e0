//! x86_64 Linux ABI.
//!
//! Syscall: number in rax, arguments in rdi, rsi, rdx, r10, r8, r9; `syscall` clobbers rcx and
//! r11 and returns in rax, where -4095..-1 is -errno.
//! clone: `syscall(SYS_clone, flags, stack, ptid, ctid, tls)`; the child resumes after the
//! `syscall` instruction with rax = 0 on the new stack.
//! Process entry: rsp points at argc, with argv, envp and auxv above it; rsp is 16-byte aligned.
//! Signal return: the kernel demands SA_RESTORER, and the restorer issues rt_sigreturn.

use core::arch::{asm, naked_asm};

#[inline(always)]
pub unsafe fn syscall0(n: usize) -> usize {
    let r;
    // SAFETY: the caller guarantees the syscall's arguments are valid for it.
    unsafe {
        asm!("syscall", inlateout("rax") n => r, lateout("rcx") _, lateout("r11") _,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => r, in("rdi") a, lateout("rcx") _, lateout("r11") _,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall2(n: usize, a: usize, b: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b,
             lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c,
             lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, in("r8") e, lateout("rcx") _, lateout("r11") _,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") n => r, in("rdi") a, in("rsi") b, in("rdx") c,
             in("r10") d, in("r8") e, in("r9") f, lateout("rcx") _, lateout("r11") _,
             options(nostack, preserves_flags))
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
            "syscall",
            "test rax, rax",
            "jnz 2f",
            // Child: fresh stack, no frame to return to.
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r9",
            "call r12",
            "mov rdi, rax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const linux_raw_sys::general::__NR_exit,
            inlateout("rax") linux_raw_sys::general::__NR_clone as usize => r,
            in("rdi") flags, in("rsi") stack, in("rdx") ptid, in("r10") ctid, in("r8") tls,
            in("r9") arg, in("r12") entry,
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        )
    };
    r
}

/// sa_restorer: returning from a handler lands here, with the signal frame at rsp.
#[unsafe(naked)]
pub unsafe extern "C" fn restore_rt() {
    naked_asm!("mov eax, {n}", "syscall", "ud2", n = const linux_raw_sys::general::__NR_rt_sigreturn)
}

/// Signal handler entry: realign the stack to the ABI's 16 bytes, then call the handler.
/// qemu-user (Debian's 7.2) can start a handler with rsp off by 8, and the handler's SSE
/// spills (movaps) then fault; the kernel itself aligns. Arguments stay in rdi, rsi, rdx.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn signal_entry() {
    naked_asm!(
        "push rbp", "mov rbp, rsp", "and rsp, -16",
        "call qword ptr [rip + {t}]",
        "mov rsp, rbp", "pop rbp", "ret",
        t = sym super::SIGNAL_TARGET,
    )
}

/// Time-stamp counter. `lfence` keeps the read from drifting ahead of earlier loads, so a
/// reading taken just before the contested write is not taken early.
#[inline(always)]
pub fn cycles() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: rdtsc only reads the counter.
    unsafe { asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nostack, nomem, preserves_flags)) };
    ((hi as u64) << 32) | lo as u64
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
            "xor ebp, ebp",
            "mov rdi, rsp",
            "and rsp, -16",
            "call {start}",
            "ud2",
            start = sym $start,
        );
    };
}

/// The kernel requires a restorer here.
pub const SA_RESTORER: u32 = linux_raw_sys::general::SA_RESTORER;
