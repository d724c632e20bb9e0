//! launch: run a program N times for `make bench` and report, per run, its wall time and the
//! peak RSS of it and its children (wait4's rusage). A launcher of a few KB keeps the
//! pre-exec part of the peak small; a Python parent would add its own 15 MB to it.
//!
//! Usage: `launch N PROGRAM [ARGS...]`; prints `launch: <ns> ns <kb> KB <status>` per run.
#![no_std]
#![no_main]

use hugerace::out::Line;
use hugerace::sys::{self, Forked};

hugerace::entry!(start);
hugerace::mem_functions!();

extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: `_start` (arch `entry!`) passes the kernel's initial stack pointer.
    let args = unsafe { sys::start::init(sp) };
    let n = args.get(1).and_then(hugerace::parse::u64_dec).unwrap_or(1);
    let mut l = Line::new();
    for _ in 0..n {
        let t0 = sys::monotonic_ns();
        match sys::fork() {
            Ok(Forked::Child) => {
                let e = args.exec_from(2);
                l.s("launch: exec: ").errno(e).c(b'\n').emit(2);
                sys::exit_group(127);
            }
            Ok(Forked::Parent(pid)) => match sys::wait4(pid, 0) {
                Ok(w) => {
                    l.s("launch: ").u(sys::monotonic_ns() - t0).s(" ns ").u(w.maxrss_kb).s(" KB ").i(w.status as i64).c(b'\n').emit(1);
                }
                Err(e) => {
                    l.s("launch: wait4: ").errno(e).c(b'\n').emit(2);
                    sys::exit_group(1);
                }
            },
            Err(e) => {
                l.s("launch: fork: ").errno(e).c(b'\n').emit(2);
                sys::exit_group(1);
            }
        }
    }
    sys::exit_group(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    sys::exit_group(3)
}

#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
