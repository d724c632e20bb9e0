//! The race: racers pinned to distinct CPUs, started once per mode and size, sleep between
//! iterations, are lined up by spin triggers on a shared page (no futex on the release path),
//! and then all write the same contested hugepage. A racer that the kernel fails with SIGBUS
//! records what happened on the control page and ends alone; the parent always survives.
//!
//! One iteration, as the parent sees it: bump the generation and wake the racers; each racer
//! sets its own flag to that generation and spins until every partner's flag matches; all
//! write; each stamps its cycle counter around the write and counts itself finished.

use crate::report::{Mode, Step, Stop};
use crate::sys::{self, k, Mapping, SharedZeroed, Shared, Stacks};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::{Acquire, Relaxed, Release}};

/// How long a racer waits at the start line for its partners before giving up (TBROK).
const START_LINE_NS: u64 = 2_000_000_000;
/// How long the parent waits for one iteration to end (a 1G fault under emulation is slow).
const ITERATION_NS: u64 = 120_000_000_000;
/// How long teardown waits for a racer to exit.
const JOIN_NS: u64 = 5_000_000_000;
const STACK: usize = 64 * 1024;
/// Affinity masks built on a racer's stack cover CPUs below this.
const MAX_PIN_CPU: u32 = 8192 * 8;

#[repr(C, align(256))]
pub struct Control {
    /// The generation the racers should run; they sleep on it between iterations.
    generation: AtomicU32,
    stop: AtomicU32,
    /// Racers done with the current generation (wrote, faulted or gave up); the parent sleeps
    /// on it.
    finished: AtomicU32,
    /// Racers that finished their setup.
    started: AtomicU32,
}

// One cache line (or two) per racer, so that one racer's flag does not share a line with
// another's timestamps.
#[repr(C, align(256))]
pub struct Slot {
    /// The spin trigger: the generation at which this racer reached the start line.
    ready: AtomicU32,
    /// Set by the kernel at clone, cleared (and futex-woken) when the racer exits.
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
    rt_refused: AtomicU32,
    fault_sig: AtomicU32,
    fault_code: AtomicU32,
    fault_generation: AtomicU32,
    fault_cpu: AtomicU32,
    fault_addr: AtomicU64,
    t0: AtomicU64,
    t1: AtomicU64,
}

// SAFETY: all-atomic structs, valid when zeroed.
unsafe impl SharedZeroed for Control {}
// SAFETY: as above.
unsafe impl SharedZeroed for Slot {}

static SPARE: Slot = Slot {
    ready: AtomicU32::new(0),
    tid: AtomicU32::new(0),
    self_tid: AtomicU32::new(0),
    cpu: AtomicU32::new(0),
    state: AtomicU32::new(0),
    step: AtomicU32::new(0),
    errno: AtomicU32::new(0),
    seen_cpu: AtomicU32::new(0),
    missing: AtomicU32::new(0),
    rt_refused: AtomicU32::new(0),
    fault_sig: AtomicU32::new(0),
    fault_code: AtomicU32::new(0),
    fault_generation: AtomicU32::new(0),
    fault_cpu: AtomicU32::new(0),
    fault_addr: AtomicU64::new(0),
    t0: AtomicU64::new(0),
    t1: AtomicU64::new(0),
};

const READY: u32 = 1;
const FAULTED: u32 = 2;
const SETUP_FAILED: u32 = 3;

const STEP_SIGNALS: u32 = 1;
const STEP_PDEATHSIG: u32 = 2;
const STEP_AFFINITY: u32 = 3;
const STEP_WRONG_CPU: u32 = 4;
const STEP_PARENT_GONE: u32 = 5;

/// What the racers share: the control page and the contested page.
pub struct Crew<'a> {
    ctl: Shared<Control>,
    n: usize,
    page: &'a Mapping,
    rt: bool,
    parent: i32,
    mode: Mode,
}

impl Crew<'_> {
    fn ctl(&self) -> &Control {
        self.ctl.get()
    }
    fn slot(&self, i: usize) -> &Slot {
        // Slots 0..n exist (the mapping was sized for them); the spare keeps this total.
        self.ctl.tail::<Slot>(i).unwrap_or(&SPARE)
    }
}

