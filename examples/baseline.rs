//! baseline: the floor cost of one hugepage fault, for `make bench` to compare races against.
//!
//! In a loop for SECONDS (default 5): memfd_create(MFD_HUGETLB), ftruncate, mmap at an aligned
//! address, touch, munmap, close — one 2 MB page, no racers. Prints `baseline: N faults in T
//! ns` and exits 0, or names the failing call and exits 1. Uses hugerace's own syscall layer,
//! so the comparison is like for like.
#![no_std]
#![no_main]

use hugerace::out::Line;
use hugerace::sys::{self, k};

hugerace::entry!(start);
hugerace::mem_functions!();

const SIZE: u64 = 2 << 20;

fn one() -> Result<(), (&'static str, sys::Errno)> {
    let flags = k::MFD_HUGETLB | (SIZE.trailing_zeros() << k::MFD_HUGE_SHIFT);
    let fd = sys::memfd_create(c"baseline", flags).map_err(|e| ("memfd_create", e))?;
    sys::ftruncate(&fd, SIZE).map_err(|e| ("ftruncate", e))?;
    let m = sys::Mapping::map_aligned(&fd, 0, SIZE as usize, SIZE as usize, k::MAP_SHARED).map_err(|e| ("mmap", e))?;
    m.store_u32(0, 1);
    Ok(())
}

extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: `_start` (arch `entry!`) passes the kernel's initial stack pointer.
    let args = unsafe { sys::start::init(sp) };
    let secs = args.get(1).and_then(hugerace::parse::u64_dec).unwrap_or(5);
    let t0 = sys::monotonic_ns();
    let mut n = 0u64;
    let mut l = Line::new();
    loop {
        if let Err((what, e)) = one() {
            l.s("baseline: ").s(what).s(": ").errno(e).c(b'\n').emit(2);
            sys::exit_group(1);
        }
        n += 1;
        if sys::monotonic_ns() - t0 >= secs * 1_000_000_000 {
            break;
        }
    }
    l.s("baseline: ").u(n).s(" faults in ").u(sys::monotonic_ns() - t0).s(" ns\n").emit(1);
    sys::exit_group(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    sys::exit_group(3)
}

#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
