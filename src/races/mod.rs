//! The hugetlb bugs hugerace knows, one kind per row of `KINDS`: what `--race` takes, the
//! upstream fix the kind guards against, the kernels known to have the bug, whether running
//! it can break the kernel's accounting until reboot, and its modes and page sizes. Every
//! reader of the family reads this one table: `--race` and `--list`, `--help`, PID-1 mode
//! (`all`), and, through `--list`, the tests that hold the man page and the README to it
//! (tests/races.rs). Each kind's behaviour is a module of its own beside this one.

use crate::cli::{Config, Error, Format, Key};
use crate::out::{Line, STDOUT};
use crate::step::Mode;

mod alloc;
mod dontneed;

/// The upstream commit that fixed a kind's bug.
pub struct Fix {
    /// Its first 12 hex digits, as `Fixes:` tags quote it.
    pub id: &'static str,
    pub title: &'static str,
    /// The first release that has it.
    pub release: &'static str,
}

/// The page sizes a kind takes.
#[derive(Clone, Copy)]
pub enum Sizes {
    Any,
    /// Pages up to this size (bytes): the kind needs several of them at once.
    UpTo(u64),
}

/// The name under which libhugetlbfs's runner calls the kind's test, and that test's usage.
pub struct Libhugetlbfs {
    pub name: &'static [u8],
    pub usage: &'static str,
}

/// One kind of hugetlb bug: one row of the table.
pub struct Kind {
    /// What `--race` takes.
    pub name: &'static str,
    /// What it does, in a few words (`--help`).
    pub about: &'static str,
    /// The fix it guards against; None: no upstream fix known.
    pub fix: Option<Fix>,
    /// The kernels known to have the bug.
    pub kernels: &'static str,
    /// Whether it can break the kernel's hugepage accounting until reboot: it runs only as
    /// the machine's own init (a throwaway boot) or with --destructive.
    pub destructive: bool,
    /// Its modes, each a result of its own; a kind with one mode names it after itself.
    pub modes: &'static [Mode],
    pub sizes: Sizes,
    /// libhugetlbfs's test of the same bug, if it has one (and then its format).
    pub libhugetlbfs: Option<Libhugetlbfs>,
    /// Options the kind cannot honour: a usage error when it was named, a TCONF under `all`.
    pub refuses: fn(&Config) -> Option<Error>,
}

/// The table. The first row is what runs when `--race` is not given; destructive kinds come
/// last, so that `all` runs every other kind before one of them can break the accounting.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "alloc",
        about: "racers fault the last free page at once (libhugetlbfs's test)",
        fix: Some(Fix { id: "3935baa9bcda", title: "hugepage: Serialize hugepage allocation and instantiation", release: "v2.6.17" }),
        kernels: "2.6.16 and older; any kernel that breaks the fault mutex's serialisation (make detect's mutants)",
        destructive: false,
        modes: &[Mode::Shared, Mode::Private],
        sizes: Sizes::Any,
        libhugetlbfs: Some(Libhugetlbfs { name: b"alloc-instantiate-race", usage: "<private|shared>" }),
        refuses: alloc::refuses,
    },
    Kind {
        name: "dontneed",
        about: "MADV_DONTNEED frees a private page while a write faults on it",
        fix: Some(Fix { id: "2820b0f09be9", title: "hugetlbfs: close race between MADV_DONTNEED and page fault", release: "v6.6" }),
        kernels: "6.1 to 6.5, and 6.1.y (Debian 12's 6.1.192): that stable series did not take the fix",
        destructive: false,
        modes: &[Mode::Dontneed],
        sizes: Sizes::Any,
        libhugetlbfs: None,
        refuses: dontneed::refuses,
    },
];

/// The kinds one command line selects: bits of `KINDS`, the ones named and the ones `all`
/// brought (which are refused with a TCONF, not a usage error).
#[derive(Clone, Copy, Debug)]
pub struct Selection {
    pub kinds: u32,
    pub named: u32,
}

fn bit(i: usize) -> u32 {
    1 << i
}

impl Selection {
    /// The selected kinds, in the table's order.
    pub fn each(&self) -> impl Iterator<Item = &'static Kind> + '_ {
        KINDS.iter().enumerate().filter(move |(i, _)| self.kinds & bit(*i) != 0).map(|(_, k)| k)
    }
}

impl Kind {
    /// The modes of this kind that the mode word selects, as bits of `modes` (a kind with one
    /// mode ignores the word).
    pub fn modes_for(&self, word: Option<&[u8]>) -> u32 {
        let mut bits = 0;
        for (i, m) in self.modes.iter().enumerate() {
            if self.modes.len() == 1 || word.is_none_or(|w| w == b"both" || w == m.name().as_bytes()) {
                bits |= bit(i);
            }
        }
        bits
    }

