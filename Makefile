# hugerace build, test and packaging. `make run` and `make test` are the README's commands.

HOST_TARGET := x86_64-unknown-linux-gnu
TARGET ?= $(HOST_TARGET)
CARGO ?= cargo
BIN := target/$(TARGET)/release/hugerace

.PHONY: all build run test test-steps setup unit scripts-test integration size bench clean help

all: build

help:
	@echo 'make [TARGET=<triple>] GOAL; the goals:'
	@echo '  build          the release binary (target/<triple>/release/hugerace)'
	@echo '  run            build, then race both modes once on the default hugepage size'
	@echo '  test           everything below, after setup; ends with the count of skips'
	@echo '  setup          install what the tests need (scripts/setup.sh)'
	@echo '  unit           the unit tests (cargo test --lib)'
	@echo '  scripts-test   the boot driver'"'"'s tests (scripts/test_boot.py)'
	@echo '  integration    the real binary against the real kernel, cross builds under qemu-user'
	@echo '  cross          build every target; size: their sizes'
	@echo '  initramfs      target/<triple>/initramfs.cpio.gz, hugerace as /init'
	@echo '  kernels        fetch or build every boot kernel (scripts/kernels.sh)'
	@echo '  boot-test      boot the machines below marked boot-test (scripts/boot.py)'
	@echo '  detect         failure rates on the machines marked detect, with 95% intervals (DETECT_BOOTS'
	@echo '                 boots each, default 3, of DETECT_BLOCKS blocks of DETECT_RACES races; DETECT_LOOPS)'
	@echo '  bench, fuzz, stress, install, uninstall, clean'
	@python3 scripts/machines.py help

build:
	$(CARGO) build --release --target $(TARGET)
	@echo "built $(BIN)"

# The default job: both modes, once each, on the default hugepage size. Needs root when the
# hugepage pool must be raised (writing nr_hugepages); it puts the pool back afterwards.
run: build
	./$(BIN)

unit:
	$(CARGO) test --lib

# The boot driver's judges on made-up consoles, and the machine table against the README and
# `make help`.
scripts-test:
	python3 -m unittest discover -s scripts -p 'test_*.py'
	python3 scripts/stamps.py --self-test

integration: build
	HUGERACE_BIN=$(CURDIR)/$(BIN) $(CARGO) test --test '*'

# Every skip (a test's, or a boot's) is one line in this log; `make test` empties it first and
# ends by counting it. Under CI (CI, HUGERACE_REQUIRE_ROOT or HUGERACE_REQUIRE_QEMU set) a skip
# fails instead.
SKIP_LOG := $(CURDIR)/target/skips.log
export HUGERACE_SKIP_LOG := $(SKIP_LOG)

# What the tests need beyond Rust and make (scripts/setup.sh): as root on Debian it installs
# the missing packages, saying so; otherwise it stops at once with the command to run. It also
# adds the rustup targets and says which kernels a cold run will build.
setup:
	@scripts/setup.sh $(CROSS_TARGETS)

test: setup
	@mkdir -p target && : > $(SKIP_LOG)
	@$(MAKE) --no-print-directory test-steps
	@n=$$(grep -c . $(SKIP_LOG) || true); \
	  if [ "$$n" -eq 0 ]; then echo "make test: all passed, nothing skipped"; \
	  else echo "make test: all passed, $$n skipped:"; sed 's/^SKIP: /  /' $(SKIP_LOG); fi

test-steps: unit scripts-test integration

# One row per target built so far (`make cross` builds them all), stripped bytes.
# Figures, not tests: size, peak RSS, wall time, setup growth, races/s against a bare-fault
# baseline, skew and overlap with and without --rt. Root: it sets the 2M pool and restores it.
bench: build
	$(CARGO) build --release --target $(TARGET) --example baseline --example launch
	TARGET=$(TARGET) python3 scripts/bench.py

