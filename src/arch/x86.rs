//! i686 (32-bit x86) Linux ABI.
//!
//! Syscall: number in eax, arguments in ebx, ecx, edx, esi, edi, ebp, `int 0x80`; the result
//! comes back in eax, where -4095..-1 is -errno. The kernel preserves every other register
//! and eflags. LLVM keeps esi (base pointer) and ebp (frame pointer) for itself, so they are
//! swapped in and out around the trap: esi through `xchg` with a scratch register, and for
//! six arguments esi and ebp are loaded from a block whose address rides in eax.
//! clone: `syscall(SYS_clone, flags, stack, ptid, tls, ctid)`; the child resumes after the
//! trap with eax = 0 and esp = stack. No register is left for entry and arg, so they wait on
//! the child's stack: [esp] = arg, [esp+4] = entry, [esp+8] = tls.
//! 64-bit arguments (ftruncate64, fallocate) go as two registers, low half first; the time
//! syscalls are the time64 ones, which take `__kernel_timespec` (Linux 5.1 and later).
//! mmap is mmap2, whose offset counts 4096-byte units.
//! Process entry: esp points at argc, with argv, envp and auxv above it.
//! Signal return: the kernel honours SA_RESTORER.

use core::arch::{asm, naked_asm};
use linux_raw_sys::general as k;

#[inline(always)]
pub unsafe fn syscall0(n: usize) -> usize {
    let r;
    // SAFETY: the caller guarantees the syscall's arguments are valid for it.
    unsafe { asm!("int 0x80", inlateout("eax") n => r, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall1(n: usize, a: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("int 0x80", inlateout("eax") n => r, in("ebx") a, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall2(n: usize, a: usize, b: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe { asm!("int 0x80", inlateout("eax") n => r, in("ebx") a, in("ecx") b, options(nostack, preserves_flags)) };
    r
}

#[inline(always)]
pub unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> usize {
    let r;
    // SAFETY: as syscall0.
    unsafe {
        asm!("int 0x80", inlateout("eax") n => r, in("ebx") a, in("ecx") b, in("edx") c,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> usize {
    let r;
    // SAFETY: as syscall0; esi is swapped back before the block ends.
    unsafe {
        asm!("xchg esi, {d}", "int 0x80", "xchg esi, {d}", d = in(reg) d,
             inlateout("eax") n => r, in("ebx") a, in("ecx") b, in("edx") c,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall5(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> usize {
    let r;
    // SAFETY: as syscall4.
    unsafe {
        asm!("xchg esi, {d}", "int 0x80", "xchg esi, {d}", d = in(reg) d,
             inlateout("eax") n => r, in("ebx") a, in("ecx") b, in("edx") c, in("edi") e,
             options(nostack, preserves_flags))
    };
    r
}

#[inline(always)]
pub unsafe fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> usize {
    let block = [d, f, n];
    let r;
    // SAFETY: as syscall0; esi and ebp are saved on the stack and restored, and the block
    // outlives the asm.
    unsafe {
        asm!(
            "push ebp", "push esi",
            "mov esi, [eax]", "mov ebp, [eax + 4]", "mov eax, [eax + 8]",
            "int 0x80",
            "pop esi", "pop ebp",
            inlateout("eax") block.as_ptr() => r, in("ebx") a, in("ecx") b, in("edx") c, in("edi") e,
            options(preserves_flags)
        )
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
    // The child's first frame: arg where a cdecl callee finds its argument, then entry and
    // tls for the asm below; 16-byte aligned at the call, as the SysV i386 ABI wants.
    let sp = (stack - 16) & !15;
    // SAFETY: the caller gives a stack we may write below its top.
    unsafe { core::ptr::write(sp as *mut [usize; 3], [arg, entry as usize, tls]) };
    let r;
    // SAFETY: the child path touches no parent frame and ends in SYS_exit; the parent
    // restores esi from its own stack.
    unsafe {
        asm!(
            "push esi",
            "mov esi, [ecx + 8]",
            "int 0x80",
            "test eax, eax",
            "jnz 2f",
            // Child: esp = sp, [esp] = arg, [esp+4] = entry.
            "xor ebp, ebp",
            "call dword ptr [esp + 4]",
            "mov ebx, eax", "mov eax, {exit}", "int 0x80", "ud2",
            "2:",
            "pop esi",
            exit = const k::__NR_exit,
            inlateout("eax") k::__NR_clone as usize => r,
            in("ebx") flags, in("ecx") sp, in("edx") ptid, in("edi") ctid,
        )
    };
    r
}

/// Signal handler entry: realign the stack to 16 bytes (as the i386 ABI has it since gcc's
/// SSE code), copy the three arguments and call the handler. qemu-user can start a handler
/// with esp unaligned, and SSE spills in it then fault; the kernel itself aligns.
#[unsafe(naked)]
pub(super) unsafe extern "C" fn signal_entry() {
    naked_asm!(
        "push ebp", "mov ebp, esp", "and esp, -16", "sub esp, 4",
        "push dword ptr [ebp + 16]", "push dword ptr [ebp + 12]", "push dword ptr [ebp + 8]",
        "call dword ptr [{t}]",
        "mov esp, ebp", "pop ebp", "ret",
        t = sym super::SIGNAL_TARGET,
    )
}

/// sa_restorer: returning from a handler lands here, with the signal frame at esp.
#[unsafe(naked)]
pub unsafe extern "C" fn restore_rt() {
    naked_asm!("mov eax, {n}", "int 0x80", "ud2", n = const k::__NR_rt_sigreturn)
}

/// Time-stamp counter, fenced as on x86_64.
#[inline(always)]
pub fn cycles() -> u64 {
    let lo: u32;
    let hi: u32;
    // SAFETY: rdtsc only reads the counter.
    unsafe { asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nostack, nomem, preserves_flags)) };
    ((hi as u64) << 32) | lo as u64
}

/// The process entry point. The binary names its Rust start function, which takes the
/// initial stack pointer (on the stack, cdecl) and never returns.
#[macro_export]
macro_rules! entry {
    ($start:path) => {
        core::arch::global_asm!(
            ".globl _start",
            ".type _start,@function",
            "_start:",
            "xor ebp, ebp",
            "mov eax, esp",
            "and esp, -16",
            "sub esp, 12",
            "push eax",
            "call {start}",
            "ud2",
            start = sym $start,
        );
    };
}

/// ftruncate64(fd, lo, hi).
#[inline(always)]
pub unsafe fn ftruncate(fd: usize, len: u64) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { syscall3(k::__NR_ftruncate64 as usize, fd, len as usize, (len >> 32) as usize) }
}

/// The kernel honours a restorer here.
pub const SA_RESTORER: u32 = k::SA_RESTORER;
