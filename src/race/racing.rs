//! The interface between the engine and a kind of race (`src/races/<kind>.rs`): what its
//! racers do, what a race of it means, and how its failures and figures read. The engine
//! lines the racers up, releases them, keeps the books, renews the page, watches, tears
//! down and reports; it never asks which kind it runs.
//!
//! A kind's value is read by every racer, and racer processes have their own copy of the
//! supervisor's memory: so the value itself is read-only after the racers start, and what a
//! kind's racers share (its aim, its sweep, its own figures) lives in a MAP_SHARED page of
//! the kind's own (`sys::Shared`).

use super::crew::Crew;
use super::watch::Fault;
use crate::out::Line;
use crate::report::Figures;

/// What the closer found in a race every racer finished.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Judged {
    /// The racers were where the bug is, at one moment: the race counts.
    Overlapped,
    /// They were not: the race is counted apart and run again; `pause` asks for a random
    /// pause first (racers fallen into opposite time slices).
    Missed { pause: bool },
}

/// The state every race starts from, and what the fill left in use.
#[derive(Clone, Copy)]
pub struct State {
    pub free: u64,
    pub resv: u64,
    /// Pages in use before a race (ours and anybody else's at the fill).
    pub in_use: u64,
}

pub trait Racing: Sync {
    /// Racers are threads of one child process that maps the page itself (true), or
    /// processes of their own that inherit the supervisor's mapping.
    fn threads(&self) -> bool;
    /// Aim the crew's first race, `t0` the clocks (ns, ticks) when the crew started (a
    /// restart after a failed race keeps the aim the failure chose).
    fn first_aim(&self, t0: (u64, u64));
    /// Racer i, before it sets its trigger: a word its step gets back. `real` is false in a
    /// warm-up lap.
    fn arm(&self, i: usize, real: bool) -> u64;
    /// Whether the race under way starts level: then the last racer to reach the start line
    /// waits the tuned delay, so that its partners, who see its trigger one transfer later,
    /// start with it.
    fn level(&self) -> bool;
    /// Racer i's step: its counter stamps just before and just after. `real` is false in a
    /// warm-up lap, which only stamps.
    fn step(&self, crew: &Crew, i: usize, real: bool, armed: u64) -> (u64, u64);
    /// The closer's judge of race `g`, every racer finished: book it, aim the next.
    fn judge(&self, crew: &Crew, g: u32) -> Judged;
    /// The closer's part in warm-up lap `g`.
    fn lap(&self, crew: &Crew, g: u32);
    /// A racer died in the race under way: book the failure, aim the next race.
    fn failed(&self);
    /// The fault handler's first look, before the pool is read: a word for `Fault::note`.
    fn at_fault(&self) -> u32;
    /// Why something other than the kernel's bug may explain this fault (TBROK
    /// "inconclusive"), from the pool at the fault; None: the kernel is to blame.
    fn taken_elsewhere(&self, s: &State, f: &Fault) -> Option<&'static str>;
    /// The TFAIL's words after the fault's facts: what the kernel failed. `scale` turns
    /// ticks into ns (`stats::scale`).
    fn blame(&self, l: &mut Line, f: &Fault, scale: (u64, u64));
    /// Who races, for the setup line: "2 processes on CPUs " (the CPUs follow).
    fn racers(&self, l: &mut Line, n: usize);
    /// The kind's own figures (its sweep, its own duration).
    fn figures(&self, f: &mut Figures, scale: (u64, u64));
}
