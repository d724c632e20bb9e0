//! Processes, threads, signals, scheduling, futexes and clocks.

use super::errno::Errno;
use super::mem::Mapping;
use super::raw::{check, sc, Result};
use linux_raw_sys::general as k;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

pub fn getpid() -> i32 {
    // SAFETY: no arguments.
    sc!(k::__NR_getpid).unwrap_or(0) as i32
}
pub fn gettid() -> i32 {
    // SAFETY: no arguments.
    sc!(k::__NR_gettid).unwrap_or(0) as i32
}
pub fn getppid() -> i32 {
    // SAFETY: no arguments.
    sc!(k::__NR_getppid).unwrap_or(0) as i32
}
pub fn geteuid() -> u32 {
    // SAFETY: no arguments.
    sc!(k::__NR_geteuid).unwrap_or(0) as u32
}

/// End the whole process (every thread).
pub fn exit_group(code: i32) -> ! {
    // SAFETY: never returns.
    let _ = sc!(k::__NR_exit_group, code);
    loop {
        core::hint::spin_loop()
    }
}

/// End the calling thread only.
pub fn exit_thread(code: i32) -> ! {
    // SAFETY: never returns.
    let _ = sc!(k::__NR_exit, code);
    exit_group(code)
}

pub const THREAD_FLAGS: u32 = k::CLONE_VM
    | k::CLONE_FS
    | k::CLONE_FILES
    | k::CLONE_SIGHAND
    | k::CLONE_THREAD
    | k::CLONE_SYSVSEM;

/// What the child finds at the top of its stack: whom to call, with what.
struct Launch<T> {
    f: fn(usize, &T) -> usize,
    arg: *const T,
    idx: usize,
}

extern "C" fn launch<T>(p: usize) -> usize {
    // SAFETY: p is the Launch<T> that `spawn` wrote at the top of this child's stack, and
    // `spawn`'s contract keeps *arg alive for the child's whole life.
    let l = unsafe { &*(p as *const Launch<T>) };
    (l.f)(l.idx, unsafe { &*l.arg })
}

/// Start a child (a thread with THREAD_FLAGS, or a process with SIGCHLD) that runs
/// `f(idx, arg)` on `stack` and exits with its return value. The kernel stores the child's
/// tid in `tid`, and clears it and futex-wakes it when the child exits
/// (CLONE_CHILD_CLEARTID) — for threads only: the kernel skips the clear when the exiting
/// task's mm is its alone, as a process child's is, so processes are joined with waitid.
///
/// The caller must keep `arg`, the stacks and `tid` alive until the child is gone (a process
/// child has its own copy of `arg` and its stack; `tid` must be in shared memory).
/// Reached through `Stacks::spawn`, which owns the stack range.
fn spawn_at<T: Sync>(lo: usize, len: usize, flags: u32, tid: &AtomicU32, f: fn(usize, &T) -> usize, arg: &T, idx: usize) -> Result<i32> {
    let flags = flags | k::CLONE_PARENT_SETTID | k::CLONE_CHILD_CLEARTID;
    let top = lo + len;
    let rec = (top - core::mem::size_of::<Launch<T>>()) & !63;
    if rec < lo + 8192 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: rec lies inside the stack mapping, is aligned, and nothing else uses it yet.
    unsafe { core::ptr::write(rec as *mut Launch<T>, Launch { f, arg: arg as *const T, idx }) };
    let sp = (rec - 64) & !15;
    let t = tid.as_ptr() as usize;
    // SAFETY: the stack is a live mapping the child alone uses; `tid` outlives the child;
    // the arch child path never returns into this frame.
    let r = unsafe { crate::arch::clone(flags as usize, sp, t, t, 0, launch::<T>, rec) };
    let p = check(r)?;
    // qemu-user forks a process child and lets the *child* store CLONE_PARENT_SETTID, so
    // the parent may read 0 for a while and take the racer for gone. The pid we hold is
    // the same value: store it. (Not for threads: one may already have exited and had its
    // tid cleared.)
    if flags & k::CLONE_VM == 0 {
        tid.store(p as u32, Ordering::Release);
    }
    Ok(p as i32)
}

