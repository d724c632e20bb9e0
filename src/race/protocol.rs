//! The words the racers and the supervisor exchange on the control page: how a run ended,
//! a racer's state, and which setup step failed. Each is an enum, kept in an atomic word
//! (`Word`) as its number, so that every reader matches all of its values.

use core::marker::PhantomData;
use core::sync::atomic::{AtomicU32, Ordering};

/// A value of the protocol: its number on the control page and back. The number 0 is the
/// first value, what a fresh (zeroed) word holds.
pub trait Value: Copy {
    fn number(self) -> u32;
    /// The value of a number; only our own code writes the words, so every number read
    /// back is one of ours (anything else reads as the zero value).
    fn of(n: u32) -> Self;
}

/// An atomic word holding a protocol value.
#[repr(transparent)]
pub struct Word<V: Value> {
    raw: AtomicU32,
    _v: PhantomData<V>,
}

impl<V: Value> Default for Word<V> {
    fn default() -> Self {
        Word { raw: AtomicU32::new(0), _v: PhantomData }
    }
}

impl<V: Value> Word<V> {
    pub fn load(&self, o: Ordering) -> V {
        V::of(self.raw.load(o))
    }
    pub fn store(&self, v: V, o: Ordering) {
        self.raw.store(v.number(), o)
    }
    /// The word itself, for a futex on it.
    pub fn raw(&self) -> &AtomicU32 {
        &self.raw
    }
}

macro_rules! protocol {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[repr(u32)]
        pub enum $name { $($(#[$vm])* $v = $n),+ }
        impl Value for $name {
            fn number(self) -> u32 {
                self as u32
            }
            fn of(n: u32) -> Self {
                $(if n == $n { return $name::$v; })+
                Self::of(0)
            }
        }
    };
}

protocol! {
    /// How the run ended, as `Control::end` holds it.
    End {
        Running = 0,
        Done = 1,
        /// A racer died of a fault in a race (its slot holds what the handler saw).
        Faulted = 2,
        /// A racer never reached the start line (`Slot::missing` names it).
        Missing = 3,
        /// Giving the page back or reserving it again failed (`renew_errno` says why).
        RenewFailed = 4,
        /// The counters before a race were not race 1's (`seen_*` hold what was read).
        StateChanged = 5,
        /// MISS_BOUND races in a row did not overlap.
        MissedTooOften = 6,
    }
}

protocol! {
    /// A racer's state, as `Slot::state` holds it.
    RacerState {
        Starting = 0,
        Ready = 1,
        /// Ended by a fault in its step (the fault handler's exit).
        Dead = 2,
        SetupFailed = 3,
    }
}

protocol! {
    /// Which setup step failed, as `Slot::step` (or `Control::host_step`) holds it.
    SetupStep {
        None = 0,
        Signals = 1,
        Pdeathsig = 2,
        Affinity = 3,
        WrongCpu = 4,
        ParentGone = 5,
        /// The racer threads' process could not map the contested page.
        Map = 6,
        /// ... or could not start a racer thread.
        Clone = 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for e in [End::Running, End::Done, End::Faulted, End::Missing, End::RenewFailed, End::StateChanged, End::MissedTooOften] {
            assert_eq!(End::of(e.number()), e);
        }
        assert_eq!(RacerState::of(99), RacerState::Starting);
        let w: Word<SetupStep> = Word::default();
        assert_eq!(w.load(Ordering::Relaxed), SetupStep::None);
        w.store(SetupStep::Clone, Ordering::Relaxed);
        assert_eq!((w.load(Ordering::Relaxed), w.raw().load(Ordering::Relaxed)), (SetupStep::Clone, 7));
    }
}
