//! powerpc64 Linux ABI, both big-endian ELFv1 and little-endian ELFv2.
//!
//! Syscall: number in r0, arguments in r3..r8, `sc`; the result comes back in r3. On failure
//! the kernel sets the summary-overflow bit cr0.SO and leaves a positive errno in r3: we
//! test it (`bns`) and negate, so callers see -errno as on every other arch. The kernel may
//! clobber r0, r4..r12, ctr, xer and cr0/cr1/cr5..cr7; r14..r31, lr and cr2..cr4 survive.
//! clone: `syscall(SYS_clone, flags, stack, ptid, tls, ctid)`; the child resumes after the
//! `sc` with r3 = 0 and r1 = stack. The child needs a frame (back chain 0) before it calls.
//! Process entry: r1 points at argc, with argv, envp and auxv above it. ELFv2: r2 (the TOC)
//! is ours to set, so `_start` loads `.TOC.` absolutely (the link is static). ELFv1: the
//! entry is a function descriptor in `.opd` (code address, TOC, environment) and the kernel
//! loads r2 from it; function pointers are descriptors too, so the clone child loads the
//! code address and TOC from `entry` before it branches.
//! Signal return: the kernel ignores SA_RESTORER here and returns through the vDSO (or a
//! trampoline it writes on the signal stack), so SA_RESTORER is 0.

use core::arch::{asm, naked_asm};
use linux_raw_sys::general as k;

macro_rules! sc_asm {
    ($n:expr, $r:expr; $($in:tt)*) => {{
        let r;
        // SAFETY: the caller guarantees the syscall's arguments are valid for it.
        unsafe {
            asm!(
                "sc",
                "bns+ 1f",
                "neg 3, 3",
                "1:",
                inlateout("r0") $n => _,
                inlateout("r3") $r => r,
                $($in)*
                lateout("r9") _, lateout("r10") _, lateout("r11") _, lateout("r12") _,
                out("ctr") _, out("xer") _,
                out("cr0") _, out("cr1") _, out("cr5") _, out("cr6") _, out("cr7") _,
                options(nostack)
            )
        };
        r
    }};
}

#[inline(always)]
pub unsafe fn syscall0(n: usize) -> usize {
    sc_asm!(n, 0usize; lateout("r4") _, lateout("r5") _, lateout("r6") _, lateout("r7") _, lateout("r8") _,)
}

#[inline(always)]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    sc_asm!(n, a; lateout("r4") _, lateout("r5") _, lateout("r6") _, lateout("r7") _, lateout("r8") _,)
}

#[inline(always)]
pub unsafe fn syscall2(n: usize, a: usize, b: usize) -> usize {
    sc_asm!(n, a; inlateout("r4") b => _, lateout("r5") _, lateout("r6") _, lateout("r7") _, lateout("r8") _,)
}

#[inline(always)]
pub unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> usize {
    sc_asm!(n, a; inlateout("r4") b => _, inlateout("r5") c => _, lateout("r6") _, lateout("r7") _,
        lateout("r8") _,)
}

#[inline(always)]
pub unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> usize {
    sc_asm!(n, a; inlateout("r4") b => _, inlateout("r5") c => _, inlateout("r6") d => _, lateout("r7") _,
        lateout("r8") _,)
}

#[inline(always)]
pub unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> usize {
    sc_asm!(n, a; inlateout("r4") b => _, inlateout("r5") c => _, inlateout("r6") d => _,
        inlateout("r7") e => _, lateout("r8") _,)
}

#[inline(always)]
pub unsafe fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> usize {
    sc_asm!(n, a; inlateout("r4") b => _, inlateout("r5") c => _, inlateout("r6") d => _,
        inlateout("r7") e => _, inlateout("r8") f => _,)
}

