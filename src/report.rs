//! Results and how they are told: LTP lines (the default), KTAP, JSON, or libhugetlbfs's
//! PASS/FAIL words; and the exit status each harness expects.

use crate::cli::Format;
use crate::out::{Line, STDERR, STDOUT};
use crate::stats::Summary;
use crate::step::{Mode, Res, Stop};

/// What one mode on one page size measured.
#[derive(Clone, Copy, Default, Debug)]
pub struct Figures {
    pub iterations: u64,
    pub passed: u64,
    pub failed: u64,
    pub broken: u64,
    pub missed: u64,
    pub skew: Summary,
    pub fault_p50: u64,
    pub elapsed_ns: u64,
    /// Time spent in counted and missed races (warm-up laps and restarts left out).
    pub race_ns: u64,
    /// The dontneed race: the madvise's duration (skew then holds when the writer's store
    /// began after the madvise's start).
    pub madvise_p50: u64,
    /// The alloc race's swept start offsets: (ns, races, failed) each; empty if not swept.
    pub offsets: [(u64, u64, u64); 12],
    pub swept: bool,
}

impl Figures {
    /// Races that overlapped, of all run (missed ones included), in hundredths of a percent.
    pub fn overlap_x100(&self) -> u64 {
        (self.iterations * 10_000).checked_div(self.iterations + self.missed).unwrap_or(0)
    }
    /// Counted races per second of racing, times 10.
    pub fn rate_x10(&self) -> u64 {
        if self.race_ns == 0 { 0 } else { crate::stats::scale(self.iterations, 10_000_000_000, self.race_ns) }
    }
}

/// One reported result: a mode on a page size.
pub struct Record {
    pub mode: Mode,
    pub pagesize: u64,
    pub racers: u32,
    pub cpus: Line,
    pub figs: Figures,
    pub res: Res,
    pub msg: Line,
}

pub struct Reporter {
    pub format: Format,
    pub verbose: bool,
    pub name: &'static str,
    counts: [u32; 5],
    tests: u32,
    json_first: bool,
    /// hugetlbfs: the verdict line kept for `finish` (the first FAIL, else the first bad
    /// configuration), since a libhugetlbfs test prints exactly one.
    verdict: Line,
}

/// Which of the summary's counters a result goes to (TINFO goes to none).
fn counter(res: Res) -> Option<usize> {
    Some(match res {
        Res::Pass => PASS,
        Res::Fail => FAIL,
        Res::Brok => BROK,
        Res::Conf => CONF,
        Res::Warn => WARN,
        Res::Info => return None,
    })
}

const PASS: usize = 0;
const FAIL: usize = 1;
const BROK: usize = 2;
const CONF: usize = 3;
const WARN: usize = 4;

impl Reporter {
    pub fn new(format: Format, verbose: bool) -> Reporter {
        Reporter { format, verbose, name: "hugerace", counts: [0; 5], tests: 0, json_first: true, verdict: Line::new() }
    }

    /// Announce how many results will follow (KTAP's plan; the JSON document's head).
    pub fn begin(&mut self, planned: u32) {
        let mut l = Line::new();
        match self.format {
            Format::Ktap => {
                l.s("KTAP version 1\n1..").u(planned as u64).c(b'\n');
            }
            Format::Json => {
                l.s(concat!("{\"tool\":\"hugerace\",\"version\":\"", env!("CARGO_PKG_VERSION"), "\",\"results\":["));
            }
            _ => return,
        }
        l.emit(STDOUT);
    }

    /// A TINFO line (a `#` diagnostic in KTAP; verbose-only on stderr in JSON and hugetlbfs).
    /// The message is a `&dyn Fn`, not a generic closure: one body serves every message
    /// (binary size).
    pub fn info(&mut self, f: &dyn Fn(&mut Line)) {
        self.line(Res::Info, f)
    }

    pub fn verbose(&mut self, f: &dyn Fn(&mut Line)) {
        if self.verbose {
            self.line(Res::Info, f)
        }
    }

    pub fn warn(&mut self, f: &dyn Fn(&mut Line)) {
        self.counts[WARN] += 1;
        self.line(Res::Warn, f)
    }

