//! The race: racers pinned to distinct CPUs, started once per mode and size, lined up by spin
//! triggers on a shared page (no futex on the release path), all writing the same contested
//! hugepage. A racer that the kernel fails with SIGBUS records what happened on the control
//! page and ends alone; the parent always survives.
//!
//! One iteration: each racer sets its own trigger to the generation and spins until every
//! partner's matches; all write, stamping the cycle counter on both sides; the last racer to
//! finish closes the iteration: it records the figures, gives the page back to the pool
//! (so that exactly the same pages are free again), starts the next generation and wakes the
//! others, which sleep on a futex between iterations and never spin there. The parent only
//! supervises: it sleeps until the run is over, waking now and then to watch for signals,
//! racers gone missing, and iterations that never end.

use crate::out::Line;
use crate::report::{Mode, Step, Stop};
use crate::stats::Hist;
use crate::sys::{self, k, Errno, Mapping, Shared, Stacks};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::{Acquire, Relaxed, Release}};

/// How long a racer waits at the start line for its partners before giving up (TBROK).
const START_LINE_NS: u64 = 2_000_000_000;
/// How long one iteration may take (a 1G fault under emulation is slow):
/// `--iteration-timeout`, 120 s by default.
pub static ITERATION_NS: AtomicU64 = AtomicU64::new(120_000_000_000);
/// How long teardown waits for a racer to exit.
const JOIN_NS: u64 = 5_000_000_000;
const STACK: usize = 64 * 1024;
/// Affinity masks built on a racer's stack cover CPUs below this: the largest NR_CPUS any
/// of our architectures can be configured with (a 1 KiB mask, two pages less per racer).
const MAX_PIN_CPU: u32 = 8192;

/// The run's state, as `Control::end` holds it.
const RUNNING: u32 = 0;
const DONE: u32 = 1;
const FAULTED: u32 = 2;
const MISSING: u32 = 3;
const RESET_FAILED: u32 = 4;

#[derive(Default)]
#[repr(C, align(256))]
pub struct Control {
    /// The generation the racers should run; they sleep on it between iterations.
    generation: AtomicU32,
    /// Racer-finishes so far (wrote, faulted or gave up): generation g is over at n * g.
    finished: AtomicU32,
    /// Racers that finished their setup.
    started: AtomicU32,
    /// Set by the parent: end at the next iteration boundary.
    stop: AtomicU32,
    /// RUNNING until the run ends; the parent sleeps on it.
    end: AtomicU32,
    /// The errno of a failed page reset.
    reset_errno: AtomicU32,
    iterations: AtomicU64,
    missed: AtomicU64,
    /// Counter ticks the last racer to reach the start line waits before its write: the
    /// measured time its partners need to see its trigger (one cache-line transfer).
    delay: AtomicU64,
    /// Run for this many iterations (0: until `until_ns`)...
    want: AtomicU64,
    /// ...or until this CLOCK_MONOTONIC time (0: no limit).
    until_ns: AtomicU64,
    pub skew: Hist,
    pub fault: Hist,
}

// A cache line (or two) per racer, so that one racer's trigger shares no line with another's.
#[derive(Default)]
#[repr(C, align(256))]
pub struct Slot {
    /// The spin trigger: the generation at which this racer reached the start line.
    ready: AtomicU32,
    /// The racer's tid (pid for a process); the kernel clears a thread's when it exits.
    tid: AtomicU32,
    /// The racer's own gettid(), for the fault handler to find its slot.
    self_tid: AtomicU32,
    cpu: AtomicU32,
    state: AtomicU32,
    /// Setup failure: which step, and its errno.
    step: AtomicU32,
    errno: AtomicU32,
    seen_cpu: AtomicU32,
    /// 1 + index of a partner that never reached the start line.
    missing: AtomicU32,
    /// The generation in which this racer was the last to reach the start line.
    last: AtomicU32,
    rt_refused: AtomicU32,
    fault_sig: AtomicU32,
    fault_code: AtomicU32,
    fault_generation: AtomicU32,
    fault_cpu: AtomicU32,
    fault_addr: AtomicU64,
    t0: AtomicU64,
    t1: AtomicU64,
}

