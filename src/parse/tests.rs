use super::*;

const MEMINFO_EMPTY: &[u8] = include_bytes!("../../tests/data/meminfo.empty.txt");
const MEMINFO_5: &[u8] = include_bytes!("../../tests/data/meminfo.5pages.txt");
const MOUNTS: &[u8] = include_bytes!("../../tests/data/mounts.txt");
const MOUNTS_HUGE: &[u8] = include_bytes!("../../tests/data/mounts.hugetlbfs.txt");
const HUGEDIR: &[u8] = include_bytes!("../../tests/data/hugepages-dir.txt");

#[test]
fn numbers() {
    assert_eq!(u64_dec(b"0"), Some(0));
    assert_eq!(u64_dec(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(u64_dec(b"18446744073709551616"), None);
    assert_eq!(u64_dec(b"99999999999999999999999"), None);
    assert_eq!(u64_dec(b""), None);
    assert_eq!(u64_dec(b"-1"), None);
    assert_eq!(u64_dec(b"1 "), None);
    assert_eq!(first_u64(b"64\n"), Some(64));
    assert_eq!(first_u64(b"\n"), None);
}

#[test]
fn sizes() {
    assert_eq!(size(b"2M"), Some(2 << 20));
    assert_eq!(size(b"1G"), Some(1 << 30));
    assert_eq!(size(b"64K"), Some(64 << 10));
    assert_eq!(size(b"16G"), Some(16 << 30));
    assert_eq!(size(b"2048kB"), Some(2 << 20));
    assert_eq!(size(b"1024M"), Some(1 << 30));
    assert_eq!(size(b"2097152"), Some(2 << 20));
    for bad in [&b"3M"[..], b"0", b"0M", b"M", b"2X", b"-2M", b"", b"2 M", b"99999999999999999999G", b"17179869184T"] {
        assert_eq!(size(bad), None, "{:?}", core::str::from_utf8(bad));
    }
}

#[test]
fn meminfo_fields() {
    assert_eq!(meminfo(MEMINFO_EMPTY, b"Hugepagesize"), Some(2048));
    assert_eq!(meminfo(MEMINFO_5, b"HugePages_Total"), Some(5));
    assert_eq!(meminfo(MEMINFO_5, b"HugePages"), None);
    let (sz, c) = meminfo_hugepages(MEMINFO_5).unwrap();
    assert_eq!(sz, 2 << 20);
    assert_eq!(c, Counts { total: 5, free: 5, resv: 0, surplus: 0 });
    assert_eq!(meminfo_hugepages(b"MemTotal: 100 kB\n"), None);
    let c = Counts { total: 4, free: 3, resv: 2, surplus: 0 };
    assert_eq!(c.available(), 1);
    assert_eq!(Counts { free: 1, resv: 2, ..c }.available(), 0);
}

#[test]
fn hugepage_dirs() {
    let mut sizes = [0u64; 4];
    let mut n = 0;
    for name in HUGEDIR.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        sizes[n] = hugepages_dir(name).unwrap();
        n += 1;
    }
    assert_eq!(&sizes[..n], &[1 << 30, 2 << 20]);
    assert_eq!(hugepages_dir(b"hugepages-3000kB"), None);
    assert_eq!(hugepages_dir(b"hugepages-kB"), None);
    assert_eq!(hugepages_dir(b"nr_hugepages"), None);
}

#[test]
fn mount_table() {
    assert_eq!(mounts(MOUNTS).filter(|m| m.fstype == b"hugetlbfs").count(), 0);
    let huge: Vec<_> = mounts(MOUNTS_HUGE).filter(|m| m.fstype == b"hugetlbfs").collect();
    assert_eq!(huge.len(), 2);
    assert_eq!(mount_pagesize(huge[0].opts, 2 << 20), Some(1 << 30));
    assert_eq!(mount_pagesize(huge[1].opts, 2 << 20), Some(2 << 20));
    assert_eq!(mount_pagesize(b"rw,relatime", 2 << 20), Some(2 << 20));
    let mut out = [0u8; 64];
    let n = unescape(huge[0].dir, &mut out).unwrap();
    assert!(out[..n].starts_with(b"/tmp/huge mnt."));
    assert_eq!(unescape(b"/a\\134b", &mut out), Some(4));
    assert_eq!(&out[..4], b"/a\\b");
    assert_eq!(unescape(b"/abc", &mut out[..2]), None);
    assert_eq!(unescape(b"/x\\04", &mut out), Some(5));
}

#[test]
fn cpu_lists() {
    let mut v = Vec::new();
    assert_eq!(cpu_list(b"0-3,8,10-11\n", 4095, &mut |c| v.push(c)), Some(7));
    assert_eq!(v, [0, 1, 2, 3, 8, 10, 11]);
    for bad in [&b""[..], b"3-1", b"a", b"1,,2", b"-1", b"1-", b"5000", b"1-99999999999999999999"] {
        assert_eq!(cpu_list(bad, 4095, &mut |_| {}), None, "{:?}", core::str::from_utf8(bad));
    }
}

#[test]
fn masks() {
    let mut m = [0u8; 16];
    assert!(mask_set(&mut m, 0));
    assert!(mask_set(&mut m, 5));
    assert!(mask_set(&mut m, 64));
    assert!(mask_set(&mut m, 127));
    assert!(!mask_set(&mut m, 128));
    let mut v = Vec::new();
    mask_cpus(&m, &mut |c| v.push(c));
    assert_eq!(v, [0, 5, 64, 127]);
}

#[test]
fn cgroups() {
    let v1 = b"10:hugetlb:/hugerace-test\n9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/\n0::/unified\n";
    assert_eq!(cgroup_path(v1, Some(b"hugetlb")), Some(&b"/hugerace-test"[..]));
    assert_eq!(cgroup_path(v1, Some(b"cpuacct")), Some(&b"/"[..]));
    assert_eq!(cgroup_path(v1, None), Some(&b"/unified"[..]));
    assert_eq!(cgroup_path(b"0::/user.slice/x\n", Some(b"hugetlb")), None);
    assert_eq!(cgroup_path(b"0::/user.slice/x\n", None), Some(&b"/user.slice/x"[..]));
    assert_eq!(cgroup_path(b"garbage", None), None);
    assert_eq!(events_max(b"max 3\n"), Some(3));
    assert_eq!(events_max(b"max\n"), None);
}

#[test]
fn vmstat_fields() {
    let t = b"nr_free_pages 12\noom_kill_x 9\noom_kill 3\n";
    assert_eq!(vmstat(t, b"oom_kill"), Some(3));
    assert_eq!(vmstat(t, b"oom"), None);
    assert_eq!(vmstat(b"", b"oom_kill"), None);
}

#[test]
fn impossible_counters() {
    let c = |total, free, resv, surplus| Counts { total, free, resv, surplus };
    assert_eq!(c(4, 2, 1, 0).impossible(), None);
    assert_eq!(c(4, 0, 0, 4).impossible(), None);
    // The underflow a mutant kernel showed: HugePages_Rsvd at -6.
    assert!(c(48, 48, 18446744073709551610, 0).impossible().unwrap().contains("below zero"));
    assert!(c(4, 2, 3, 0).impossible().unwrap().contains("reserved"));
    assert!(c(4, 5, 0, 0).impossible().unwrap().contains("free"));
    assert!(c(4, 0, 0, 5).impossible().unwrap().contains("surplus"));
}

#[test]
fn smaps_page_sizes() {
    assert!(smaps_pagesize_is(b"KernelPageSize:     2048 kB", 2 << 20));
    assert!(!smaps_pagesize_is(b"KernelPageSize:        4 kB", 2 << 20));
    assert!(!smaps_pagesize_is(b"MMUPageSize:     2048 kB", 2 << 20));
    assert!(smaps_pagesize_is(b"KernelPageSize: 1048576 kB", 1 << 30));
}
