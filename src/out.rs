//! Allocation-free output: a fixed line buffer with just the formatting we need, far smaller
//! than `core::fmt`.

use crate::sys;

pub const STDOUT: i32 = 1;
pub const STDERR: i32 = 2;

// Signal names 1..31 by number, NUL-separated (the same numbers on every arch we build).
const SIGNAMES: &[u8] = b"\0HUP\0INT\0QUIT\0ILL\0TRAP\0ABRT\0BUS\0FPE\0KILL\0USR1\0SEGV\0USR2\0PIPE\0ALRM\0TERM\0STKFLT\0CHLD\0CONT\0STOP\0TSTP\0TTIN\0TTOU\0URG\0XCPU\0XFSZ\0VTALRM\0PROF\0WINCH\0IO\0PWR\0SYS";

/// One line (or a few) being assembled. Overlong text is cut, never a panic.
pub struct Line {
    buf: [u8; 480],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Line {
    // Not inlined: the zeroing of the buffer is one loop, not one per line built.
    #[inline(never)]
    pub const fn new() -> Line {
        Line { buf: [0; 480], len: 0 }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn clear(&mut self) {
        self.len = 0;
    }
    pub fn s(&mut self, s: &str) -> &mut Self {
        self.b(s.as_bytes())
    }
    // Never inlined: some targets' inliners (s390x) copied it, with an open-coded memcpy
    // loop, into each of the hundreds of message pieces.
    #[inline(never)]
    pub fn b(&mut self, s: &[u8]) -> &mut Self {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
        self
    }
    pub fn c(&mut self, c: u8) -> &mut Self {
        self.b(&[c])
    }
    pub fn u(&mut self, v: u64) -> &mut Self {
        let mut d = [0u8; 20];
        self.b(sys::decimal(v, &mut d))
    }
    pub fn i(&mut self, v: i64) -> &mut Self {
        if v < 0 {
            self.c(b'-');
        }
        self.u(v.unsigned_abs())
    }
    pub fn hex(&mut self, mut v: u64) -> &mut Self {
        let mut d = [0u8; 16];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b"0123456789abcdef"[(v & 15) as usize];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        self.s("0x").b(&d[i..])
    }
    /// A fixed-point number with `decimals` digits after the point, from a value scaled by
    /// 10^decimals.
    pub fn fixed(&mut self, scaled: u64, decimals: u32) -> &mut Self {
        let p = 10u64.pow(decimals);
        self.u(scaled / p);
        if decimals > 0 {
            self.c(b'.');
            let mut frac = scaled % p;
            let mut div = p / 10;
            while div > 0 {
                self.c(b'0' + (frac / div) as u8);
                frac %= div;
                div /= 10;
            }
        }
        self
    }
    /// Append the template `t`, each placeholder replaced by the next value of `a`: `{}` in
    /// decimal, `{size}` as a page size (2M), `{errno}` as an errno's name, `{hex}` in hex,
    /// `{.N}` as a fixed-point number with N decimals (see `fixed`); `{{` is a brace. One call
    /// with a template and an array of numbers is far fewer bytes of code than a chain of
    /// pieces, and messages are most of this program (binary size).
    #[inline(never)]
    pub fn f(&mut self, t: &str, a: &[u64]) -> &mut Self {
        let mut t = t.as_bytes();
        let mut a = a.iter().copied();
        while let Some(open) = t.iter().position(|&c| c == b'{') {
            let (text, rest) = t.split_at(open);
            self.b(text);
            let rest = &rest[1..];
            if let Some(rest) = rest.strip_prefix(b"{") {
                self.c(b'{');
                t = rest;
                continue;
            }
            let close = rest.iter().position(|&c| c == b'}').unwrap_or(rest.len());
            let (spec, rest) = rest.split_at(close);
            let v = a.next().unwrap_or(0);
            match spec {
                b"size" => self.size(v),
                b"errno" => self.errno(sys::Errno(v as u16)),
                b"hex" => self.hex(v),
                [b'.', d] => self.fixed(v, (d - b'0') as u32),
                _ => self.u(v),
            };
            t = rest.get(1..).unwrap_or(b"");
        }
        self.b(t)
    }
    /// A user-given argument, shown safely: printable ASCII as is, other bytes as \xNN, and
    /// cut after 80 bytes.
    pub fn arg(&mut self, a: &[u8]) -> &mut Self {
        for &c in a.iter().take(80) {
            if (0x20..0x7f).contains(&c) {
                self.c(c);
            } else {
                self.s("\\x").c(b"0123456789abcdef"[(c >> 4) as usize]).c(b"0123456789abcdef"[(c & 15) as usize]);
            }
        }
        if a.len() > 80 {
            self.s("...");
        }
        self
    }
    /// An errno by name (ENOMEM), or its number when unnamed.
    pub fn errno(&mut self, e: sys::Errno) -> &mut Self {
        match e.name() {
            Some(n) => self.b(n),
            None => self.s("errno ").u(e.0 as u64),
        }
    }
    /// A signal by name (SIGTERM), a realtime one by number (realtime signal 34: C
    /// libraries place SIGRTMIN differently, so a name relative to it would mislead).
    pub fn sig(&mut self, sig: u32) -> &mut Self {
        match SIGNAMES.split(|&c| c == 0).nth(sig as usize).filter(|n| !n.is_empty() && sig > 0) {
            Some(n) => self.s("SIG").b(n),
            None if sig >= linux_raw_sys::general::SIGRTMIN => self.s("realtime signal ").u(sig as u64),
            None => self.s("signal ").u(sig as u64),
        }
    }
    /// A size in bytes written the way page sizes are (64K, 2M, 1G).
    pub fn size(&mut self, bytes: u64) -> &mut Self {
        const UNITS: [(u32, u8); 4] = [(40, b'T'), (30, b'G'), (20, b'M'), (10, b'K')];
        for (shift, unit) in UNITS {
            if bytes >= 1 << shift && bytes & ((1 << shift) - 1) == 0 {
                return self.u(bytes >> shift).c(unit);
            }
        }
        self.u(bytes).c(b'B')
    }
    /// End the line: a newline, over the last byte if the line is full, so that a cut
    /// message never runs into the next line a parser reads.
    pub fn nl(&mut self) -> &mut Self {
        if self.len == self.buf.len() {
            self.len -= 1;
        }
        self.c(b'\n')
    }
    pub fn emit(&mut self, fd: i32) {
        let _ = sys::write_all(fd, self.as_bytes());
        self.len = 0;
    }
}

/// Room for a whole JSON document: every size (16 at most) times both modes, plus a closing
/// TBROK, at under 5 KiB each even with a cut message escaped byte by byte.
pub const DOC_BYTES: usize = 192 << 10;

/// A document assembled whole and written in one write at the end, so that nothing written
/// meanwhile (a warning on stderr, on the same terminal) lands inside it. Should it ever
/// fill, what it holds is written first: in pieces, but never cut.
///
/// Its room is mapped, not a zeroed array: only the pages a document reaches are touched,
/// and nothing is cleared first. A 192 KiB array was cleared on every run, whatever the
/// format: a `rep stosb` that QEMU's TCG runs one byte per translated block, 3 ms of a
/// one-race run's 16 ms there (issue 18), and 192 KiB of the run's RSS everywhere. Without
/// the mapping (ENOMEM), each line is written as it comes.
pub struct Doc {
    buf: Option<sys::Mapping>,
    len: usize,
    fd: i32,
}

impl Doc {
    pub fn new(fd: i32) -> Doc {
        Doc { buf: sys::Mapping::anon(DOC_BYTES, false).ok(), len: 0, fd }
    }
    pub fn as_bytes(&self) -> &[u8] {
        match &self.buf {
            Some(m) => &m.bytes()[..self.len],
            None => &[],
        }
    }
    /// Take a line's bytes, leaving the line empty.
    pub fn put(&mut self, l: &mut Line) {
        let b = l.as_bytes();
        if b.len() > DOC_BYTES - self.len {
            self.flush();
        }
        match &mut self.buf {
            Some(m) => {
                m.bytes_mut()[self.len..self.len + b.len()].copy_from_slice(b);
                self.len += b.len();
            }
            None => {
                let _ = sys::write_all(self.fd, b);
            }
        }
        l.clear();
    }
    pub fn flush(&mut self) {
        let _ = sys::write_all(self.fd, self.as_bytes());
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn numbers() {
        let mut l = Line::new();
        l.u(0).c(b' ').u(18446744073709551615).c(b' ').i(-42).c(b' ').hex(0xdead).c(b' ').fixed(12345, 2).c(b' ').fixed(5, 3);
        assert_eq!(l.as_bytes(), b"0 18446744073709551615 -42 0xdead 123.45 0.005");
    }
    #[test]
    fn templates() {
        let mut l = Line::new();
        l.f("{} of {size}: {errno} at {hex}, {.2}%, {{x}", &[3, 2 << 20, sys::Errno::ENOMEM.0 as u64, 0xbeef, 9950]);
        assert_eq!(l.as_bytes(), b"3 of 2M: ENOMEM at 0xbeef, 99.50%, {x}");
        l.clear();
        l.f("no value: {}", &[]);
        assert_eq!(l.as_bytes(), b"no value: 0");
    }
    #[test]
    fn signal_names() {
        use linux_raw_sys::general as k;
        let name = |sig| {
            let mut l = Line::new();
            l.sig(sig);
            String::from_utf8(l.as_bytes().to_vec()).unwrap()
        };
        for (sig, n) in [(k::SIGHUP, "SIGHUP"), (k::SIGPIPE, "SIGPIPE"), (k::SIGTERM, "SIGTERM"), (k::SIGSTKFLT, "SIGSTKFLT"),
            (k::SIGIO, "SIGIO"), (k::SIGPWR, "SIGPWR"), (k::SIGSYS, "SIGSYS"), (k::SIGBUS, "SIGBUS"), (k::SIGUSR2, "SIGUSR2")] {
            assert_eq!(name(sig), n);
        }
        assert_eq!(name(34), "realtime signal 34");
        assert_eq!(name(64), "realtime signal 64");
        assert_eq!(name(0), "signal 0");
    }
    #[test]
    fn sizes() {
        let mut l = Line::new();
        for s in [64u64 << 10, 2 << 20, 32 << 20, 1 << 30, 16 << 30, 1000] {
            l.size(s).c(b' ');
        }
        assert_eq!(l.as_bytes(), b"64K 2M 32M 1G 16G 1000B ");
    }
    #[test]
    fn overflow_is_cut() {
        let mut l = Line::new();
        for _ in 0..100 {
            l.s("0123456789");
        }
        assert_eq!(l.as_bytes().len(), 480);
    }
    #[test]
    fn a_full_line_still_ends() {
        let mut l = Line::new();
        l.s("ab").nl();
        assert_eq!(l.as_bytes(), b"ab\n");
        l.clear();
        for _ in 0..50 {
            l.s("0123456789");
        }
        l.nl();
        assert_eq!(l.as_bytes().len(), 480);
        assert_eq!(l.as_bytes()[479], b'\n');
    }
    #[test]
    fn a_document_keeps_every_piece() {
        let mut d = Doc::new(-1);
        let mut l = Line::new();
        l.s("{\"a\":");
        d.put(&mut l);
        assert!(l.as_bytes().is_empty());
        l.s("1}");
        d.put(&mut l);
        assert_eq!(d.as_bytes(), b"{\"a\":1}");
        // Full: what it held goes out first (to fd -1 here), the new piece is kept.
        for _ in 0..DOC_BYTES / 400 + 1 {
            l.s(&"x".repeat(400));
            d.put(&mut l);
        }
        assert!(d.as_bytes().len() <= DOC_BYTES && d.as_bytes().ends_with(&[b'x'; 400]));
    }
    #[test]
    fn errno_names() {
        let mut l = Line::new();
        l.errno(sys::Errno::ENOMEM).c(b' ').errno(sys::Errno(3999));
        assert_eq!(l.as_bytes(), b"ENOMEM errno 3999");
    }
}