    #[inline(never)]
    fn line(&mut self, res: Res, f: &dyn Fn(&mut Line)) {
        let mut l = Line::new();
        let fd = match self.format {
            Format::Ltp => {
                l.s(self.name).s(": ").s(res.ltp()).s(": ");
                STDOUT
            }
            Format::Ktap => {
                l.s("# ");
                if res == Res::Warn {
                    l.s("warning: ");
                }
                STDOUT
            }
            Format::Json | Format::Hugetlbfs => {
                if !self.verbose && res != Res::Warn {
                    return;
                }
                l.s(self.name).s(": ").s(res.ltp()).s(": ");
                STDERR
            }
        };
        f(&mut l);
        l.c(b'\n');
        l.emit(fd);
    }

    /// A whole-run failure before any mode started (no hugetlb support, bad setup).
    pub fn stop(&mut self, what: &[u8], s: Stop, why: &Line) {
        self.result_line(s.res, what, why.as_bytes(), None);
    }

    /// Report one mode on one page size.
    pub fn record(&mut self, r: &Record) {
        let mut what = Line::new();
        what.s(r.mode.name()).c(b' ').size(r.pagesize);
        if r.figs.iterations > 0 {
            self.figures_info(&what, r);
        }
        self.result_line(r.res, what.as_bytes(), r.msg.as_bytes(), Some(r));
    }

    fn figures_info(&mut self, what: &Line, r: &Record) {
        if self.format == Format::Json {
            return;
        }
        let f = &r.figs;
        if r.mode == Mode::Dontneed {
            return self.info(&|l| {
                l.b(what.as_bytes()).f(if f.iterations == 1 { ": {} race, {} failed" } else { ": {} races, {} failed" }, &[f.iterations, f.failed]).f(
                    ", madvise p50 {}ns, the write began p50 {}ns p90 {}ns max {}ns after its start (aimed at 1/12 to 12/12 of it, the failing aims most), \
                     the write's fault p50 {}ns, overlap {.2}% ({} missed and rerun), {.1} races/s",
                    &[f.madvise_p50, f.skew.p50, f.skew.p90, f.skew.max, f.fault_p50, f.overlap_x100(), f.missed, f.rate_x10()],
                );
            });
        }
        if f.swept && f.failed > 0 {
            // Where the kernel's window lies: which of racer 2's start offsets failed races.
            self.info(&|l| {
                let dontneed = r.mode == Mode::Dontneed;
                l.b(what.as_bytes()).s(if dontneed { ": failed races by where the write was aimed in the madvise:" } else { ": failed races by racer 2's start offset:" });
                for (i, &(ns, races, failed)) in f.offsets.iter().enumerate().filter(|o| o.1 .1 > 0) {
                    if dontneed {
                        l.f(" {}/12 {}/{}", &[i as u64 + 1, failed, races]);
                    } else {
                        l.f(" {}ns {}/{}", &[ns, failed, races]);
                    }
                }
            });
        }
        self.info(&|l| {
            l.b(what.as_bytes()).f(if f.iterations == 1 { ": {} race, {} failed" } else { ": {} races, {} failed" }, &[f.iterations, f.failed]).f(
                ", skew p50 {}ns p90 {}ns p99 {}ns max {}ns, overlap {.2}% ({} missed and rerun), fault p50 {}ns, {.1} races/s \
                 (percentiles: bucket floors, up to 6% low)",
                &[f.skew.p50, f.skew.p90, f.skew.p99, f.skew.max, f.overlap_x100(), f.missed, f.fault_p50, f.rate_x10()],
            );
        });
    }

    fn result_line(&mut self, res: Res, what: &[u8], msg: &[u8], rec: Option<&Record>) {
        let Some(slot) = counter(res) else {
            return self.info(&|l| {
                l.b(what).s(": ").b(msg);
            });
        };
        self.counts[slot] += 1;
        self.tests += 1;
        let mut l = Line::new();
        match self.format {
            Format::Ltp => {
                l.s(self.name).s(": ").s(res.ltp()).s(": ").b(what).s(": ").b(msg).c(b'\n');
            }
            Format::Ktap => {
                if matches!(res, Res::Fail | Res::Brok) {
                    l.s("# ").b(what).s(": ").b(msg).c(b'\n').s("not ok ");
                } else {
                    l.s("ok ");
                }
                l.u(self.tests as u64).c(b' ').b(what);
                if res == Res::Conf {
                    l.s(" # SKIP ").b(msg);
                }
                l.c(b'\n');
            }
            Format::Hugetlbfs => {
                let fail = matches!(res, Res::Fail | Res::Brok);
                let v = &mut self.verdict;
                if res != Res::Pass && (v.as_bytes().is_empty() || fail && !v.as_bytes().starts_with(b"FAIL")) {
                    v.clear();
                    v.s(if fail { "FAIL\t" } else { "Bad configuration: " }).b(what).s(": ").b(msg).c(b'\n');
                }
                return;
            }
            Format::Json => {
                if !self.json_first {
                    l.c(b',');
                }
                self.json_first = false;
                json_record(&mut l, res, what, msg, rec);
            }
        }
        l.emit(STDOUT);
    }

