//! The bottom of the typed layer: how a raw return value becomes `Result<usize, Errno>`,
//! and `sc!`, which makes a syscall through the arch layer and decodes it.

use super::errno::Errno;

pub type Result<T> = core::result::Result<T, Errno>;

/// Decode a raw return value: the one generic place where -4095..-1 means -errno.
#[inline(always)]
pub(crate) fn check(r: usize) -> Result<usize> {
    if crate::arch::is_error(r) { Err(Errno(r.wrapping_neg() as u16)) } else { Ok(r) }
}

macro_rules! sc {
    ($n:expr) => { crate::sys::raw::check(unsafe { crate::arch::syscall0($n as usize) }) };
    ($n:expr, $a:expr) => { crate::sys::raw::check(unsafe { crate::arch::syscall1($n as usize, $a as usize) }) };
    ($n:expr, $a:expr, $b:expr) => {
        crate::sys::raw::check(unsafe { crate::arch::syscall2($n as usize, $a as usize, $b as usize) })
    };
    ($n:expr, $a:expr, $b:expr, $c:expr) => {
        crate::sys::raw::check(unsafe { crate::arch::syscall3($n as usize, $a as usize, $b as usize, $c as usize) })
    };
    ($n:expr, $a:expr, $b:expr, $c:expr, $d:expr) => {
        crate::sys::raw::check(unsafe {
            crate::arch::syscall4($n as usize, $a as usize, $b as usize, $c as usize, $d as usize)
        })
    };
    ($n:expr, $a:expr, $b:expr, $c:expr, $d:expr, $e:expr) => {
        crate::sys::raw::check(unsafe {
            crate::arch::syscall5($n as usize, $a as usize, $b as usize, $c as usize, $d as usize, $e as usize)
        })
    };
    ($n:expr, $a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr) => {
        crate::sys::raw::check(unsafe {
            crate::arch::syscall6($n as usize, $a as usize, $b as usize, $c as usize, $d as usize,
                                  $e as usize, $f as usize)
        })
    };
}
pub(crate) use sc;