/// How the clone child reaches `entry` (in r14): ELFv1 loads the code address and TOC from
/// the descriptor; ELFv2 branches to the global entry point with its address in r12.
#[cfg(target_abi = "elfv1")]
macro_rules! call_r14 {
    () => {
        "ld 0, 0(14)\n ld 2, 8(14)\n mtctr 0\n bctrl"
    };
}
#[cfg(not(target_abi = "elfv1"))]
macro_rules! call_r14 {
    () => {
        "mr 12, 14\n mtctr 12\n bctrl"
    };
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
    // parent frame and ends in SYS_exit. entry and arg ride in r14/r15, which the kernel
    // preserves in both parent and child.
    unsafe {
        asm!(
            "sc",
            "bso- 1f",
            "cmpdi 3, 0",
            "bne 2f",
            // Child: fresh stack; make a 128-byte frame (enough for ELFv1's 112) whose back
            // chain is 0, then call entry(arg).
            "clrrdi 1, 1, 4",
            "li 0, 0",
            "stdu 0, -128(1)",
            "mr 3, 15",
            call_r14!(),
            "li 0, {exit}",
            "sc",
            "trap",
            "1:",
            "neg 3, 3",
            "2:",
            exit = const k::__NR_exit,
            inlateout("r0") k::__NR_clone as usize => _,
            inlateout("r3") flags => r,
            inlateout("r4") stack => _, inlateout("r5") ptid => _, inlateout("r6") tls => _,
            inlateout("r7") ctid => _,
            lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _, lateout("r12") _,
            in("r14") entry, in("r15") arg,
            out("ctr") _, out("xer") _,
            out("cr0") _, out("cr1") _, out("cr5") _, out("cr6") _, out("cr7") _,
            options(nostack)
        )
    };
    r
}

/// The rt_sigreturn trampoline; never installed, since the kernel ignores SA_RESTORER here.
#[unsafe(naked)]
pub unsafe extern "C" fn restore_rt() {
    naked_asm!("li 0, {n}", "sc", "trap", n = const k::__NR_rt_sigreturn)
}

/// The time base (`mftb`): a constant-rate counter (512 MHz on POWER9), not CPU cycles.
#[inline(always)]
pub fn cycles() -> u64 {
    let t: u64;
    // SAFETY: user space may read the time base.
    unsafe { asm!("mftb {t}", t = out(reg) t, options(nostack, nomem, preserves_flags)) };
    t
}

/// The head of `_start`, up to the point where r1 still holds the initial stack pointer.
/// ELFv1: `_start` is a descriptor in `.opd`, and the kernel loads r2 from it.
#[cfg(target_abi = "elfv1")]
#[doc(hidden)]
#[macro_export]
macro_rules! __entry_head {
    () => {
        ".section .opd,\"aw\"\n .p2align 3\n .globl _start\n .type _start,@function\n _start:\n \
         .quad .L_start_code, .TOC.@tocbase, 0\n .size _start, 24\n .text\n .L_start_code:"
    };
}
/// ELFv2: set r2 to the TOC ourselves.
#[cfg(not(target_abi = "elfv1"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __entry_head {
    () => {
        ".globl _start\n .type _start,@function\n _start:\n \
         lis 2, .TOC.@highest\n ori 2, 2, .TOC.@higher\n rldicr 2, 2, 32, 31\n oris 2, 2, .TOC.@h\n ori 2, 2, .TOC.@l"
    };
}

/// The process entry point. The binary names its Rust start function, which takes the
/// initial stack pointer and never returns.
#[macro_export]
macro_rules! entry {
    ($start:path) => {
        core::arch::global_asm!(
            $crate::__entry_head!(),
            // r3 = the initial stack pointer; a 16-byte aligned frame with back chain 0.
            "mr 3, 1", "clrrdi 1, 1, 4", "li 0, 0", "stdu 0, -128(1)",
            "bl {start}", "nop", "trap",
            start = sym $start,
        );
    };
}

/// The kernel ignores a restorer on powerpc.
pub const SA_RESTORER: u32 = 0;
