//! The command line: one table of options drives both parsing and `--help`.

pub use crate::cpus::{CpuList, Racers};
use crate::parse;

mod help;
mod options;
pub use help::{help, version};
pub use options::{Key, Opt, EXAMPLES, GROUPS, OPTIONS};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Ltp,
    Ktap,
    Json,
    Hugetlbfs,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PageSel {
    Default,
    All,
    Size(u64),
}

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// `--race`: the kinds to run, as written (`alloc`, `alloc,dontneed`, `all`); empty: the
    /// default kind. `races::select` reads it against the table of kinds.
    pub races: &'static [u8],
    /// The mode word (`-m`, or bare), as written; None: every mode of each kind. Also read by
    /// `races::select`, which knows the kinds' modes.
    pub mode: Option<&'static [u8]>,
    /// `--destructive`: run the kinds that can break the kernel's accounting until reboot.
    /// PID-1 mode sets it when hugerace is the machine's own init (a throwaway boot).
    pub destructive: bool,
    /// The options given, one bit per `Key`: some kinds refuse an option they cannot honour.
    pub given: u32,
    pub pagesize: PageSel,
    pub racers: Racers,
    /// `-c`: an explicit CPU list.
    pub cpus: Option<CpuList>,
    pub iterations: u64,
    pub duration_s: u64,
    /// How long one iteration may take before the run is TBROK as a hang.
    pub iteration_timeout_s: u64,
    pub rt: bool,
    /// `--keep-going`: after a failed race, count it, re-create the state and race on.
    pub keep_going: bool,
    /// `--offset`: racers after the first start this many ns later in every race (0, level,
    /// by default); None: `--offset sweep`, the offset is swept and learned.
    pub offset_ns: Option<u64>,
    pub noreserve: bool,
    pub leave_free: u64,
    pub no_pool_change: bool,
    pub hugetlbfs: Option<&'static [u8]>,
    pub no_memfd: bool,
    pub format: Format,
    pub verbose: bool,
    /// The live progress line: Some(true) always (`--progress`), Some(false) never (PID-1
    /// mode: a serial console that a harness parses), None when stderr is a terminal of its
    /// own (see `progress`).
    pub progress: Option<bool>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            races: b"",
            mode: None,
            destructive: false,
            given: 0,
            pagesize: PageSel::Default,
            racers: Racers::Count(2),
            cpus: None,
            iterations: 1,
            duration_s: 0,
            iteration_timeout_s: 120,
            rt: false,
            keep_going: false,
            offset_ns: Some(0),
            noreserve: false,
            leave_free: 1,
            no_pool_change: false,
            hugetlbfs: None,
            no_memfd: false,
            format: Format::Ltp,
            verbose: false,
            progress: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Action {
    Run(Config),
    /// `--list`: the kinds, their fixes and the kernels known to have their bugs.
    List,
    Help,
    Version,
}

/// A usage error: the message and the argument it is about.
#[derive(Debug, PartialEq, Eq)]
pub struct Error {
    pub msg: &'static str,
    pub arg: &'static [u8],
}

/// Upper bounds that keep arithmetic far from overflow; beyond them a value is refused.
const MAX_COUNT: u64 = 1 << 40;
const MAX_RACERS: u64 = 65536;
/// The largest start offset: far beyond any fault, so every race misses.
const MAX_OFFSET_NS: u64 = 10_000_000_000;

/// Parse the words after argv[0]. `words` yields each argument once, in order.
pub fn parse(words: impl Iterator<Item = &'static [u8]>, base: Config) -> Result<Action, Error> {
    let mut cfg = base;
    let mut seen: u32 = 0;
    let mut words = words;
    let mut only_positional = false;
    while let Some(w) = words.next() {
        let (opt, inline): (&Opt, Option<&'static [u8]>) = if only_positional || !w.starts_with(b"-") || w == b"-" {
            positional(&mut cfg, &mut seen, w)?;
            continue;
        } else if w == b"--" {
            only_positional = true;
            continue;
        } else if let Some(long) = w.strip_prefix(b"--") {
            let (name, val) = match long.iter().position(|&c| c == b'=') {
                Some(p) => (&long[..p], Some(&long[p + 1..])),
                None => (long, None),
            };
            let o = OPTIONS.iter().find(|o| o.long.as_bytes() == name).ok_or(Error { msg: "unknown option", arg: w })?;
            (o, val)
        } else {
            let o = OPTIONS.iter().find(|o| o.short != 0 && o.short == w[1]).ok_or(Error { msg: "unknown option", arg: w })?;
            (o, if w.len() > 2 { Some(&w[2..]) } else { None })
        };
        let bit = 1u32 << (opt.key as u32);
        if seen & bit != 0 {
            return Err(Error { msg: "option given twice", arg: w });
        }
        seen |= bit;
        let val = if opt.value.is_empty() {
            if inline.is_some() {
                return Err(Error { msg: "option takes no value", arg: w });
            }
            b"" as &[u8]
        } else {
            match inline {
                Some(v) => v,
                None => words.next().ok_or(Error { msg: "missing value for", arg: w })?,
            }
        };
        if let Some(a) = apply(&mut cfg, opt.key, val, w)? { return Ok(a) }
    }
    cfg.given = seen;
    if cfg.leave_free == 0 && !cfg.noreserve {
        // Without MAP_NORESERVE the kernel refuses to map a page it cannot reserve, so the
        // run could only end in TBROK: say so now.
        return Err(Error { msg: "needs --noreserve (nothing could be reserved)", arg: b"--leave-free 0" });
    }
    Ok(Action::Run(cfg))
}