    /// Why this kind cannot run with these options: its own refusals and the family's. (A
    /// mode word is refused only where the kind is named: under `all` it means the kinds
    /// that have modes.)
    pub fn refusal(&self, cfg: &Config) -> Option<Error> {
        if cfg.format == Format::Hugetlbfs && self.libhugetlbfs.is_none() {
            return Some(Error { msg: "libhugetlbfs has no such test: no -f hugetlbfs with race", arg: self.name.as_bytes() });
        }
        (self.refuses)(cfg)
    }

    /// Whether it runs on pages of this size.
    pub fn takes(&self, size: u64) -> bool {
        match self.sizes {
            Sizes::Any => true,
            Sizes::UpTo(max) => size <= max,
        }
    }
}

/// Read `--race` and the mode word against the table. A name that is no kind, a mode word
/// no kind has, or an option a named kind cannot honour is a usage error.
#[inline(never)]
pub fn select(cfg: &Config) -> Result<Selection, Error> {
    // No --race: the first kind, as if named.
    let mut sel = Selection { kinds: cfg.races.is_empty() as u32, named: cfg.races.is_empty() as u32 };
    for name in cfg.races.split(|&c| c == b',').filter(|_| !cfg.races.is_empty()) {
        if name == b"all" {
            sel.kinds |= bit(KINDS.len()) - 1;
            continue;
        }
        let Some(i) = KINDS.iter().position(|k| k.name.as_bytes() == name) else {
            return Err(Error { msg: "no such race (hugerace --list names them)", arg: name });
        };
        sel.kinds |= bit(i);
        sel.named |= bit(i);
    }
    if let Some(w) = cfg.mode
        && w != b"both"
        && !KINDS.iter().any(|k| k.modes.len() > 1 && k.modes.iter().any(|m| m.name().as_bytes() == w))
    {
        return Err(Error { msg: "mode must be a mode of a race (hugerace --list) or both", arg: w });
    }
    for (_, k) in KINDS.iter().enumerate().filter(|(i, _)| sel.named & bit(*i) != 0) {
        if cfg.mode.is_some() && k.modes.len() < 2 {
            return Err(Error { msg: "takes no mode word (the modes are another race's): no mode with race", arg: k.name.as_bytes() });
        }
        if let Some(e) = k.refusal(cfg) {
            return Err(e);
        }
    }
    Ok(sel)
}

/// The kind whose libhugetlbfs test goes by this program name.
pub fn by_libhugetlbfs_name(name: &[u8]) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.libhugetlbfs.as_ref().is_some_and(|l| l.name == name))
}

/// libhugetlbfs's usage line for its test of `kind` (the runner reads it as a bad
/// configuration), or a plain one for a kind it has no test of.
pub fn libhugetlbfs_usage(l: &mut Line, kind: &Kind) {
    l.s("Usage: ");
    match &kind.libhugetlbfs {
        Some(t) => l.b(t.name).c(b' ').s(t.usage),
        None => l.s("hugerace --race ").s(kind.name),
    };
    l.s(" [hugerace options]");
}

/// `--list`: one line per kind, its name first (what `--race` takes), then the fix (its id
/// and title, or "no upstream fix known"), the kernels known to have the bug, `destructive`
/// where it applies, and its modes and sizes.
#[inline(never)]
pub fn list() {
    let mut l = Line::new();
    for k in KINDS {
        let start = l.as_bytes().len();
        l.s(k.name);
        while l.as_bytes().len() - start < 14 {
            l.c(b' ');
        }
        match &k.fix {
            Some(f) => l.s(f.id).s(" \"").s(f.title).s("\" (").s(f.release).c(b')'),
            None => l.s("no upstream fix known"),
        };
        l.s("; bug in: ").s(k.kernels);
        if k.destructive {
            l.s("; destructive");
        }
        tell_modes_and_sizes(&mut l, k);
        l.nl();
        l.emit(STDOUT);
    }
}

fn tell_modes_and_sizes(l: &mut Line, k: &Kind) {
    if k.modes.len() > 1 {
        l.s("; modes");
        for (i, m) in k.modes.iter().enumerate() {
            l.s(if i == 0 { " " } else { ", " }).s(m.name());
        }
    }
    match k.sizes {
        Sizes::Any => l.s("; any page size"),
        Sizes::UpTo(max) => l.f("; pages up to {size}", &[max]),
    };
}

/// The kinds' part of `--help`: a line each.
#[inline(never)]
pub fn help(l: &mut Line) {
    l.s("\nRaces (--race NAME,... or all; --list for their fixes and kernels):\n");
    l.emit(STDOUT);
    for (i, k) in KINDS.iter().enumerate() {
        let start = l.as_bytes().len();
        l.s("  ").s(k.name);
        while l.as_bytes().len() - start < 16 {
            l.c(b' ');
        }
        l.s(k.about);
        if i == 0 {
            l.s(" [default]");
        }
        if k.destructive {
            l.s(" (destructive: as /init, or with --destructive)");
        }
        l.nl();
        l.emit(STDOUT);
    }
}

/// Whether an option was given on the command line.
pub(crate) fn given(cfg: &Config, key: Key) -> bool {
    cfg.given & (1 << key as u32) != 0
}

#[cfg(test)]
mod tests;
