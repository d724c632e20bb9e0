//! The resv-restore check (issue 19): with one free page, a private mapping's reservation
//! must come back after MADV_DONTNEED, so that a second mapping fails with ENOMEM. This
//! host's kernel has the fix (df7a6d1f6405, v6.9): every run passes, from the same state,
//! and leaves every hugepage counter as it found it. Its negative control, --noreserve (the
//! first mapping reserves nothing), must fail with the bug's facts on any kernel. Debian
//! 12's 6.1, which lacks the fix, fails it under QEMU (doc/races-boot-expectations.md).

mod common;
use common::inject::empty_pool;
use common::*;

#[test]
fn the_reservation_comes_back_on_this_kernel_every_run() {
    if !need_root_2m() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    let before = hugepage_counters();
    let o = run(&["--race", "resv-restore", "-i", "20", "-f", "json"]);
    let x: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    let r = &x["results"][0];
    assert_eq!((r["name"].as_str(), r["result"].as_str()), (Some("resv-restore 2M"), Some("pass")), "{r}");
    assert_eq!((r["iterations"].as_u64(), r["passed"].as_u64(), r["failed"].as_u64()), (Some(20), Some(20), Some(0)), "{r}");
    // Reserved after the map, used by the touch, reserved again after the madvise; the
    // second mapping refused.
    assert_eq!(r["resv_after"], serde_json::json!({"map": 1, "touch": 0, "madvise": 1}), "{r}");
    assert_eq!((r["second_map_ok"].as_u64(), r["sigbus"].as_u64()), (Some(0), Some(0)), "{r}");
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(hugepage_counters(), before, "a hugepage counter moved");
    assert_clean(&expected, "resv-restore");
}

#[test]
fn the_negative_control_fails_naming_the_fix_and_the_numbers() {
    if !need_root_2m() {
        return;
    }
    let g = pool_guard();
    let expected = empty_pool(&g);
    let o = run(&["--race", "resv-restore", "-i", "3", "--noreserve"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let fail = out.lines().find(|l| l.starts_with("hugerace: TFAIL: resv-restore 2M: ")).unwrap_or_else(|| panic!("{out}"));
    for want in [
        "upstream df7a6d1f6405 \"mm/hugetlb: restore the reservation if needed\", v6.9",
        "reserved 0 after the map, 0 after the touch, 0 after the madvise (free 1)",
        "a second 1-page mapping succeeded where ENOMEM was due, took the page (free 0)",
        "the first mapping's next touch got SIGBUS, in run 1",
        "the negative control",
    ] {
        assert!(fail.contains(want), "no '{want}' in: {fail}");
    }
    assert_clean(&expected, "resv-restore negative control");
}

#[test]
fn it_needs_exactly_one_free_page_and_counts_runs() {
    let o = run(&["--race", "resv-restore", "--leave-free", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("needs exactly one free page"), "{}", stderr(&o));
    let o = run(&["--race", "resv-restore", "-I", "5"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
}
