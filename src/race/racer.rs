//! The racer's side: setup (signals, pinning), the loop of start line and the kind's step
//! (the closing of a race is close.rs), and the fault handler.

use super::control::*;
use super::protocol::{End, RacerState, SetupStep};
use super::crew::Crew;
use crate::sys::{self, Errno};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// How long a racer waits at the start line for its partners before giving up (TBROK).
pub const START_LINE_NS: u64 = 2_000_000_000;
/// Affinity masks built on a racer's stack cover CPUs below this: the largest NR_CPUS any
/// of our architectures can be configured with (a 1 KiB mask, two pages less per racer).
const MAX_PIN_CPU: u32 = 8192;
const NEXT_SPIN_NS: u64 = 200_000;

fn fail_setup(s: &Slot, ctl: &Control, step: SetupStep, e: Errno) -> usize {
    s.step.store(step, Relaxed);
    s.errno.store(e.0 as u32, Relaxed);
    s.state.store(RacerState::SetupFailed, Release);
    ctl.started.fetch_add(1, Release);
    sys::futex_wake(&ctl.started, i32::MAX as u32);
    1
}

/// Pin the calling racer to its CPU and check that it runs there.
fn pin(me: &Slot) -> Result<(), (SetupStep, Errno)> {
    let cpu = me.cpu.load(Relaxed);
    let mut mask = [0u8; (MAX_PIN_CPU / 8) as usize];
    let len = ((cpu as usize / 64) + 1) * 8;
    if cpu >= MAX_PIN_CPU || !crate::parse::mask_set(&mut mask[..len], cpu) {
        return Err((SetupStep::Affinity, Errno::EINVAL));
    }
    sys::sched_setaffinity(0, &mask[..len]).map_err(|e| (SetupStep::Affinity, e))?;
    let seen = sys::getcpu().unwrap_or(u32::MAX);
    me.seen_cpu.store(seen, Relaxed);
    if seen != cpu {
        return Err((SetupStep::WrongCpu, Errno(0)));
    }
    Ok(())
}

/// The steps every child process of ours takes first: the supervisor alone acts on
/// termination signals, and the child must not outlive it.
pub(super) fn child_setup(crew: &Crew) -> Result<(), (SetupStep, Errno)> {
    sys::block_termination(true).map_err(|e| (SetupStep::Signals, e))?;
    sys::set_pdeathsig(sys::k::SIGKILL).map_err(|e| (SetupStep::Pdeathsig, e))?;
    if sys::getppid() != crew.parent {
        return Err((SetupStep::ParentGone, Errno(0)));
    }
    Ok(())
}

pub(super) fn racer(i: usize, crew: &Crew) -> usize {
    let ctl = crew.ctl();
    let me = crew.slot(i);
    me.self_tid.store(sys::gettid() as u32, Release);
    let setup = match crew.threads {
        false => child_setup(crew),
        // A thread of the host, which did the rest.
        true => sys::block_termination(true).map_err(|e| (SetupStep::Signals, e)),
    };
    if let Err((step, e)) = setup.and_then(|_| pin(me)) {
        return fail_setup(me, ctl, step, e);
    }
    if crew.rt && sys::set_fifo(1).is_err() {
        me.rt_refused.store(1, Relaxed);
    }
    me.state.store(RacerState::Ready, Release);
    ctl.started.fetch_add(1, Release);
    sys::futex_wake(&ctl.started, i32::MAX as u32);
    let racing = crew.racing;

    let mut g = 0u32;
    loop {
        // Wait for the next generation: spin a little, then sleep.
        let (mut spins, mut t0) = (0u32, 0u64);
        loop {
            let now = ctl.generation.load(Acquire);
            // Only the end of the run lets a racer go: on `stop` the closer of the current
            // iteration ends the run, and a racer leaving earlier would look vanished.
            if ctl.end.load(Acquire) != End::Running {
                return 0;
            }
            if now != g {
                g = now;
                break;
            }
            if t0 != u64::MAX {
                core::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins & 255 == 0 {
                    let t = sys::monotonic_ns();
                    if t0 == 0 {
                        t0 = t;
                    } else if t - t0 > NEXT_SPIN_NS {
                        t0 = u64::MAX;
                    }
                }
                continue;
            }
            let _ = sys::futex_wait(&ctl.generation, g, 0);
        }
        let armed = racing.arm(i, g > WARMUP);
        // Ready... set...
        me.ready.store(g, Release);
        match start_line(crew, g) {
            Err(j) => {
                me.missing.store(j as u32 + 1, Release);
                crew.finish(g);
                continue;
            }
            Ok(true) if racing.level() => {
                // Last to arrive: the others see our trigger only now; start with them.
                me.last.store(g, Relaxed);
                let (d, t) = (ctl.delay.load(Relaxed), sys::cycles());
                while sys::cycles().wrapping_sub(t) < d {}
            }
            _ => {}
        }
        let (t0, t1) = racing.step(crew, i, g > WARMUP, armed);
        me.t0.store(t0, Relaxed);
        me.t1.store(t1, Relaxed);
        crew.finish(g);
    }
}

/// Spin until every racer's trigger shows generation `g`; Ok(true) if they all did at the
/// first look (this racer arrived last). Bounded: Err(j) names a partner that did not arrive
/// within START_LINE_NS (the clock is read only every 64K spins, so the release is not slowed
/// by it).
fn start_line(crew: &Crew, g: u32) -> Result<bool, usize> {
    let mut spins: u32 = 0;
    let mut deadline = 0u64;
    loop {
        let Some(j) = (0..crew.n).find(|&j| crew.slot(j).ready.load(Acquire) != g) else { return Ok(spins == 0) };
        spins = spins.wrapping_add(1);
        // No pause for the first spins: a pause (up to ~140 cycles on x86) is as long as the
        // cache-line transfer we are waiting for and would show up as skew. Past that the
        // partner is late anyway, and pausing spares its hyperthread sibling.
        if spins > 1 << 12 {
            core::hint::spin_loop();
        }
        if spins & 0xffff == 0 {
            let now = sys::monotonic_ns();
            if deadline == 0 {
                deadline = now + START_LINE_NS;
            } else if now > deadline || crew.ctl().stop.load(Relaxed) != 0 {
                return Err(j);
            }
        }
    }
}

/// SIGBUS/SIGSEGV in a racer: write down what the kernel did and what the pool held at that
/// moment, count the racer finished, and end it alone. Anything else (a fault outside the
/// racers) returns for the default action.
pub(super) fn on_fault(crew: &Crew, f: sys::Fault) {
    let tid = sys::gettid() as u32;
    let ctl = crew.ctl();
    let Some(s) = (0..crew.n).map(|i| crew.slot(i)).find(|s| s.self_tid.load(Acquire) == tid) else { return };
    // First the kind's look at the moment (what its other racers are doing), then the
    // pool, while whoever holds the last page still holds it.
    s.fault_note.store(crew.racing.at_fault(), Relaxed);
    if let Ok(c) = crate::pool::counts(crew.size) {
        s.fault_total.store(c.total, Relaxed);
        s.fault_free.store(c.free, Relaxed);
    }
    let g = ctl.generation.load(Acquire);
    s.fault_sig.store(f.sig, Relaxed);
    s.fault_code.store(f.code as u32, Relaxed);
    s.fault_addr.store(f.addr as u64, Relaxed);
    s.fault_cpu.store(sys::getcpu().unwrap_or(u32::MAX), Relaxed);
    s.state.store(RacerState::Dead, Release);
    crew.finish(g);
    sys::exit_thread(128 + f.sig as i32)
}
