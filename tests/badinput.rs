//! Bad command lines, table-driven (issue 7): each must end with exit status 2 and one line
//! naming the argument, or with TCONF (32) where the machine, not the syntax, says no. None
//! may panic, and none may change the system: the pool knobs, the mounts and /run stay as
//! they were.

mod common;
use common::*;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;

/// Exit status 2 with one stderr line, or TCONF (32) with TCONF lines on stdout that say why.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Usage,
    Conf,
}

struct Case {
    /// A wrapper to run hugerace under (taskset), if any.
    pre: &'static [&'static str],
    args: Vec<Vec<u8>>,
    want: Want,
    /// Text the one line must contain (the argument, or what the machine lacks).
    names: Vec<u8>,
}

fn case(args: &[&[u8]], want: Want, names: &[u8]) -> Case {
    Case { pre: &[], args: args.iter().map(|a| a.to_vec()).collect(), want, names: names.to_vec() }
}

fn cases(tmp: &std::path::Path) -> Vec<Case> {
    use Want::*;
    let long_opt = [b"--".to_vec(), vec![b'a'; 100_000]].concat();
    let long_num = vec![b'9'; 100_000];
    let long_dir = [b"/".to_vec(), vec![b'd'; 300]].concat();
    let link = tmp.join("hugetlbfs-link");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/tmp", &link).expect("symlink");
    let link = link.as_os_str().as_bytes().to_vec();
    let ncpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let too_many = (ncpus + 1).to_string().into_bytes();
    let absent_cpu = format!("0,{ncpus}").into_bytes();
    let mut v = vec![
        // unknown, duplicated, malformed options
        case(&[b"--bogus"], Usage, b"'--bogus'"),
        case(&[b"-x"], Usage, b"'-x'"),
        case(&[b"--=x"], Usage, b"'--=x'"),
        case(&[b"--rt=yes"], Usage, b"'--rt=yes'"),
        case(&[b"--verbose=1"], Usage, b"'--verbose=1'"),
        case(&[b"-v", b"-v"], Usage, b"given twice '-v'"),
        case(&[b"-m", b"both", b"-m", b"shared"], Usage, b"given twice '-m'"),
        case(&[b"--pagesize=2M", b"--pagesize", b"2M"], Usage, b"given twice '--pagesize'"),
        case(&[b"-fjson", b"-fktap"], Usage, b"given twice '-fktap'"),
        case(&[b"shared", b"private"], Usage, b"'private'"),
        case(&[b"sideways"], Usage, b"'sideways'"),
        case(&[b"-"], Usage, b"'-'"),
        case(&[b"--", b"--help"], Usage, b"'--help'"),
        // missing and empty values
        case(&[b"-i"], Usage, b"missing value for '-i'"),
        case(&[b"--mode"], Usage, b"missing value for '--mode'"),
        case(&[b"-s"], Usage, b"missing value for '-s'"),
        case(&[b"-i", b""], Usage, b"empty value for '-i'"),
        case(&[b"-m", b""], Usage, b"mode must be"),
        case(&[b"-s", b""], Usage, b"not a page size"),
        case(&[b"-c", b""], Usage, b"not a CPU list"),
        case(&[b"--hugetlbfs", b""], Usage, b"'--hugetlbfs'"),
        case(&[b"--mode=shared=x"], Usage, b"'shared=x'"),
        // non-numbers, negatives, overflow, zero where it makes no sense
        case(&[b"-i", b"abc"], Usage, b"'abc'"),
        case(&[b"-I", b"1.5"], Usage, b"'1.5'"),
        case(&[b"-n", b"x"], Usage, b"'x'"),
        case(&[b"-i", b"-5"], Usage, b"'-5'"),
        case(&[b"--leave-free", b"-1"], Usage, b"'-1'"),
        case(&[b"-i", b"18446744073709551616"], Usage, b"'18446744073709551616'"),
        case(&[b"-i", b"99999999999999999999999999"], Usage, b"'99999999999999999999999999'"),
        case(&[b"-i", b"2000000000000"], Usage, b"too large for '-i'"),
        case(&[b"-I", b"4294967297"], Usage, b"too large for '-I'"),
        case(&[b"-n", b"65537"], Usage, b"too large for '-n'"),
        case(&[b"-i", b"0"], Usage, b"at least 1 for '-i'"),
        case(&[b"-I", b"0"], Usage, b"at least 1 for '-I'"),
        case(&[b"-n", b"0"], Usage, b"at least 1 for '-n'"),
        case(&[b"-n", b"1"], Usage, b"at least 2 racers '1'"),
        case(&[b"--leave-free", b"0"], Usage, b"'--leave-free 0'"),
        // CPUs
        case(&[b"-c", b"5"], Usage, b"at least 2 CPUs '5'"),
        case(&[b"-c", b"1,1"], Usage, b"'1,1'"),
        case(&[b"-n", b"3", b"-c", b"0,1,0"], Usage, b"'0,1,0'"),
        case(&[b"-c", b"0-3,2"], Usage, b"'0-3,2'"),
        case(&[b"--offset", b"soon"], Usage, b"'soon'"),
        case(&[b"--race", b"fast"], Usage, b"'fast'"),
        case(&[b"--race", b"dontneed", b"private"], Usage, b"no mode with race 'dontneed'"),
        case(&[b"--race", b"alloc,fast"], Usage, b"no such race (hugerace --list names them) 'fast'"),
        case(&[b"--race", b"dontneed", b"-n", b"4"], Usage, b"takes 2 racers and aims its own offset: no -n or --offset with race 'dontneed'"),
        case(&[b"-c", b"3-1"], Usage, b"'3-1'"),
        case(&[b"-c", b"0,99999999"], Usage, b"'0,99999999'"),
        case(&[b"-c", b"0,,1"], Usage, b"'0,,1'"),
        case(&[b"-n", &too_many], Conf, b"CPUs this process may run on"),
        case(&[b"-c", &absent_cpu], Conf, format!("CPU {ncpus} given with -c").as_bytes()),
        // page sizes
        case(&[b"-s", b"3M"], Usage, b"'3M'"),
        case(&[b"-s", b"0"], Usage, b"'0'"),
        case(&[b"-s", b"1Q"], Usage, b"'1Q'"),
        case(&[b"-s", b"16777216T"], Usage, b"'16777216T'"),
        case(&[b"-s", b"64K"], Conf, b"no 64K hugepages"),
        case(&[b"-f", b"xml"], Usage, b"'xml'"),
        // --hugetlbfs paths
        case(&[b"--hugetlbfs", b"/tmp"], Conf, b"/tmp is not a hugetlbfs mount"),
        case(&[b"--hugetlbfs", b"/nonexistent-hugerace"], Conf, b"/nonexistent-hugerace: ENOENT"),
        case(&[b"--hugetlbfs", &link], Conf, b"(a symlink or not a directory)"),
        case(&[b"--hugetlbfs", &long_dir], Usage, b"'--hugetlbfs'"),
        // very long arguments, non-UTF-8 bytes
        case(&[&long_opt], Usage, b"'--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'"),
        case(&[b"-i", &long_num], Usage, b"99999...'"),
        case(&[b"--mode=\xff\xfe"], Usage, b"'\\xff\\xfe'"),
        case(&[b"\xff"], Usage, b"'\\xff'"),
        case(&[b"-s", b"2M\xc3("], Usage, b"'2M\\xc3('"),
    ];
    // Outside the affinity mask: only CPU 0 allowed.
    v.push(Case { pre: &["taskset", "-c", "0"], args: vec![], want: Conf, names: b"it has 1 (0)".to_vec() });
    v.push(Case { pre: &["taskset", "-c", "0"], args: vec![b"-c".to_vec(), b"0,1".to_vec()], want: Conf, names: b"CPU 1 given with -c".to_vec() });
    v
}

