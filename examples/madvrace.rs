//! madvrace: the dontneed race raced the way the kernel's own selftest does it
//! (tools/testing/selftests/mm/hugetlb_fault_after_madv.c), the yardstick `make detect` sets
//! beside `hugerace --race dontneed` in the same boot.
//!
//! Usage: `madvrace LOOPS [SIZE]` (SIZE as hugerace's -s, default 2M).
//!
//! As the selftest does: exactly one free hugepage; each loop maps one page
//! MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB and touches it, then two free-running threads (not
//! pinned, no rendezvous) go: one sleeps a random 0-9 µs and calls MADV_DONTNEED on the page
//! 100 times, the other writes it 100 times. A SIGBUS ends the loop's process: a failed loop.
//! Unlike the selftest, which stops at the first SIGBUS, each loop runs in a process of its
//! own, so that the run goes on and counts.
//!
//! Prints one line, `madvrace: size=S loops=N failed=F broken=B elapsed_ms=T`; exit status 0
//! unless something broke (`madvrace: TBROK ...`, status 2). Root: the pool is set so that
//! exactly one page is free, nr_overcommit_hugepages to 0, both put back.
#![no_std]
#![no_main]

use hugerace::out::Line;
use hugerace::parse;
use hugerace::sys::{self, k, Errno, Forked, Mapping};

mod common;
use common::{read_knob, two_threads, write_knob};

hugerace::entry!(start);
hugerace::mem_functions!();

/// Each thread's calls per loop, as in the selftest (INLOOP_ITER).
const INLOOP: usize = 100;

struct Loop<'a> {
    page: &'a Mapping,
}

/// A pseudo-random number from the cycle counter: the selftest's rand() % 10 µs.
fn jitter_ns() -> u64 {
    (sys::cycles() >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) % 10 * 1000
}

fn thread(i: usize, c: &Loop) -> usize {
    if i == 0 {
        sys::sleep_ns(jitter_ns());
        for _ in 0..INLOOP {
            let _ = c.page.madvise(0, c.page.len(), k::MADV_DONTNEED);
        }
    } else {
        for _ in 0..INLOOP {
            c.page.store_u32(0, 1);
        }
    }
    0
}

/// One loop, in the calling (forked) process: map and touch the page, run both threads,
/// wait for them. A SIGBUS in either ends this whole process, which the parent sees.
fn one_loop(size: usize) -> i32 {
    let Ok(page) = Mapping::anon_hugetlb(size, size, 0) else { return 5 };
    page.store_u32(0, 1);
    let c = Loop { page: &page };
    if two_threads(thread, &c).is_err() { 5 } else { 0 }
}

fn brok(what: &str, e: Errno) -> ! {
    let mut l = Line::new();
    l.s("madvrace: TBROK ").s(what).s(": ").errno(e).c(b'\n').emit(1);
    sys::exit_group(2)
}




extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: `_start` (arch `entry!`) passes the kernel's initial stack pointer.
    let args = unsafe { sys::start::init(sp) };
    let Some(loops) = args.get(1).and_then(parse::u64_dec) else {
        let _ = sys::write_all(2, b"usage: madvrace LOOPS [SIZE]\n");
        sys::exit_group(2)
    };
    let size_arg = args.get(2).unwrap_or(b"2M");
    let Some(size) = parse::size(size_arg) else { brok("size", Errno::EINVAL) };
    let mut dir = Line::new();
    dir.s("/sys/kernel/mm/hugepages/hugepages-").u(size >> 10).s("kB/");
    let dir = dir.as_bytes();

    // Exactly one free page no reservation holds, and no overcommit to hide the race.
    let nr = read_knob(dir, b"nr_hugepages").unwrap_or_else(|e| brok("nr_hugepages", e));
    let over = read_knob(dir, b"nr_overcommit_hugepages").unwrap_or(0);
    if over != 0 {
        write_knob(dir, b"nr_overcommit_hugepages", 0).unwrap_or_else(|e| brok("nr_overcommit_hugepages", e));
    }
    let avail = read_knob(dir, b"free_hugepages").unwrap_or(0).saturating_sub(read_knob(dir, b"resv_hugepages").unwrap_or(0));
    if avail != 1 {
        write_knob(dir, b"nr_hugepages", (nr + 1).saturating_sub(avail)).unwrap_or_else(|e| brok("setting nr_hugepages", e));
    }
    let t0 = sys::monotonic_ns();
    let (mut failed, mut done, mut broken) = (0u64, 0u64, 0u64);
    while done < loops && broken == 0 {
        let r = match sys::fork() {
            Ok(Forked::Child) => sys::exit_group(one_loop(size as usize)),
            Ok(Forked::Parent(pid)) => sys::wait4(pid, 0),
            Err(e) => brok("fork", e),
        };
        done += 1;
        match r.map(|w| (w.signal(), w.exit_code())) {
            Ok((Some(s), _)) if s == k::SIGBUS => failed += 1,
            Ok((None, Some(0))) => {}
            _ => broken = 1,
        }
    }
    let ms = (sys::monotonic_ns() - t0) / 1_000_000;
    let _ = write_knob(dir, b"nr_hugepages", nr);
    if over != 0 {
        let _ = write_knob(dir, b"nr_overcommit_hugepages", over);
    }
    let mut l = Line::new();
    l.s("madvrace: size=").b(parse::trim(size_arg)).s(" loops=").u(done).s(" failed=").u(failed);
    l.s(" broken=").u(broken).s(" elapsed_ms=").u(ms).c(b'\n').emit(1);
    if broken != 0 {
        brok("a loop (its process killed by another signal, or setup failed)", Errno(linux_raw_sys::errno::EIO as u16))
    }
    sys::exit_group(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    sys::exit_group(3)
}

#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
