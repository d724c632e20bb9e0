/* inject [--after N] [--all] [--str IDX S] [--fd IDX PATH] [--mask IDX MASK VALUE]... ACTION -- PROGRAM ARGS...
 *
 * Run PROGRAM under ptrace (every thread and child process it makes) and inject one fault
 * at a chosen system call, deterministically. x86_64 syscall ABI only: a helper for the
 * host's tests (tests/detectors.rs).
 *
 * Which call: the syscall named in ACTION, in any task, whose arguments pass the filters:
 *   --str IDX S           argument IDX (0-based) points at the NUL-terminated string S
 *   --fd IDX PATH         argument IDX is a descriptor of the file PATH (its /proc link)
 *   --mask IDX MASK VALUE (argument IDX & MASK) == VALUE  (numbers in C syntax: 0x41); up
 *                         to four, all of which must hold
 * --after N skips the first N matching calls; the fault goes into the next one only, or
 * into every later one with --all.
 *
 * ACTION:
 *   fail SYSCALL ERRNO       the call is not made (at entry its number becomes -1) and it
 *                            returns -ERRNO (ERRNO by name, EACCES, or number)
 *   return SYSCALL VALUE     the call is not made and returns VALUE, as if it had worked
 *   hold SYSCALL             the calling task is held stopped at the call's entry until it
 *                            is killed or PROGRAM ends (then it is killed)
 *   sleep SYSCALL SECONDS    the call becomes nanosleep(SECONDS, may be 0.05) and returns 0: the task is
 *                            late but neither stopped nor gone (the timespec goes 4K below
 *                            the caller's stack pointer)
 *   delay SYSCALL SECONDS    the task is held at the call's entry this long (and the helper
 *                            with it), then the call is made as usual; the report line
 *                            comes first, so that its reader can look around meanwhile
 *   steal SYSCALL SIZE [N]   once the call has returned, this helper takes N (default 1)
 *                            hugepages of SIZE bytes into a memfd of its own (fallocate, so
 *                            a missing page is an error here, never a SIGBUS), and holds
 *                            them until PROGRAM has exited
 *   reserve SYSCALL SIZE [N] as steal, but the pages are only reserved (a MAP_SHARED mapping
 *                            never touched), not used
 *   cpu FROM TO              a getcpu that reports CPU FROM reports TO instead (the helper
 *                            pokes TO into the caller's *cpu as the call returns)
 *
 * What it did goes to stderr, one line each: "inject: <action> at <syscall> #K (tid T)", or
 * "inject: nothing injected" at the end. The exit status is always PROGRAM's (128 + the
 * signal if it was killed). On any error of its own it prints "inject: error: ..." and kills
 * PROGRAM; PTRACE_O_EXITKILL kills every tracee should this helper itself die, so nothing is
 * ever left stopped or orphaned. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif

#ifndef __x86_64__
#error "inject speaks the x86_64 syscall ABI only"
#endif

static const struct { const char *name; long nr; } SYSCALLS[] = {
    {"read", SYS_read}, {"write", SYS_write}, {"openat", SYS_openat}, {"close", SYS_close},
    {"mmap", SYS_mmap}, {"munmap", SYS_munmap}, {"madvise", SYS_madvise},
    {"ftruncate", SYS_ftruncate}, {"fallocate", SYS_fallocate}, {"memfd_create", SYS_memfd_create},
    {"getcpu", SYS_getcpu}, {"sched_setaffinity", SYS_sched_setaffinity},
    {"sched_getaffinity", SYS_sched_getaffinity}, {"clone", SYS_clone}, {"prctl", SYS_prctl},
    {"rt_sigaction", SYS_rt_sigaction}, {"rt_sigprocmask", SYS_rt_sigprocmask},
    {"socket", SYS_socket}, {"bind", SYS_bind}, {"mount", SYS_mount}, {"mkdir", SYS_mkdir},
    {"fstatfs", SYS_fstatfs}, {"wait4", SYS_wait4}, {"waitid", SYS_waitid}, {"kill", SYS_kill},
    {"futex", SYS_futex}, {"uname", SYS_uname}, {"getdents64", SYS_getdents64},
    {"getppid", SYS_getppid}, {"clock_gettime", SYS_clock_gettime},
};

static const struct { const char *name; int e; } ERRNOS[] = {
    {"EPERM", EPERM}, {"ENOENT", ENOENT}, {"EINTR", EINTR}, {"EIO", EIO}, {"EAGAIN", EAGAIN},
    {"ENOMEM", ENOMEM}, {"EACCES", EACCES}, {"EFAULT", EFAULT}, {"EBUSY", EBUSY},
    {"EINVAL", EINVAL}, {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"ENOSYS", ENOSYS},
    {"EOPNOTSUPP", EOPNOTSUPP},
};

enum action { FAIL, RETURN, HOLD, SLEEP, DELAY, STEAL, CPU };

static struct {
    enum action action;
    long nr;
    const char *name;
    long ret;                /* FAIL (-errno), RETURN */
    unsigned long size, n;   /* STEAL */
    int reserve_only;        /* STEAL as `reserve` */
    unsigned from, to;       /* CPU */
    unsigned long secs, nsec; /* SLEEP */
    const char *secs_text;
    unsigned long after;
    int all;
    int str_idx;
    const char *str;
    int fd_idx;
    const char *fd_path;
    int masks;
    struct { int idx; unsigned long mask, value; } mask[4];
} opt = {.str_idx = -1, .fd_idx = -1, .n = 1};