    /// Print the closing block of the chosen format; returns the exit status.
    pub fn finish(&mut self) -> i32 {
        let c = self.counts;
        let mut l = Line::new();
        let status = self.exit_status();
        match self.format {
            Format::Ltp => {
                l.f("\nSummary:\npassed   {}\nfailed   {}\nbroken   {}\nskipped  {}\nwarnings {}\n", &c.map(|n| n as u64));
            }
            Format::Ktap => {
                l.f("# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:0\n", &[c[PASS] as u64, (c[FAIL] + c[BROK]) as u64, c[CONF] as u64]);
            }
            Format::Json => {
                l.f("],\"exit_status\":{}}\n", &[status as u64]);
            }
            // One word first, as libhugetlbfs's runner reads it: PASS unless something failed
            // or nothing passed.
            Format::Hugetlbfs => {
                if status == 0 {
                    l.s("PASS\n");
                } else if self.verdict.as_bytes().is_empty() {
                    l.s("Bad configuration: no result\n");
                } else {
                    l.b(self.verdict.as_bytes());
                }
            }
        }
        l.emit(STDOUT);
        status
    }

    /// The exit status in the chosen format's scheme.
    pub fn exit_status(&self) -> i32 {
        let c = self.counts;
        match self.format {
            Format::Ltp | Format::Json => {
                let mut s = 0;
                if c[FAIL] > 0 {
                    s |= 1;
                }
                if c[BROK] > 0 {
                    s |= 2;
                }
                if c[WARN] > 0 {
                    s |= 4;
                }
                if c[CONF] > 0 && c[PASS] == 0 && c[FAIL] == 0 && c[BROK] == 0 {
                    s |= 32;
                }
                s
            }
            // kselftest: 0 pass, 1 fail, 4 skip (everything skipped).
            Format::Ktap => {
                if c[FAIL] + c[BROK] > 0 {
                    1
                } else if c[PASS] == 0 && c[CONF] > 0 {
                    4
                } else {
                    0
                }
            }
            // libhugetlbfs: 0 pass, 1 bad configuration, 2 fail.
            Format::Hugetlbfs => {
                if c[FAIL] + c[BROK] > 0 {
                    2
                } else if c[PASS] == 0 {
                    1
                } else {
                    0
                }
            }
        }
    }
}

fn json_str(l: &mut Line, s: &[u8]) {
    l.c(b'"');
    for &c in s {
        flush_long(l);
        match c {
            b'"' => l.s("\\\""),
            b'\\' => l.s("\\\\"),
            b'\t' => l.s("\\t"),
            0..=0x1f | 0x7f.. => l.s("\\u00").c(b"0123456789abcdef"[(c >> 4) as usize]).c(b"0123456789abcdef"[(c & 15) as usize]),
            _ => l.c(c),
        };
    }
    l.c(b'"');
}

/// A JSON document is written in pieces: a line holds 480 bytes, and one result with a long
/// message does not fit. Emit what is there once it is long, and go on in the emptied line.
fn flush_long(l: &mut Line) {
    if l.as_bytes().len() > 400 {
        l.emit(STDOUT);
        l.clear();
    }
}

