//! archcheck: the arch layer's smoke test, a no-libc program like hugerace itself.
//!
//! It exercises every export of `src/arch/<arch>.rs` on the machine (or qemu-user) it runs
//! on: `_start` and the initial stack, the syscall instruction with 0 to 6 arguments and its
//! -errno convention, mmap with a non-zero offset at an address we aligned, clone of a thread
//! joined through CLONE_CHILD_CLEARTID and of a process reaped by wait4, a signal handler that returns
//! through the restorer, and the cycle counter. One `ok`/`not ok` line per check, then
//! `archcheck: PASS <target>` and exit 0, or `archcheck: FAIL` and exit 1.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use hugerace::arch;
use hugerace::out::Line;
use linux_raw_sys::general as k;

hugerace::entry!(start);
hugerace::mem_functions!();

static FAILED: AtomicU32 = AtomicU32::new(0);

fn check(name: &str, ok: bool, detail: u64) {
    let mut l = Line::new();
    if !ok {
        FAILED.fetch_add(1, Ordering::Relaxed);
        l.s("not ");
    }
    l.s("ok - ").s(name).s(" (").u(detail).s(")\n");
    l.emit(1);
}

macro_rules! sys {
    ($f:ident, $n:expr $(, $a:expr)*) => {
        // SAFETY: each call site passes arguments valid for the syscall it names.
        unsafe { arch::$f($n as usize $(, $a as usize)*) }
    };
}

fn neg(e: u32) -> usize {
    (e as usize).wrapping_neg()
}

fn map_anon(len: usize, flags: u32, prot: u32) -> usize {
    // SAFETY: a fresh anonymous mapping chosen by the kernel.
    unsafe { arch::mmap(0, len, prot as usize, (flags | k::MAP_ANONYMOUS) as usize, usize::MAX, 0) }
}

const RW: u32 = k::PROT_READ | k::PROT_WRITE;

static THREAD_SAW: AtomicUsize = AtomicUsize::new(0);

extern "C" fn thread_main(arg: usize) -> usize {
    THREAD_SAW.store(arg + sys!(syscall0, k::__NR_gettid), Ordering::Release);
    0
}

extern "C" fn process_main(arg: usize) -> usize {
    // arg is a word in MAP_SHARED memory: the parent sees this store.
    // SAFETY: the parent passed the address of a live, aligned AtomicUsize.
    let w = unsafe { &*(arg as *const AtomicUsize) };
    w.store(0x5a5a, Ordering::Release);
    // Exit with a recognisable code: the arch child path passes our return value to exit.
    7
}

static SIGNALLED: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" fn on_usr1(sig: i32, info: *mut k::siginfo, _ctx: *mut core::ffi::c_void) {
    // SAFETY: an SA_SIGINFO handler receives a valid siginfo.
    let signo = unsafe { (*info).__bindgen_anon_1.__bindgen_anon_1.si_signo };
    SIGNALLED.store(sig as u32 * 1000 + signo as u32, Ordering::Release);
}

/// Wait until the kernel clears `*tid` (CLONE_CHILD_CLEARTID) at the child's exit.
fn join(tid: &AtomicU32) -> bool {
    for _ in 0..1000 {
        let t = tid.load(Ordering::Acquire);
        if t == 0 {
            return true;
        }
        let ts = k::__kernel_timespec { tv_sec: 0, tv_nsec: 10_000_000 };
        let _ = sys!(syscall4, k::__NR_futex, tid.as_ptr(), k::FUTEX_WAIT, t, &ts as *const _);
    }
    false
}

extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: `_start` (arch `entry!`) passes the kernel's initial stack pointer.
    let args = unsafe { hugerace::sys::start::init(sp) };
    let mut l = Line::new();
    l.s("archcheck: ").s(env!("HUGERACE_TARGET")).s(", ").u(args.len() as u64).s(" args\n");
    l.emit(1);

    // _start handed us the real initial stack: argv[0] is there, and so is AT_PAGESZ.
    check("argv[0] present", args.get(0).is_some_and(|a| !a.is_empty()), args.len() as u64);
    let page = hugerace::sys::start::page_size();
    check("AT_PAGESZ", hugerace::sys::start::auxv(linux_raw_sys::auxvec::AT_PAGESZ as usize).is_some(), page as u64);

    // Syscall numbers and the -errno convention (ppc64 negates after testing cr0.SO).
    let pid = sys!(syscall0, k::__NR_getpid);
    check("getpid", pid > 0 && pid < 1 << 22, pid as u64);
    check("close(-1) is -EBADF", sys!(syscall1, k::__NR_close, -1isize) == neg(linux_raw_sys::errno::EBADF), 0);
    let msg = b"ok - write\n";
    check("write returns its length", sys!(syscall3, k::__NR_write, 1, msg.as_ptr(), msg.len()) == msg.len(), 0);

    // mmap: six arguments (s390x: an argument block), a non-zero byte offset, at an address
    // we aligned ourselves inside a PROT_NONE reservation.
    let fd = hugerace::sys::memfd_create(c"archcheck", 0);
    let fd_ok = fd.is_ok();
    check("memfd_create", fd_ok, 0);
    if let Ok(fd) = fd {
        let align = 1usize << 21;
        let ok = hugerace::sys::ftruncate(&fd, 2 * page as u64).is_ok();
        check("ftruncate", ok, 2 * page as u64);
        let pat = b"arch";
        // Through a first mapping at offset 0, the second page starts with "arch".
        // SAFETY: a fresh shared mapping of our memfd, placed by the kernel.
        let whole = unsafe { arch::mmap(0, 2 * page, RW as usize, k::MAP_SHARED as usize, fd.raw() as usize, 0) };
        check("mmap the file at offset 0", !arch::is_error(whole), whole as u64);
        if !arch::is_error(whole) {
            // SAFETY: two pages mapped readable and writable.
            unsafe { core::ptr::copy_nonoverlapping(pat.as_ptr(), (whole + page) as *mut u8, 4) };
        }
        let base = map_anon(2 * align, k::MAP_PRIVATE | k::MAP_NORESERVE, k::PROT_NONE);
        check("mmap reservation", !arch::is_error(base), base as u64);
        let at = (base + align - 1) & !(align - 1);
        // SAFETY: [at, at+page) lies inside the reservation we own.
        let m = unsafe { arch::mmap(at, page, RW as usize, (k::MAP_SHARED | k::MAP_FIXED) as usize, fd.raw() as usize, page as u64) };
        check("mmap at aligned address with offset", m == at, m as u64);
        if m == at {
            // SAFETY: the page is mapped readable and writable.
            let got = unsafe { core::slice::from_raw_parts(m as *const u8, 4) };
            check("mapped bytes come from the offset", got == pat, got[0] as u64);
        }
        let bad = map_anon(0, k::MAP_PRIVATE, RW);
        check("mmap(len 0) is -EINVAL", bad == neg(linux_raw_sys::errno::EINVAL), bad as u64);
        let _ = sys!(syscall2, k::__NR_munmap, base, 2 * align);
    }

    // Shared memory for tid words and the process child's store; stacks for the children.
    let shared = map_anon(page, k::MAP_SHARED, RW);
    let stacks = map_anon(2 * 65536, k::MAP_PRIVATE, RW);
    check("mmap shared and stacks", !arch::is_error(shared) && !arch::is_error(stacks), 0);
    if arch::is_error(shared) || arch::is_error(stacks) {
        finish();
    }
    // SAFETY: shared is a live page of zeroes, aligned; atomics are valid when zero.
    let (tid1, tid2, word) = unsafe {
        (&*(shared as *const AtomicU32), &*((shared + 4) as *const AtomicU32), &*((shared + 8) as *const AtomicUsize))
    };

    // A thread: CLONE_VM | CLONE_THREAD ..., joined through the futex on its tid word.
    let flags = k::CLONE_VM | k::CLONE_FS | k::CLONE_FILES | k::CLONE_SIGHAND | k::CLONE_THREAD
        | k::CLONE_SYSVSEM | k::CLONE_PARENT_SETTID | k::CLONE_CHILD_CLEARTID;
    let t1 = tid1.as_ptr() as usize;
    // SAFETY: the first stack is ours and unused; tid1 outlives the thread; the child path
    // never returns into this frame.
    let r = unsafe { arch::clone(flags as usize, stacks + 65536, t1, t1, 0, thread_main, 1000) };
    check("clone thread", !arch::is_error(r) && r > 0, r as u64);
    if !arch::is_error(r) {
        check("thread joined via CLONE_CHILD_CLEARTID", join(tid1), 0);
        let saw = THREAD_SAW.load(Ordering::Acquire);
        check("thread ran entry(arg) with its own tid", saw == 1000 + r, saw as u64);
    }

    // A process: fork-style clone on its own stack, reaped with its exit code.
    let flags = k::SIGCHLD | k::CLONE_PARENT_SETTID | k::CLONE_CHILD_CLEARTID;
    let t2 = tid2.as_ptr() as usize;
    // SAFETY: as above, with the second stack; the child has its own copy of memory.
    let r = unsafe { arch::clone(flags as usize, stacks + 2 * 65536, t2, t2, 0, process_main, word as *const _ as usize) };
    check("clone process", !arch::is_error(r) && r > 0, r as u64);
    if !arch::is_error(r) {
        let mut status: i32 = 0;
        let w = sys!(syscall4, k::__NR_wait4, r, &mut status as *mut i32, 0, 0);
        check("wait4 reaps it", w == r, w as u64);
        // CLONE_CHILD_CLEARTID is no way to join a process: the kernel clears the word only
        // while the exiting task shares its mm (mm_release checks mm_users > 1), so a
        // fork-style child leaves it set, natively and under qemu-user alike.
        let t = tid2.load(Ordering::Acquire);
        check("process tid word set by CLONE_PARENT_SETTID", t == r as u32, t as u64);
        check("process exit code 7", status == 7 << 8, status as u64);
        check("process store visible", word.load(Ordering::Acquire) == 0x5a5a, 0);
    }

    // A signal handler that returns (through restore_rt where the arch uses one).
    let mut sa: k::kernel_sigaction = unsafe_zeroed();
    // SAFETY: on_usr1 has the SA_SIGINFO handler signature.
    sa.sa_handler_kernel = unsafe { core::mem::transmute::<usize, k::__kernel_sighandler_t>(on_usr1 as *const () as usize) };
    sa.sa_flags = k::SA_SIGINFO as _;
    arch::set_restorer(&mut sa);
    let r = sys!(syscall4, k::__NR_rt_sigaction, k::SIGUSR1, &sa as *const _, 0, 8);
    check("rt_sigaction", r == 0, r as u64);
    let tid = sys!(syscall0, k::__NR_gettid);
    let r = sys!(syscall3, k::__NR_tgkill, pid, tid, k::SIGUSR1);
    check("tgkill self", r == 0, r as u64);
    let got = SIGNALLED.load(Ordering::Acquire);
    check("handler ran and returned", got == k::SIGUSR1 * 1001, got as u64);

    // The cycle counter moves forward.
    let c0 = arch::cycles();
    for _ in 0..1000 {
        let _ = sys!(syscall0, k::__NR_getppid);
    }
    let c1 = arch::cycles();
    check("cycles() increases", c1 > c0, c1.wrapping_sub(c0));

    // Six-argument syscall path beyond mmap: ppoll-free, so use a 6-arg futex that fails
    // cleanly (FUTEX_WAKE_OP on an unaligned address is -EINVAL).
    let r = sys!(syscall6, k::__NR_futex, shared + 1, k::FUTEX_WAKE_OP, 1, 0, shared + 1, 0);
    check("6-arg syscall errors as -EINVAL", r == neg(linux_raw_sys::errno::EINVAL), r as u64);

    finish()
}

fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for kernel structs made of integers and nullable pointers.
    unsafe { core::mem::MaybeUninit::<T>::zeroed().assume_init() }
}

fn finish() -> ! {
    let failed = FAILED.load(Ordering::Relaxed);
    let mut l = Line::new();
    if failed == 0 {
        l.s("archcheck: PASS ").s(env!("HUGERACE_TARGET")).c(b'\n');
    } else {
        l.s("archcheck: FAIL ").u(failed as u64).s(" checks\n");
    }
    l.emit(1);
    let _ = sys!(syscall1, k::__NR_exit_group, if failed == 0 { 0 } else { 1 });
    loop {
        core::hint::spin_loop()
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let m = b"archcheck: panic\n";
    let _ = sys!(syscall3, k::__NR_write, 2, m.as_ptr(), m.len());
    let _ = sys!(syscall1, k::__NR_exit_group, 3);
    loop {
        core::hint::spin_loop()
    }
}

/// The host's `cargo test` never builds this example with unwinding, but keep the symbol
/// for parity with main.rs.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
