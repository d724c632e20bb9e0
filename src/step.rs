//! The words every step speaks: a step's result (`Step`), why it stopped (`Stop`), what a
//! check found (`Verdict`), the
//! result kinds a report tells (`Res`), and the race's modes (`Mode`). They sit below the
//! steps and the report alike, so that no step has to know how results are printed.

use crate::out::Line;
use crate::sys::Errno;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Res {
    Pass,
    Fail,
    Brok,
    Conf,
    Warn,
    Info,
}

impl Res {
    pub fn ltp(self) -> &'static str {
        match self {
            Res::Pass => "TPASS",
            Res::Fail => "TFAIL",
            Res::Brok => "TBROK",
            Res::Conf => "TCONF",
            Res::Warn => "TWARN",
            Res::Info => "TINFO",
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            Res::Pass => "pass",
            Res::Fail => "fail",
            Res::Brok => "broken",
            Res::Conf => "skip",
            Res::Warn => "warn",
            Res::Info => "info",
        }
    }
}

/// What a check that ran to its end found: the kernel did what it owes (TPASS), or it did
/// not (TFAIL, the facts in the caller's line). A TFAIL is a result, not a stop: a step
/// that returns `Ok(Verdict::Fail)` finished its work, restored what it changed, and is
/// reported like a pass.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    Pass,
    Fail,
}

impl Verdict {
    pub fn res(self) -> Res {
        match self {
            Verdict::Pass => Res::Pass,
            Verdict::Fail => Res::Fail,
        }
    }
}

/// Why a step could not go on: TBROK or TCONF. The reason itself is written into the line
/// the caller passed down (`why`), so that the error value is one byte: a 480-byte message
/// moved through every `?` cost over a hundred block copies (binary size, issue 3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stop {
    pub res: Res,
}

impl Stop {
    /// TBROK, with its reason already written into `why`: taking the line lets a call site
    /// read as one expression, `Err(Stop::brok(why.s("...").u(n)))`.
    pub fn brok(_why: &mut Line) -> Stop {
        Stop { res: Res::Brok }
    }
    /// TCONF, with its reason already written into `why`.
    pub fn conf(_why: &mut Line) -> Stop {
        Stop { res: Res::Conf }
    }
    /// TBROK naming the call that failed and its errno.
    #[inline(never)]
    pub fn sys(why: &mut Line, what: &str, e: Errno) -> Stop {
        Stop::brok(why.s(what).s(": ").errno(e))
    }
}

pub type Step<T> = Result<T, Stop>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Shared,
    Private,
    /// The dontneed race: MADV_DONTNEED against a fault, on one private anonymous page.
    Dontneed,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Shared => "shared",
            Mode::Private => "private",
            Mode::Dontneed => "dontneed",
        }
    }
}