static pid_t main_pid;
static unsigned long matched, injected;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "inject: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void usage(void) {
    fprintf(stderr, "usage: inject [--after N] [--all] [--str IDX S] [--fd IDX PATH] [--mask IDX MASK VALUE] "
                    "fail SYSCALL ERRNO | return SYSCALL VALUE | hold SYSCALL | sleep SYSCALL SECONDS | steal SYSCALL SIZE [N] | cpu FROM TO "
                    "-- PROGRAM ARGS...\n");
    exit(2);
}

static unsigned long num(const char *s) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || *end || !*s) usage();
    return v;
}

static long syscall_nr(const char *s) {
    for (size_t i = 0; i < sizeof SYSCALLS / sizeof *SYSCALLS; i++)
        if (!strcmp(SYSCALLS[i].name, s)) return SYSCALLS[i].nr;
    return (long)num(s);
}

static long errno_nr(const char *s) {
    for (size_t i = 0; i < sizeof ERRNOS / sizeof *ERRNOS; i++)
        if (!strcmp(ERRNOS[i].name, s)) return ERRNOS[i].e;
    return (long)num(s);
}

/* Per-task state: what the call in progress was picked for. */
#define MAX_TASKS 4096
static struct task { pid_t tid; int seen; int pending; int held; unsigned long cpu_ptr; } tasks[MAX_TASKS];

static struct task *task(pid_t tid) {
    struct task *free_slot = 0;
    for (int i = 0; i < MAX_TASKS; i++) {
        if (tasks[i].tid == tid) return &tasks[i];
        if (!tasks[i].tid && !free_slot) free_slot = &tasks[i];
    }
    if (!free_slot) return 0;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->tid = tid;
    return free_slot;
}

static void forget(pid_t tid) {
    for (int i = 0; i < MAX_TASKS; i++)
        if (tasks[i].tid == tid) tasks[i].tid = 0;
}

/* Whether the string at the tracee's address equals s. */
static int tracee_str_is(pid_t tid, unsigned long addr, const char *s) {
    size_t len = strlen(s) + 1;
    for (size_t off = 0; off < len; off += sizeof(long)) {
        errno = 0;
        long w = ptrace(PTRACE_PEEKDATA, tid, (void *)(addr + off), 0);
        if (errno) return 0;
        const char *b = (const char *)&w;
        for (size_t k = 0; k < sizeof(long) && off + k < len; k++)
            if (b[k] != s[off + k]) return 0;
    }
    return 1;
}

/* Whether the tracee's descriptor fd is the file path. */
static int tracee_fd_is(pid_t tid, unsigned long fd, const char *path) {
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/%d/fd/%lu", tid, fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) return 0;
    target[n] = 0;
    return !strcmp(target, path);
}

static int filters_pass(pid_t tid, const struct __ptrace_syscall_info *si) {
    if ((long)si->entry.nr != opt.nr) return 0;
    if (opt.str_idx >= 0 && !tracee_str_is(tid, si->entry.args[opt.str_idx], opt.str)) return 0;
    if (opt.fd_idx >= 0 && !tracee_fd_is(tid, si->entry.args[opt.fd_idx], opt.fd_path)) return 0;
    for (int k = 0; k < opt.masks; k++)
        if ((si->entry.args[opt.mask[k].idx] & opt.mask[k].mask) != opt.mask[k].value) return 0;
    return 1;
}

