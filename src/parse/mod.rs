//! Pure parsers for the text the kernel and the user give us: numbers, sizes, /proc/meminfo,
//! /sys/kernel/mm/hugepages names, /proc/mounts and CPU lists. No syscalls here, so all of
//! it is tested on the host with captured files.

/// Trim ASCII whitespace at both ends.
pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() { s = rest } else { break }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() { s = rest } else { break }
    }
    s
}

/// A decimal number with no sign, no spaces, no overflow.
pub fn u64_dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// The first number in a one-value file such as `nr_hugepages` ("64\n").
pub fn first_u64(text: &[u8]) -> Option<u64> {
    u64_dec(trim(text))
}

/// A page size as the user writes it: `2M`, `1G`, `64K`, `16G`, `2048kB`, `2MB` or plain
/// bytes. It must be a power of two.
pub fn size(s: &[u8]) -> Option<u64> {
    let s = trim(s);
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let (num, unit) = s.split_at(digits);
    let n = u64_dec(num)?;
    let shift = match unit {
        b"" | b"B" | b"b" => 0,
        b"K" | b"k" | b"KB" | b"kB" | b"kb" | b"KiB" => 10,
        b"M" | b"m" | b"MB" | b"mB" | b"MiB" => 20,
        b"G" | b"g" | b"GB" | b"gB" | b"GiB" => 30,
        b"T" | b"t" | b"TB" | b"TiB" => 40,
        _ => return None,
    };
    let v = n.checked_mul(1u64 << shift)?;
    if v == 0 || !v.is_power_of_two() { None } else { Some(v) }
}

/// `hugepages-2048kB` (a /sys/kernel/mm/hugepages entry) -> 2 MiB in bytes.
pub fn hugepages_dir(name: &[u8]) -> Option<u64> {
    let rest = name.strip_prefix(b"hugepages-")?;
    let kb = rest.strip_suffix(b"kB")?;
    let v = u64_dec(kb)?.checked_mul(1024)?;
    if v.is_power_of_two() { Some(v) } else { None }
}

/// A `Key:   value [kB]` field of /proc/meminfo.
pub fn meminfo(text: &[u8], key: &[u8]) -> Option<u64> {
    for line in text.split(|&c| c == b'\n') {
        if let Some(rest) = line.strip_prefix(key)
            && let Some(rest) = rest.strip_prefix(b":") {
                let v = trim(rest);
                let v = v.strip_suffix(b"kB").map(trim).unwrap_or(v);
                return u64_dec(v);
            }
    }
    None
}

/// The hugepage counters of one size, as /sys or /proc/meminfo give them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub free: u64,
    pub resv: u64,
    pub surplus: u64,
}

impl Counts {
    /// Pages that a new reservation or fault can still take.
    pub fn available(&self) -> u64 {
        self.free.saturating_sub(self.resv)
    }

    /// Pages in use: instantiated by someone (ours included).
    pub fn in_use(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }

    /// Why these counters cannot come from a sound kernel, if they cannot: a counter that
    /// went below zero reads as a huge unsigned number, and reservations are taken from
    /// free pages, free and surplus pages from the pool.
    pub fn impossible(&self) -> Option<&'static str> {
        const UNDERFLOW: u64 = 1 << 62;
        Some(if self.total >= UNDERFLOW || self.free >= UNDERFLOW || self.resv >= UNDERFLOW || self.surplus >= UNDERFLOW {
            "a counter went below zero"
        } else if self.resv > self.free {
            "more pages reserved than free"
        } else if self.free > self.total {
            "more pages free than in the pool"
        } else if self.surplus > self.total {
            "more surplus pages than in the pool"
        } else {
            return None;
        })
    }
}

/// Whether a /proc/<pid>/smaps line says its mapping is made of hugetlb pages of `size`
/// bytes: `KernelPageSize:     2048 kB` (a THP or base-page mapping says the base size).
pub fn smaps_pagesize_is(line: &[u8], size: u64) -> bool {
    let Some(v) = line.strip_prefix(b"KernelPageSize:") else { return false };
    let v = trim(v);
    v.strip_suffix(b"kB").map(trim).and_then(u64_dec).and_then(|kb| kb.checked_mul(1024)) == Some(size)
}

/// A `key value` line of /proc/vmstat.
pub fn vmstat(text: &[u8], key: &[u8]) -> Option<u64> {
    text.split(|&c| c == b'\n').find_map(|line| line.strip_prefix(key)?.strip_prefix(b" ").and_then(u64_dec))
}

/// The default-size counters and the default size from /proc/meminfo.
pub fn meminfo_hugepages(text: &[u8]) -> Option<(u64, Counts)> {
    let size = meminfo(text, b"Hugepagesize")?.checked_mul(1024)?;
    let c = Counts {
        total: meminfo(text, b"HugePages_Total")?,
        free: meminfo(text, b"HugePages_Free")?,
        resv: meminfo(text, b"HugePages_Rsvd").unwrap_or(0),
        surplus: meminfo(text, b"HugePages_Surp").unwrap_or(0),
    };
    Some((size, c))
}

