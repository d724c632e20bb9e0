//! The architecture layer: the syscall instruction, `_start`, the clone child path, the
//! signal restorer and the cycle counter. One file per architecture, each exporting the
//! same names; no policy lives here.

#[cfg_attr(target_arch = "x86_64", path = "x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "aarch64.rs")]
#[cfg_attr(target_arch = "powerpc64", path = "powerpc64.rs")]
#[cfg_attr(target_arch = "riscv64", path = "riscv64.rs")]
#[cfg_attr(target_arch = "s390x", path = "s390x.rs")]
mod imp;

pub use imp::*;

/// The kernel reports failure as a return value in -4095..-1 on every architecture we
/// support (ppc64 and s390x included, after their arch file has normalised it).
#[inline(always)]
pub fn is_error(r: usize) -> bool {
    r > (-4096isize) as usize
}
