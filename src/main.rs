//! The binary: `_start`, the panic handler, and the hand-off to `hugerace::run`.
#![no_std]
#![no_main]

hugerace::entry!(start);
hugerace::mem_functions!();

extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: `_start` (arch `entry!`) passes the kernel's initial stack pointer.
    let args = unsafe { hugerace::sys::start::init(sp) };
    if hugerace::sys::getpid() == 1 {
        hugerace::pid1::main(args)
    }
    let cfg = hugerace::run::defaults(&args);
    hugerace::sys::exit_group(hugerace::run::main(args, cfg))
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // The pool first: whatever else fails, it must not stay raised. (A racer process has
    // a copy of the record and leaves it to its supervisor.)
    hugerace::pool::restore_saved();
    hugerace::pid1::on_panic();
    let _ = hugerace::sys::write_all(2, b"hugerace: TBROK: internal error (panic)\n");
    hugerace::sys::exit_group(2)
}

/// `cargo test` builds this binary with panic=unwind whatever the profile says; the symbol
/// only has to exist for the link. Release builds never reach it.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
