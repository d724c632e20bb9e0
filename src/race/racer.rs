//! The racer's side: setup (signals, pinning), the loop of start line and write, the
//! closing of an iteration by whichever racer finishes it last, and the fault handler.

use super::control::*;
use super::crew::Crew;
use crate::step::Mode;
use crate::sys::{self, Errno};
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// How long a racer waits at the start line for its partners before giving up (TBROK).
pub const START_LINE_NS: u64 = 2_000_000_000;
/// Affinity masks built on a racer's stack cover CPUs below this: the largest NR_CPUS any
/// of our architectures can be configured with (a 1 KiB mask, two pages less per racer).
const MAX_PIN_CPU: u32 = 8192;
/// The last arriver never waits longer than this many ticks (a few µs at any counter rate).
const START_DELAY_MAX: i64 = 1 << 13;
const START_DELAY_STEP: i64 = 1 << 8;

impl Crew<'_> {
    pub(super) fn end(&self, how: u32) {
        let ctl = self.ctl();
        let t = ctl.lap_t0.swap(0, AcqRel);
        if t != 0 {
            ctl.race_ns.fetch_add(sys::monotonic_ns().saturating_sub(t), Relaxed);
        }
        ctl.end.store(how, Release);
        sys::futex_wake(&ctl.end, i32::MAX as u32);
    }

    fn release(&self, g: u32) {
        let ctl = self.ctl();
        ctl.generation.store(g.wrapping_add(1), Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
    }

    /// Count one racer finished with generation g; the last one closes the iteration.
    /// AcqRel: the closer must see every partner's stamps and state, which each stored
    /// before its own increment (Release alone would let a weakly ordered CPU, arm64 or
    /// ppc64, hand the closer stale stamps).
    fn finish(&self, g: u32) {
        let n = self.n as u32;
        let f = self.ctl().finished.fetch_add(1, AcqRel).wrapping_add(1);
        if f == g.wrapping_mul(n) {
            self.close(g);
        }
    }

    /// Close generation g (only the racer that finished it last gets here): judge and
    /// record it, then end the run, or put the contested page back in iteration 1's state
    /// and release the next generation.
    fn close(&self, g: u32) {
        let ctl = self.ctl();
        let stop = ctl.stop.load(Acquire) != 0;
        if g <= WARMUP {
            // A warm-up lap: caches and branch predictors learn the rendezvous and the
            // last arriver's wait is tuned, so that even a single race starts tight.
            self.tune_delay(g);
            if stop || (0..self.n).any(|i| self.slot(i).missing.load(Acquire) != 0) {
                return self.end(if stop { DONE } else { MISSING });
            }
            if g == WARMUP {
                ctl.lap_t0.store(sys::monotonic_ns(), Relaxed);
            }
            return self.release(g);
        }
        let mut j = Judge::default();
        let mut dead = false;
        for i in 0..self.n {
            let s = self.slot(i);
            if s.state.load(Acquire) == DEAD {
                dead = true;
            } else if s.missing.load(Acquire) != 0 {
                return self.end(MISSING);
            } else {
                j.add(s.t0.load(Acquire), s.t1.load(Acquire));
            }
        }
        if dead {
            // A failed race counts, whatever the stamps of the survivors say.
            ctl.iterations.fetch_add(1, Release);
            self.next_aim(true, false);
            return self.end(FAULTED);
        }
        // The race just run started level, or its racers were staggered on purpose.
        let level = ctl.aim.load(Relaxed) == 0 && self.mode != Mode::Dontneed;
        let overlapped = if self.mode == Mode::Dontneed {
            self.judge_dontneed()
        } else {
            // The start skew is the rendezvous's: measured on races that start level.
            if ctl.aim.load(Relaxed) == 0 {
                ctl.skew.add(j.skew());
                self.tune_delay(g);
            }
            ctl.fault.add(j.fault);
            let ok = j.overlapped();
            self.next_aim(false, !ok);
            ok
        };
        let done = if overlapped {
            ctl.missed_row.store(0, Relaxed);
            ctl.passed.fetch_add(1, Release);
            ctl.iterations.fetch_add(1, Release) + 1
        } else {
            // A missed race proves nothing: it is counted, and raced again.
            ctl.missed.fetch_add(1, Release);
            if ctl.missed_row.fetch_add(1, Relaxed) + 1 >= MISS_BOUND {
                return self.end(MISSED_TOO_OFTEN);
            }
            // On a loaded machine the racers can fall into opposite time slices of their
            // CPUs and stay there, missing race after race: a random pause of up to a
            // millisecond shakes them out of step. (A staggered race that missed was
            // staggered too far: no pause for that.)
            if level {
                sys::sleep_ns((sys::cycles() >> 4) % 1_000_000);
            }
            ctl.iterations.load(Acquire)
        };
        let (want, until) = (ctl.want.load(Relaxed), ctl.until_ns.load(Relaxed));
        if stop || (want != 0 && done >= want) || (until != 0 && sys::monotonic_ns() >= until) {
            return self.end(DONE);
        }
        if let Err(e) = (self.renew)() {
            ctl.renew_errno.store(e.0 as u32, Relaxed);
            return self.end(RENEW_FAILED);
        }
        if !self.state_is_original() {
            return self.end(STATE_CHANGED);
        }
        self.release(g)
    }

    /// Count the race under its entry of the sweep (a miss too: an entry that misses must not
    /// look promising), then aim the next race. The alloc race's entries are OFFSETS_NS (or
    /// --offset's one); the dontneed race's are twelfths of the madvise's mean duration,
    /// 1/12 to 12/12, for where the window lies inside the call depends on the machine.
    /// Three races in four take the entry that has failed races most often so far, (failed
    /// + 1) / (races + 2), so that an entry never raced looks promising and gets its turn
    /// early; the fourth takes any entry, so that none is written off after a few unlucky
    /// races. With no failure at all the least raced entry leads: an even sweep. An entry
    /// that has missed more than half its races (racer 2 behind racer 1's whole fault) is
    /// left out once it has had 4, so that no time goes to races that cannot happen.
    pub(super) fn next_aim(&self, failed: bool, missed: bool) {
        let ctl = self.ctl();
        let b = ctl.bin.load(Relaxed) as usize % OFFSETS;
        ctl.bin_races[b].fetch_add(1, Relaxed);
        if failed {
            ctl.bin_failed[b].fetch_add(1, Relaxed);
        }
        if missed {
            ctl.bin_missed[b].fetch_add(1, Relaxed);
        }
        let fixed = ctl.offset_ns.load(Relaxed);
        let (num, den) = (ctl.tick_num.load(Relaxed), ctl.tick_den.load(Relaxed).max(1));
        if fixed != u64::MAX && self.mode != Mode::Dontneed {
            return ctl.aim.store(fixed.saturating_mul(num) / den, Relaxed);
        }
        let r = (sys::cycles() >> 3).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
        let races = |b: usize| ctl.bin_races[b].load(Relaxed) as u64;
        let open = |b: usize| races(b) < 4 || ctl.bin_missed[b].load(Relaxed) as u64 * 2 <= races(b);
        // Open entries only, rated; the others rate 0 (entry 0, level, always stays open).
        // (Scaled far up: on a sound kernel the rates fall as 1 / races, and must not all
        // round down to the closed entries' 0.)
        let rate = |b: usize| if open(b) || b == 0 { ((ctl.bin_failed[b].load(Relaxed) as u64 + 1) << 32) / (races(b) + 2) } else { 0 };
        // Ties go to the first from a random start, so that equals share the races.
        let from = (r >> 8) as usize % OFFSETS;
        let best = (0..OFFSETS).map(|k| (from + k) % OFFSETS).fold(from, |m, b| if rate(b) > rate(m) { b } else { m });
        let any = (r >> 16) as usize % OFFSETS;
        let b = if r & 3 == 0 && rate(any) > 0 { any } else { best };
        ctl.bin.store(b as u32, Relaxed);
        let aim = if self.mode == Mode::Dontneed {
            ctl.madvise_ticks.load(Relaxed) * (b as u64 + 1) / OFFSETS as u64
        } else {
            OFFSETS_NS[b].saturating_mul(num) / den
        };
        ctl.aim.store(aim, Relaxed);
    }

    /// The dontneed race's judge: the writer's store must have faulted (so the madvise had
    /// unmapped the page already) and begun before the madvise returned (so the page was not
    /// yet surely freed). Then aim the next race's writer.
    fn judge_dontneed(&self) -> bool {
        let ctl = self.ctl();
        let (a, b) = (self.slot(0), self.slot(1));
        let (a0, a1, b0, b1) = (a.t0.load(Acquire), a.t1.load(Acquire), b.t0.load(Acquire), b.t1.load(Acquire));
        let took = a1.wrapping_sub(a0);
        ctl.madvise.add(took);
        ctl.skew.add(b0.saturating_sub(a0));
        ctl.fault.add(b1.wrapping_sub(b0));
        let avg = match ctl.madvise_ticks.load(Relaxed) {
            0 => took,
            m => (m * 7 + took) / 8,
        };
        ctl.madvise_ticks.store(avg, Relaxed);
        let overlapped = b.faulted.load(Acquire) != 0 && b0 < a1;
        self.next_aim(false, !overlapped);
        overlapped
    }

    /// Whether the pool reads as before race 1: the same free pages, the same reservations.
    /// What was read is kept for the report when it does not.
    fn state_is_original(&self) -> bool {
        let ctl = self.ctl();
        let (free, resv) = (ctl.expect_free.load(Relaxed), ctl.expect_resv.load(Relaxed));
        if free == UNCHECKED {
            return true;
        }
        let counts = match &self.census {
            Some(c) => c.free_resv(),
            None => crate::pool::free_resv(self.size),
        };
        let (f, r) = counts.unwrap_or((UNCHECKED, UNCHECKED));
        ctl.seen_free.store(f, Relaxed);
        ctl.seen_resv.store(r, Relaxed);
        f == free && r == resv
    }

    /// Steer the last arriver's wait so that its write starts when its partners', who learn
    /// of its trigger one cache-line transfer later: add half the signed gap between their
    /// mean start and its own. Converges in a few iterations; bounded by START_DELAY_MAX.
    /// Only on races that start level (the offset sweep wants its gaps).
    fn tune_delay(&self, g: u32) {
        if self.mode == Mode::Dontneed {
            return;
        }
        // The last arriver, then its partners' mean start relative to its own: differences
        // of nearby stamps fit an i64, so no 128-bit division routine lands in the binary.
        let Some(j) = (0..self.n).rev().find(|&i| self.slot(i).last.load(Acquire) == g) else { return };
        let l = self.slot(j).t0.load(Acquire);
        let (mut sum, mut k) = (0i64, 0i64);
        for i in (0..self.n).filter(|&i| i != j) {
            // Clamped so that no number of racers overflows the sum; the gap is clamped
            // far tighter below anyway.
            sum += (self.slot(i).t0.load(Acquire).wrapping_sub(l) as i64).clamp(-(1 << 40), 1 << 40);
            k += 1;
        }
        if k == 0 {
            return;
        }
        // A preempted racer shows up as a gap of milliseconds: not a transfer time, so each
        // step is clamped and outliers barely move the estimate.
        let gap = (sum / k).clamp(-START_DELAY_STEP, START_DELAY_STEP);
        let ctl = self.ctl();
        let d = ctl.delay.load(Relaxed) as i64 + gap / 2;
        ctl.delay.store(d.clamp(0, START_DELAY_MAX) as u64, Relaxed);
    }
}