const READY: u32 = 1;
const DEAD: u32 = 2;
const SETUP_FAILED: u32 = 3;

const STEP_SIGNALS: u32 = 1;
const STEP_PDEATHSIG: u32 = 2;
const STEP_AFFINITY: u32 = 3;
const STEP_WRONG_CPU: u32 = 4;
const STEP_PARENT_GONE: u32 = 5;

/// Gives the contested page back to the pool between iterations.
pub type Reset<'a> = &'a (dyn Fn() -> Result<(), Errno> + Sync);

/// What the racers share: the control page, the contested page and how to reset it.
pub struct Crew<'a> {
    ctl: Shared<Control, Slot>,
    n: usize,
    page: &'a Mapping,
    reset: Reset<'a>,
    rt: bool,
    parent: i32,
    mode: Mode,
}


impl Crew<'_> {
    fn ctl(&self) -> &Control {
        self.ctl.head()
    }
    fn slot(&self, i: usize) -> &Slot {
        // Slots 0..n are the racers'; slot n is a spare that any index past them lands on,
        // so this never fails.
        self.ctl.slot(i)
    }
    fn end(&self, how: u32) {
        let ctl = self.ctl();
        ctl.end.store(how, Release);
        sys::futex_wake(&ctl.end, i32::MAX as u32);
    }
    /// Count one racer finished with generation g; the last one closes the iteration.
    fn finish(&self, g: u32) {
        let n = self.n as u32;
        let f = self.ctl().finished.fetch_add(1, Release).wrapping_add(1);
        if f == g.wrapping_mul(n) {
            self.close(g);
        }
    }

    /// Close generation g (only the racer that finished it last gets here): record it, then
    /// end the run or reset the page and release the next generation.
    fn close(&self, g: u32) {
        let ctl = self.ctl();
        if g <= WARMUP {
            // A warm-up lap: caches and branch predictors learn the rendezvous and the
            // last arriver's wait is tuned, so that even a single race starts tight.
            self.tune_delay(g);
            if ctl.stop.load(Acquire) != 0 || (0..self.n).any(|i| self.slot(i).missing.load(Acquire) != 0) {
                return self.end(if ctl.stop.load(Acquire) != 0 { DONE } else { MISSING });
            }
            ctl.generation.store(g.wrapping_add(1), Release);
            sys::futex_wake(&ctl.generation, i32::MAX as u32);
            return;
        }
        let mut j = Judge::default();
        for i in 0..self.n {
            let s = self.slot(i);
            if s.state.load(Acquire) == DEAD {
                return self.end(FAULTED);
            }
            if s.missing.load(Acquire) != 0 {
                return self.end(MISSING);
            }
            j.add(s.t0.load(Acquire), s.t1.load(Acquire));
        }
        ctl.skew.add(j.skew());
        self.tune_delay(g);
        ctl.fault.add(j.fault);
        if !j.overlapped() {
            ctl.missed.fetch_add(1, Relaxed);
        }
        let done = ctl.iterations.fetch_add(1, Release) + 1;
        let (want, until) = (ctl.want.load(Relaxed), ctl.until_ns.load(Relaxed));
        if ctl.stop.load(Acquire) != 0 || (want != 0 && done >= want) || (until != 0 && sys::monotonic_ns() >= until) {
            return self.end(DONE);
        }
        if let Err(e) = (self.reset)() {
            ctl.reset_errno.store(e.0 as u32, Relaxed);
            return self.end(RESET_FAILED);
        }
        ctl.generation.store(g.wrapping_add(1), Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
    }
}

/// What one iteration's stamps say: each racer's counter just before (t0) and just after
/// (t1) its write.
#[derive(Clone, Copy)]
struct Judge {
    t0_min: u64,
    t0_max: u64,
    t1_min: u64,
    /// The slowest racer's write (its fault), in ticks.
    fault: u64,
}

