//! The racers as the supervisor holds them (`Race`), and its watch over them: the start
//! line, racers that vanish or are held stopped, how a race ended, the words for a racer's
//! death, and the joining at the end.

use super::control::*;
use super::protocol::{End, RacerState, SetupStep};
use super::crew::Crew;
use crate::out::Line;
use crate::step::{Step, Stop};
use crate::sys::{self, k, Errno, Stacks};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use super::host::JOIN_NS;
use super::racer::START_LINE_NS;

/// What the kernel did to a racer.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub racer: usize,
    pub cpu: u32,
    pub sig: u32,
    pub code: i32,
    pub addr: u64,
    /// The race (1-based) it happened in.
    pub iteration: u64,
    /// Racers that wrote the page in that race.
    pub winners: u64,
    /// The pool when the fault handler ran: all pages, and free ones.
    pub total: u64,
    pub free: u64,
    /// What the kind noted at the fault (`Racing::at_fault`).
    pub note: u32,
}

/// A racer (or the process of the racer threads) that died of a signal
/// the race does not catch.
#[derive(Clone, Copy, Debug)]
pub struct Death {
    /// The racer (0-based), or None for the racer threads' process.
    pub racer: Option<usize>,
    pub pid: i32,
    pub sig: u32,
    /// How far the kernel's oom_kill counter moved during the run (None: no /proc/vmstat).
    pub oom_kills: Option<u64>,
    /// Whether the kernel log names this pid as the OOM killer's victim (None: the log
    /// cannot be read here).
    pub oom_victim: Option<bool>,
}

/// How a run of iterations ended.
pub enum Outcome {
    Done,
    Faulted(Fault),
    Killed(Death),
}

/// The racers of one mode on one size, alive from `start` to drop.
pub struct Race<'a> {
    pub(super) crew: &'a Crew<'a>,
    pub(super) stacks: Option<Stacks>,
    /// Racer processes (shared) or the racer threads' process (private) started.
    pub(super) spawned: usize,
    /// Racer threads: their process. (Not read back from the control page: the
    /// kernel clears that word when the process exits with threads.)
    pub(super) host: i32,
    pub(super) oom_before: Option<u64>,
}