fn fail_setup(s: &Slot, ctl: &Control, step: u32, e: Errno) -> usize {
    s.step.store(step, Relaxed);
    s.errno.store(e.0 as u32, Relaxed);
    s.state.store(SETUP_FAILED, Release);
    ctl.started.fetch_add(1, Release);
    sys::futex_wake(&ctl.started, i32::MAX as u32);
    1
}

/// Pin the calling racer to its CPU and check that it runs there.
fn pin(me: &Slot) -> Result<(), (u32, Errno)> {
    let cpu = me.cpu.load(Relaxed);
    let mut mask = [0u8; (MAX_PIN_CPU / 8) as usize];
    let len = ((cpu as usize / 64) + 1) * 8;
    if cpu >= MAX_PIN_CPU || !crate::parse::mask_set(&mut mask[..len], cpu) {
        return Err((STEP_AFFINITY, Errno::EINVAL));
    }
    sys::sched_setaffinity(0, &mask[..len]).map_err(|e| (STEP_AFFINITY, e))?;
    let seen = sys::getcpu().unwrap_or(u32::MAX);
    me.seen_cpu.store(seen, Relaxed);
    if seen != cpu {
        return Err((STEP_WRONG_CPU, Errno(0)));
    }
    Ok(())
}

/// The steps every child process of ours takes first: the supervisor alone acts on
/// termination signals, and the child must not outlive it.
pub(super) fn child_setup(crew: &Crew) -> Result<(), (u32, Errno)> {
    sys::block_termination(true).map_err(|e| (STEP_SIGNALS, e))?;
    sys::set_pdeathsig(sys::k::SIGKILL).map_err(|e| (STEP_PDEATHSIG, e))?;
    if sys::getppid() != crew.parent {
        return Err((STEP_PARENT_GONE, Errno(0)));
    }
    Ok(())
}

