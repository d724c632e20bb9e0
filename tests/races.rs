//! The table of kinds (src/races/mod.rs) is what `--list` prints, and every other reader must
//! agree with it: `--help` names every kind, the man page names every kind and its fix, and
//! the README's table of races has one row per kind with the same fix. Also the selection:
//! `--race all` on this host runs every kind but the destructive ones, which end TCONF
//! saying why and what to run, and a list of names runs those kinds, in the table's order.

mod common;
use common::inject::empty_pool;
use common::*;

/// Root, hugetlb and 2M pages, or a logged SKIP (a failure under CI).

/// One kind as `--list` prints it: name, the fix's id (None: "no upstream fix known"), and
/// whether it is destructive.
#[derive(Debug)]
struct Listed {
    name: String,
    fix: Option<String>,
    destructive: bool,
    line: String,
}

fn listed() -> Vec<Listed> {
    let o = run(&["--list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    let kinds: Vec<Listed> = out
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next().unwrap().to_string();
            let second = w.next().unwrap_or("");
            let fix = if l.contains(" no upstream fix known") {
                None
            } else {
                assert!(second.len() == 12 && second.chars().all(|c| c.is_ascii_hexdigit()), "no 12-digit fix id after the name: {l}");
                Some(second.to_string())
            };
            let destructive = l.split("; ").any(|f| f == "destructive");
            assert!(l.contains("; bug in: "), "no kernels: {l}");
            Listed { name, fix, destructive, line: l.to_string() }
        })
        .collect();
    assert!(kinds.len() >= 2, "{out}");
    kinds
}

#[test]
fn list_has_a_line_per_kind_with_its_fix_and_kernels() {
    let kinds = listed();
    assert_eq!(kinds[0].name, "alloc", "the default kind comes first");
    for (i, k) in kinds.iter().enumerate() {
        assert!(kinds[..i].iter().all(|o| o.name != k.name), "{} twice", k.name);
        // Destructive kinds come last, so that `all` runs the others before them.
        assert!(k.destructive || kinds[..i].iter().all(|o| !o.destructive), "{}", k.line);
    }
}

#[test]
fn help_man_page_and_readme_follow_the_table() {
    let kinds = listed();
    let help = stdout(&run(&["--help"]));
    let man = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/doc/hugerace.1")).unwrap().replace("\\-", "-");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    // The rows of the README's table of races: its section, up to the next one.
    let section = readme.split("\n## The races hugerace knows\n").nth(1).expect("the README's races section");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `")).collect();
    for k in &kinds {
        assert!(help.lines().any(|l| l.trim_start().starts_with(&format!("{} ", k.name))), "--help does not name {}:\n{help}", k.name);
        assert!(man.contains(&format!(".B {}\n", k.name)), "the man page's RACES section does not name {}", k.name);
        let row = rows.iter().find(|r| r.starts_with(&format!("| `{}`", k.name))).unwrap_or_else(|| panic!("no README row for {}", k.name));
        match &k.fix {
            Some(id) => {
                assert!(man.contains(id.as_str()), "the man page does not name {}'s fix {id}", k.name);
                assert!(row.contains(id.as_str()), "the README row of {} does not name its fix {id}: {row}", k.name);
            }
            None => assert!(row.contains("no upstream fix known"), "{row}"),
        }
        if k.destructive {
            assert!(row.contains("destructive"), "the README row of {} does not say destructive: {row}", k.name);
        }
    }
    // No README row for a kind the binary does not know.
    for r in &rows {
        let name = r.trim_start_matches("| `").split('`').next().unwrap();
        assert!(kinds.iter().any(|k| k.name == name), "README row for unknown kind {name}");
    }
}

#[test]
fn a_race_list_runs_those_kinds_in_the_tables_order() {
    if !need_root_2m() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    let o = run(&["--race", "dontneed,alloc", "-f", "ktap"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let results: Vec<&str> = out.lines().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).collect();
    assert_eq!(results, ["ok 1 shared 2M", "ok 2 private 2M", "ok 3 dontneed 2M"], "{out}");
    assert!(out.contains("\n1..3\n"), "{out}");
    // A mode word with a kind that has no modes, named, is a usage error.
    let o = run(&["--race", "dontneed,alloc", "shared"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert_clean(&expected, "race list");
}

#[test]
fn race_all_skips_destructive_kinds_saying_what_to_run_and_changes_nothing() {
    if !need_root_2m() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    let kinds = listed();
    let before = hugepage_counters();
    let o = run(&["--race", "all", "-f", "ktap"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for k in kinds.iter().filter(|k| k.destructive) {
        let skip = out.lines().find(|l| l.contains(&format!(" {} 2M # SKIP ", k.name))).unwrap_or_else(|| panic!("{} not skipped:\n{out}", k.name));
        assert!(skip.contains("destructive") && skip.contains("--destructive") && skip.contains(&format!("--race {}", k.name)), "{skip}");
    }
    assert!(!out.contains("not ok"), "{out}");
    assert_eq!(hugepage_counters(), before, "a counter moved");
    assert_clean(&expected, "race all");
}

#[test]
fn under_all_a_kind_that_cannot_honour_an_option_is_a_tconf() {
    if !need_root_2m() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    // -n 3 is no usage error under `all` (it names no kind): the kinds that take two racers
    // say why they do not run.
    let o = run(&["--race", "all", "-n", "2", "--offset", "0", "-f", "ktap", "shared"]);
    let out = stdout(&o);
    assert!(out.contains("ok 2 dontneed 2M # SKIP takes 2 racers and aims its own offset"), "{out}");
    assert!(out.contains("\nok 1 shared 2M\n"), "{out}");
    assert_clean(&expected, "race all with options");
}