impl Race<'_> {
    pub(super) fn wait_started(&self, why: &mut Line) -> Step<()> {
        let ctl = self.crew.ctl();
        let t0 = sys::monotonic_ns();
        loop {
            if ctl.host_step.load(Acquire) != SetupStep::None {
                return Err(self.host_failure(why));
            }
            if let Some(i) = (0..self.crew.n).find(|&i| self.crew.slot(i).state.load(Acquire) == RacerState::SetupFailed) {
                return Err(self.setup_failure(i, why));
            }
            let n = ctl.started.load(Acquire);
            if n as usize >= self.crew.n {
                return Ok(());
            }
            if let Some(sig) = sys::pending_signal() {
                return Err(interrupted(why, sig));
            }
            if let Some(d) = self.vanished() {
                return Err(Stop::brok(death_line(why, &d).s(" during setup")));
            }
            if sys::monotonic_ns() - t0 > START_LINE_NS {
                return Err(Stop::brok(why.f("only {} of {} racers finished their setup within 2 s", &[n as u64, self.crew.n as u64])));
            }
            let _ = sys::futex_wait(&ctl.started, n, 50_000_000);
        }
    }

    fn setup_failure(&self, i: usize, why: &mut Line) -> Stop {
        let s = self.crew.slot(i);
        why.f("racer {}: ", &[i as u64 + 1]);
        step_failure(why, s.step.load(Acquire), Errno(s.errno.load(Acquire) as u16), s.cpu.load(Relaxed), s.seen_cpu.load(Acquire))
    }

    fn host_failure(&self, why: &mut Line) -> Stop {
        let ctl = self.crew.ctl();
        why.s("the racer threads' process: ");
        step_failure(why, ctl.host_step.load(Acquire), Errno(ctl.host_errno.load(Acquire) as u16), 0, 0)
    }

    /// The pid of racer process i (shared) or of the racer threads' process (private).
    fn pid(&self, i: usize) -> i32 {
        match self.crew.threads {
            false => self.crew.slot(i).tid.load(Acquire) as i32,
            true => self.host,
        }
    }

    /// A racer process, or the racer threads' process, that ended while the run goes on
    /// (the fault handler's own exit is no vanishing: its racer is RacerState::Dead).
    pub(super) fn vanished(&self) -> Option<Death> {
        for i in 0..self.spawned {
            let pid = self.pid(i);
            let sig = match sys::child_ended(pid) {
                Some(sys::Ended::Signal(s)) => s,
                Some(sys::Ended::Exit(_)) => 0,
                None => continue,
            };
            // Looked at after the exit was seen: a racer that ended the run stored that
            // before it left, so its leaving is no vanishing.
            if self.crew.ctl().end.load(Acquire) != End::Running {
                return None;
            }
            let racer = match self.crew.threads {
                false if self.crew.slot(i).state.load(Acquire) == RacerState::Dead => continue,
                false => Some(i),
                true => None,
            };
            let oom_kills = self.oom_before.and_then(|b| oom_kills().map(|a| a.saturating_sub(b)));
            let oom_victim = if oom_kills.unwrap_or(0) > 0 { oom_victim(pid) } else { Some(false) };
            return Some(Death { racer, pid, sig, oom_kills, oom_victim });
        }
        None
    }

    /// A racer that the kernel holds stopped: state T or t in /proc/<tid>/stat.
    pub(super) fn stopped(&self) -> Option<usize> {
        (0..self.crew.n).find(|&i| is_stopped(self.crew.slot(i).tid.load(Acquire)))
    }


    pub(super) fn ended(&self, how: End, why: &mut Line) -> Step<Outcome> {
        let ctl = self.crew.ctl();
        let races = ctl.iterations.load(Acquire);
        match how {
            End::Faulted => {
                let dead = |i: &usize| self.crew.slot(*i).state.load(Acquire) == RacerState::Dead;
                let winners = (0..self.crew.n).filter(|i| !dead(i)).count() as u64;
                let Some(i) = (0..self.crew.n).find(dead) else {
                    return Err(Stop::brok(why.s("a racer faulted but left no record")));
                };
                let s = self.crew.slot(i);
                Ok(Outcome::Faulted(Fault {
                    racer: i,
                    cpu: s.fault_cpu.load(Acquire),
                    sig: s.fault_sig.load(Acquire),
                    code: s.fault_code.load(Acquire) as i32,
                    addr: s.fault_addr.load(Acquire),
                    iteration: races,
                    winners,
                    total: s.fault_total.load(Acquire),
                    free: s.fault_free.load(Acquire),
                    note: s.fault_note.load(Acquire),
                }))
            }
            End::Missing => {
                let m = (0..self.crew.n).map(|i| self.crew.slot(i).missing.load(Acquire)).find(|&m| m != 0).unwrap_or(1);
                let late = self.crew.slot(m as usize - 1);
                Err(Stop::brok(why.f(
                    "racer {} (CPU {}) never reached the start line (stopped or starved?) in race {}",
                    &[m as u64, late.cpu.load(Relaxed) as u64, races + 1],
                )))
            }
            End::RenewFailed => {
                let e = Errno(ctl.renew_errno.load(Acquire) as u16);
                let runs = races + ctl.missed.load(Acquire);
                if e == Errno::ENOMEM {
                    // The punch (or the old private mapping's end) freed the page, and the
                    // reservation that should take it again could not: someone else has it.
                    return Err(Stop::brok(why.f(
                        "inconclusive: another process took the last free page while the contested page was given back after race {} (reserving it again: {errno})",
                        &[runs, e.0 as u64],
                    )));
                }
                Err(Stop::brok(why.f("giving the contested page back and reserving it again after race {} failed: {errno}", &[runs, e.0 as u64])))
            }
            End::StateChanged => Err(Stop::brok(why.f(
                "inconclusive: before race {} the pool read {} free, {} reserved, not {} and {} as before race 1 (another process uses these hugepages)",
                &[
                    races + ctl.missed.load(Acquire) + 1,
                    ctl.seen_free.load(Acquire),
                    ctl.seen_resv.load(Acquire),
                    ctl.expect_free.load(Acquire),
                    ctl.expect_resv.load(Acquire),
                ],
            ))),
            End::MissedTooOften => Err(Stop::brok(why.f(
                "{} races in a row missed (the racers were never inside their writes at once) after {} counted: CPUs overcommitted or throttled?",
                &[MISS_BOUND, races],
            ))),
            End::Done | End::Running => Ok(Outcome::Done),
        }
    }

    /// Stop and join every racer. Processes that will not go are killed; racer threads go
    /// with their process.
    pub(super) fn teardown(&mut self) {
        let ctl = self.crew.ctl();
        ctl.stop.store(1, Release);
        if ctl.end.load(Acquire) == End::Running {
            self.crew.end(End::Done);
        }
        // A generation the racers will see as new, so that sleepers wake and leave.
        ctl.generation.store(ctl.generation.load(Acquire).wrapping_add(1), Release);
        sys::futex_wake(&ctl.generation, i32::MAX as u32);
        for i in 0..self.spawned {
            let pid = self.pid(i);
            let t0 = sys::monotonic_ns();
            // A stopped racer would only be waited for in vain: it is killed at once. Asked
            // (of /proc) only of one that has not left within a millisecond: the racers
            // leave as the run ends (Crew::end wakes them), and the reads cost a one-race
            // run 0.8 ms under QEMU's TCG.
            let mut asked = false;
            while sys::child_ended(pid).is_none() && sys::monotonic_ns() - t0 < JOIN_NS + JOIN_NS / 5 {
                if !asked && sys::monotonic_ns() - t0 > 1_000_000 {
                    asked = true;
                    if is_stopped(pid as u32) || (0..self.crew.n).any(|j| is_stopped(self.crew.slot(j).tid.load(Acquire))) {
                        break;
                    }
                }
                sys::sleep_ns(50_000);
            }
            if pid > 0 {
                if sys::child_ended(pid).is_none() {
                    let _ = sys::kill(pid, k::SIGKILL);
                }
                let _ = sys::wait4(pid, k::__WALL);
            }
        }
        sys::default_faults();
    }
}