pub(super) fn racer(i: usize, crew: &Crew) -> usize {
    let ctl = crew.ctl();
    let me = crew.slot(i);
    me.self_tid.store(sys::gettid() as u32, Release);
    let setup = match crew.mode {
        Mode::Shared => child_setup(crew),
        // A thread of the host, which did the rest.
        Mode::Private | Mode::Dontneed => sys::block_termination(true).map_err(|e| (STEP_SIGNALS, e)),
    };
    if let Err((step, e)) = setup.and_then(|_| pin(me)) {
        return fail_setup(me, ctl, step, e);
    }
    if crew.rt && sys::set_fifo(1).is_err() {
        me.rt_refused.store(1, Relaxed);
    }
    me.state.store(READY, Release);
    ctl.started.fetch_add(1, Release);
    sys::futex_wake(&ctl.started, i32::MAX as u32);
    let dontneed = crew.mode == Mode::Dontneed;

    let mut g = 0u32;
    loop {
        // Sleep until the next generation starts; never spin here.
        loop {
            let now = ctl.generation.load(Acquire);
            // Only the end of the run lets a racer go: on `stop` the closer of the current
            // iteration ends the run, and a racer leaving earlier would look vanished.
            if ctl.end.load(Acquire) != RUNNING {
                return 0;
            }
            if now != g {
                g = now;
                break;
            }
            let _ = sys::futex_wait(&ctl.generation, g, 0);
        }
        let faults = if dontneed { sys::minor_faults() } else { 0 };
        // Ready... set...
        me.ready.store(g, Release);
        match start_line(crew, g) {
            Err(j) => {
                me.missing.store(j as u32 + 1, Release);
                crew.finish(g);
                continue;
            }
            Ok(true) if ctl.aim.load(Relaxed) == 0 || dontneed => {
                // Last to arrive: the others see our trigger only now; start with them.
                me.last.store(g, Relaxed);
                let (d, t) = (ctl.delay.load(Relaxed), sys::cycles());
                while sys::cycles().wrapping_sub(t) < d {}
            }
            _ => {}
        }
        if i > 0 && !dontneed {
            // Racers 2.. start this race's offset behind racer 1 (counter ticks).
            let (aim, t) = (ctl.aim.load(Relaxed), sys::cycles());
            while sys::cycles().wrapping_sub(t) < aim {}
        }
        let (t0, t1) = if dontneed { dontneed_step(crew, i, g > WARMUP, faults) } else { alloc_step(crew, i, g > WARMUP) };
        me.t0.store(t0, Relaxed);
        me.t1.store(t1, Relaxed);
        crew.finish(g);
    }
}

