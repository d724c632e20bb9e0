//! What the kernel hands a new process: argc, argv, envp and the aux vector, read once from
//! the initial stack.

use super::errno::Errno;
use super::raw::check;
use core::sync::atomic::{AtomicUsize, Ordering};

static SP: AtomicUsize = AtomicUsize::new(0);

/// The command line, as `&[u8]` words (Linux arguments need not be UTF-8).
#[derive(Clone, Copy)]
pub struct Args {
    argc: usize,
    argv: usize,
}

/// Record the initial stack pointer; the program's start function calls this first.
///
/// # Safety
/// `sp` must be the stack pointer the kernel handed `_start`, with argc, argv, envp and the
/// aux vector above it, as the arch layer's `entry!` passes it on.
pub unsafe fn init(sp: *const usize) -> Args {
    SP.store(sp as usize, Ordering::Relaxed);
    // SAFETY: at process entry sp points at argc followed by argv[argc], NULL.
    let argc = unsafe { *sp };
    Args { argc, argv: sp as usize + core::mem::size_of::<usize>() }
}

impl Args {
    pub fn len(&self) -> usize {
        self.argc
    }
    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }
    pub fn get(&self, i: usize) -> Option<&'static [u8]> {
        if i >= self.argc {
            return None;
        }
        // SAFETY: argv[i] for i < argc is a NUL-terminated string that lives as long as the
        // process.
        unsafe {
            let p = *((self.argv + i * core::mem::size_of::<usize>()) as *const *const u8);
            if p.is_null() {
                return None;
            }
            Some(core::ffi::CStr::from_ptr(p as *const core::ffi::c_char).to_bytes())
        }
    }
}

const W: usize = core::mem::size_of::<usize>();

/// The address of envp[0] on the initial stack (right after argv's NULL), once `init` ran.
fn envp() -> Option<usize> {
    let sp = SP.load(Ordering::Relaxed);
    if sp == 0 {
        return None;
    }
    // SAFETY: sp is the initial stack pointer recorded by `init`: argc, then argv..NULL.
    let argc = unsafe { *(sp as *const usize) };
    Some(sp + W * (argc + 2))
}

/// The value of environment variable `name`, if set.
pub fn env(name: &[u8]) -> Option<&'static [u8]> {
    let mut p = envp()?;
    // SAFETY: envp..NULL holds NUL-terminated strings that live as long as the process.
    unsafe {
        loop {
            let e = *(p as *const *const u8);
            if e.is_null() {
                return None;
            }
            let kv = core::ffi::CStr::from_ptr(e as *const core::ffi::c_char).to_bytes();
            if let Some(v) = kv.strip_prefix(name).and_then(|r| r.strip_prefix(b"=")) {
                return Some(v);
            }
            p += W;
        }
    }
}

/// An aux vector entry (AT_PAGESZ and friends), if the kernel gave one.
pub fn auxv(key: usize) -> Option<usize> {
    let mut p = envp()?;
    // SAFETY: envp..NULL is followed by (key, value) pairs ending with AT_NULL; the kernel
    // guarantees the terminators.
    unsafe {
        while *(p as *const usize) != 0 {
            p += W;
        }
        p += W;
        loop {
            let k = *(p as *const usize);
            if k == 0 {
                return None;
            }
            if k == key {
                return Some(*((p + W) as *const usize));
            }
            p += 2 * W;
        }
    }
}

/// The base page size, from AT_PAGESZ: arm64 and ppc64 kernels may use 16K or 64K pages.
pub fn page_size() -> usize {
    match auxv(linux_raw_sys::auxvec::AT_PAGESZ as usize) {
        Some(p) if p.is_power_of_two() => p,
        _ => 4096,
    }
}

impl Args {
    /// Replace this process with the program named by argument `i`, passing arguments i..
    /// and this process's environment. Returns only on failure.
    pub fn exec_from(&self, i: usize) -> Errno {
        if i >= self.argc {
            return Errno::EINVAL;
        }
        let w = core::mem::size_of::<usize>();
        let argv = self.argv + i * w;
        let envp = self.argv + (self.argc + 1) * w;
        // SAFETY: argv[i] is NUL-terminated and argv[i..] ends with the kernel's NULL, as
        // does envp right after it.
        let path = unsafe { *(argv as *const usize) };
        match check(unsafe {
            crate::arch::syscall3(linux_raw_sys::general::__NR_execve as usize, path, argv, envp)
        }) {
            Ok(_) => Errno(0),
            Err(e) => e,
        }
    }
}
