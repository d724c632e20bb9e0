//! The subpool check (issue 19) is destructive: on a kernel with the bug (every kernel tried,
//! this host's 6.18.44 among them) it leaves resv_hugepages at 2^64-1 until reboot. So it is
//! NEVER run here: these tests check only that without --destructive (and not as the
//! machine's init) it ends TCONF saying why and what to run, on its own and under `--race
//! all`, and that every hugepage counter is unchanged after. It runs in the QEMU boots
//! (doc/races-boot-expectations.md), where the machine is thrown away.

mod common;
use common::inject::empty_pool;
use common::*;

#[test]
fn without_destructive_it_refuses_saying_why_and_changes_nothing() {
    if !need_root_2m() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    let before = hugepage_counters();
    for args in [&["--race", "subpool"][..], &["--race", "subpool", "-f", "ktap", "-i", "3"], &["--race", "all", "-f", "ktap"]] {
        let o = run(args);
        let out = stdout(&o);
        let line = out.lines().find(|l| l.contains("subpool 2M")).unwrap_or_else(|| panic!("{args:?}: no subpool result:\n{out}"));
        assert!(line.contains("TCONF") || line.contains("# SKIP"), "{args:?}: {line}");
        for want in ["destructive", "breaks the hugepage accounting until reboot", "throwaway boot", "hugerace --race subpool --destructive"] {
            assert!(line.contains(want), "{args:?}: no '{want}' in: {line}");
        }
        assert!(!out.contains("not ok") && !out.contains("TFAIL") && !out.contains("TBROK"), "{args:?}:\n{out}");
        assert_eq!(hugepage_counters(), before, "{args:?}: a hugepage counter moved");
    }
    assert_clean(&expected, "subpool refused");
}

#[test]
fn it_takes_pages_up_to_32m_and_makes_its_own_mount() {
    // Refused before any pool is touched: a usage error when named.
    let o = run(&["--race", "subpool", "--hugetlbfs", "/dev/hugepages"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("makes its own hugetlbfs mount"), "{}", stderr(&o));
    let o = run(&["--list"]);
    let line = stdout(&o).lines().find(|l| l.starts_with("subpool ")).map(str::to_string).unwrap_or_default();
    assert!(line.contains("no upstream fix known") && line.contains("; destructive;") && line.contains("pages up to 32M"), "{line}");
}
