//! The JSON format's writer: one result as an object of the `results` array, put into the
//! document piece by piece (a line holds 480 bytes; one result does not always fit).

use super::Record;
use crate::out::{Doc, Line};
use crate::step::Res;

pub fn json_str(doc: &mut Doc, l: &mut Line, s: &[u8]) {
    l.c(b'"');
    for &c in s {
        if l.as_bytes().len() > 400 {
            doc.put(l);
        }
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

pub(super) fn json_record(doc: &mut Doc, l: &mut Line, res: Res, what: &[u8], msg: &[u8], rec: Option<&Record>) {
    l.s("{\"name\":");
    json_str(doc, l, what);
    l.s(",\"result\":\"").s(res.word()).s("\",\"message\":");
    json_str(doc, l, msg);
    if let Some(r) = rec {
        let f = &r.figs;
        doc.put(l);
        l.s(",\"mode\":\"").s(r.name).f(
            "\",\"pagesize_kb\":{},\"iterations\":{},\"passed\":{},\"failed\":{},\"broken\":{},\"elapsed_s\":{.6}",
            &[r.pagesize / 1024, f.iterations, f.passed, f.failed, f.broken, f.elapsed_ns / 1_000],
        );
        if let Some((free, resv)) = f.start {
            l.f(",\"start_free\":{},\"start_reserved\":{}", &[free, resv]);
        }
        if f.signal != 0 {
            l.s(",\"signal\":\"").sig(f.signal).c(b'"');
        }
        (r.tell.json)(doc, l, r);
    }
    l.c(b'}');
}

/// The fields every racing kind's result has: its racers and their CPUs, missed races,
/// overlap, skew, fault and rate.
pub fn racing_fields(doc: &mut Doc, l: &mut Line, r: &Record) {
    let f = &r.figs;
    l.f(",\"racers\":{},\"cpus\":[", &[r.racers as u64]);
    // A piece of their own (hundreds of racers fill a line); a list cut after a comma
    // would not parse.
    doc.put(l);
    let cpus = r.cpus.as_bytes();
    l.b(cpus.strip_suffix(b",").unwrap_or(cpus));
    doc.put(l);
    l.f(
        "],\"missed\":{},\"overlap_pct\":{.2},\"skew_ns\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}},\"fault_ns_p50\":{},\"races_per_s\":{.1}",
        &[f.missed, f.overlap_x100(), f.skew.p50, f.skew.p90, f.skew.p99, f.skew.max, f.fault_p50, f.rate_x10()],
    );
}

/// A kind's sweep as `,"<head>":[<entries>],"races":[...],"failed":[...]}` (the caller's
/// head opens the object: `"offsets":{"ns"`).
pub fn sweep_fields(doc: &mut Doc, l: &mut Line, f: &super::Figures, head: &str) {
    // Its own piece: a long message and these arrays could overflow one line.
    doc.put(l);
    l.s(",").s(head).s(":[");
    for (i, o) in f.sweep.iter().enumerate() {
        l.s(if i > 0 { "," } else { "" }).u(o.0);
    }
    l.s("],\"races\":[");
    for (i, o) in f.sweep.iter().enumerate() {
        l.s(if i > 0 { "," } else { "" }).u(o.1);
    }
    l.s("],\"failed\":[");
    for (i, o) in f.sweep.iter().enumerate() {
        l.s(if i > 0 { "," } else { "" }).u(o.2);
    }
    l.s("]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes() {
        let (mut d, mut l) = (Doc::new(-1), Line::new());
        json_str(&mut d, &mut l, b"a\"b\\c\n\xff");
        d.put(&mut l);
        assert_eq!(d.as_bytes(), b"\"a\\\"b\\\\c\\u000a\\u00ff\"");
    }
}