impl Drop for Race<'_> {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The kernel's count of OOM kills so far (/proc/vmstat).
pub(super) fn oom_kills() -> Option<u64> {
    let mut buf = [0u8; 8192];
    let n = sys::read_file(c"/proc/vmstat", &mut buf).ok()?;
    crate::parse::vmstat(&buf[..n], b"oom_kill")
}

/// Whether the kernel log holds the OOM killer's "Killed process <pid> " for this pid: an
/// OOM kill elsewhere during the run must not pass for ours. None if /dev/kmsg cannot be
/// read (no permission, no devtmpfs).
fn oom_victim(pid: i32) -> Option<bool> {
    let fd = sys::open(c"/dev/kmsg", k::O_RDONLY | k::O_NONBLOCK).ok()?;
    let mut want = Line::new();
    want.s("Killed process ").u(pid as u64).c(b' ');
    // A record is at most 1K of text after its prefix; a read into a smaller buffer fails.
    let mut rec = [0u8; 2048];
    loop {
        // One record per read; EPIPE: a record was overwritten while we read, go on.
        match sys::read(fd.raw(), &mut rec) {
            Ok(0) => return Some(false),
            Ok(n) if rec[..n].windows(want.as_bytes().len()).any(|w| w == want.as_bytes()) => return Some(true),
            Ok(_) | Err(Errno::EPIPE) => {}
            Err(_) => return Some(false),
        }
    }
}

fn is_stopped(tid: u32) -> bool {
    let mut p = sys::PathBuf::new();
    let mut buf = [0u8; 512];
    if tid == 0 {
        return false;
    }
    let Ok(n) = p.push(b"/proc/").and_then(|p| p.push_u64(tid as u64)).and_then(|p| p.push(b"/stat")).and_then(|p| sys::read_file(p.cstr(), &mut buf)) else {
        return false;
    };
    let b = &buf[..n];
    b.iter().rposition(|&c| c == b')').and_then(|r| b.get(r + 2)).is_some_and(|&c| c == b'T' || c == b't')
}

fn step_failure(why: &mut Line, step: SetupStep, e: Errno, cpu: u32, seen: u32) -> Stop {
    Stop::brok(match step {
        SetupStep::Signals => why.f("blocking signals: {errno}", &[e.0 as u64]),
        SetupStep::Pdeathsig => why.f("prctl(PR_SET_PDEATHSIG): {errno}", &[e.0 as u64]),
        SetupStep::Affinity => why.f("sched_setaffinity(CPU {}): {errno}", &[cpu as u64, e.0 as u64]),
        SetupStep::WrongCpu => why.f("pinned to CPU {} but runs on CPU {}", &[cpu as u64, seen as u64]),
        SetupStep::ParentGone => why.s("its parent exited during setup"),
        SetupStep::Map => why.f("mmap of the contested page (MAP_PRIVATE): {errno}", &[e.0 as u64]),
        SetupStep::Clone => why.f("clone of a racer thread: {errno}", &[e.0 as u64]),
        SetupStep::None => why.s("setup failed"),
    })
}

/// "racer 2 (pid 123) was killed by SIGKILL", or the racer threads' process.
pub fn death_line<'l>(why: &'l mut Line, d: &Death) -> &'l mut Line {
    match d.racer {
        Some(i) => why.f("racer {} (pid {}) ", &[i as u64 + 1, d.pid as u64]),
        None => why.f("the racer threads' process (pid {}) ", &[d.pid as u64]),
    };
    if d.sig == 0 {
        return why.s("exited");
    }
    why.s("was killed by ").sig(d.sig)
}

/// TBROK: a terminating signal arrived (it is acted on at a safe point, never at once).
pub fn interrupted(why: &mut Line, sig: u32) -> Stop {
    Stop::brok(why.s("interrupted by ").sig(sig))
}

