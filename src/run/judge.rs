//! Whether the pool came back as it was after a mode, with every page of ours given back.

use crate::out::Line;
use crate::parse::Counts;
use crate::pool::Pool;
use crate::report::Record;
use crate::step::Res;
use crate::sys;

/// After a mode, with every page of ours given back, the pool must read as before it.
/// Pages are freed as their last user goes, which may lag a little: a mismatch is read
/// again for up to a second before it is judged.
pub(super) fn judge_returned(pool: &Pool, before: &Counts, rec: &mut Record) {
    let mut c = *before;
    for _ in 0..10 {
        match pool.counts() {
            Ok(now) => c = now,
            Err(_) => return,
        }
        if returned(before, &c, false).is_none() {
            return;
        }
        sys::sleep_ns(100_000_000);
    }
    let Some(res) = returned(before, &c, crate::others::map_hugetlb(pool.size)) else { return };
    let size = pool.size;
    let mut msg = Line::new();
    let d = c.resv as i64 - before.resv as i64;
    match res {
        Res::Fail => msg.s(if d > 0 { "the kernel leaked " } else { "the kernel's reservation count fell by " }).f("{} {size} reservation(s) in the race: ", &[d.unsigned_abs(), size]),
        _ => msg.s("inconclusive: another process uses these hugepages: "),
    };
    msg.f("after the run the pool reads total {}, free {}, reserved {}; before it {}, {}, {}", &[c.total, c.free, c.resv, before.total, before.free, before.resv]);
    if rec.res == Res::Pass {
        (rec.res, rec.msg) = (res, msg);
    } else {
        rec.msg.s("; ").b(msg.as_bytes());
    }
}

/// What the pool after a mode says, against before it: None when it is back as it was. A
/// reservation count that moved while the pages did not, and that no other process's
/// hugetlb mapping can hold, is a leak (or an underflow) in the kernel's accounting, made
/// by the race: TFAIL. Anything else that moved is another process's doing: TBROK.
fn returned(before: &Counts, after: &Counts, others_map: bool) -> Option<Res> {
    if after.resv == before.resv && after.free == before.free {
        return None;
    }
    let pages_same = after.total == before.total && after.in_use() == before.in_use();
    Some(if pages_same && after.resv != before.resv && !others_map { Res::Fail } else { Res::Brok })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_pool_after_a_mode_says() {
        let c = |total, free, resv| Counts { total, free, resv, surplus: 0 };
        let before = c(4, 4, 0);
        assert_eq!(returned(&before, &c(4, 4, 0), false), None);
        // A reservation nobody holds: leaked by the kernel.
        assert_eq!(returned(&before, &c(4, 4, 1), false), Some(Res::Fail));
        // Underflowed.
        assert_eq!(returned(&c(4, 4, 1), &c(4, 4, 0), false), Some(Res::Fail));
        // ...unless another process maps such pages: it may hold the reservation.
        assert_eq!(returned(&before, &c(4, 4, 1), true), Some(Res::Brok));
        // Pages in use or a pool that changed: another process.
        assert_eq!(returned(&before, &c(4, 3, 0), false), Some(Res::Brok));
        assert_eq!(returned(&before, &c(5, 5, 1), false), Some(Res::Brok));
    }
}

