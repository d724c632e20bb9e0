//! The process that hosts private-mode racer threads.


use super::protocol::{End, SetupStep};
use super::racer::{child_setup, racer};
use super::crew::Crew;
use crate::sys::{self, Errno, Stacks};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// What the host of private-mode racers needs (its own copy, made at the clone).
pub(super) struct HostArg<'a> {
    pub(super) crew: &'a Crew<'a>,
    pub(super) stacks: &'a Stacks,
}

/// How long the host of private racers waits for each thread to leave.
pub(super) const JOIN_NS: u64 = 5_000_000_000;

/// Private mode's racer threads live in a process of their own, so that whatever kills
/// them (a fatal signal ends a whole thread group) leaves the supervisor alive to restore
/// the pool and report. It maps the contested page itself: a MAP_PRIVATE hugetlb mapping
/// inherited through fork carries no reservation, so only the process that races on it
/// can hold iteration 1's state.
pub(super) fn host(_: usize, a: &HostArg) -> usize {
    let crew = a.crew;
    let ctl = crew.ctl();
    let failed = |step: SetupStep, e: Errno| {
        ctl.host_errno.store(e.0 as u32, Relaxed);
        ctl.host_step.store(step, Release);
        sys::futex_wake(&ctl.started, i32::MAX as u32);
        sys::exit_group(1)
    };
    if let Err((step, e)) = child_setup(crew) {
        failed(step, e);
    }
    if let Err(e) = (crew.renew)() {
        failed(SetupStep::Map, e);
    }
    for i in 0..crew.n {
        if let Err(e) = a.stacks.spawn(i, sys::THREAD_FLAGS, &crew.slot(i).tid, racer, crew) {
            failed(SetupStep::Clone, e);
        }
    }
    // (A bounded wait: the racers' own between-race sleep is the only unbounded futex wait,
    // which lets a test pick it out.)
    while ctl.end.load(Acquire) == End::Running {
        let _ = sys::futex_wait(ctl.end.raw(), End::Running as u32, 1_000_000_000);
    }
    // Let the threads leave on their own (a stopped one is killed with us).
    for i in 0..crew.n {
        let tid = &crew.slot(i).tid;
        let t0 = sys::monotonic_ns();
        loop {
            let t = tid.load(Acquire);
            if t == 0 || sys::monotonic_ns() - t0 > JOIN_NS {
                break;
            }
            let _ = sys::futex_wait(tid, t, 50_000_000);
        }
    }
    sys::exit_group(0)
}