fn json_record(l: &mut Line, res: Res, what: &[u8], msg: &[u8], rec: Option<&Record>) {
    l.s("{\"name\":");
    json_str(l, what);
    l.s(",\"result\":\"").s(res.word()).s("\",\"message\":");
    json_str(l, msg);
    if let Some(r) = rec {
        let f = &r.figs;
        l.emit(STDOUT);
        l.clear();
        l.s(",\"mode\":\"").s(r.mode.name()).f("\",\"pagesize_kb\":{},\"racers\":{},\"cpus\":[", &[r.pagesize / 1024, r.racers as u64])
            .b(r.cpus.as_bytes())
            .f(
                "],\"iterations\":{},\"passed\":{},\"failed\":{},\"broken\":{},\"missed\":{},\"overlap_pct\":{.2},\
                 \"skew_ns\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}},\"fault_ns_p50\":{},\"races_per_s\":{.1},\"elapsed_s\":{.6}",
                &[
                    f.iterations, f.passed, f.failed, f.broken, f.missed, f.overlap_x100(), f.skew.p50, f.skew.p90, f.skew.p99,
                    f.skew.max, f.fault_p50, f.rate_x10(), f.elapsed_ns / 1_000,
                ],
            );
        if r.mode == Mode::Dontneed {
            l.f(",\"madvise_ns_p50\":{}", &[f.madvise_p50]);
        }
        if f.swept {
            // Its own piece: a long message and these arrays could overflow one line.
            l.emit(STDOUT);
            l.clear();
            // The dontneed race's entries are twelfths of the madvise's duration, not ns.
            let twelfths = r.mode == Mode::Dontneed;
            l.s(if twelfths { ",\"aims\":{\"twelfths\":[" } else { ",\"offsets\":{\"ns\":[" });
            for (i, o) in f.offsets.iter().enumerate() {
                l.s(if i > 0 { "," } else { "" }).u(if twelfths { i as u64 + 1 } else { o.0 });
            }
            l.s("],\"races\":[");
            for (i, o) in f.offsets.iter().enumerate() {
                l.s(if i > 0 { "," } else { "" }).u(o.1);
            }
            l.s("],\"failed\":[");
            for (i, o) in f.offsets.iter().enumerate() {
                l.s(if i > 0 { "," } else { "" }).u(o.2);
            }
            l.s("]}");
        }
    }
    l.c(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(format: Format, results: &[Res]) -> i32 {
        let mut r = Reporter::new(format, false);
        for &res in results {
            let Some(slot) = counter(res) else { continue };
            r.counts[slot] += 1;
        }
        r.exit_status()
    }

    #[test]
    fn ltp_exit_bits() {
        use Res::*;
        assert_eq!(status(Format::Ltp, &[Pass, Pass]), 0);
        assert_eq!(status(Format::Ltp, &[Pass, Fail]), 1);
        assert_eq!(status(Format::Ltp, &[Brok]), 2);
        assert_eq!(status(Format::Ltp, &[Pass, Warn]), 4);
        assert_eq!(status(Format::Ltp, &[Conf]), 32);
        assert_eq!(status(Format::Ltp, &[Conf, Pass]), 0);
        assert_eq!(status(Format::Ltp, &[Fail, Brok, Warn]), 7);
        assert_eq!(status(Format::Ltp, &[]), 0);
    }

    #[test]
    fn other_schemes() {
        use Res::*;
        assert_eq!(status(Format::Ktap, &[Pass, Conf]), 0);
        assert_eq!(status(Format::Ktap, &[Conf]), 4);
        assert_eq!(status(Format::Ktap, &[Pass, Brok]), 1);
        assert_eq!(status(Format::Hugetlbfs, &[Pass]), 0);
        assert_eq!(status(Format::Hugetlbfs, &[Conf]), 1);
        assert_eq!(status(Format::Hugetlbfs, &[Fail]), 2);
    }

    #[test]
    fn hugetlbfs_tells_one_verdict() {
        let mut r = Reporter::new(Format::Hugetlbfs, false);
        r.result_line(Res::Conf, b"shared 1G", b"no pool", None);
        r.result_line(Res::Fail, b"shared 2M", b"SIGBUS", None);
        r.result_line(Res::Brok, b"private 2M", b"later", None);
        assert_eq!(r.verdict.as_bytes(), b"FAIL\tshared 2M: SIGBUS\n");
        assert_eq!(r.exit_status(), 2);
        let mut r = Reporter::new(Format::Hugetlbfs, false);
        r.result_line(Res::Conf, b"hugepages", b"none", None);
        assert_eq!(r.verdict.as_bytes(), b"Bad configuration: hugepages: none\n");
        assert_eq!(r.exit_status(), 1);
    }

    #[test]
    fn json_escapes() {
        let mut l = Line::new();
        json_str(&mut l, b"a\"b\\c\n\xff");
        assert_eq!(l.as_bytes(), b"\"a\\\"b\\\\c\\u000a\\u00ff\"");
    }

    #[test]
    fn figures() {
        let f = Figures { iterations: 200, passed: 200, missed: 2, race_ns: 2_000_000_000, ..Default::default() };
        assert_eq!(f.overlap_x100(), 9900);
        assert_eq!(f.rate_x10(), 1000);
        assert_eq!(Figures::default().overlap_x100(), 0);
    }
}
