//! What PID-1 mode needs beyond the rest of `sys`: a plain fork, descriptor duplication,
//! sync and power-off.

use super::errno::Errno;
use super::raw::{check, sc, Result};
use linux_raw_sys::general as k;

/// Make `new` a copy of `old` (flags 0: the copy survives exec).
pub fn dup3(old: i32, new: i32) -> Result<()> {
    // SAFETY: plain integers.
    sc!(k::__NR_dup3, old, new, 0).map(drop)
}

/// Flush every filesystem's dirty data.
pub fn sync() {
    // SAFETY: no arguments.
    let _ = sc!(k::__NR_sync);
}

/// Power the machine off. Returns only on failure (not root, or the kernel refused).
pub fn power_off() -> Errno {
    // SAFETY: plain integers; the magic numbers are the kernel's.
    match sc!(k::__NR_reboot, k::LINUX_REBOOT_MAGIC1, k::LINUX_REBOOT_MAGIC2, k::LINUX_REBOOT_CMD_POWER_OFF, 0) {
        Ok(_) => Errno(0),
        Err(e) => e,
    }
}

/// Make Ctrl-Alt-Del a SIGINT to init rather than a reboot. Refused (EINVAL) in a PID
/// namespace other than the machine's, EPERM without CAP_SYS_BOOT: PID-1 mode's test of
/// whether it is the machine's own init.
pub fn ctrl_alt_del_off() -> Result<()> {
    // SAFETY: plain integers; the magic numbers are the kernel's.
    sc!(k::__NR_reboot, k::LINUX_REBOOT_MAGIC1, k::LINUX_REBOOT_MAGIC2, k::LINUX_REBOOT_CMD_CAD_OFF, 0).map(drop)
}

/// Halt the machine: the fallback when power-off is refused.
pub fn halt() -> Errno {
    // SAFETY: as power_off.
    match sc!(k::__NR_reboot, k::LINUX_REBOOT_MAGIC1, k::LINUX_REBOOT_MAGIC2, k::LINUX_REBOOT_CMD_HALT, 0) {
        Ok(_) => Errno(0),
        Err(e) => e,
    }
}

/// Which side of a fork the caller is on.
pub enum Forked {
    Child,
    Parent(i32),
}

/// fork(2): a child process with a copy of this address space, returning here on both sides.
/// Call it only while the process has one thread.
///
/// clone3 has one argument layout on every arch; kernels before 5.3 lack it, and there the
/// old clone is used (its argument order is the arch layer's business).
pub fn fork() -> Result<Forked> {
    let mut args: k::clone_args = unsafe_zeroed_clone_args();
    args.exit_signal = k::SIGCHLD as u64;
    // SAFETY: args is a valid clone_args of the size passed; without CLONE_VM and with a zero
    // stack the child runs on a copy-on-write copy of this stack, as after fork(2).
    let r = sc!(k::__NR_clone3, &mut args as *mut k::clone_args, core::mem::size_of::<k::clone_args>());
    let r = match r {
        Err(Errno::ENOSYS) => {
            // SAFETY: as above; the arch layer knows the old clone's argument order.
            check(unsafe { crate::arch::clone_fork(k::SIGCHLD as usize) })
        }
        r => r,
    };
    match r? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

fn unsafe_zeroed_clone_args() -> k::clone_args {
    // SAFETY: clone_args is a struct of u64 fields; all zeroes is valid.
    unsafe { core::mem::MaybeUninit::<k::clone_args>::zeroed().assume_init() }
}

/// execve(2) of `path` with the words `argv` (at most 15; argv[0] is the name the program
/// sees, which may differ: a multi-call binary) and an empty environment, for a test image's
/// /init that runs programs of its own choosing (examples/detect.rs). Returns only on failure.
pub fn execve(path: &core::ffi::CStr, argv: &[&core::ffi::CStr]) -> Errno {
    let mut v = [0usize; 16];
    if argv.is_empty() || argv.len() >= v.len() {
        return Errno::EINVAL;
    }
    for (slot, a) in v.iter_mut().zip(argv) {
        *slot = a.as_ptr() as usize;
    }
    let envp = [0usize; 1];
    // SAFETY: every pointer is a NUL-terminated string that outlives the call; argv and envp
    // end with NULL.
    match sc!(k::__NR_execve, path.as_ptr() as usize, v.as_ptr(), envp.as_ptr()) {
        Ok(_) => Errno(0),
        Err(e) => e,
    }
}
