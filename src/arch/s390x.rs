//! s390x Linux ABI.
//!
//! Syscall: number in r1, arguments in r2..r7, `svc 0`; the result comes back in r2, where
//! -4095..-1 is -errno. The kernel preserves every other register and the condition code.
//! mmap: the old-style `mmap(struct { addr, len, prot, flags, fd, offset } *)`, one pointer
//! to a block of six longs, offset in bytes.
//! clone: `syscall(SYS_clone, stack, flags, ptid, ctid, tls)` (stack first); the child
//! resumes after the `svc` with r2 = 0 and r15 = stack. A callee may store into the 160-byte
//! register save area at r15, so the child reserves one, back chain 0, before it calls.
//! Process entry: r15 points at argc, with argv, envp and auxv above it.
//! Signal return: the kernel honours SA_RESTORER (else it uses the vDSO's trampoline).

use core::arch::{asm, naked_asm};
use linux_raw_sys::general as k;

#[inline(always)]
pub unsafe fn syscall0(n: usize) -> usize {
    let r;
    // SAFETY: the caller guarantees the syscall's arguments are valid for it.
    unsafe { asm!("svc 0", in("r1") n, lateout("r2") r, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("svc 0", in("r1") n, inlateout("r2") a => r, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall2(n: usize, a: usize, b: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("svc 0", in("r1") n, inlateout("r2") a => r, in("r3") b, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("r1") n, inlateout("r2") a => r, in("r3") b, in("r4") c,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("r1") n, inlateout("r2") a => r, in("r3") b, in("r4") c, in("r5") d,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("r1") n, inlateout("r2") a => r, in("r3") b, in("r4") c, in("r5") d,
             in("r6") e, options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("r1") n, inlateout("r2") a => r, in("r3") b, in("r4") c, in("r5") d,
             in("r6") e, in("r7") f, options(nostack, preserves_flags))
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
    // parent frame and ends in SYS_exit. entry and arg ride in r8/r9, which the kernel
    // preserves in both parent and child.
    unsafe {
        asm!(
            "svc 0",
            "ltgr %r2, %r2",
            "jnz 2f",
            // Child: fresh stack; reserve a register save area whose back chain is 0.
            "nill %r15, 0xfff8",
            "aghi %r15, -160",
            "xc 0(8,%r15), 0(%r15)",
            "lgr %r2, %r9",
            "basr %r14, %r8",
            "lghi %r1, {exit}",
            "svc 0",
            ".short 0",
            "2:",
            exit = const k::__NR_exit,
            in("r1") k::__NR_clone as usize,
            inlateout("r2") stack => r, in("r3") flags, in("r4") ptid, in("r5") ctid, in("r6") tls,
            in("r8") entry, in("r9") arg,
            options(nostack)
        )
    };
    r
}

/// sa_restorer: returning from a handler lands here, with the signal frame at r15.
#[unsafe(naked)]
pub unsafe extern "C" fn restore_rt() {
    naked_asm!("svc {n}", ".short 0", n = const k::__NR_rt_sigreturn)
}

/// The TOD clock (`stckf`), which ticks 4096 times a microsecond, not CPU cycles.
#[inline(always)]
pub fn cycles() -> u64 {
    let mut t: u64 = 0;
    // SAFETY: stckf stores 8 bytes at the given address, which is our local; it sets the
    // condition code, so flags are not preserved.
    unsafe { asm!("stckf 0({p})", p = in(reg_addr) &mut t as *mut u64, options(nostack)) };
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
            "lgr %r2, %r15",
            "nill %r15, 0xfff8",
            "aghi %r15, -160",
            "xc 0(8,%r15), 0(%r15)",
            "brasl %r14, {start}",
            ".short 0",
            start = sym $start,
        );
    };
}

/// mmap takes one pointer to its six arguments here, with a byte offset.
#[inline(always)]
pub unsafe fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: usize, off: u64) -> usize {
    let block: [usize; 6] = [addr, len, prot, flags, fd, off as usize];
    // SAFETY: forwarded from the caller; the block outlives the call. The asm reads memory
    // through the pointer, which syscall1 (no `nomem`) allows.
    unsafe { syscall1(k::__NR_mmap as usize, block.as_ptr() as usize) }
}

/// We give the kernel our own restorer rather than rely on the vDSO being mapped.
pub const SA_RESTORER: u32 = k::SA_RESTORER;
