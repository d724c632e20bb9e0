//! One hugerace per hugepage size at a time. Two instances on one size would each take all
//! pages but one and break each other's race, so the pool of a size is locked from its
//! preparation to its restore. The lock is a unix socket bound in the abstract namespace
//! (`\0hugerace-2M`): it needs no filesystem (an initramfs has none to spare), the kernel
//! drops it with its last holder however that ends (SIGKILL included), and a peer that
//! connects learns the holder's pid through SO_PEERCRED.
//!
//! Limits: abstract names live in a network namespace, so instances in different network
//! namespaces do not see each other's lock (they still share the pool).

use crate::out::Line;
use crate::report::Reporter;
use crate::step::{Step, Stop};
use crate::sys::{self, Errno, Fd};

/// How long a second instance waits for the holder before giving up (TCONF).
pub const WAIT_NS: u64 = 5_000_000_000;
const POLL_NS: u64 = 100_000_000;

/// The lock of one size while held; released when dropped (or when the process ends).
pub struct Lock {
    _sock: Option<Fd>,
}

fn name(size: u64) -> Line {
    let mut l = Line::new();
    l.s("hugerace-").size(size);
    l
}

/// Who holds the lock: the pid of the listening socket's owner, if the kernel tells.
fn holder(name: &[u8]) -> Option<i32> {
    let s = sys::unix_socket(true).ok()?;
    sys::connect_abstract(&s, name).ok()?;
    sys::peer_pid(&s).ok().filter(|p| *p > 0)
}

fn write_holder(l: &mut Line, pid: Option<i32>) {
    l.s("another hugerace");
    if let Some(p) = pid {
        l.s(" (pid ").u(p as u64).c(b')');
    }
}

/// Take the lock of `size`, waiting up to WAIT_NS for another instance to finish. Without
/// unix sockets (a kernel without CONFIG_UNIX, a seccomp filter) the run goes on unlocked,
/// saying so.
/// On failure the reason is in `why`.
pub fn take(size: u64, rep: &mut Reporter, why: &mut Line) -> Step<Lock> {
    let n = name(size);
    let name = n.as_bytes();
    let t0 = sys::monotonic_ns();
    let mut told = false;
    loop {
        let s = match sys::unix_socket(false) {
            Ok(s) => s,
            Err(e) => return Ok(unlocked(rep, size, "socket", e)),
        };
        let r = sys::bind_abstract(&s, name).and_then(|_| sys::listen(&s, 64));
        match r {
            Ok(()) => return Ok(Lock { _sock: Some(s) }),
            Err(e) if e != Errno(linux_raw_sys::errno::EADDRINUSE as u16) => return Ok(unlocked(rep, size, "bind", e)),
            Err(_) => {}
        }
        drop(s);
        // Ask the holder's pid only when telling it: each connect stays queued on the
        // holder's socket until it ends (it never accepts).
        if let Some(sig) = sys::pending_signal() {
            why.s("interrupted by ").sig(sig).s(" while waiting for ");
            write_holder(why, holder(name));
            return Err(Stop::brok(why));
        }
        if sys::monotonic_ns() - t0 >= WAIT_NS {
            write_holder(why, holder(name));
            return Err(Stop::conf(
                why.f(" is racing on {size} hugepages (it holds the lock @", &[size]).b(name)
                    .f("); waited {} s, try again when it is done", &[WAIT_NS / 1_000_000_000]),
            ));
        }
        if !told {
            told = true;
            rep.info(&|l| {
                l.f("waiting up to {} s for ", &[WAIT_NS / 1_000_000_000]);
                write_holder(l, holder(name));
                l.f(" to finish with {size} hugepages", &[size]);
            });
        }
        sys::sleep_ns(POLL_NS);
    }
}

fn unlocked(rep: &mut Reporter, size: u64, call: &str, e: Errno) -> Lock {
    rep.info(&|l| {
        l.f("no instance lock for {size} (", &[size]).s(call).f(": {errno}); another hugerace could disturb this run", &[e.0 as u64]);
    });
    Lock { _sock: None }
}