/* Count one matching call; whether the fault goes into it. */
static int pick(void) {
    matched++;
    return matched > opt.after && (opt.all || injected == 0);
}

static int steal_fd = -1;

static int steal(void) {
    int shift = __builtin_ctzl(opt.size);
    steal_fd = memfd_create("inject-steal", MFD_HUGETLB | (shift << MFD_HUGE_SHIFT));
    if (steal_fd < 0) return die("memfd_create(MFD_HUGETLB, %lu): %s", opt.size, strerror(errno)), -1;
    if (ftruncate(steal_fd, opt.size * opt.n) < 0) return die("ftruncate: %s", strerror(errno)), -1;
    if (opt.reserve_only) {
        /* A shared mapping reserves its pages at mmap; nothing is touched, none is used. */
        if (mmap(0, opt.size * opt.n, PROT_READ | PROT_WRITE, MAP_SHARED, steal_fd, 0) == MAP_FAILED)
            return die("reserving %lu hugepages of %lu bytes: %s", opt.n, opt.size, strerror(errno)), -1;
        return 0;
    }
    if (fallocate(steal_fd, 0, 0, opt.size * opt.n) < 0)
        return die("taking %lu hugepages of %lu bytes: %s", opt.n, opt.size, strerror(errno)), -1;
    return 0;
}