pub struct WaitStatus {
    pub pid: i32,
    pub status: i32,
    pub maxrss_kb: u64,
}

impl WaitStatus {
    pub fn signal(&self) -> Option<u32> {
        let s = (self.status & 0x7f) as u32;
        if s != 0 && s != 0x7f { Some(s) } else { None }
    }
    pub fn exit_code(&self) -> Option<i32> {
        if self.status & 0x7f == 0 { Some((self.status >> 8) & 0xff) } else { None }
    }
}

pub fn wait4(pid: i32, options: u32) -> Result<WaitStatus> {
    let mut status: i32 = 0;
    let mut ru = core::mem::MaybeUninit::<k::rusage>::zeroed();
    loop {
        // SAFETY: status and ru are writable and live across the call.
        match sc!(k::__NR_wait4, pid, &mut status as *mut i32, options, ru.as_mut_ptr()) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(p) => {
                // SAFETY: zeroed then filled by the kernel; plain integers.
                let ru = unsafe { ru.assume_init() };
                return Ok(WaitStatus { pid: p as i32, status, maxrss_kb: ru.ru_maxrss as u64 });
            }
        }
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exit(i32),
    Signal(u32),
}

/// How child `pid` ended, or None while it runs. It stays waitable (a zombie until `wait4`
/// reaps it); one already reaped (ECHILD) reads as an exit.
pub fn child_ended(pid: i32) -> Option<Ended> {
    let mut info: k::siginfo = unsafe_zeroed();
    // SAFETY: info is a writable siginfo; no rusage is asked for.
    let r = sc!(k::__NR_waitid, k::P_PID, pid, &mut info as *mut k::siginfo, k::WEXITED | k::WNOHANG | k::WNOWAIT | k::__WALL, 0usize);
    if r.is_err() {
        return Some(Ended::Exit(0));
    }
    // SAFETY: for waitid the kernel fills the _sigchld member (or leaves it zeroed).
    let (code, who, status) = unsafe {
        let i = &info.__bindgen_anon_1.__bindgen_anon_1;
        (i.si_code, i._sifields._sigchld._pid, i._sifields._sigchld._status)
    };
    match (who, code as u32) {
        (0, _) => None,
        (_, k::CLD_KILLED) | (_, k::CLD_DUMPED) => Some(Ended::Signal(status as u32)),
        _ => Some(Ended::Exit(status)),
    }
}

pub fn kill(pid: i32, sig: u32) -> Result<()> {
    // SAFETY: plain integers.
    sc!(k::__NR_kill, pid, sig).map(drop)
}

pub fn set_pdeathsig(sig: u32) -> Result<()> {
    // SAFETY: plain integers.
    sc!(k::__NR_prctl, linux_raw_sys::prctl::PR_SET_PDEATHSIG, sig).map(drop)
}

// ---- signals ----

/// What a fault handler learns: the signal, si_code, the faulting address.
#[derive(Clone, Copy)]
pub struct Fault {
    pub sig: u32,
    pub code: i32,
    pub addr: usize,
}

static FAULT_CTX: AtomicUsize = AtomicUsize::new(0);
static FAULT_HOOK: AtomicUsize = AtomicUsize::new(0);
static FAULT_SHIM: AtomicUsize = AtomicUsize::new(0);

