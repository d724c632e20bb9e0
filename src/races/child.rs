//! A check's steps in a child process of its own: what the kernel does to the child (a
//! SIGBUS where a page was owed) is then a fact the supervisor reads from its wait status,
//! never its own death. The child is a copy of the supervisor (a fork); it blocks the
//! termination signals (the supervisor alone acts on them, and restores the pool) and dies
//! with its parent.

use crate::out::Line;
use crate::step::{Step, Stop};
use crate::sys::{self, k, Ended, Forked};

/// Run `steps` in a child and return how it ended: its exit status (what `steps` returned)
/// or the signal that killed it. The child is given `bound_ns` (then killed: TBROK).
pub(super) fn in_child(steps: &dyn Fn() -> i32, bound_ns: u64, why: &mut Line) -> Step<Ended> {
    let parent = sys::getpid();
    let pid = match sys::fork() {
        Ok(Forked::Child) => {
            let ok = sys::block_termination(true).is_ok() && sys::set_pdeathsig(k::SIGKILL).is_ok() && sys::getppid() == parent;
            sys::exit_group(if ok { steps() } else { 125 })
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => return Err(Stop::sys(why, "fork of the check's process", e)),
    };
    let t0 = sys::monotonic_ns();
    let ended = loop {
        if let Some(e) = sys::child_ended(pid) {
            break Ok(e);
        }
        if let Some(sig) = sys::pending_signal() {
            break Err(crate::race::interrupted(why, sig));
        }
        if sys::monotonic_ns() - t0 > bound_ns {
            break Err(Stop::brok(why.f("the check's process did not end within {} s", &[bound_ns / 1_000_000_000])));
        }
        sys::sleep_ns(1_000_000);
    };
    if ended.is_err() {
        let _ = sys::kill(pid, k::SIGKILL);
    }
    let _ = sys::wait4(pid, 0);
    ended
}
