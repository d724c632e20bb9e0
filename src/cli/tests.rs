use super::*;

fn run(args: &[&'static str]) -> Result<Config, Error> {
    match parse(args.iter().map(|s| s.as_bytes()), Config::default())? {
        Action::Run(c) => Ok(c),
        a => panic!("{a:?}"),
    }
}

#[test]
fn defaults_and_modes() {
    let c = run(&[]).unwrap();
    assert_eq!((c.races, c.mode, c.destructive), (&b""[..], None, false));
    assert_eq!(c.iterations, 1);
    assert_eq!(c.leave_free, 1);
    assert_eq!(c.iteration_timeout_s, 120);
    assert_eq!(c.progress, None);
    assert_eq!(run(&["--progress"]).unwrap().progress, Some(true));
    assert_eq!(run(&["shared"]).unwrap().mode, Some(&b"shared"[..]));
    assert_eq!(run(&["-m", "private"]).unwrap().mode, Some(&b"private"[..]));
    assert_eq!(run(&["--mode=both"]).unwrap().mode, Some(&b"both"[..]));
    let c = run(&["--race", "alloc,dontneed", "--destructive"]).unwrap();
    assert_eq!((c.races, c.destructive), (&b"alloc,dontneed"[..], true));
    assert!(c.given & (1 << Key::Destructive as u32) != 0);
}

#[test]
fn values() {
    let c = run(&["-s", "1G", "-n3", "-i", "200", "--leave-free=0", "--noreserve", "-c", "0-2", "--rt", "-f", "json"]).unwrap();
    assert_eq!(c.pagesize, PageSel::Size(1 << 30));
    assert_eq!(c.racers, Racers::Count(3));
    assert_eq!(c.iterations, 200);
    assert_eq!(c.leave_free, 0);
    assert!(c.noreserve && c.rt);
    assert_eq!(c.cpus.map(CpuList::text), Some(&b"0-2"[..]));
    assert_eq!(c.format, Format::Json);
    assert_eq!(run(&["-s", "all", "-n", "all"]).unwrap().racers, Racers::All);
    let c = run(&["--keep-going", "--offset", "2500"]).unwrap();
    assert!(c.keep_going);
    assert_eq!(c.offset_ns, Some(2500));
    assert_eq!(run(&[]).unwrap().offset_ns, Some(0));
    assert_eq!(run(&["--offset", "sweep"]).unwrap().offset_ns, None);
    assert_eq!(run(&["--iteration-timeout", "5"]).unwrap().iteration_timeout_s, 5);
    assert!(run(&["--iteration-timeout=0"]).is_err());
}

#[test]
fn format_found_ahead() {
    let f = |a: &[&'static str]| format_given(a.iter().map(|s| s.as_bytes()));
    assert_eq!(f(&["shared", "-f", "hugetlbfs"]), Some(Format::Hugetlbfs));
    assert_eq!(f(&["--format=json", "-i", "3"]), Some(Format::Json));
    assert_eq!(f(&["-fktap", "--bogus"]), Some(Format::Ktap));
    assert_eq!(f(&["-i", "3", "--", "-f", "json"]), None);
    assert_eq!(f(&["--foo", "-f"]), None);
}

#[test]
fn actions() {
    assert!(matches!(parse([&b"-h"[..]].into_iter(), Config::default()), Ok(Action::Help)));
    assert!(matches!(parse([&b"--version"[..]].into_iter(), Config::default()), Ok(Action::Version)));
    assert!(matches!(parse([&b"--list"[..]].into_iter(), Config::default()), Ok(Action::List)));
}

#[test]
fn errors_name_the_argument() {
    let cases: &[(&[&'static str], &str)] = &[
        (&["--bogus"], "--bogus"),
        (&["-x"], "-x"),
        (&["-i"], "-i"),
        (&["-i", "abc"], "abc"),
        (&["-i", "0"], "-i"),
        (&["-i", ""], "-i"),
        (&["-i", "99999999999999999999999"], "99999999999999999999999"),
        (&["-i", "-5"], "-5"),
        (&["-n", "1"], "1"),
        (&["-s", "3M"], "3M"),
        (&["-c", "5"], "5"),
        (&["-c", "1,1"], "1,1"),
        (&["-n", "3", "-c", "0,1,0"], "0,1,0"),
        (&["-c", "0-3,2"], "0-3,2"),
        (&["-c", "0,9000"], "0,9000"),
        (&["--offset", "x"], "x"),
        (&["--offset", "99999999999"], "--offset"),
        (&["--race", ""], "--race"),
        (&["-m", ""], "--mode"),
        (&["-c", "x"], "x"),
        (&["-m", "both", "shared"], "shared"),
        (&["-v", "-v"], "-v"),
        (&["--rt=1"], "--rt=1"),
        (&["sideways", "shared"], "shared"),
        (&["-f", "xml"], "xml"),
        (&["--leave-free", "0"], "--leave-free 0"),
        (&["--hugetlbfs", ""], "--hugetlbfs"),
    ];
    for (args, arg) in cases {
        let e = run(args).unwrap_err();
        assert_eq!(e.arg, arg.as_bytes(), "{args:?}: {}", e.msg);
    }
}
