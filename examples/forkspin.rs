//! forkspin: libhugetlbfs's alloc-instantiate-race done plainly, the yardstick `make detect`
//! sets beside hugerace's own rates, in the same boot.
//!
//! Usage: `forkspin shared|private RACES [SIZE [noreserve]]` (SIZE as hugerace's -s, default
//! 2M). `noreserve` is the negative control, as hugerace's `--leave-free 0 --noreserve`: every
//! page filled, the contested one mapped MAP_NORESERVE beyond them; every race must fail.
//!
//! As the C test does: the pool is filled but for one page (an unlinked memfd of the size,
//! every page but the last instantiated), the last page is mapped MAP_SHARED or MAP_PRIVATE,
//! and two racers pinned to the first two allowed CPUs each set a flag in a shared anonymous
//! page, spin until the other's flag is set, and write the page. Shared: the racers are two
//! fork()ed processes. Private: two threads of one fork()ed process that maps the page itself
//! (a private mapping's reservation belongs to its mapper). A racer killed by SIGBUS is a
//! failed race. Unlike the C test (one race per run), it repeats: after each race the page is
//! given back (unmap, and a hole punch for shared) and the pool must be as before.
//!
//! Prints one line, `forkspin: mode=M size=S races=N failed=F broken=B`, and exits 0 when
//! nothing broke; a broken race (a racer that did not reach the write, a pool that did not
//! come back) stops the run with `forkspin: TBROK ...` and exit status 2. Root: the pool is
//! raised to two free pages if needed, nr_overcommit_hugepages set to 0, both put back.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use hugerace::out::Line;
use hugerace::parse;
use hugerace::sys::{self, k, Errno, Forked, Mapping, Shared};

mod common;
use common::{read_knob, two_threads, write_knob};

hugerace::entry!(start);
hugerace::mem_functions!();

/// A racer that waits longer than this for its partner gives up: a broken race, not a hang.
const SPIN_NS: u64 = 10_000_000_000;
/// Exit codes of a racer besides 0.
const LATE: u32 = 3;
const NO_PIN: u32 = 4;

/// What both racers of one race share: the two flags (in a MAP_SHARED anonymous page, so that
/// forked racers see them too), the contested page and the CPUs.
struct Crew<'a> {
    flags: &'a [AtomicU32; 2],
    page: &'a Mapping,
    cpus: [u32; 2],
    /// Private mode: each thread's result (a thread's exit code reaches nobody).
    result: [AtomicU32; 2],
}

fn racer(i: usize, c: &Crew) -> usize {
    let mut mask = [0u8; 128];
    parse::mask_set(&mut mask, c.cpus[i]);
    if sys::sched_setaffinity(0, &mask).is_err() {
        c.result[i].store(NO_PIN, SeqCst);
        return NO_PIN as usize;
    }
    c.flags[i].store(1, SeqCst);
    let t0 = sys::monotonic_ns();
    let mut n = 0u32;
    while c.flags[1 - i].load(SeqCst) == 0 {
        n = n.wrapping_add(1);
        if n.is_multiple_of(4096) && sys::monotonic_ns() - t0 > SPIN_NS {
            c.result[i].store(LATE, SeqCst);
            return LATE as usize;
        }
        core::hint::spin_loop();
    }
    c.page.store_u32(0, 1);
    0
}

/// How one race ended.
enum Race {
    Passed,
    Sigbus,
}

fn brok(what: &str, e: Errno) -> ! {
    let mut l = Line::new();
    l.s("forkspin: TBROK ").s(what).s(": ").errno(e).c(b'\n').emit(1);
    sys::exit_group(2)
}

/// A racer process's (or the private racers' process's) end: SIGBUS fails the race, anything
/// but a clean exit breaks it.
fn reap(pid: i32) -> Result<Race, Errno> {
    let w = sys::wait4(pid, 0)?;
    match (w.signal(), w.exit_code()) {
        (Some(s), _) if s == k::SIGBUS => Ok(Race::Sigbus),
        (None, Some(0)) => Ok(Race::Passed),
        // Killed by another signal, a racer whose partner never came, or one not pinned.
        _ => Err(Errno(linux_raw_sys::errno::EIO as u16)),
    }
}

