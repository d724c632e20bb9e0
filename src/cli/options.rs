//! The option table: every option once, with its key, names, value and help line. Parsing
//! (`mod.rs`) and `--help` (`help.rs`) both read it, so neither can know an option the other
//! does not.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Key {
    Race,
    Mode,
    Destructive,
    List,
    PageSize,
    Racers,
    Cpus,
    Iterations,
    Duration,
    IterationTimeout,
    Rt,
    KeepGoing,
    Offset,
    NoReserve,
    LeaveFree,
    NoPoolChange,
    Hugetlbfs,
    NoMemfd,
    Format,
    Verbose,
    Progress,
    Help,
    Version,
}

pub struct Opt {
    pub key: Key,
    pub short: u8,
    pub long: &'static str,
    /// The value's name in help, or "" for a flag.
    pub value: &'static str,
    pub help: &'static str,
    /// Help groups: 0 what to race, 1 how, 2 pool and files, 3 output.
    pub group: u8,
}

pub const GROUPS: [&str; 4] = ["What to race", "How to race", "Pool and files", "Output"];

pub const OPTIONS: &[Opt] = &[
    Opt { key: Key::Race, short: 0, long: "race", value: "NAME,...", group: 0,
          help: "the kinds below, comma-separated, or all [the first]" },
    Opt { key: Key::Mode, short: b'm', long: "mode", value: "MODE", group: 0,
          help: "one mode of a kind that has modes, or both [both]" },
    Opt { key: Key::Destructive, short: 0, long: "destructive", value: "", group: 0,
          help: "also run kinds that break accounting until reboot" },
    Opt { key: Key::List, short: 0, long: "list", value: "", group: 3,
          help: "the kinds: bug, fix, kernels affected" },
    Opt { key: Key::PageSize, short: b's', long: "pagesize", value: "SIZE", group: 0,
          help: "2M, 1G, 64K, 16M... or all [the default size]" },
    Opt { key: Key::Racers, short: b'n', long: "racers", value: "N", group: 1,
          help: "racers, each on its own allowed CPU, or all [2]" },
    Opt { key: Key::Cpus, short: b'c', long: "cpus", value: "LIST", group: 1,
          help: "pin the racers: 2,5 or 0-3 [distinct cores]" },
    Opt { key: Key::Iterations, short: b'i', long: "iterations", value: "N", group: 1,
          help: "overlapped races per mode and size [1]" },
    Opt { key: Key::Duration, short: b'I', long: "duration", value: "SECONDS", group: 1,
          help: "race for this long instead of a count" },
    Opt { key: Key::IterationTimeout, short: 0, long: "iteration-timeout", value: "SECONDS", group: 1,
          help: "an iteration longer than this is a hang: TBROK [120]" },
    Opt { key: Key::Rt, short: 0, long: "rt", value: "", group: 1,
          help: "racers at SCHED_FIFO where permitted" },
    Opt { key: Key::KeepGoing, short: 0, long: "keep-going", value: "", group: 1,
          help: "after a failed race, count it and race on" },
    Opt { key: Key::Offset, short: 0, long: "offset", value: "NS|sweep", group: 1,
          help: "racers 2.. start NS after racer 1 [0]" },
    Opt { key: Key::NoReserve, short: 0, long: "noreserve", value: "", group: 2,
          help: "map the contested page MAP_NORESERVE" },
    Opt { key: Key::LeaveFree, short: 0, long: "leave-free", value: "N", group: 2,
          help: "pages left free [1]; 0 with --noreserve must FAIL" },
    Opt { key: Key::NoPoolChange, short: 0, long: "no-pool-change", value: "", group: 2,
          help: "never write nr_hugepages (TCONF if too small)" },
    Opt { key: Key::Hugetlbfs, short: 0, long: "hugetlbfs", value: "DIR", group: 2,
          help: "use this hugetlbfs mount, not memfd_create" },
    Opt { key: Key::NoMemfd, short: 0, long: "no-memfd", value: "", group: 2,
          help: "no memfd_create, as before Linux 4.14" },
    Opt { key: Key::Format, short: b'f', long: "format", value: "FMT", group: 3,
          help: "ltp, ktap, json or hugetlbfs [ltp]" },
    Opt { key: Key::Verbose, short: b'v', long: "verbose", value: "", group: 3,
          help: "say more about the setup" },
    Opt { key: Key::Progress, short: 0, long: "progress", value: "", group: 3,
          help: "progress line on stderr [if a terminal of its own]" },
    Opt { key: Key::Help, short: b'h', long: "help", value: "", group: 3,
          help: "this help" },
    Opt { key: Key::Version, short: b'V', long: "version", value: "", group: 3,
          help: "version, target and commit" },
];

pub const EXAMPLES: &[&str] = &[
    "hugerace                      both modes once on the default size",
    "hugerace -s all -i 1000       every size the machine has, 1000 races each",
    "hugerace shared -f ktap       the shared race, reported as KTAP",
    "hugerace --race all -i 10     every kind this machine may run, 10 times each",
];