/// One iteration's measurements, in raw cycle-counter ticks.
#[derive(Clone, Copy, Default, Debug)]
pub struct Sample {
    pub skew: u64,
    pub fault: u64,
    pub overlap: bool,
}

/// What the kernel did to a racer.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub racer: usize,
    pub cpu: u32,
    pub sig: u32,
    pub code: i32,
    pub addr: u64,
    pub generation: u32,
}

pub enum Outcome {
    Raced(Sample),
    Faulted(Fault),
}

/// The racers of one mode on one size, alive from `start` to drop.
pub struct Race<'a> {
    crew: Crew<'a>,
    stacks: Option<Stacks>,
    generation: u32,
    spawned: usize,
}

impl<'a> Race<'a> {
    /// Start `n` racers, racer i on the CPU `choose` assigns it through `give(i, cpu)`, and
    /// wait until each is pinned.
    pub fn start(mode: Mode, page: &'a Mapping, n: usize, rt: bool, choose: impl FnOnce(&mut dyn FnMut(u32, u32))) -> Step<Race<'a>> {
        let ctl = Shared::<Control>::with_tail((n + 1) * core::mem::size_of::<Slot>()).map_err(|e| Stop::sys("mmap control page", e))?;
        let crew = Crew { ctl, n, page, rt, parent: sys::getpid(), mode };
        choose(&mut |i, cpu| crew.slot(i as usize).cpu.store(cpu, Relaxed));
        let stacks = Stacks::new(n, STACK).map_err(|e| Stop::sys("mmap racer stacks", e))?;
        let mut race = Race { crew, stacks: Some(stacks), generation: 0, spawned: 0 };
        sys::on_faults(&race.crew, on_fault).map_err(|e| Stop::sys("sigaction(SIGBUS)", e))?;
        let flags = match mode {
            // Processes that share the MAP_SHARED page through fork-style inheritance.
            Mode::Shared => k::SIGCHLD,
            // Threads of one mm; qemu-user needs the full thread flag set.
            Mode::Private => sys::THREAD_FLAGS,
        };
        for i in 0..n {
            let stacks = race.stacks.as_ref().ok_or_else(|| Stop::brok(|l| { l.s("no stacks"); }))?;
            stacks.spawn(i, flags, &race.crew.slot(i).tid, racer, &race.crew).map_err(|e| Stop::brok(|l| {
                l.s("clone of racer ").u(i as u64 + 1).s(": ").errno(e);
                if e == sys::Errno::EAGAIN {
                    l.s(" (process limit reached? see RLIMIT_NPROC)");
                }
            }))?;
            race.spawned += 1;
        }
        race.wait_started()?;
        Ok(race)
    }

    fn wait_started(&self) -> Step<()> {
        let ctl = self.crew.ctl();
        let t0 = sys::monotonic_ns();
        loop {
            for i in 0..self.crew.n {
                let s = self.crew.slot(i);
                if s.state.load(Acquire) == SETUP_FAILED {
                    return Err(self.setup_failure(i));
                }
            }
            let n = ctl.started.load(Acquire);
            if n as usize >= self.crew.n {
                return Ok(());
            }
            self.check_interrupt()?;
            self.check_vanished()?;
            if sys::monotonic_ns() - t0 > START_LINE_NS {
                return Err(Stop::brok(|l| {
                    l.s("only ").u(n as u64).s(" of ").u(self.crew.n as u64).s(" racers finished their setup within 2 s");
                }));
            }
            let _ = sys::futex_wait(&ctl.started, n, 50_000_000);
        }
    }

    fn setup_failure(&self, i: usize) -> Stop {
        let s = self.crew.slot(i);
        let (step, e) = (s.step.load(Acquire), sys::Errno(s.errno.load(Acquire) as u16));
        let cpu = s.cpu.load(Relaxed);
        Stop::brok(|l| {
            l.s("racer ").u(i as u64 + 1).s(": ");
            match step {
                STEP_SIGNALS => l.s("blocking signals: ").errno(e),
                STEP_PDEATHSIG => l.s("prctl(PR_SET_PDEATHSIG): ").errno(e),
                STEP_AFFINITY => l.s("sched_setaffinity(CPU ").u(cpu as u64).s("): ").errno(e),
                STEP_WRONG_CPU => l.s("pinned to CPU ").u(cpu as u64).s(" but runs on CPU ").u(s.seen_cpu.load(Acquire) as u64),
                STEP_PARENT_GONE => l.s("its parent exited during setup"),
                _ => l.s("setup failed"),
            };
        })
    }

    fn check_interrupt(&self) -> Step<()> {
        match sys::pending_signal() {
            Some(sig) => Err(Stop::brok(|l| {
                l.s("interrupted by ").s(signal_name(sig));
            })),
            None => Ok(()),
        }
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

    fn check_vanished(&self) -> Step<()> {
        for i in 0..self.spawned {
            let s = self.crew.slot(i);
            if !self.alive(i) && s.state.load(Acquire) != FAULTED {
                return Err(Stop::brok(|l| {
                    l.s("racer ").u(i as u64 + 1).s(" on CPU ").u(s.cpu.load(Relaxed) as u64).s(" exited or was killed from outside");
                }));
            }
        }
        Ok(())
    }

    /// Whether the racers run at SCHED_FIFO as asked (false: refused, racing at normal).
    pub fn rt_refused(&self) -> bool {
        (0..self.crew.n).any(|i| self.crew.slot(i).rt_refused.load(Acquire) != 0)
    }

    /// One race: release the racers on the page as it is now, wait for them, and tell.
    pub fn once(&mut self) -> Step<Outcome> {
        let ctl = self.crew.ctl();
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.generation = 1;
        }
        let g = self.generation;
        let target = ctl.finished.load(Acquire).wrapping_add(self.crew.n as u32);
        ctl.generation.store(g, Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
        let t0 = sys::monotonic_ns();
        loop {
            let f = ctl.finished.load(Acquire);
            if f == target {
                break;
            }
            self.check_interrupt()?;
            for i in 0..self.crew.n {
                let m = self.crew.slot(i).missing.load(Acquire);
                if m != 0 {
                    let late = self.crew.slot(m as usize - 1);
                    return Err(Stop::brok(|l| {
                        l.s("racer ").u(m as u64).s(" (CPU ").u(late.cpu.load(Relaxed) as u64)
                            .s(") never reached the start line (stopped or starved?) at iteration ").u(g as u64);
                    }));
                }
            }
            self.check_vanished()?;
            if sys::monotonic_ns() - t0 > ITERATION_NS {
                return Err(Stop::brok(|l| {
                    l.s("the racers did not finish iteration ").u(g as u64).s(" within 120 s");
                }));
            }
            let _ = sys::futex_wait(&ctl.finished, f, 100_000_000);
        }
        Ok(self.collect(g))
    }

    fn collect(&self, g: u32) -> Outcome {
        let (mut t0_min, mut t0_max, mut t1_min, mut fault) = (u64::MAX, 0, u64::MAX, 0);
        for i in 0..self.crew.n {
            let s = self.crew.slot(i);
            if s.state.load(Acquire) == FAULTED && s.fault_generation.load(Acquire) == g {
                return Outcome::Faulted(Fault {
                    racer: i,
                    cpu: s.fault_cpu.load(Acquire),
                    sig: s.fault_sig.load(Acquire),
                    code: s.fault_code.load(Acquire) as i32,
                    addr: s.fault_addr.load(Acquire),
                    generation: g,
                });
            }
            let (a, b) = (s.t0.load(Acquire), s.t1.load(Acquire));
            t0_min = t0_min.min(a);
            t0_max = t0_max.max(a);
            t1_min = t1_min.min(b);
            fault = fault.max(b.wrapping_sub(a));
        }
        Outcome::Raced(Sample { skew: t0_max - t0_min, fault, overlap: t0_max < t1_min })
    }

    /// The CPUs the racers run on, as a JSON-ready list (0,1).
    pub fn write_cpus(&self, l: &mut crate::out::Line) {
        for i in 0..self.crew.n {
            if i > 0 {
                l.c(b',');
            }
            l.u(self.crew.slot(i).cpu.load(Relaxed) as u64);
        }
    }

    /// Stop and join every racer. Those that will not go are killed (processes) or left with
    /// their memory (threads end with the process).
    fn teardown(&mut self) -> bool {
        let ctl = self.crew.ctl();
        ctl.stop.store(1, Release);
        ctl.generation.store(self.generation.wrapping_add(1), Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
        let mut all = true;
        for i in 0..self.spawned {
            let tid = &self.crew.slot(i).tid;
            let pid = tid.load(Acquire) as i32;
            let t0 = sys::monotonic_ns();
            while self.alive(i) && sys::monotonic_ns() - t0 < JOIN_NS {
                match self.crew.mode {
                    Mode::Private => {
                        let _ = sys::futex_wait(tid, pid as u32, 50_000_000);
                    }
                    Mode::Shared => sys::sleep_ns(200_000),
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
        if !self.teardown() {
            if let Some(s) = self.stacks.take() {
                s.leak();
            }
        }
    }
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

// ---- the racer's side ----

fn fail_setup(s: &Slot, ctl: &Control, step: u32, e: sys::Errno) -> usize {
    s.step.store(step, Relaxed);
    s.errno.store(e.0 as u32, Relaxed);
    s.state.store(SETUP_FAILED, Release);
    ctl.started.fetch_add(1, Release);
    sys::futex_wake(&ctl.started, 1);
    1
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
            return fail_setup(me, ctl, STEP_PARENT_GONE, sys::Errno(0));
        }
    }
    let cpu = me.cpu.load(Relaxed);
    let mut mask = [0u8; (MAX_PIN_CPU / 8) as usize];
    let len = ((cpu as usize / 64) + 1) * 8;
    if cpu >= MAX_PIN_CPU || !crate::parse::mask_set(&mut mask[..len], cpu) {
        return fail_setup(me, ctl, STEP_AFFINITY, sys::Errno::EINVAL);
    }
    if let Err(e) = sys::sched_setaffinity(0, &mask[..len]) {
        return fail_setup(me, ctl, STEP_AFFINITY, e);
    }
    let seen = sys::getcpu().unwrap_or(u32::MAX);
    me.seen_cpu.store(seen, Relaxed);
    if seen != cpu {
        return fail_setup(me, ctl, STEP_WRONG_CPU, sys::Errno(0));
    }
    if crew.rt && sys::set_fifo(1).is_err() {
        me.rt_refused.store(1, Relaxed);
    }
    me.state.store(READY, Release);
    ctl.started.fetch_add(1, Release);
    sys::futex_wake(&ctl.started, 1);

    let mut g = 0u32;
    loop {
        // Sleep until the parent starts the next generation.
        loop {
            let now = ctl.generation.load(Acquire);
            if ctl.stop.load(Acquire) != 0 {
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
        if let Err(j) = start_line(crew, g) {
            me.missing.store(j as u32 + 1, Release);
            ctl.finished.fetch_add(1, Release);
            sys::futex_wake(&ctl.finished, 1);
            continue;
        }
        // ...go: the contested write, stamped on both sides.
        let t0 = crate::arch::cycles();
        crew.page.store_u32(0, i as u32 + 1);
        let t1 = crate::arch::cycles();
        me.t0.store(t0, Relaxed);
        me.t1.store(t1, Relaxed);
        ctl.finished.fetch_add(1, Release);
        sys::futex_wake(&ctl.finished, 1);
    }
}

/// Spin until every racer's trigger shows generation `g`. Bounded: Err(j) names a partner
/// that did not arrive within START_LINE_NS (the clock is read only every 64K spins, so
/// the release is not slowed by it).
fn start_line(crew: &Crew, g: u32) -> Result<(), usize> {
    let mut spins: u32 = 0;
    let mut deadline = 0u64;
    loop {
        let mut late = None;
        for j in 0..crew.n {
            if crew.slot(j).ready.load(Acquire) != g {
                late = Some(j);
                break;
            }
        }
        let Some(j) = late else { return Ok(()) };
        core::hint::spin_loop();
        spins = spins.wrapping_add(1);
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
        s.fault_sig.store(f.sig, Relaxed);
        s.fault_code.store(f.code as u32, Relaxed);
        s.fault_addr.store(f.addr as u64, Relaxed);
        s.fault_cpu.store(sys::getcpu().unwrap_or(u32::MAX), Relaxed);
        s.fault_generation.store(ctl.generation.load(Acquire), Relaxed);
        s.state.store(FAULTED, Release);
        ctl.finished.fetch_add(1, Release);
        sys::futex_wake(&ctl.finished, 1);
        sys::exit_thread(128 + f.sig as i32);
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