fn fork_racer(c: &Crew, i: usize) -> Result<i32, Errno> {
    match sys::fork()? {
        Forked::Child => sys::exit_group(racer(i, c) as i32),
        Forked::Parent(pid) => Ok(pid),
    }
}

fn race_shared(fd: &sys::Fd, off: u64, size: usize, flags: &[AtomicU32; 2], cpus: [u32; 2], extra: u32) -> Result<Race, Errno> {
    let page = Mapping::map_aligned(fd, off, size, size, k::MAP_SHARED | extra)?;
    let c = Crew { flags, page: &page, cpus, result: Default::default() };
    let a = fork_racer(&c, 0)?;
    let b = fork_racer(&c, 1);
    let ra = reap(a);
    let rb = reap(b?);
    drop(page);
    // The page stays in the file: punch it out, so that the last free page is free again.
    sys::fallocate(fd, k::FALLOC_FL_PUNCH_HOLE | k::FALLOC_FL_KEEP_SIZE, off, size as u64)?;
    match (ra?, rb?) {
        (Race::Passed, Race::Passed) => Ok(Race::Passed),
        _ => Ok(Race::Sigbus),
    }
}

/// The private racers' process: map the page, start both threads, wait for them; a SIGBUS in
/// either kills the whole process, which the parent sees.
fn private_child(fd: &sys::Fd, off: u64, size: usize, flags: &[AtomicU32; 2], cpus: [u32; 2], extra: u32) -> i32 {
    let Ok(page) = Mapping::map_aligned(fd, off, size, size, k::MAP_PRIVATE | extra) else { return 5 };
    let c = Crew { flags, page: &page, cpus, result: Default::default() };
    if two_threads(racer, &c).is_err() {
        return 5;
    }
    c.result.iter().map(|r| r.load(SeqCst) as i32).max().unwrap_or(0)
}

fn race_private(fd: &sys::Fd, off: u64, size: usize, flags: &[AtomicU32; 2], cpus: [u32; 2], extra: u32) -> Result<Race, Errno> {
    match sys::fork()? {
        Forked::Child => sys::exit_group(private_child(fd, off, size, flags, cpus, extra)),
        Forked::Parent(pid) => reap(pid),
    }
}




/// Free pages no reservation holds.
fn available(dir: &[u8]) -> Result<u64, Errno> {
    Ok(read_knob(dir, b"free_hugepages")?.saturating_sub(read_knob(dir, b"resv_hugepages")?))
}

/// The first two CPUs this process may run on.
fn two_cpus() -> Result<[u32; 2], Errno> {
    let mut mask = [0u8; 128];
    let n = sys::sched_getaffinity(&mut mask)?;
    let (mut cpus, mut found) = ([0u32; 2], 0);
    parse::mask_cpus(&mask[..n], &mut |c| {
        if found < 2 {
            cpus[found] = c;
            found += 1;
        }
    });
    if found < 2 { Err(Errno(linux_raw_sys::errno::ESRCH as u16)) } else { Ok(cpus) }
}

extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: `_start` (arch `entry!`) passes the kernel's initial stack pointer.
    let args = unsafe { sys::start::init(sp) };
    let shared = match args.get(1) {
        Some(b"shared") => true,
        Some(b"private") => false,
        _ => {
            let _ = sys::write_all(2, b"usage: forkspin shared|private RACES [SIZE]\n");
            sys::exit_group(2)
        }
    };
    let races = args.get(2).and_then(parse::u64_dec).unwrap_or(1);
    let size_arg = args.get(3).unwrap_or(b"2M");
    let Some(size) = parse::size(size_arg) else { brok("size", Errno::EINVAL) };
    let noreserve = match args.get(4) {
        None => false,
        Some(b"noreserve") => true,
        Some(_) => brok("the fourth argument is not noreserve", Errno::EINVAL),
    };
    // Pages left free, and the contested page's extra mmap flag.
    let (leave, extra) = if noreserve { (0, k::MAP_NORESERVE) } else { (1, 0) };
    let mut dir = Line::new();
    dir.s("/sys/kernel/mm/hugepages/hugepages-").u(size >> 10).s("kB/");
    let dir = dir.as_bytes();
    let cpus = two_cpus().unwrap_or_else(|e| brok("two allowed CPUs", e));

    // The pool: at least two free pages, no overcommit (a surplus page would hide the race).
    let nr = read_knob(dir, b"nr_hugepages").unwrap_or_else(|e| brok("nr_hugepages", e));
    let over = read_knob(dir, b"nr_overcommit_hugepages").unwrap_or(0);
    if over != 0 {
        write_knob(dir, b"nr_overcommit_hugepages", 0).unwrap_or_else(|e| brok("nr_overcommit_hugepages", e));
    }
    let avail = available(dir).unwrap_or_else(|e| brok("free_hugepages", e));
    if avail < 2 {
        write_knob(dir, b"nr_hugepages", nr + 2 - avail).unwrap_or_else(|e| brok("raising nr_hugepages", e));
    }
    let (mut failed, mut done, mut why) = (0u64, 0u64, None);
    {
        let pages = available(dir).unwrap_or(0);
        let flags_page: Shared<[AtomicU32; 2], AtomicU32> = Shared::new(1).unwrap_or_else(|e| brok("shared page", e));
        let flags = flags_page.head();
        let mfd = k::MFD_HUGETLB | (size.trailing_zeros() << k::MFD_HUGE_SHIFT);
        let fd = sys::memfd_create(c"forkspin", mfd).unwrap_or_else(|e| brok("memfd_create", e));
        let last = (pages.max(2) - leave) * size;
        // Every page but the last instantiated: one free page left, as the C test leaves it.
        let filled = sys::ftruncate(&fd, last + size).and_then(|_| sys::fallocate(&fd, 0, 0, last));
        match filled.and_then(|_| available(dir)) {
            Ok(n) if n == leave => {}
            Ok(_) => why = Some(("the pool changed while it was filled", Errno::EAGAIN)),
            Err(e) => why = Some(("filling the pool", e)),
        }
        while why.is_none() && done < races {
            flags[0].store(0, SeqCst);
            flags[1].store(0, SeqCst);
            let r = if shared {
                race_shared(&fd, last, size as usize, flags, cpus, extra)
            } else {
                race_private(&fd, last, size as usize, flags, cpus, extra)
            };
            match r {
                Ok(Race::Passed) => done += 1,
                Ok(Race::Sigbus) => {
                    done += 1;
                    failed += 1;
                }
                Err(e) => why = Some(("a race (a racer killed, late or not pinned)", e)),
            }
            // The page went back: exactly one free page again, or a later SIGBUS would prove
            // nothing.
            if why.is_none() && available(dir) != Ok(leave) {
                why = Some(("the last free page did not come back after a race", Errno::EAGAIN));
            }
        }
    }
    // Our pages are gone with the file: put the pool back.
    let _ = write_knob(dir, b"nr_hugepages", nr);
    if over != 0 {
        let _ = write_knob(dir, b"nr_overcommit_hugepages", over);
    }
    let mut l = Line::new();
    l.s("forkspin: mode=").s(if shared { "shared" } else { "private" }).s(" size=").b(parse::trim(size_arg));
    l.s(" races=").u(done).s(" failed=").u(failed).s(" broken=").u(why.is_some() as u64).c(b'\n').emit(1);
    if let Some((what, e)) = why {
        brok(what, e)
    }
    sys::exit_group(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    sys::exit_group(3)
}

#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