#define HELD 1
/* A syscall-stop of tid. Returns -1 on an error of ours, HELD to keep the task stopped. */
static int syscall_stop(pid_t tid) {
    struct __ptrace_syscall_info si;
    struct task *t = task(tid);
    if (!t) return die("more than %d tasks", MAX_TASKS), -1;
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof si, &si) <= 0)
        return errno == ESRCH ? 0 : (die("PTRACE_GET_SYSCALL_INFO: %s", strerror(errno)), -1);
    if (si.op == PTRACE_SYSCALL_INFO_ENTRY) {
        t->pending = 0;
        if (!filters_pass(tid, &si)) return 0;
        if (opt.action == HOLD) {
            if (!pick()) return 0;
            injected++;
            fprintf(stderr, "inject: holding tid %d at %s #%lu\n", tid, opt.name, matched);
            return HELD;
        }
        if (opt.action == DELAY) {
            if (!pick()) return 0;
            injected++;
            /* Said first, so that a reader of our stderr acts while the task waits. */
            fprintf(stderr, "inject: %s #%lu delayed %s s (tid %d)\n", opt.name, matched, opt.secs_text, tid);
            struct timespec ts = {(time_t)opt.secs, (long)opt.nsec};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
            return 0;
        }
        if (opt.action == SLEEP) {
            if (!pick()) return 0;
            struct user_regs_struct r;
            if (ptrace(PTRACE_GETREGS, tid, 0, &r) < 0) return die("GETREGS: %s", strerror(errno)), -1;
            unsigned long ts = (r.rsp - 4096) & ~15UL;
            if (ptrace(PTRACE_POKEDATA, tid, (void *)ts, (void *)opt.secs) < 0 ||
                ptrace(PTRACE_POKEDATA, tid, (void *)(ts + 8), (void *)opt.nsec) < 0)
                return die("POKEDATA: %s", strerror(errno)), -1;
            r.orig_rax = SYS_nanosleep;
            r.rdi = ts;
            r.rsi = 0;
            if (ptrace(PTRACE_SETREGS, tid, 0, &r) < 0) return die("SETREGS: %s", strerror(errno)), -1;
            injected++;
            fprintf(stderr, "inject: %s #%lu slept %s s instead (tid %d)\n", opt.name, matched, opt.secs_text, tid);
            return 0;
        }
        if (opt.action == FAIL || opt.action == RETURN) {
            if (!pick()) return 0;
            struct user_regs_struct r;
            if (ptrace(PTRACE_GETREGS, tid, 0, &r) < 0) return die("GETREGS: %s", strerror(errno)), -1;
            r.orig_rax = (unsigned long)-1;
            if (ptrace(PTRACE_SETREGS, tid, 0, &r) < 0) return die("SETREGS: %s", strerror(errno)), -1;
            injected++;
        }
        t->pending = 1;
        t->cpu_ptr = si.entry.args[0];
        return 0;
    }
    if (si.op != PTRACE_SYSCALL_INFO_EXIT || !t->pending) return 0;
    t->pending = 0;
    struct user_regs_struct r;
    switch (opt.action) {
    case FAIL:
    case RETURN:
        if (ptrace(PTRACE_GETREGS, tid, 0, &r) < 0) return die("GETREGS: %s", strerror(errno)), -1;
        r.rax = (unsigned long)opt.ret;
        if (ptrace(PTRACE_SETREGS, tid, 0, &r) < 0) return die("SETREGS: %s", strerror(errno)), -1;
        if (opt.action == FAIL) fprintf(stderr, "inject: failed %s #%lu with errno %ld (tid %d)\n", opt.name, matched, -opt.ret, tid);
        else fprintf(stderr, "inject: skipped %s #%lu, returned %ld (tid %d)\n", opt.name, matched, opt.ret, tid);
        return 0;
    case HOLD:
    case SLEEP:
    case DELAY:
        return 0;
    case STEAL:
        if (!pick()) return 0;
        if (steal() < 0) return -1;
        injected++;
        fprintf(stderr, "inject: %s %lu hugepage(s) of %lu bytes at %s #%lu (tid %d)\n", opt.reserve_only ? "reserved" : "stole", opt.n, opt.size, opt.name, matched, tid);
        return 0;
    case CPU: {
        if (si.exit.is_error || !t->cpu_ptr) return 0;
        errno = 0;
        long w = ptrace(PTRACE_PEEKDATA, tid, (void *)t->cpu_ptr, 0);
        if (errno) return die("PEEKDATA: %s", strerror(errno)), -1;
        unsigned cpu;
        memcpy(&cpu, &w, sizeof cpu);
        if (cpu != opt.from || !pick()) return 0;
        memcpy(&w, &opt.to, sizeof opt.to);
        if (ptrace(PTRACE_POKEDATA, tid, (void *)t->cpu_ptr, (void *)w) < 0) return die("POKEDATA: %s", strerror(errno)), -1;
        injected++;
        fprintf(stderr, "inject: getcpu reported CPU %u as CPU %u at getcpu #%lu (tid %d)\n", opt.from, opt.to, matched, tid);
        return 0;
    }
    }
    return 0;
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc && !strncmp(argv[i], "--", 2) && argv[i][2]; i++) {
        if (!strcmp(argv[i], "--after") && i + 1 < argc) opt.after = num(argv[++i]);
        else if (!strcmp(argv[i], "--all")) opt.all = 1;
        else if (!strcmp(argv[i], "--fd") && i + 2 < argc) {
            opt.fd_idx = (int)num(argv[++i]);
            opt.fd_path = argv[++i];
        }
        else if (!strcmp(argv[i], "--str") && i + 2 < argc) {
            opt.str_idx = (int)num(argv[++i]);
            opt.str = argv[++i];
        } else if (!strcmp(argv[i], "--mask") && i + 3 < argc && opt.masks < 4) {
            int k = opt.masks++;
            opt.mask[k].idx = (int)num(argv[++i]);
            opt.mask[k].mask = num(argv[++i]);
            opt.mask[k].value = num(argv[++i]);
            if (opt.mask[k].idx > 5) usage();
        } else usage();
    }
    if (opt.str_idx > 5 || opt.fd_idx > 5 || i >= argc) usage();
    const char *a = argv[i++];
    int words = 0;
    while (i + words < argc && strcmp(argv[i + words], "--")) words++;
    if (i + words >= argc - 1) usage();
    char **w = argv + i;
    if (!strcmp(a, "fail") && words == 2) {
        opt.action = FAIL;
        opt.name = w[0];
        opt.nr = syscall_nr(w[0]);
        opt.ret = -errno_nr(w[1]);
    } else if (!strcmp(a, "return") && words == 2) {
        opt.action = RETURN;
        opt.name = w[0];
        opt.nr = syscall_nr(w[0]);
        opt.ret = strtol(w[1], 0, 0);
    } else if (!strcmp(a, "hold") && words == 1) {
        opt.action = HOLD;
        opt.name = w[0];
        opt.nr = syscall_nr(w[0]);
    } else if ((!strcmp(a, "sleep") || !strcmp(a, "delay")) && words == 2) {
        opt.action = !strcmp(a, "sleep") ? SLEEP : DELAY;
        opt.name = w[0];
        opt.nr = syscall_nr(w[0]);
        /* Whole seconds, or a decimal fraction: 0.05 */
        char *end;
        double d = strtod(w[1], &end);
        if (*end || !(d >= 0) || d > 3600) usage();
        opt.secs = (unsigned long)d;
        opt.nsec = (unsigned long)((d - (double)opt.secs) * 1e9);
        opt.secs_text = w[1];
    } else if ((!strcmp(a, "steal") || !strcmp(a, "reserve")) && (words == 2 || words == 3)) {
        opt.action = STEAL;
        opt.reserve_only = !strcmp(a, "reserve");
        opt.name = w[0];
        opt.nr = syscall_nr(w[0]);
        opt.size = num(w[1]);
        if (words == 3) opt.n = num(w[2]);
        if (!opt.size || (opt.size & (opt.size - 1)) || !opt.n) usage();
    } else if (!strcmp(a, "cpu") && words == 2) {
        opt.action = CPU;
        opt.name = "getcpu";
        opt.nr = SYS_getcpu;
        opt.from = (unsigned)num(w[0]);
        opt.to = (unsigned)num(w[1]);
    } else usage();
    char **prog = argv + i + words + 1;

    main_pid = fork();
    if (main_pid < 0) {
        perror("inject: fork");
        return 1;
    }
    if (main_pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) _exit(127);
        raise(SIGSTOP);
        execvp(prog[0], prog);
        fprintf(stderr, "inject: execvp %s: %s\n", prog[0], strerror(errno));
        _exit(127);
    }

    int status = -1, error = 0;
    for (;;) {
        int st;
        pid_t tid = waitpid(-1, &st, __WALL);
        if (tid < 0) {
            if (errno == EINTR) continue;
            break; /* ECHILD: no tracee left */
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (tid == main_pid) {
                status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                /* Nothing held outlives PROGRAM. */
                for (int k = 0; k < MAX_TASKS; k++)
                    if (tasks[k].tid && tasks[k].held) syscall(SYS_tkill, tasks[k].tid, SIGKILL);
            }
            forget(tid);
            continue;
        }
        if (!WIFSTOPPED(st)) continue;
        struct task *t = task(tid);
        int sig = WSTOPSIG(st), event = st >> 16, deliver = 0, r = 0;
        if (!t) {
            die("more than %d tasks", MAX_TASKS);
            r = -1;
        } else if (!t->seen) {
            /* A task's first stop: the SIGSTOP of the traced child or of a new clone. */
            t->seen = 1;
            if (tid == main_pid &&
                ptrace(PTRACE_SETOPTIONS, tid, 0,
                       (void *)(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK |
                                PTRACE_O_TRACEVFORK | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL)) < 0) {
                die("PTRACE_SETOPTIONS: %s", strerror(errno));
                r = -1;
            }
            if (sig != SIGSTOP) deliver = sig;
        } else if (sig == (SIGTRAP | 0x80)) {
            r = syscall_stop(tid);
        } else if (sig == SIGTRAP && event) {
            /* clone, fork, vfork, exec: the new task is traced already. */
        } else {
            siginfo_t info;
            /* A group-stop (no siginfo) is let go; any other signal is delivered. */
            if (ptrace(PTRACE_GETSIGINFO, tid, 0, &info) == 0) deliver = sig;
        }
        if (r == HELD) {
            t->held = 1;
            continue;
        }
        if (r < 0 && !error) {
            error = 1;
            kill(main_pid, SIGKILL);
        }
        if (ptrace(PTRACE_SYSCALL, tid, 0, (void *)(long)deliver) < 0 && errno != ESRCH) {
            if (!error) {
                die("PTRACE_SYSCALL: %s", strerror(errno));
                error = 1;
                kill(main_pid, SIGKILL);
            }
        }
    }
    if (!injected) fprintf(stderr, "inject: nothing injected (%lu matching calls)\n", matched);
    if (steal_fd >= 0) close(steal_fd);
    return status < 0 ? 127 : status;
}