impl Default for Judge {
    fn default() -> Self {
        Judge { t0_min: u64::MAX, t0_max: 0, t1_min: u64::MAX, fault: 0 }
    }
}

impl Judge {
    fn add(&mut self, t0: u64, t1: u64) {
        self.t0_min = self.t0_min.min(t0);
        self.t0_max = self.t0_max.max(t0);
        self.t1_min = self.t1_min.min(t1);
        self.fault = self.fault.max(t1.wrapping_sub(t0));
    }
    /// The spread of the start times.
    fn skew(&self) -> u64 {
        self.t0_max.wrapping_sub(self.t0_min)
    }
    /// Whether every racer was inside its write at one moment: the last to start started
    /// before the first to finish finished. Otherwise the race was missed.
    fn overlapped(&self) -> bool {
        self.t0_max < self.t1_min
    }
}

impl Crew<'_> {
    /// Steer the last arriver's wait so that its write starts when its partners', who learn
    /// of its trigger one cache-line transfer later: add half the signed gap between their
    /// mean start and its own. Converges in a few iterations; bounded by START_DELAY_MAX.
    fn tune_delay(&self, g: u32) {
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

/// Rendezvous laps without the write before the first race.
const WARMUP: u32 = 4;

/// The last arriver never waits longer than this many ticks (a few µs at any counter rate).
const START_DELAY_MAX: i64 = 1 << 13;
const START_DELAY_STEP: i64 = 1 << 8;

/// What the kernel did to a racer.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub racer: usize,
    pub cpu: u32,
    pub sig: u32,
    pub code: i32,
    pub addr: u64,
    /// The iteration (1-based) it happened in.
    pub iteration: u64,
}

/// How a run of iterations ended.
pub enum Outcome {
    Done,
    Faulted(Fault),
}

/// The figures of a run, raw: counter ticks in the histograms.
pub struct Tally<'a> {
    pub iterations: u64,
    pub missed: u64,
    pub skew: &'a Hist,
    pub fault: &'a Hist,
}

impl<'a> Crew<'a> {
    /// What `n` racers of one mode on one size share. The racers and the
    /// fault handler hold its address for as long as they run, so it must not move: the
    /// caller owns it and `Race` only borrows it (a `Race` returned by value moved the crew
    /// it held, and private-mode racer threads then read a stale copy and hung).
    pub fn new(mode: Mode, page: &'a Mapping, reset: Reset<'a>, n: usize, rt: bool, why: &mut Line) -> Step<Crew<'a>> {
        let ctl = Shared::new(n + 1).map_err(|e| Stop::sys(why, "mmap control page", e))?;
        Ok(Crew { ctl, n, page, reset, rt, parent: sys::getpid(), mode })
    }
}

/// The racers of one mode on one size, alive from `start` to drop.
pub struct Race<'a> {
    crew: &'a Crew<'a>,
    stacks: Option<Stacks>,
    spawned: usize,
}