/// One line of /proc/mounts. `dir` is still octal-escaped (a space is `\040`).
#[derive(Clone, Copy, Debug)]
pub struct Mount<'a> {
    pub dir: &'a [u8],
    pub fstype: &'a [u8],
    pub opts: &'a [u8],
}

pub fn mounts(text: &[u8]) -> impl Iterator<Item = Mount<'_>> {
    text.split(|&c| c == b'\n').filter_map(|line| {
        let mut f = line.split(|&c| c == b' ').filter(|w| !w.is_empty());
        let _src = f.next()?;
        let dir = f.next()?;
        let fstype = f.next()?;
        let opts = f.next()?;
        Some(Mount { dir, fstype, opts })
    })
}

/// The page size a hugetlbfs mount serves: its `pagesize=` option, else the default size.
pub fn mount_pagesize(opts: &[u8], default: u64) -> Option<u64> {
    for o in opts.split(|&c| c == b',') {
        if let Some(v) = o.strip_prefix(b"pagesize=") {
            return size(v);
        }
    }
    Some(default)
}

/// Undo /proc/mounts' octal escapes into `out`; returns the length, None if it does not fit.
pub fn unescape(s: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut i, mut n) = (0, 0);
    while i < s.len() {
        let mut c = s[i];
        if c == b'\\' && i + 3 < s.len() && s[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d)) {
            let v = (s[i + 1] - b'0') as u32 * 64 + (s[i + 2] - b'0') as u32 * 8 + (s[i + 3] - b'0') as u32;
            c = v.min(255) as u8;
            i += 3;
        }
        *out.get_mut(n)? = c;
        n += 1;
        i += 1;
    }
    Some(n)
}

/// A CPU list as sysfs and `taskset -c` write it: `0-3,8,10-11`. Calls `f` for each CPU in
/// order; None on a syntax error, a reversed range or a number above `max`. `f` is a `dyn`,
/// so that one body serves every caller (binary size).
pub fn cpu_list(s: &[u8], max: u32, f: &mut dyn FnMut(u32)) -> Option<usize> {
    let s = trim(s);
    if s.is_empty() {
        return None;
    }
    let mut n = 0;
    for part in s.split(|&c| c == b',') {
        let (a, b) = match part.iter().position(|&c| c == b'-') {
            Some(p) => (u64_dec(&part[..p])?, u64_dec(&part[p + 1..])?),
            None => {
                let v = u64_dec(part)?;
                (v, v)
            }
        };
        if a > b || b > max as u64 {
            return None;
        }
        for c in a..=b {
            f(c as u32);
            n += 1;
        }
    }
    Some(n)
}

/// The CPUs set in a kernel affinity mask (an array of native-endian longs).
pub fn mask_cpus(mask: &[u8], f: &mut dyn FnMut(u32)) {
    let w = core::mem::size_of::<usize>();
    for (wi, word) in mask.chunks(w).enumerate() {
        let mut b = [0u8; 8];
        b[..word.len()].copy_from_slice(word);
        let v = if w == 8 {
            u64::from_ne_bytes(b)
        } else {
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as u64
        };
        for bit in 0..(w * 8) {
            if v >> bit & 1 == 1 {
                f((wi * w * 8 + bit) as u32);
            }
        }
    }
}

/// Set one CPU's bit in a kernel affinity mask; false if it does not fit.
pub fn mask_set(mask: &mut [u8], cpu: u32) -> bool {
    let w = core::mem::size_of::<usize>();
    let word = cpu as usize / (w * 8);
    let bit = cpu as usize % (w * 8);
    let byte = if cfg!(target_endian = "little") { bit / 8 } else { w - 1 - bit / 8 };
    match mask.get_mut(word * w + byte) {
        Some(b) => {
            *b |= 1 << (bit % 8);
            true
        }
        None => false,
    }
}

/// Our cgroup in /proc/self/cgroup: the v1 hierarchy that has `controller`
/// (`10:hugetlb:/path`), or with None the v2 one (`0::/path`).
pub fn cgroup_path<'a>(text: &'a [u8], controller: Option<&[u8]>) -> Option<&'a [u8]> {
    for line in text.split(|&c| c == b'\n') {
        let mut f = line.splitn(3, |&c| c == b':');
        let (_id, ctl, path) = (f.next()?, f.next()?, f.next()?);
        let hit = match controller {
            Some(c) => ctl.split(|&x| x == b',').any(|x| x == c),
            None => ctl.is_empty(),
        };
        if hit {
            return Some(path);
        }
    }
    None
}

/// The `max N` count of a cgroup v2 `hugetlb.<size>.events` file.
pub fn events_max(text: &[u8]) -> Option<u64> {
    text.split(|&c| c == b'\n').find_map(|l| l.strip_prefix(b"max ").and_then(|v| u64_dec(trim(v))))
}

#[cfg(test)]
mod tests;
