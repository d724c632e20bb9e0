//! The man page and `--help` cannot drift apart: every option `--help` lists is in
//! doc/hugerace.1, every option the man page documents is in `--help`, and the page covers
//! the sections its readers need.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::process::Command;

fn man_text() -> String {
    let raw = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/doc/hugerace.1")).expect("doc/hugerace.1");
    // Plain text: roff's minus signs and font changes removed.
    let mut t = raw.replace("\\-", "-");
    for f in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        t = t.replace(f, "");
    }
    t
}

/// The options of the `--help` text: the leading `-x,` / `--long` words of each option line.
fn help_options() -> BTreeSet<String> {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let mut set = BTreeSet::new();
    for line in stdout(&o).lines().filter(|l| l.trim_start().starts_with('-')) {
        for w in line.split_whitespace() {
            let w = w.trim_end_matches(',');
            if w.starts_with('-') {
                set.insert(w.to_string());
            } else if !w.chars().all(|c| c.is_ascii_uppercase()) {
                break; // past the value name: the description
            }
        }
    }
    set
}

/// Whether `opt` occurs in `text` as a whole option word.
fn has_option(text: &str, opt: &str) -> bool {
    text.match_indices(opt).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + opt.len()..].chars().next();
        !matches!(before, Some(c) if c == '-' || c.is_ascii_alphanumeric())
            && !matches!(after, Some(c) if c == '-' || c.is_ascii_alphanumeric())
    })
}

#[test]
fn every_help_option_is_in_the_man_page() {
    let opts = help_options();
    assert!(opts.len() >= 20, "too few options parsed from --help: {opts:?}");
    let man = man_text();
    let missing: Vec<_> = opts.iter().filter(|o| !has_option(&man, o)).collect();
    assert!(missing.is_empty(), "options in --help but not in doc/hugerace.1: {missing:?}");
}

#[test]
fn every_man_page_option_is_in_help() {
    let opts = help_options();
    let man = man_text();
    // The option headings: the line after each .TP in the OPTIONS section.
    let section = man.split("\n.SH OPTIONS").nth(1).and_then(|s| s.split("\n.SH ").next()).expect("an OPTIONS section");
    let mut lines = section.lines();
    let mut seen = 0;
    while let Some(l) = lines.next() {
        if l == ".TP" {
            let head = lines.next().unwrap_or("");
            for w in head.split(|c: char| c.is_whitespace() || c == '"' || c == ',') {
                if w.starts_with('-') && w.len() > 1 {
                    assert!(opts.contains(w), "doc/hugerace.1 documents {w}, which --help does not list");
                    seen += 1;
                }
            }
        }
    }
    assert!(seen >= opts.len(), "the man page's option headings name {seen} options, --help {}", opts.len());
}

#[test]
fn the_man_page_covers_what_its_readers_need() {
    let man = man_text();
    for s in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "OUTPUT FORMATS", "EXIT STATUS", "PID 1", "EXAMPLES", "AFTER A FAIL"] {
        assert!(man.contains(&format!("\n.SH {s}\n")), "no section {s}");
    }
    for f in [".SS ltp", ".SS ktap", ".SS json", ".SS hugetlbfs"] {
        assert!(man.contains(f), "no subsection {f}");
    }
    for fact in ["uname -a", "/proc/meminfo", "/sys/kernel/mm/hugepages", "nr_overcommit_hugepages", "hugetlb.*.max", "dmesg", "-v", "hugerace: exit", "power"] {
        assert!(man.contains(fact), "the man page does not mention {fact}");
    }
}

#[test]
fn the_man_page_renders_without_warnings() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/doc/hugerace.1");
    let o = match Command::new("groff").args(["-t", "-man", "-ww", "-z", path]).output() {
        Ok(o) => o,
        Err(_) => {
            need_tool("groff", "groff");
            return;
        }
    };
    assert!(o.status.success() && o.stderr.is_empty(), "groff: {}", stderr(&o));
}
