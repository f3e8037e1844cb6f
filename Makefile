# dqemu - build, test, demo and benchmark entry points.
#
#   make            build build/dqemu-{arm,aarch64,riscv64}
#   make test       every test suite, then one summary line
#   make test-atomics  atomics, LL/SC and locks on 1..4 nodes (part of test)
#   make test-cluster  hostfile/ssh, srun/mpirun, CURVE on simulated hosts
#   make demo       a threaded guest program under dqemu-arm
#   make bench      benchmarks (never part of `make test`)
#   make bench-atomics contended atomics, hand-offs, exclusive steps (part of bench)
#   make bench-cluster one guest on 1, 2, 4, 8 simulated hosts of 1/5 CPU (part of bench)
#   make bench-parsec  PARSEC programs on 1, 2, 4, 8 simulated hosts: tables, plots (part of bench)
#   make test-parsec   one PARSEC program built and checked at N = 1, 2 (part of test)
#   make fuzz       fuzz the wire-protocol decoder (FUZZ_SECONDS, default 60)
#
# The QEMU part is driven by tcg-ext/build-qemu.sh (fetch, verify, patch,
# configure, ninja, all cached under ~/.cache/dqemu); this file only knows
# what depends on what.

TOP := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
BUILD := $(TOP)/build
RESULTS := $(BUILD)/test-results
ISAS := arm aarch64 riscv64
DQEMU_BINS := $(addprefix $(BUILD)/dqemu-,$(ISAS))

-include $(TOP)/config.mk
export QEMU_TARBALL DQEMU_CACHE DQEMU_JOBS

# The stock qemu-user we compare against: Debian's 10.0.2 from backports.
STOCK_QEMU_DIR ?= /usr/bin
export DQEMU_BUILD_DIR := $(BUILD)

# Debian's python3 (with python3-pytest), whatever else is first on PATH.
PYTHON := /usr/bin/python3
PYTEST := $(PYTHON) -m pytest -p no:cacheprovider -q -rfE

.DEFAULT_GOAL := all
.PHONY: all deps qemu test test-unit test-cli test-cluster test-parsec test-guest test-dist test-qemu test-qemu-tcg \
        test-atomics demo bench bench-single bench-dist clean distclean help

all: qemu

help:
	@sed -n 's/^#   //p' $(TOP)/Makefile

# Debian packages: no-op when present; as non-root prints what to run.
deps:
	@sh $(TOP)/tcg-ext/deps.sh

# Always ask the build script: it is cheap when nothing changed, and ninja
# (not make) knows QEMU's dependency graph.
qemu: deps
	@sh $(TOP)/tcg-ext/build-qemu.sh $(TOP) $(BUILD)

$(DQEMU_BINS): qemu

QEMU_SRC = $(BUILD)/qemu-src
include $(TOP)/tests/unit/unit.mk
include $(TOP)/tests/guest/guest.mk
include $(TOP)/tests/atomics/atomics.mk
include $(TOP)/tests/qemu-tcg/qemu-tcg.mk
include $(TOP)/tests/fuzz/fuzz.mk
include $(TOP)/tests/dsm/dsm.mk
include $(TOP)/dqemu/tools/install.mk

# ---- tests ---------------------------------------------------------------

SUITES := unit fuzz-corpus dsm cli install guest qemu-tcg dist cluster atomics parsec
# The reports summary.py must find: one per suite, and test-dsm writes a
# second one for its ASan+UBSan pass.
REPORTS := $(SUITES) dsm-asan

test: deps
	@rm -rf $(RESULTS); mkdir -p $(RESULTS)
	@status=0; \
	for s in $(SUITES); do \
	    echo "==== test suite: $$s"; \
	    $(MAKE) --no-print-directory test-$$s || status=1; \
	done; \
	echo "==== summary"; \
	$(PYTHON) $(TOP)/tests/summary.py $(RESULTS) $(REPORTS) || status=1; \
	exit $$status

test-guest: qemu guest
	@mkdir -p $(RESULTS)
	DQEMU_GUEST_NO_BUILD=1 \
	$(PYTEST) -n 2 --junitxml=$(RESULTS)/guest.xml $(TOP)/tests/guest

# Every guest program on 1..4 nodes, and the failure cases (tests/dist).
# DQEMU_DIST_MAX_NODES=1 runs only the single-node cases.
test-dist: qemu guest
	@mkdir -p $(RESULTS)
	DQEMU_GUEST_NO_BUILD=1 \
	$(PYTEST) -n 2 --junitxml=$(RESULTS)/dist.xml $(TOP)/tests/dist

# Atomics, LL/SC and locks on 1..4 nodes (issue 6; tests/atomics).
# DQEMU_ATOMICS_MAX_NODES=1 runs only the single-node cases.
test-atomics: qemu atomics
	@mkdir -p $(RESULTS)
	DQEMU_ATOMICS_NO_BUILD=1 \
	$(PYTEST) -n 2 --junitxml=$(RESULTS)/atomics.xml $(TOP)/tests/atomics

# dqemu across simulated hosts (tests/cluster: network namespaces with
# sshd, tbf and CPU quotas); needs root.  The simulator's own tests first.
test-cluster: qemu guest
	@mkdir -p $(RESULTS)
	$(PYTEST) --junitxml=$(RESULTS)/cluster.xml $(TOP)/tests/cluster