fn format_named(val: &[u8]) -> Option<Format> {
    Some(match val {
        b"ltp" => Format::Ltp,
        b"ktap" => Format::Ktap,
        b"json" => Format::Json,
        b"hugetlbfs" => Format::Hugetlbfs,
        _ => return None,
    })
}

/// The format the words ask for, found ahead of parsing so that even a usage error can be
/// told in that format's words (libhugetlbfs's runner reads only stdout and the status).
pub fn format_given(mut words: impl Iterator<Item = &'static [u8]>) -> Option<Format> {
    let mut found = None;
    while let Some(w) = words.next() {
        let val = match w {
            b"--" => break,
            b"-f" | b"--format" => words.next(),
            _ => w.strip_prefix(b"--format=").or_else(|| w.strip_prefix(b"-f")),
        };
        found = val.and_then(format_named).or(found);
    }
    found
}

fn positional(cfg: &mut Config, seen: &mut u32, w: &'static [u8]) -> Result<(), Error> {
    let bit = 1u32 << (Key::Mode as u32);
    if *seen & bit != 0 {
        return Err(Error { msg: "mode given twice", arg: w });
    }
    *seen |= bit;
    set_mode(cfg, w)
}

/// The mode word: checked against the kinds' modes by `races::select`.
fn set_mode(cfg: &mut Config, w: &'static [u8]) -> Result<(), Error> {
    if w.is_empty() {
        return Err(Error { msg: "mode must be a mode of a race or both, not empty:", arg: b"--mode" });
    }
    cfg.mode = Some(w);
    Ok(())
}

fn count(val: &'static [u8], opt: &'static [u8], max: u64, zero_ok: bool) -> Result<u64, Error> {
    match parse::u64_dec(val) {
        Some(v) if v > max => Err(Error { msg: "value too large for", arg: opt }),
        Some(0) if !zero_ok => Err(Error { msg: "value must be at least 1 for", arg: opt }),
        Some(v) => Ok(v),
        None if val.is_empty() => Err(Error { msg: "empty value for", arg: opt }),
        None => Err(Error { msg: "not a number", arg: val }),
    }
}

fn apply(cfg: &mut Config, key: Key, val: &'static [u8], opt: &'static [u8]) -> Result<Option<Action>, Error> {
    match key {
        Key::Race => {
            if val.is_empty() {
                return Err(Error { msg: "empty value for", arg: opt });
            }
            cfg.races = val
        }
        Key::Mode => set_mode(cfg, val)?,
        Key::Destructive => cfg.destructive = true,
        Key::List => return Ok(Some(Action::List)),
        Key::PageSize => {
            cfg.pagesize = if val == b"all" {
                PageSel::All
            } else {
                PageSel::Size(parse::size(val).ok_or(Error { msg: "not a page size (2M, 1G, 64K... a power of two)", arg: val })?)
            }
        }
        Key::Racers => {
            cfg.racers = if val == b"all" {
                Racers::All
            } else {
                let n = count(val, opt, MAX_RACERS, false)?;
                if n < 2 {
                    return Err(Error { msg: "a race needs at least 2 racers", arg: val });
                }
                Racers::Count(n as u32)
            }
        }
        Key::Cpus => cfg.cpus = Some(CpuList::new(val).map_err(|msg| Error { msg, arg: val })?),
        Key::Iterations => cfg.iterations = count(val, opt, MAX_COUNT, false)?,
        Key::Duration => cfg.duration_s = count(val, opt, 1 << 32, false)?,
        Key::IterationTimeout => cfg.iteration_timeout_s = count(val, opt, 1 << 32, false)?,
        Key::Rt => cfg.rt = true,
        Key::KeepGoing => cfg.keep_going = true,
        Key::Offset => cfg.offset_ns = if val == b"sweep" { None } else { Some(count(val, opt, MAX_OFFSET_NS, true)?) },
        Key::NoReserve => cfg.noreserve = true,
        Key::LeaveFree => cfg.leave_free = count(val, opt, MAX_COUNT, true)?,
        Key::NoPoolChange => cfg.no_pool_change = true,
        Key::Hugetlbfs => {
            if val.is_empty() || val.len() > 200 || val.contains(&0) {
                return Err(Error { msg: "not a usable directory path", arg: opt });
            }
            cfg.hugetlbfs = Some(val)
        }
        Key::NoMemfd => cfg.no_memfd = true,
        Key::Format => cfg.format = format_named(val).ok_or(Error { msg: "format must be ltp, ktap, json or hugetlbfs", arg: val })?,
        Key::Verbose => cfg.verbose = true,
        Key::Progress => cfg.progress = Some(true),
        Key::Help => return Ok(Some(Action::Help)),
        Key::Version => return Ok(Some(Action::Version)),
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