/// What a bad command line must not touch.
#[derive(Debug, PartialEq)]
struct SystemState {
    pool: PoolState,
    mounts: Vec<String>,
    run: Vec<String>,
}

fn system_state() -> SystemState {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default().lines().filter(|l| l.contains("hugetlbfs") || l.contains("hugerace")).map(String::from).collect();
    let mut run: Vec<String> = std::fs::read_dir("/run").map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("hugerace")).collect()).unwrap_or_default();
    run.sort();
    SystemState { pool: PoolState::read(), mounts, run }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn bad_command_lines_exit_2_or_tconf_with_one_line_and_change_nothing() {
    let tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let cases = cases(&tmp);
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let _g = pool_guard();
    let before = system_state();
    let mut failures = Vec::new();
    let mut crashes = 0;
    for c in &cases {
        let mut cmd = if c.pre.is_empty() {
            Command::new(bin())
        } else {
            let mut cmd = Command::new(c.pre[0]);
            cmd.args(&c.pre[1..]).arg(bin());
            cmd
        };
        cmd.args(c.args.iter().map(|a| OsString::from_vec(a.clone())));
        let o = cmd.output().expect("spawn");
        let shown: Vec<String> = c.args.iter().map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned()).collect();
        let all = [&o.stdout[..], &o.stderr[..]].concat();
        if o.status.code().is_none() || contains(&all, b"internal error") || contains(&all, b"panic") {
            crashes += 1;
            failures.push(format!("{:?} {shown:?}: crashed: {:?} {}", c.pre, o.status, String::from_utf8_lossy(&all)));
            continue;
        }
        let code = o.status.code().unwrap();
        let line: Vec<&[u8]> = match c.want {
            Want::Usage => o.stderr.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect(),
            Want::Conf => o.stdout.split(|&b| b == b'\n').filter(|l| contains(l, b": TCONF: ")).collect(),
        };
        let want_code = if c.want == Want::Usage { 2 } else { 32 };
        // A usage error is one line; a TCONF is one line per planned result (mode, size).
        let one = match c.want {
            Want::Usage => line.len() == 1 && o.stdout.is_empty(),
            Want::Conf => !line.is_empty(),
        };
        let ok = code == want_code && one && line.iter().all(|l| contains(l, &c.names));
        if !ok {
            failures.push(format!("{:?} {shown:?}: exit {code} (want {want_code}), lines {:?}, want {:?}", c.pre, line.iter().map(|l| String::from_utf8_lossy(l)).collect::<Vec<_>>(), String::from_utf8_lossy(&c.names)));
        }
        if c.want == Want::Usage {
            assert!(contains(&o.stderr, b"(see hugerace --help)"), "{shown:?}: no pointer to --help");
        }
    }
    let after = system_state();
    eprintln!("bad inputs tried: {}, crashes: {crashes}, wrong answers: {}", cases.len(), failures.len() - crashes);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(after, before, "a bad command line changed the system");
}