# The PARSEC harness end to end on one program's test input (N = 1, 2).
test-parsec: qemu
	@mkdir -p $(RESULTS)
	$(PYTEST) --junitxml=$(RESULTS)/parsec.xml $(TOP)/tests/parsec

test-cli: qemu guest
	@mkdir -p $(RESULTS)
	$(PYTEST) --junitxml=$(RESULTS)/cli.xml $(TOP)/tests/cli

test-qemu-tcg: qemu qemu-tcg-build
	@mkdir -p $(RESULTS)
	QEMU_TCG_BUILD_DIR=$(BUILD)/qemu-tcg \
	$(PYTEST) --junitxml=$(RESULTS)/qemu-tcg.xml $(TOP)/tests/qemu-tcg

test-qemu: test-qemu-tcg

# ---- demo and benchmarks -------------------------------------------------

DEMO_BIN := $(BUILD)/guest/arm/demo-threads-static
BENCH_BIN := $(BUILD)/guest/arm/bench-cpu-static

# Three nodes on this machine: the master and two workers it starts.
demo: qemu $(DEMO_BIN)
	@echo "$$ build/dqemu-arm --nodes 3 --stats build/guest/arm/demo-threads-static"
	@$(BUILD)/dqemu-arm --nodes 3 --stats $(DEMO_BIN)

bench: bench-single bench-dist bench-xport bench-dsm bench-lease bench-atomics bench-cluster \
       bench-parsec

# Wall time of one CPU-bound threaded program at --nodes 1..4.
bench-dist: qemu $(BENCH_BIN)
	@sh $(TOP)/tests/bench/dist-scaling.sh $(BUILD)/dqemu-arm $(BENCH_BIN) 4 1000000

# The same kind of guest on 1, 2, 4, 8 simulated hosts of 1/5 CPU each
# (tests/cluster): a speedup of like with like, over ssh; needs root.
BENCH_CLUSTER_ARGS ?=
.PHONY: bench-cluster
bench-cluster: qemu $(BENCH_BIN)
	@$(PYTHON) $(TOP)/tests/bench/cluster-scaling.py $(BUILD)/dqemu-arm \
	    $(BENCH_BIN) $(BENCH_CLUSTER_ARGS)

# PARSEC programs built for the guest from ../shared/parsec (or PARSEC_DIR,
# PARSEC_TARBALL), run on N = 1, 2, 4, 8 simulated hosts of 1/5 CPU and
# against stock qemu: build/bench/parsec.md and two plots.  BENCH_QUICK=1
# is the short version; BENCH_NODES, BENCH_NODE_CPU, BENCH_LINK,
# BENCH_RUNS, BENCH_ISAS, BENCH_PROGRAMS change the rest.  Needs root.
.PHONY: bench-parsec
bench-parsec: qemu
	@$(PYTHON) $(TOP)/tests/bench/parsec/parsec-bench.py \
	    --dqemu-dir $(BUILD) --out $(BUILD)/bench --stock-dir $(STOCK_QEMU_DIR)

bench-single: qemu $(BENCH_BIN)
	@sh $(TOP)/tests/bench/single-node.sh $(STOCK_QEMU_DIR)/qemu-arm \
	    $(BUILD)/dqemu-arm $(BENCH_BIN)

# Contended guest atomics and mutex hand-offs at --nodes 1, 2, 4 (issue 6),
# and the cost of the cluster-wide exclusive step.  The guest programs are
# benchmarks, not tests, so they are built here rather than with
# tests/guest's corpus (which every ISA and both linkings run).  The step
# program is aarch64: misaligned LSE atomics are the guest instructions
# that reach QEMU's EXCP_ATOMIC path on this host (see
# tests/atomics/excp-atomic.c).
ATOMICS_BENCH_BIN := $(BUILD)/bench/arm/atomics-bench
STEP_BENCH_BIN := $(BUILD)/bench/aarch64/atomic-step-bench

$(ATOMICS_BENCH_BIN): $(TOP)/tests/bench/atomics-bench.c $(TOP)/tests/bench/bench-common.h \
                      $(TOP)/tests/guest/guest-check.h | guest-check-tools
	@mkdir -p $(@D)
	$(GUEST_CC_arm) $(GUEST_CFLAGS) -static -o $@.tmp $< && mv -f $@.tmp $@

$(STEP_BENCH_BIN): $(TOP)/tests/bench/atomic-step-bench.c $(TOP)/tests/bench/bench-common.h \
                   $(TOP)/tests/guest/guest-check.h | guest-check-tools
	@mkdir -p $(@D)
	$(GUEST_CC_aarch64) $(GUEST_CFLAGS) $(GUEST_ARCH_CFLAGS_aarch64) -static -o $@.tmp $< && mv -f $@.tmp $@

.PHONY: bench-atomics
bench-atomics: qemu $(ATOMICS_BENCH_BIN) $(STEP_BENCH_BIN)
	@sh $(TOP)/tests/bench/atomics-bench.sh $(BUILD)/dqemu-arm $(ATOMICS_BENCH_BIN) \
	    $(BUILD)/dqemu-aarch64 $(STEP_BENCH_BIN)

# ---- cleaning ----------------------------------------------------------------

# The QEMU cache (~/.cache/dqemu) survives `clean`: it is keyed by content.
clean:
	rm -rf $(BUILD)

distclean: clean
	rm -f $(TOP)/config.mk