/// The alloc race's step: the contested write, stamped on both sides (a warm-up lap only
/// stamps).
#[inline(always)]
fn alloc_step(crew: &Crew, i: usize, real: bool) -> (u64, u64) {
    let t0 = sys::cycles();
    if real {
        crew.page.store_u32(0, i as u32 + 1);
    }
    (t0, sys::cycles())
}

/// The dontneed race's step. Racer 1 drops the page with MADV_DONTNEED; racer 2 waits the
/// aim (ticks after the start, where the madvise has unmapped the page but may not have
/// freed it yet) and stores, and notes whether its store faulted.
#[inline(always)]
fn dontneed_step(crew: &Crew, i: usize, real: bool, faults: u64) -> (u64, u64) {
    if i == 0 {
        let inside = &crew.slot(0).inside;
        let t0 = sys::cycles();
        if real {
            inside.store(1, Release);
            let _ = crew.page.madvise(0, crew.page.len(), sys::k::MADV_DONTNEED);
            inside.store(0, Release);
        }
        return (t0, sys::cycles());
    }
    let (aim, t) = (crew.ctl().aim.load(Relaxed), sys::cycles());
    while sys::cycles().wrapping_sub(t) < aim {}
    let t0 = sys::cycles();
    if real {
        crew.page.store_u32(0, 2);
    }
    let t1 = sys::cycles();
    crew.slot(i).faulted.store((sys::minor_faults() != faults) as u32, Relaxed);
    (t0, t1)
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
    // First whether the dontneed race's madvise is still under way, then the pool, while
    // whoever holds the last page still holds it.
    s.fault_inside.store(crew.slot(0).inside.load(Acquire), Relaxed);
    if let Ok(c) = crate::pool::counts(crew.size) {
        s.fault_total.store(c.total, Relaxed);
        s.fault_free.store(c.free, Relaxed);
    }
    let g = ctl.generation.load(Acquire);
    s.fault_sig.store(f.sig, Relaxed);
    s.fault_code.store(f.code as u32, Relaxed);
    s.fault_addr.store(f.addr as u64, Relaxed);
    s.fault_cpu.store(sys::getcpu().unwrap_or(u32::MAX), Relaxed);
    s.state.store(DEAD, Release);
    crew.finish(g);
    sys::exit_thread(128 + f.sig as i32)
}
