//! `--help` and `--version`: the help is rendered from the option table, so that an option
//! cannot be parsed without being shown.

use super::options::{EXAMPLES, GROUPS, OPTIONS};
use crate::out::{Line, STDOUT};

pub fn version() {
    let mut l = Line::new();
    l.s(concat!("hugerace ", env!("CARGO_PKG_VERSION"), " (", env!("HUGERACE_TARGET")));
    let commit = env!("HUGERACE_COMMIT");
    if !commit.is_empty() {
        l.s(", commit ").s(commit);
    }
    l.s(")\n");
    l.emit(STDOUT);
}

/// `kinds` writes the races' part (the table of kinds lives above the command line).
pub fn help(kinds: &mut dyn FnMut(&mut Line)) {
    let mut l = Line::new();
    l.s(concat!(
        "Usage: hugerace [OPTIONS] [MODE]\n",
        "Reproduce hugetlb bugs: fill the hugepage pool but for the pages a race needs,\n",
        "and let racers on distinct CPUs fault them at once, or check the reservations\n",
        "step by step. A SIGBUS where the kernel owes a page is a FAIL.\n",
    ));
    l.emit(STDOUT);
    for (g, title) in GROUPS.iter().enumerate() {
        l.c(b'\n').s(title).s(":\n");
        l.emit(STDOUT);
        for o in OPTIONS.iter().filter(|o| o.group as usize == g) {
            let start = l.as_bytes().len();
            l.s("  ");
            if o.short != 0 {
                l.c(b'-').c(o.short).s(", ");
            } else {
                l.s("    ");
            }
            l.s("--").s(o.long);
            if !o.value.is_empty() {
                l.c(b' ').s(o.value);
            }
            // (At least one space: a long option with its value may fill the column.)
            l.c(b' ');
            while l.as_bytes().len() - start < 28 {
                l.c(b' ');
            }
            l.s(o.help).c(b'\n');
            l.emit(STDOUT);
        }
    }
    kinds(&mut l);
    l.s(concat!(
        "\nRoot is needed only to raise the hugepage pool; it is put back afterwards.\n",
        "Exit status per format, and what to collect after a FAIL: man hugerace.\n\nExamples:\n",
    ));
    for e in EXAMPLES {
        l.s("  ").s(e).c(b'\n');
        l.emit(STDOUT);
    }
}