fn shim<T>(ctx: usize, hook: usize, f: Fault) {
    // SAFETY: ctx and hook were stored together by `on_faults::<T>` from a live &T and a
    // fn(&T, Fault); `on_faults`'s contract keeps the &T alive while the handler is set.
    let hook = unsafe { core::mem::transmute::<usize, fn(&T, Fault)>(hook) };
    hook(unsafe { &*(ctx as *const T) }, f)
}
static PENDING: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" fn on_fault(sig: i32, info: *mut k::siginfo, _ctx: *mut core::ffi::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler; for SIGBUS and
    // SIGSEGV the _sigfault member is the live one.
    let (code, addr) = unsafe {
        let i = &(*info).__bindgen_anon_1.__bindgen_anon_1;
        (i.si_code, i._sifields._sigfault._addr as usize)
    };
    let s = FAULT_SHIM.load(Ordering::Acquire);
    if s != 0 {
        // SAFETY: FAULT_SHIM only ever holds a `shim::<T>` stored by `on_faults::<T>`.
        let s = unsafe { core::mem::transmute::<usize, fn(usize, usize, Fault)>(s) };
        s(FAULT_CTX.load(Ordering::Acquire), FAULT_HOOK.load(Ordering::Acquire), Fault { sig: sig as u32, code, addr });
    }
    // The hook declined (not a racer): fall back to the default action and re-fault.
    let _ = set_handler(sig as u32, 0, 0);
}

unsafe extern "C" fn on_term(sig: i32) {
    // The first signal is the one the run names.
    let _ = PENDING.compare_exchange(0, sig as u32, Ordering::AcqRel, Ordering::Acquire);
}

fn set_handler(sig: u32, handler: usize, flags: u32) -> Result<()> {
    let mut sa: k::kernel_sigaction = unsafe_zeroed();
    // SAFETY: handler is 0 (SIG_DFL) or one of the extern "C" handlers above, whose
    // argument lists the kernel honours for the given flags.
    sa.sa_handler_kernel = unsafe { core::mem::transmute::<usize, k::__kernel_sighandler_t>(handler) };
    sa.sa_flags = flags as _;
    crate::arch::set_restorer(&mut sa);
    // SAFETY: sa is a valid kernel_sigaction; no old action is requested.
    sc!(k::__NR_rt_sigaction, sig, &sa as *const k::kernel_sigaction, 0usize, 8usize).map(drop)
}

fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for kernel structs made of integers and nullable pointers.
    unsafe { core::mem::MaybeUninit::<T>::zeroed().assume_init() }
}

/// Route SIGBUS and SIGSEGV to `hook(ctx, fault)`, which ends the faulting racer, or returns
/// to let the default action happen. `ctx` must stay alive until `default_faults`.
pub fn on_faults<T: Sync>(ctx: &T, hook: fn(&T, Fault)) -> Result<()> {
    FAULT_CTX.store(ctx as *const T as usize, Ordering::Release);
    FAULT_HOOK.store(hook as *const () as usize, Ordering::Release);
    FAULT_SHIM.store(shim::<T> as *const () as usize, Ordering::Release);
    for sig in [k::SIGBUS, k::SIGSEGV] {
        set_handler(sig, crate::arch::signal_entry_for(on_fault as *const () as usize), k::SA_SIGINFO | k::SA_NODEFER)?;
    }
    Ok(())
}

/// Back to the default action for SIGBUS and SIGSEGV.
pub fn default_faults() {
    FAULT_SHIM.store(0, Ordering::Release);
    for sig in [k::SIGBUS, k::SIGSEGV] {
        let _ = set_handler(sig, 0, 0);
    }
}

/// The signals whose default action ends the process and that come from outside: a user or
/// harness (kill, a terminal), a closed pipe, a timer, a resource limit, and every realtime
/// signal. Each is turned into TBROK naming it, with the pool put back. Not caught: SIGKILL
/// and SIGSTOP (they cannot be), and the synchronous faults SIGILL, SIGTRAP, SIGBUS, SIGFPE,
/// SIGSEGV and SIGSYS, which mean a crash of hugerace itself (or, for SIGBUS, the race's
/// verdict in a racer); a panic still puts the pool back.
const TERMINATING: u64 = {
    let classic = [
        k::SIGHUP, k::SIGINT, k::SIGQUIT, k::SIGABRT, k::SIGUSR1, k::SIGUSR2, k::SIGPIPE, k::SIGALRM,
        k::SIGTERM, k::SIGSTKFLT, k::SIGXCPU, k::SIGXFSZ, k::SIGVTALRM, k::SIGPROF, k::SIGIO, k::SIGPWR,
    ];
    // Realtime signals SIGRTMIN (32) to 64, all of whose default action is to terminate.
    let mut set = !0u64 << (k::SIGRTMIN - 1);
    let mut i = 0;
    while i < classic.len() {
        set |= 1 << (classic[i] - 1);
        i += 1;
    }
    set
};