impl<'a> Race<'a> {
    /// Start the crew's racers, racer i on the CPU that `choose` assigns through
    /// `give(i, cpu)`, and wait until each is pinned. On failure the reason is in `why`.
    pub fn start(crew: &'a Crew<'a>, choose: impl FnOnce(&mut dyn FnMut(u32, u32)), why: &mut Line) -> Step<Race<'a>> {
        let n = crew.n;
        choose(&mut |i, cpu| crew.slot(i as usize).cpu.store(cpu, Relaxed));
        let stacks = Stacks::new(n, STACK).map_err(|e| Stop::sys(why, "mmap racer stacks", e))?;
        let mut race = Race { crew, stacks: Some(stacks), spawned: 0 };
        sys::on_faults(race.crew, on_fault).map_err(|e| Stop::sys(why, "sigaction(SIGBUS)", e))?;
        let flags = match crew.mode {
            // Processes that share the MAP_SHARED page through fork-style inheritance.
            Mode::Shared => k::SIGCHLD,
            // Threads of one mm; qemu-user needs the full thread flag set.
            Mode::Private => sys::THREAD_FLAGS,
        };
        for i in 0..n {
            let stacks = race.stacks.as_ref().ok_or_else(|| Stop::brok(why.s("no stacks")))?;
            stacks.spawn(i, flags, &race.crew.slot(i).tid, racer, race.crew).map_err(|e| {
                why.f("clone of racer {}: {errno}", &[i as u64 + 1, e.0 as u64]);
                if e == Errno::EAGAIN {
                    why.s(" (process limit reached? see RLIMIT_NPROC)");
                }
                Stop::brok(why)
            })?;
            race.spawned += 1;
        }
        race.wait_started(why)?;
        Ok(race)
    }

    fn wait_started(&self, why: &mut Line) -> Step<()> {
        let ctl = self.crew.ctl();
        let t0 = sys::monotonic_ns();
        loop {
            for i in 0..self.crew.n {
                if self.crew.slot(i).state.load(Acquire) == SETUP_FAILED {
                    return Err(self.setup_failure(i, why));
                }
            }
            let n = ctl.started.load(Acquire);
            if n as usize >= self.crew.n {
                return Ok(());
            }
            if let Some(sig) = sys::pending_signal() {
                return Err(interrupted(why, sig));
            }
            self.check_vanished(why)?;
            if sys::monotonic_ns() - t0 > START_LINE_NS {
                return Err(Stop::brok(why.f("only {} of {} racers finished their setup within 2 s", &[n as u64, self.crew.n as u64])));
            }
            let _ = sys::futex_wait(&ctl.started, n, 50_000_000);
        }
    }

    fn setup_failure(&self, i: usize, why: &mut Line) -> Stop {
        let s = self.crew.slot(i);
        let (step, e) = (s.step.load(Acquire), Errno(s.errno.load(Acquire) as u16));
        let cpu = s.cpu.load(Relaxed);
        why.f("racer {}: ", &[i as u64 + 1]);
        Stop::brok(match step {
            STEP_SIGNALS => why.f("blocking signals: {errno}", &[e.0 as u64]),
            STEP_PDEATHSIG => why.f("prctl(PR_SET_PDEATHSIG): {errno}", &[e.0 as u64]),
            STEP_AFFINITY => why.f("sched_setaffinity(CPU {}): {errno}", &[cpu as u64, e.0 as u64]),
            STEP_WRONG_CPU => why.f("pinned to CPU {} but runs on CPU {}", &[cpu as u64, s.seen_cpu.load(Acquire) as u64]),
            STEP_PARENT_GONE => why.s("its parent exited during setup"),
            _ => why.s("setup failed"),
        })
    }

    /// Whether racer i still runs: a thread's tid is cleared by the kernel when it exits; a
    /// process's is not (the kernel clears it only in multi-threaded mms), so ask waitid.
    fn alive(&self, i: usize) -> bool {
        let tid = self.crew.slot(i).tid.load(Acquire);
        match self.crew.mode {
            Mode::Private => tid != 0,
            Mode::Shared => tid != 0 && !sys::child_exited(tid as i32),
        }
    }

    fn check_vanished(&self, why: &mut Line) -> Step<()> {
        for i in 0..self.spawned {
            let s = self.crew.slot(i);
            // Racers leave once the run has ended: not vanished, even if we look late.
            if !self.alive(i) && s.state.load(Acquire) != DEAD && self.crew.ctl().end.load(Acquire) == RUNNING {
                return Err(Stop::brok(why.f("racer {} on CPU {} exited or was killed from outside", &[i as u64 + 1, s.cpu.load(Relaxed) as u64])));
            }
        }
        Ok(())
    }

    /// A racer that the kernel holds stopped: state T or t in /proc/<tid>/stat.
    fn stopped(&self) -> Option<usize> {
        (0..self.spawned).find(|&i| self.is_stopped(i))
    }

    fn is_stopped(&self, i: usize) -> bool {
        let mut p = sys::PathBuf::new();
        let mut buf = [0u8; 512];
        let tid = self.crew.slot(i).tid.load(Acquire) as u64;
        let Ok(n) = p.push(b"/proc/").and_then(|p| p.push_u64(tid)).and_then(|p| p.push(b"/stat")).and_then(|p| sys::read_file(p.cstr(), &mut buf)) else {
            return false;
        };
        let b = &buf[..n];
        b.iter().rposition(|&c| c == b')').and_then(|r| b.get(r + 2)).is_some_and(|&c| c == b'T' || c == b't')
    }

    /// Whether a racer was refused SCHED_FIFO.
    pub fn rt_refused(&self) -> bool {
        (0..self.crew.n).any(|i| self.crew.slot(i).rt_refused.load(Acquire) != 0)
    }

    /// Race `want` iterations, or until CLOCK_MONOTONIC passes `until_ns`, on a page that is
    /// fresh now. `progress(done)` is called from the parent now and then. On failure the
    /// reason is in `why`.
    pub fn run(&mut self, want: u64, until_ns: u64, mut progress: impl FnMut(u64), why: &mut Line) -> Step<Outcome> {
        let ctl = self.crew.ctl();
        ctl.want.store(want, Relaxed);
        ctl.until_ns.store(until_ns, Relaxed);
        ctl.generation.store(1, Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
        let mut last = (0u64, sys::monotonic_ns());
        let mut stopping = None;
        loop {
            let end = ctl.end.load(Acquire);
            if end != RUNNING {
                return match stopping {
                    Some(sig) => Err(interrupted(why, sig)),
                    None => self.ended(end, why),
                };
            }
            let done = ctl.iterations.load(Acquire);
            let now = sys::monotonic_ns();
            if done != last.0 {
                last = (done, now);
                progress(done);
            } else if now - last.1 > ITERATION_NS.load(Relaxed) {
                return Err(Stop::brok(why.f("iteration {} did not end within {} s", &[done + 1, ITERATION_NS.load(Relaxed) / 1_000_000_000])));
            } else if now - last.1 > START_LINE_NS
                && let Some(i) = self.stopped()
            {
                // A racer stopped where no partner spins on it (closing an iteration).
                return Err(Stop::brok(
                    why.f("racer {} never reached the start line: it is stopped (SIGSTOP or a debugger) at iteration {}", &[i as u64 + 1, done + 1]),
                ));
            }
            if stopping.is_none() {
                // End at the next iteration boundary, so the racers stop cleanly.
                stopping = sys::pending_signal();
                if stopping.is_some() {
                    ctl.stop.store(1, Release);
                }
            }
            self.check_vanished(why)?;
            let _ = sys::futex_wait(&ctl.end, RUNNING, 100_000_000);
        }
    }

    fn ended(&self, how: u32, why: &mut Line) -> Step<Outcome> {
        let ctl = self.crew.ctl();
        let iteration = ctl.iterations.load(Acquire) + 1;
        match how {
            FAULTED => {
                for i in 0..self.crew.n {
                    let s = self.crew.slot(i);
                    if s.state.load(Acquire) == DEAD {
                        return Ok(Outcome::Faulted(Fault {
                            racer: i,
                            cpu: s.fault_cpu.load(Acquire),
                            sig: s.fault_sig.load(Acquire),
                            code: s.fault_code.load(Acquire) as i32,
                            addr: s.fault_addr.load(Acquire),
                            iteration,
                        }));
                    }
                }
                Err(Stop::brok(why.s("a racer faulted but left no record")))
            }
            MISSING => {
                let m = (0..self.crew.n).map(|i| self.crew.slot(i).missing.load(Acquire)).find(|&m| m != 0).unwrap_or(1);
                let late = self.crew.slot(m as usize - 1);
                Err(Stop::brok(
                    why.f(
                        "racer {} (CPU {}) never reached the start line (stopped or starved?) in iteration {}",
                        &[m as u64, late.cpu.load(Relaxed) as u64, iteration],
                    ),
                ))
            }
            RESET_FAILED => {
                let e = Errno(ctl.reset_errno.load(Acquire) as u16);
                Err(Stop::brok(why.f("giving the contested page back after iteration {}: {errno}", &[iteration - 1, e.0 as u64])))
            }
            _ => Ok(Outcome::Done),
        }
    }

    /// The figures so far.
    pub fn tally(&self) -> Tally<'_> {
        let ctl = self.crew.ctl();
        Tally { iterations: ctl.iterations.load(Acquire), missed: ctl.missed.load(Acquire), skew: &ctl.skew, fault: &ctl.fault }
    }

    /// The CPUs the racers run on, as a list (0,1).
    pub fn write_cpus(&self, l: &mut crate::out::Line) {
        for i in 0..self.crew.n {
            if i > 0 {
                l.c(b',');
            }
            l.u(self.crew.slot(i).cpu.load(Relaxed) as u64);
        }
    }

    /// Stop and join every racer. Processes that will not go are killed; threads that will
    /// not go end with the process, and their stacks are kept until then.
    fn teardown(&mut self) -> bool {
        let ctl = self.crew.ctl();
        ctl.stop.store(1, Release);
        if ctl.end.load(Acquire) == RUNNING {
            ctl.end.store(DONE, Release);
        }
        // A generation the racers will see as new, so that sleepers wake and leave.
        ctl.generation.store(ctl.generation.load(Acquire).wrapping_add(1), Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
        let mut all = true;
        for i in 0..self.spawned {
            let tid = &self.crew.slot(i).tid;
            let pid = tid.load(Acquire) as i32;
            let t0 = sys::monotonic_ns();
            // A stopped racer process would only be waited for in vain: kill it at once.
            let stopped = self.crew.mode == Mode::Shared && self.is_stopped(i);
            while !stopped && self.alive(i) && sys::monotonic_ns() - t0 < JOIN_NS {
                match self.crew.mode {
                    Mode::Private => {
                        let _ = sys::futex_wait(tid, pid as u32, 50_000_000);
                    }
                    Mode::Shared => sys::sleep_ns(100_000),
                }
            }
            if self.crew.mode == Mode::Shared && pid > 0 {
                if self.alive(i) {
                    let _ = sys::kill(pid, k::SIGKILL);
                }
                let _ = sys::wait4(pid, k::__WALL);
            } else if self.alive(i) {
                all = false;
            }
        }
        sys::default_faults();
        all
    }
}

