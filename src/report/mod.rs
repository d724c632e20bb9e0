//! Results and how they are told: LTP lines (the default), KTAP, JSON, or libhugetlbfs's
//! PASS/FAIL words; and the exit status each harness expects.

use crate::cli::Format;
use crate::out::{Doc, Line, STDERR, STDOUT};
use crate::step::{Res, Stop};

mod figures;
pub mod json;
pub use figures::{Figures, Telling};
use json::json_record;

/// One reported result: a mode of a kind on a page size.
pub struct Record {
    /// The mode's name (the result's name is it and the size).
    pub name: &'static str,
    /// How the kind tells its figures.
    pub tell: &'static Telling,
    pub pagesize: u64,
    pub racers: u32,
    pub cpus: Line,
    pub figs: Figures,
    pub res: Res,
    pub msg: Line,
}

pub struct Reporter<'d> {
    pub format: Format,
    pub verbose: bool,
    pub name: &'static str,
    counts: [u32; 5],
    tests: u32,
    json_first: bool,
    /// JSON: the document, written whole by `finish`.
    doc: &'d mut Doc,
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

impl<'d> Reporter<'d> {
    /// `doc`: room for the JSON document (the caller's, see `run::run`).
    pub fn new(format: Format, verbose: bool, doc: &'d mut Doc) -> Reporter<'d> {
        Reporter { format, verbose, name: "hugerace", counts: [0; 5], tests: 0, json_first: true, doc, verdict: Line::new() }
    }

    /// Announce how many results will follow (KTAP's plan; the JSON document's head).
    pub fn begin(&mut self, planned: u32) {
        let mut l = Line::new();
        match self.format {
            Format::Ktap => {
                l.s("KTAP version 1\n1..").u(planned as u64).c(b'\n');
            }
            Format::Json => {
                l.s(concat!("{\"tool\":\"hugerace\",\"version\":\"", env!("CARGO_PKG_VERSION"), "\",\"base_page_kb\":"))
                    .u(crate::sys::start::page_size() as u64 / 1024)
                    .s(",\"results\":[");
                return self.doc.put(&mut l);
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
        l.nl();
        l.emit(fd);
    }

    /// A whole-run failure before any mode started (no hugetlb support, bad setup).
    pub fn stop(&mut self, what: &[u8], s: Stop, why: &Line) {
        self.result_line(s.res, what, why.as_bytes(), None);
    }

    /// Report one mode on one page size.
    pub fn record(&mut self, r: &Record) {
        let mut what = Line::new();
        what.s(r.name).c(b' ').size(r.pagesize);
        if r.figs.iterations > 0 && self.format != Format::Json {
            (r.tell.info)(self, &what, r);
        }
        self.result_line(r.res, what.as_bytes(), r.msg.as_bytes(), Some(r));
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
                l.s(self.name).s(": ").s(res.ltp()).s(": ").b(what).s(": ").b(msg).nl();
            }
            Format::Ktap => {
                if matches!(res, Res::Fail | Res::Brok) {
                    // The reason first, as a diagnostic of its own: a long one is cut, but
                    // never takes the result line with it.
                    l.s("# ").b(what).s(": ").b(msg).nl().emit(STDOUT);
                    l.s("not ok ");
                } else {
                    l.s("ok ");
                }
                l.u(self.tests as u64).c(b' ').b(what);
                if res == Res::Conf {
                    l.s(" # SKIP ").b(msg);
                }
                l.nl();
            }
            Format::Hugetlbfs => {
                let fail = matches!(res, Res::Fail | Res::Brok);
                let v = &mut self.verdict;
                if res != Res::Pass && (v.as_bytes().is_empty() || fail && !v.as_bytes().starts_with(b"FAIL")) {
                    v.clear();
                    v.s(if fail { "FAIL\t" } else { "Bad configuration: " }).b(what).s(": ").b(msg).nl();
                }
                return;
            }
            Format::Json => {
                if !self.json_first {
                    l.c(b',');
                }
                self.json_first = false;
                json_record(self.doc, &mut l, res, what, msg, rec);
                return self.doc.put(&mut l);
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
                self.doc.put(&mut l);
                self.doc.flush();
                return status;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(format: Format, results: &[Res]) -> i32 {
        let mut d = Doc::new(-1);
        let mut r = Reporter::new(format, false, &mut d);
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
        let mut d = Doc::new(-1);
        let mut r = Reporter::new(Format::Hugetlbfs, false, &mut d);
        r.result_line(Res::Conf, b"shared 1G", b"no pool", None);
        r.result_line(Res::Fail, b"shared 2M", b"SIGBUS", None);
        r.result_line(Res::Brok, b"private 2M", b"later", None);
        assert_eq!(r.verdict.as_bytes(), b"FAIL\tshared 2M: SIGBUS\n");
        assert_eq!(r.exit_status(), 2);
        let mut d = Doc::new(-1);
        let mut r = Reporter::new(Format::Hugetlbfs, false, &mut d);
        r.result_line(Res::Conf, b"hugepages", b"none", None);
        assert_eq!(r.verdict.as_bytes(), b"Bad configuration: hugepages: none\n");
        assert_eq!(r.exit_status(), 1);
    }
}
