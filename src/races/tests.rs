use super::*;
use crate::cli::{parse, Action};

fn cfg(args: &[&'static str]) -> Config {
    match parse(args.iter().map(|s| s.as_bytes()), Config::default()).unwrap() {
        Action::Run(c) => c,
        a => panic!("{a:?}"),
    }
}

fn names(args: &[&'static str]) -> Vec<&'static str> {
    select(&cfg(args)).unwrap().each().map(|k| k.name).collect()
}

#[test]
fn the_table_is_sound() {
    for (i, k) in KINDS.iter().enumerate() {
        assert!(!k.name.is_empty() && !k.name.contains(',') && k.name != "all", "{}", k.name);
        assert!(KINDS[..i].iter().all(|o| o.name != k.name), "{} twice", k.name);
        if let Some(f) = &k.fix {
            assert!(f.id.len() == 12 && f.id.bytes().all(|c| c.is_ascii_hexdigit()), "{}: {}", k.name, f.id);
        }
        assert!(!k.modes.is_empty());
        // Destructive kinds last: `all` runs every other kind before one of them.
        assert!(k.destructive || KINDS[..i].iter().all(|o| !o.destructive), "{} after a destructive kind", k.name);
    }
    assert!(!KINDS[0].destructive, "the default kind must be harmless");
}

#[test]
fn race_lists_select_kinds() {
    assert_eq!(names(&[]), [KINDS[0].name]);
    assert_eq!(names(&["--race", "all"]), KINDS.iter().map(|k| k.name).collect::<Vec<_>>());
    assert_eq!(names(&["--race", "dontneed,alloc"]), ["alloc", "dontneed"]);
    let s = select(&cfg(&["--race", "alloc,all"])).unwrap();
    assert_eq!((s.kinds.count_ones() as usize, s.named), (KINDS.len(), 1));
}

#[test]
fn modes_follow_the_word() {
    let alloc = &KINDS[0];
    let modes = |w: Option<&'static [u8]>| {
        let bits = alloc.modes_for(w);
        alloc.modes.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, m)| m.name()).collect::<Vec<_>>()
    };
    assert_eq!(modes(None), ["shared", "private"]);
    assert_eq!(modes(Some(b"both")), ["shared", "private"]);
    assert_eq!(modes(Some(b"private")), ["private"]);
    // A kind with one mode runs it whatever the word (under `all`).
    let dn = KINDS.iter().find(|k| k.modes.len() == 1).unwrap();
    assert_eq!(dn.modes_for(Some(b"shared")), 1);
    assert!(select(&cfg(&["--race", "all", "shared"])).is_ok());
}

#[test]
fn what_a_named_kind_cannot_honour_is_a_usage_error() {
    let err = |a: &[&'static str]| select(&cfg(a)).unwrap_err().arg;
    assert_eq!(err(&["--race", "fast"]), b"fast");
    assert_eq!(err(&["--race", "alloc,,dontneed"]), b"");
    assert_eq!(err(&["sideways"]), b"sideways");
    assert_eq!(err(&["--race", "dontneed", "shared"]), b"dontneed");
    assert_eq!(err(&["--race", "dontneed", "-f", "hugetlbfs"]), b"dontneed");
    assert_eq!(err(&["--race", "dontneed", "-n", "3"]), b"dontneed");
    assert_eq!(err(&["--race", "dontneed", "--offset", "0"]), b"dontneed");
    assert_eq!(err(&["--race", "dontneed", "--leave-free", "2"]), b"--leave-free");
    // Under `all` the same kinds are refused at run time (TCONF), not here.
    assert!(select(&cfg(&["--race", "all", "-n", "3", "-f", "hugetlbfs"])).is_ok());
}

#[test]
fn libhugetlbfs_names_its_kind() {
    let k = by_libhugetlbfs_name(b"alloc-instantiate-race").unwrap();
    let mut l = Line::new();
    libhugetlbfs_usage(&mut l, k);
    assert_eq!(l.as_bytes(), b"Usage: alloc-instantiate-race <private|shared> [hugerace options]");
    assert!(by_libhugetlbfs_name(b"hugerace").is_none());
}