impl Drop for Race<'_> {
    fn drop(&mut self) {
        if !self.teardown()
            && let Some(s) = self.stacks.take() {
                s.leak();
            }
    }
}

/// TBROK: a terminating signal arrived (it is acted on at a safe point, never at once).
pub fn interrupted(why: &mut Line, sig: u32) -> Stop {
    Stop::brok(why.s("interrupted by ").sig(sig))
}

pub fn signal_name(sig: u32) -> &'static str {
    match sig {
        k::SIGINT => "SIGINT",
        k::SIGTERM => "SIGTERM",
        k::SIGHUP => "SIGHUP",
        k::SIGQUIT => "SIGQUIT",
        k::SIGBUS => "SIGBUS",
        k::SIGSEGV => "SIGSEGV",
        k::SIGKILL => "SIGKILL",
        _ => "a signal",
    }
}

/// The si_code of a SIGBUS, by name.
pub fn bus_code(code: i32) -> &'static str {
    match code {
        1 => "BUS_ADRALN",
        2 => "BUS_ADRERR",
        3 => "BUS_OBJERR",
        4 => "BUS_MCEERR_AR",
        5 => "BUS_MCEERR_AO",
        _ => "",
    }
}

// ---- the racer's side ----

fn fail_setup(s: &Slot, ctl: &Control, step: u32, e: Errno) -> usize {
    s.step.store(step, Relaxed);
    s.errno.store(e.0 as u32, Relaxed);
    s.state.store(SETUP_FAILED, Release);
    ctl.started.fetch_add(1, Release);
    sys::futex_wake(&ctl.started, 1);
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

fn racer(i: usize, crew: &Crew) -> usize {
    let ctl = crew.ctl();
    let me = crew.slot(i);
    me.self_tid.store(sys::gettid() as u32, Release);
    if let Err(e) = sys::block_termination(true) {
        return fail_setup(me, ctl, STEP_SIGNALS, e);
    }
    if crew.mode == Mode::Shared {
        // A racer process must not outlive the parent.
        if let Err(e) = sys::set_pdeathsig(k::SIGKILL) {
            return fail_setup(me, ctl, STEP_PDEATHSIG, e);
        }
        if sys::getppid() != crew.parent {
            return fail_setup(me, ctl, STEP_PARENT_GONE, Errno(0));
        }
    }
    if let Err((step, e)) = pin(me) {
        return fail_setup(me, ctl, step, e);
    }
    if crew.rt && sys::set_fifo(1).is_err() {
        me.rt_refused.store(1, Relaxed);
    }
    me.state.store(READY, Release);
    ctl.started.fetch_add(1, Release);
    sys::futex_wake(&ctl.started, 1);

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
        // Ready... set...
        me.ready.store(g, Release);
        match start_line(crew, g) {
            Err(j) => {
                me.missing.store(j as u32 + 1, Release);
                crew.finish(g);
                continue;
            }
            Ok(true) => {
                // Last to arrive: the others see our trigger only now; start with them.
                me.last.store(g, Relaxed);
                let (d, t) = (ctl.delay.load(Relaxed), crate::arch::cycles());
                while crate::arch::cycles().wrapping_sub(t) < d {}
            }
            Ok(false) => {}
        }
        // ...go: the contested write, stamped on both sides (a warm-up lap only stamps).
        let t0 = crate::arch::cycles();
        if g > WARMUP {
            crew.page.store_u32(0, i as u32 + 1);
        }
        let t1 = crate::arch::cycles();
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

/// SIGBUS/SIGSEGV in a racer: write down what the kernel did, count the racer finished, and
/// end it alone. Anything else (a fault outside the racers) returns for the default action.
fn on_fault(crew: &Crew, f: sys::Fault) {
    let tid = sys::gettid() as u32;
    let ctl = crew.ctl();
    for i in 0..crew.n {
        let s = crew.slot(i);
        if s.self_tid.load(Acquire) != tid {
            continue;
        }
        let g = ctl.generation.load(Acquire);
        s.fault_sig.store(f.sig, Relaxed);
        s.fault_code.store(f.code as u32, Relaxed);
        s.fault_addr.store(f.addr as u64, Relaxed);
        s.fault_cpu.store(sys::getcpu().unwrap_or(u32::MAX), Relaxed);
        s.fault_generation.store(g, Relaxed);
        s.state.store(DEAD, Release);
        crew.finish(g);
        sys::exit_thread(128 + f.sig as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::Judge;

    fn judge(stamps: &[(u64, u64)]) -> Judge {
        let mut j = Judge::default();
        for &(a, b) in stamps {
            j.add(a, b);
        }
        j
    }

    #[test]
    fn a_real_race_overlaps() {
        let j = judge(&[(100, 900), (140, 1000)]);
        assert!(j.overlapped());
        assert_eq!(j.skew(), 40);
        assert_eq!(j.fault, 860);
    }

    #[test]
    fn a_late_racer_is_a_missed_race() {
        // The second racer started after the first had already finished its fault.
        let j = judge(&[(100, 900), (950, 980)]);
        assert!(!j.overlapped());
        assert_eq!(j.skew(), 850);
        // Touching is not overlapping either.
        assert!(!judge(&[(100, 900), (900, 990)]).overlapped());
        // Three racers: one late one is enough to miss.
        assert!(!judge(&[(100, 900), (110, 950), (905, 1000)]).overlapped());
    }
}
