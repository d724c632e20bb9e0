//! The typed syscall layer: every call returns `Result<T, Errno>`. All `unsafe` of the
//! program lives here and in `arch`; the layers above are safe code.

mod boot;
pub mod errno;
mod fs;
pub mod memfns;
mod mem;
mod net;
mod proc;
pub mod start;

pub use boot::*;
pub use errno::{bus_code, Errno};
pub use fs::*;
pub use mem::*;
pub use net::*;
pub use proc::*;

pub type Result<T> = core::result::Result<T, Errno>;

pub use linux_raw_sys::general as k;

/// Decode a raw return value: the one generic place where -4095..-1 means -errno.
#[inline(always)]
pub(crate) fn check(r: usize) -> Result<usize> {
    if crate::arch::is_error(r) { Err(Errno(r.wrapping_neg() as u16)) } else { Ok(r) }
}

macro_rules! sc {
    ($n:expr) => { crate::sys::check(unsafe { crate::arch::syscall0($n as usize) }) };
    ($n:expr, $a:expr) => { crate::sys::check(unsafe { crate::arch::syscall1($n as usize, $a as usize) }) };
    ($n:expr, $a:expr, $b:expr) => {
        crate::sys::check(unsafe { crate::arch::syscall2($n as usize, $a as usize, $b as usize) })
    };
    ($n:expr, $a:expr, $b:expr, $c:expr) => {
        crate::sys::check(unsafe { crate::arch::syscall3($n as usize, $a as usize, $b as usize, $c as usize) })
    };
    ($n:expr, $a:expr, $b:expr, $c:expr, $d:expr) => {
        crate::sys::check(unsafe {
            crate::arch::syscall4($n as usize, $a as usize, $b as usize, $c as usize, $d as usize)
        })
    };
    ($n:expr, $a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
        crate::sys::check(unsafe {
            crate::arch::syscall5($n as usize, $a as usize, $b as usize, $c as usize, $d as usize, $e as usize)
        })
    };
    ($n:expr, $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        crate::sys::check(unsafe {
            crate::arch::syscall6($n as usize, $a as usize, $b as usize, $c as usize, $d as usize,
                                  $e as usize, $f as usize)
        })
    };
}
pub(crate) use sc;