size: build
	@printf '%-34s %8s\n' target bytes
	@for b in target/*/release/hugerace; do \
	  t=$${b#target/}; printf '%-34s %8s\n' $${t%%/*} $$(stat -c %s $$b); done

clean:
	$(CARGO) clean

# ---- boot: hugerace as /init in an initramfs, booted under QEMU (issue 5) -------------------
# `make initramfs TARGET=<triple>` writes target/<triple>/initramfs.cpio.gz: /init (the binary)
# plus /dev/console (char 5:1), /dev, /proc and /sys, as a gzip newc cpio, built without root.
# `make boot-test` boots the machines of scripts/machines.py (scripts/boot.py; `make help`
# lists them): their kernels are cached under /var/cache/hugerace (scripts/kernels.sh), Debian's
# or built from Debian's linux-source with a config of boot/ (and a patch for the mutants,
# which must FAIL with SIGBUS). `make setup` (alias `boot-deps`) installs the Debian packages.
# The Rust targets whose images the boots need, from the same table.
BOOT_TARGETS = $(shell python3 scripts/machines.py targets)
INITRAMFS = target/$(TARGET)/initramfs.cpio.gz

.PHONY: initramfs initramfs-all boot-deps kernels boot-test detect detect-initramfs

initramfs: build
	python3 scripts/mkinitramfs.py $(BIN) $(INITRAMFS)

initramfs-all:
	@for t in $(BOOT_TARGETS); do $(MAKE) --no-print-directory initramfs TARGET=$$t || exit 1; done

boot-deps: setup

# Fetch (or build) every kernel ahead of the boots; each prints its path or SKIP and why.
kernels:
	@scripts/kernels.sh --plan
	@for a in $$(python3 scripts/machines.py kernel-names); do scripts/kernels.sh $$a || true; done

boot-test: initramfs-all
	scripts/boot.py

test-steps: boot-test

# `make detect`: boot the machines with a detect entry (the mutants, their unpatched twin,
# Debian 12's 6.1 for the dontneed race) with examples/detect.rs as /init, /hugerace and
# /forkspin (examples/forkspin.rs, libhugetlbfs's fork-and-spin race done plainly) beside it;
# DETECT_BOOTS boots of each, each DETECT_BLOCKS blocks of DETECT_RACES races per mode,
# interleaved; prints failed races per machine, mode, size and program summed over the boots,
# with the rate's 95 % Wilson interval and each boot's rate (figures: asserted only that every
# race ran and that a mutant fails, its twin never, in every boot).
DETECT_TARGETS = $(shell python3 scripts/machines.py targets --detect)
DETECT_BLOCKS ?= 4
DETECT_RACES ?= 50
DETECT_LOOPS ?= 750
DETECT_BOOTS ?= 3
DETECT_HOW ?= 1
DETECT_NAMED ?= 10
# LIBHUGETLBFS_TEST: a static build of libhugetlbfs's tests/alloc-instantiate-race, put into
# the detect image of LIBHUGETLBFS_TEST_TARGET and raced beside forkspin (README, make detect).
LIBHUGETLBFS_TEST ?=
LIBHUGETLBFS_TEST_TARGET ?= x86_64-unknown-linux-gnu

detect-initramfs:
	@for t in $(DETECT_TARGETS); do \
	  $(CARGO) build --release --target $$t --bin hugerace --example detect --example forkspin --example madvrace || exit 1; \
	  python3 scripts/mkinitramfs.py target/$$t/release/examples/detect target/$$t/detect.cpio.gz \
	    hugerace=target/$$t/release/hugerace forkspin=target/$$t/release/examples/forkspin \
	    madvrace=target/$$t/release/examples/madvrace \
	    $$( [ -n "$(LIBHUGETLBFS_TEST)" ] && [ "$$t" = "$(LIBHUGETLBFS_TEST_TARGET)" ] && echo alloc-instantiate-race=$(LIBHUGETLBFS_TEST) ) || exit 1; \
	done

detect: detect-initramfs
	DETECT_BLOCKS=$(DETECT_BLOCKS) DETECT_RACES=$(DETECT_RACES) DETECT_LOOPS=$(DETECT_LOOPS) DETECT_BOOTS=$(DETECT_BOOTS) DETECT_HOW=$(DETECT_HOW) DETECT_NAMED=$(DETECT_NAMED) scripts/boot.py --detect
# ---- end boot ---------------------------------------------------------------------------------

# ---- cross: every target we claim, built here, run under qemu-user (issue 4) ----------------
# `make cross` adds the rustup targets and builds each; `make TARGET=<triple>` builds one.
# Each binary lands at target/<triple>/release/hugerace, with the arch layer's smoke test at
# target/<triple>/release/examples/archcheck. Linkers: rust-lld (ships with rustup) for all
# but big-endian ppc64, which needs GNU ld from binutils-powerpc64-linux-gnu (`make setup`
# installs it and qemu-user-static). tests/cross.rs runs them under qemu-user.
CROSS_TARGETS := x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu \
	powerpc64le-unknown-linux-gnu powerpc64-unknown-linux-gnu \
	riscv64gc-unknown-linux-gnu s390x-unknown-linux-gnu \
	i686-unknown-linux-gnu armv7-unknown-linux-gnueabihf

.PHONY: cross cross-targets cross-deps

cross-targets:
	rustup target add $(CROSS_TARGETS)

cross: cross-targets
	@for t in $(CROSS_TARGETS); do \
	  echo "cross: $$t"; \
	  $(CARGO) build --release --target $$t --bin hugerace --example archcheck || exit 1; \
	done

cross-deps: setup

# `make test` runs tests/cross.rs over every cross target, so they are built first.
integration: cross
integration: export HUGERACE_CROSS_TARGETS := $(CROSS_TARGETS)
# ---- end cross ------------------------------------------------------------------------------

# ---- install (issue 6) ------------------------------------------------------------------------
# `make install PREFIX=/usr/local DESTDIR=/tmp/stage` installs the binary, the libhugetlbfs
# name (alloc-instantiate-race, a relative symlink to hugerace) and the man page; `make
# uninstall` removes exactly those. `BIN=...` installs another build (tests/install.rs does).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
INSTALL ?= install

.PHONY: install uninstall

install: build
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/hugerace
	ln -sfn hugerace $(DESTDIR)$(BINDIR)/alloc-instantiate-race
	$(INSTALL) -m 0644 doc/hugerace.1 $(DESTDIR)$(MANDIR)/man1/hugerace.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/hugerace $(DESTDIR)$(BINDIR)/alloc-instantiate-race \
	  $(DESTDIR)$(MANDIR)/man1/hugerace.1
# ---- end install ------------------------------------------------------------------------------

# ---- fuzz: the parsers under mutated input, on stable Rust (issue 7) -------------------------
# `make fuzz` runs each target of tests/fuzz.rs for FUZZ_SECS seconds from the seeds in
# fuzz/corpus/<target>/ (crashing inputs land in fuzz/crashes/); `make test` runs 2 s each.
# `make stress` runs STRESS_ROUNDS rounds of 4 concurrent instances and counts false TFAILs.
FUZZ_SECS ?= 60
STRESS_ROUNDS ?= 10

.PHONY: fuzz stress

fuzz:
	HUGERACE_FUZZ_SECS=$(FUZZ_SECS) $(CARGO) test --test fuzz -- --nocapture --test-threads=1

stress: build
	HUGERACE_BIN=$(CURDIR)/$(BIN) HUGERACE_STRESS_ROUNDS=$(STRESS_ROUNDS) $(CARGO) test --test environment concurrent -- --nocapture
# ---- end fuzz ---------------------------------------------------------------------------------

# ---- lava: hugerace's LAVA job, run by LAVA's own dispatcher (issue 21) ------------------------
# `make lava KERNEL=<image> [TARGET=<triple>] [ARGS="<hugerace args>"] [KERNEL_ARGS="..."]`
# (KERNEL_ARGS: more kernel command line before hugerace's `--`) builds the initramfs,
# renders lava/hugerace-initramfs.yaml and the machine's device dictionary (lava/devices/) for
# that kernel into target/lava/lava/, runs them with lava-run (Debian's lava-dispatcher, which
# `make setup` installs), and prints each case as LAVA recorded it (`shared_2m pass`): exit 0
# when the job completed and every case passed, 1 when a case failed, 2 when the job is
# incomplete. scripts/lava.py runs under Debian's python3 (jinja2, yaml and lava-run's own).
# `make lava-test` (part of `make test`): the x86_64 twin kernel must pass both modes and the
# x86_64-mutant must fail both, each in a job LAVA completed.
LAVA_PYTHON := /usr/bin/python3
ARGS ?= --race alloc -s 2M -i 20
KERNEL_ARGS ?=

.PHONY: lava lava-test

lava: initramfs
	@test -n "$(KERNEL)" || { echo "make lava: KERNEL=<kernel image> is required" >&2; exit 2; }
	$(LAVA_PYTHON) scripts/lava.py --target $(TARGET) --args "$(ARGS)" --kernel-args "$(KERNEL_ARGS)" $(KERNEL)

lava-test:
	@$(MAKE) --no-print-directory initramfs TARGET=$(HOST_TARGET)
	@$(LAVA_PYTHON) scripts/lava.py --self-test
	@scripts/lava-test.sh

test-steps: lava-test
# ---- end lava ---------------------------------------------------------------------------------
