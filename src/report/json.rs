//! The JSON format's writer: one result as an object of the `results` array.

use super::Record;
use crate::out::{Line, STDOUT};
use crate::step::{Mode, Res};

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

pub(super) fn json_record(l: &mut Line, res: Res, what: &[u8], msg: &[u8], rec: Option<&Record>) {
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

    #[test]
    fn json_escapes() {
        let mut l = Line::new();
        json_str(&mut l, b"a\"b\\c\n\xff");
        assert_eq!(l.as_bytes(), b"\"a\\\"b\\\\c\\u000a\\u00ff\"");
    }
}