/// Whether `sig` is one of the signals `catch_termination` turns into a flag.
pub const fn is_terminating(sig: u32) -> bool {
    sig >= 1 && sig <= 64 && TERMINATING & (1 << (sig - 1)) != 0
}

/// Turn the terminating signals into a flag that the main flow polls, so that cleanup
/// always runs in ordinary code. Interrupted waits return EINTR and see the flag; a write
/// to a pipe whose reader is gone returns EPIPE (SIGPIPE is caught too) and the run stops.
/// A realtime signal that cannot be caught (qemu-user keeps a few for itself) is skipped.
pub fn catch_termination() -> Result<()> {
    for sig in 1..=64 {
        if !is_terminating(sig) {
            continue;
        }
        match set_handler(sig, on_term as *const () as usize, 0) {
            Err(e) if sig < k::SIGRTMIN => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The terminating signal received first, if any.
pub fn pending_signal() -> Option<u32> {
    match PENDING.load(Ordering::Acquire) {
        0 => None,
        s => Some(s),
    }
}

/// Block (or unblock) the terminating signals in the calling thread: a racer blocks them
/// all, so that the supervisor alone acts on them (one sent to a racer process's pid stays
/// pending there, harmless, until the racer ends).
pub fn block_termination(block: bool) -> Result<()> {
    let set: u64 = TERMINATING;
    let how = if block { k::SIG_BLOCK } else { k::SIG_UNBLOCK };
    // SAFETY: set is a valid 8-byte sigset.
    sc!(k::__NR_rt_sigprocmask, how, &set as *const u64, 0usize, 8usize).map(drop)
}

// ---- scheduling ----

/// The affinity mask of the calling thread, written into `buf`; returns its length in bytes.
pub fn sched_getaffinity(buf: &mut [u8]) -> Result<usize> {
    // SAFETY: buf is writable for its length.
    sc!(k::__NR_sched_getaffinity, 0, buf.len(), buf.as_mut_ptr())
}

pub fn sched_setaffinity(tid: i32, mask: &[u8]) -> Result<()> {
    // SAFETY: mask is readable for its length.
    sc!(k::__NR_sched_setaffinity, tid, mask.len(), mask.as_ptr()).map(drop)
}

pub fn getcpu() -> Result<u32> {
    let mut cpu: u32 = 0;
    // SAFETY: cpu is writable; node and cache are not requested.
    sc!(k::__NR_getcpu, &mut cpu as *mut u32, 0usize, 0usize)?;
    Ok(cpu)
}

pub fn set_fifo(priority: i32) -> Result<()> {
    let prio = priority;
    // SAFETY: sched_param is one int.
    sc!(k::__NR_sched_setscheduler, 0, k::SCHED_FIFO, &prio as *const i32).map(drop)
}


// ---- futexes (never private: the words live in memory shared between processes) ----

/// Sleep while `*word == val`, at most `timeout_ns` (0 = no limit).
pub fn futex_wait(word: &AtomicU32, val: u32, timeout_ns: u64) -> Result<()> {
    let ts = k::__kernel_timespec { tv_sec: (timeout_ns / 1_000_000_000) as _, tv_nsec: (timeout_ns % 1_000_000_000) as _ };
    let tsp = if timeout_ns == 0 { 0 } else { &ts as *const _ as usize };
    // SAFETY: word is a live aligned u32; ts outlives the call.
    sc!(crate::arch::NR_FUTEX, word.as_ptr(), k::FUTEX_WAIT, val, tsp).map(drop)
}

pub fn futex_wake(word: &AtomicU32, n: u32) {
    // SAFETY: word is a live aligned u32.
    let _ = sc!(k::__NR_futex, word.as_ptr(), k::FUTEX_WAKE, n);
}

/// Page faults the calling thread has taken so far that needed no I/O (its minor faults):
/// how a racer tells that its store faulted.
pub fn minor_faults() -> u64 {
    let mut ru = core::mem::MaybeUninit::<k::rusage>::zeroed();
    // SAFETY: ru is writable for a whole rusage.
    let _ = sc!(k::__NR_getrusage, k::RUSAGE_THREAD, ru.as_mut_ptr());
    // SAFETY: zeroed, then filled by the kernel; plain integers.
    unsafe { ru.assume_init() }.ru_minflt as u64
}

// ---- clocks ----

/// The CPU's cycle counter (or its nearest equivalent): cheap enough to stamp a race.
#[inline(always)]
pub fn cycles() -> u64 {
    crate::arch::cycles()
}

pub fn monotonic_ns() -> u64 {
    clock_ns(k::CLOCK_MONOTONIC)
}

fn clock_ns(clock: u32) -> u64 {
    let mut ts = k::__kernel_timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is writable.
    let _ = sc!(crate::arch::NR_CLOCK_GETTIME, clock, &mut ts as *mut _);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn sleep_ns(ns: u64) {
    let ts = k::__kernel_timespec { tv_sec: (ns / 1_000_000_000) as _, tv_nsec: (ns % 1_000_000_000) as _ };
    // SAFETY: ts is readable; no remainder requested.
    let _ = sc!(crate::arch::NR_CLOCK_NANOSLEEP, k::CLOCK_MONOTONIC, 0, &ts as *const _, 0usize);
}

/// The kernel release (`uname -r`) into buf; returns its length.
pub fn kernel_release(buf: &mut [u8; 65]) -> usize {
    let mut u = [0u8; 390];
    // SAFETY: new_utsname is 6 fields of 65 bytes.
    if sc!(k::__NR_uname, u.as_mut_ptr()).is_err() {
        return 0;
    }
    buf.copy_from_slice(&u[130..195]);
    buf.iter().position(|&b| b == 0).unwrap_or(65)
}

/// Stacks for `n` children in one mapping, each with a PROT_NONE guard page at its low end
/// so that an overflow faults instead of running into a neighbour's stack.
pub struct Stacks {
    map: Mapping,
    each: usize,
}

impl Stacks {
    pub fn new(n: usize, each: usize) -> Result<Stacks> {
        let page = super::start::page_size();
        // The guard comes on top of the asked size: with 64K base pages (ppc64, some arm64)
        // a 64K stack would otherwise be all guard, and the child faults on its first store.
        let each = each.next_multiple_of(page) + page;
        let map = Mapping::anon(n.checked_mul(each).ok_or(Errno::ENOMEM)?, false)?;
        for i in 0..n {
            // SAFETY: the guard page lies inside our own mapping.
            sc!(k::__NR_mprotect, map.addr() + i * each, page, k::PROT_NONE)?;
        }
        Ok(Stacks { map, each })
    }

    /// As `spawn`, on the i-th stack.
    pub fn spawn<T: Sync>(&self, i: usize, flags: u32, tid: &AtomicU32, f: fn(usize, &T) -> usize, arg: &T) -> Result<i32> {
        if (i + 1) * self.each > self.map.len() {
            return Err(Errno::EINVAL);
        }
        spawn_at(self.map.addr() + i * self.each, self.each, flags, tid, f, arg, i)
    }

    /// Keep the stacks mapped for the rest of the process's life (a child we could not join
    /// may still be on one).
    pub fn leak(self) {
        self.map.leak()
    }
}
