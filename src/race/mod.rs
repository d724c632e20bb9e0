//! The engine of every racing kind: racers pinned to distinct CPUs, lined up by spin
//! triggers on a shared page (no futex on the release path), each taking its step on the
//! contested hugepage (what the step is, a write or a madvise, is the kind's: `Racing`). A
//! racer that the kernel fails with SIGBUS records what happened on the control page and
//! ends alone.
//!
//! One iteration (one race): each racer sets its own trigger to the generation and spins
//! until every partner's matches; all take their steps, stamping the cycle counter on both
//! sides; the last racer to finish closes the iteration (close.rs). The kind judges the
//! stamps (a race in which the racers were never where the bug is at one moment is missed,
//! counted, and run again); the closer gives the page back and makes race 1's state again,
//! so that the pool reads exactly as before race 1, checks that it does, and wakes the
//! others, which sleep on a futex between iterations. `session` holds the steps around it:
//! the pool, the file and the fill, --keep-going's restarts, and the verdict.
//!
//! The supervisor (the process that owns the pool) never races: racers are processes
//! of their own, or threads of one child process (as the kind says), so
//! that nothing that kills a racer can kill the supervisor. It sleeps until the run is
//! over, waking now and then to watch for signals, racers gone missing, and iterations
//! that never end; it judges a racer's death by what killed it.

mod close;
mod control;
mod crew;
mod host;
mod protocol;
mod racer;
mod racing;
pub mod session;
pub mod sweep;
mod verdict;
mod watch;

pub use control::{Judge, WARMUP};
pub use crew::{Crew, Renew, Tally};
pub use racing::{Judged, Racing, State};
pub use watch::{death_line, interrupted, Death, Fault, Outcome, Race};
use host::HostArg;
use watch::oom_kills;

use crate::out::Line;
use crate::step::{Step, Stop};
use crate::sys::{self, k, Errno, Stacks};
use protocol::End;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use racer::START_LINE_NS;

const STACK: usize = 64 * 1024;

impl<'a> Race<'a> {
    /// Start the crew's racers, racer i on the CPU that `choose` assigns through
    /// `give(i, cpu)`, and wait until each is pinned. On failure the reason is in `why`.
    pub fn start(crew: &'a Crew<'a>, choose: impl FnOnce(&mut dyn FnMut(u32, u32)), why: &mut Line) -> Step<Race<'a>> {
        let n = crew.n;
        crew.clear_start();
        let clock0 = (sys::monotonic_ns(), sys::cycles());
        choose(&mut |i, cpu| crew.slot(i as usize).cpu.store(cpu, Relaxed));
        // One stack per racer, and one for the racer threads' process.
        let stacks = Stacks::new(n + 1, STACK).map_err(|e| Stop::sys(why, "mmap racer stacks", e))?;
        let mut race = Race { crew, stacks: None, spawned: 0, host: 0, oom_before: oom_kills() };
        sys::on_faults(crew, racer::on_fault).map_err(|e| Stop::sys(why, "sigaction(SIGBUS)", e))?;
        let r = match crew.threads {
            false => (0..n).try_for_each(|i| {
                stacks.spawn(i, k::SIGCHLD, &crew.slot(i).tid, racer::racer, crew).map(|_| race.spawned += 1).map_err(|e| (i, e))
            }),
            true => {
                // The host's copy of this (made at the clone) is what it reads.
                let arg = HostArg { crew, stacks: &stacks };
                stacks.spawn(n, k::SIGCHLD, &crew.ctl().host, host::host, &arg).map(|p| (race.spawned, race.host) = (1, p)).map_err(|e| (0, e))
            }
        };
        race.stacks = Some(stacks);
        if let Err((i, e)) = r {
            why.f("clone of racer {}: {errno}", &[i as u64 + 1, e.0 as u64]);
            if e == Errno::EAGAIN {
                why.s(" (process limit reached? see RLIMIT_NPROC)");
            }
            return Err(Stop::brok(why));
        }
        race.wait_started(why)?;
        crew.racing.first_aim(clock0);
        Ok(race)
    }

    /// Whether a racer was refused SCHED_FIFO.
    pub fn rt_refused(&self) -> bool {
        (0..self.crew.n).any(|i| self.crew.slot(i).rt_refused.load(Acquire) != 0)
    }

    /// Race until `want` races count in all, or until CLOCK_MONOTONIC passes `until_ns`,
    /// from a page in race 1's state now; a race that takes longer than `bound_ns` (a 1G
    /// fault under emulation is slow: --iteration-timeout) is a hang. `progress(races)` is
    /// called from the supervisor now and then. On failure the reason is in `why`.
    pub fn run(&mut self, want: u64, until_ns: u64, bound_ns: u64, mut progress: impl FnMut(u64), why: &mut Line) -> Step<Outcome> {
        let ctl = self.crew.ctl();
        ctl.want.store(want, Relaxed);
        ctl.until_ns.store(until_ns, Relaxed);
        ctl.generation.store(1, Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
        let mut last = (u64::MAX, sys::monotonic_ns());
        let mut stopping = None;
        loop {
            let end = ctl.end.load(Acquire);
            if end != End::Running {
                return match stopping {
                    Some(sig) => Err(interrupted(why, sig)),
                    None => self.ended(end, why),
                };
            }
            // Any finished racer marks progress: a run of missed races is no hang.
            let done = ctl.iterations.load(Acquire) + ctl.missed.load(Acquire);
            let now = sys::monotonic_ns();
            if done != last.0 {
                last = (done, now);
                progress(ctl.iterations.load(Acquire));
            } else if now - last.1 > bound_ns {
                return Err(Stop::brok(why.f("race {} did not end within {} s", &[ctl.iterations.load(Acquire) + 1, bound_ns / 1_000_000_000])));
            } else if now - last.1 > START_LINE_NS
                && let Some(i) = self.stopped()
            {
                // A racer stopped where no partner spins on it (closing an iteration).
                return Err(Stop::brok(why.f(
                    "racer {} never reached the start line of race {}: it is stopped (SIGSTOP or a debugger)",
                    &[i as u64 + 1, ctl.iterations.load(Acquire) + ctl.missed.load(Acquire) + 1],
                )));
            }
            if stopping.is_none() {
                // End at the next iteration boundary, so the racers stop cleanly.
                stopping = sys::pending_signal();
                if stopping.is_some() {
                    ctl.stop.store(1, Release);
                }
            }
            if let Some(d) = self.vanished() {
                return Ok(Outcome::Killed(d));
            }
            let _ = sys::futex_wait(ctl.end.raw(), End::Running as u32, 100_000_000);
        }
    }
}
