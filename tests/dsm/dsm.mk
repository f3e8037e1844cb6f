# Host-only cluster tests of libdqemu (no QEMU): real node processes on
# 127.0.0.1 running tests/dsm/dsm-node.c over the ZeroMQ transport.
#
#   make dsm-build     build $(BUILD)/dsm/dsm-node and dsm-test (the DSM
#                      coherence engine over K processes)
#   make dsm-asan-build  the same two under ASan+UBSan, in $(BUILD)/dsm-asan
#   make test-dsm      run tests/dsm/test_*.py (pytest) on the -O2 build,
#                      JUnit XML to $(RESULTS)/dsm.xml, then a smaller set
#                      of the same cases on the ASan+UBSan build, JUnit XML
#                      to $(RESULTS)/dsm-asan.xml
#   make bench-xport   2-process 4 KiB request/reply and streaming MB/s:
#                      dqemu transport with and without CURVE vs raw TCP,
#                      ZeroMQ REQ/REP and libzmq streams (prints, never
#                      fails on timing)
#   make bench-dsm     2-node DSM fault latency (read, write, upgrade,
#                      invalidation) vs the same two baselines (prints only)
#   make bench-lease   ops/s of one word hammered with atomics by 2 and 4
#                      nodes, per lease length (bench_lease.py; prints only;
#                      BENCH_LEASE_ARGS passes options, e.g. --runs 5)
#
# Included by the top-level Makefile (which sets TOP, BUILD, RESULTS), or
# run on its own:   make -f tests/dsm/dsm.mk test-dsm

# Resolve our own directory before a later include changes MAKEFILE_LIST.
DSM_SRC_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

# Being included must not make our first target the includer's default.
DSM_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

TOP ?= $(abspath $(DSM_SRC_DIR)/../..)
BUILD ?= $(TOP)/build
RESULTS ?= $(BUILD)/test-results
PYTEST ?= /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE

DSM_OUT := $(BUILD)/dsm
DSM_CC ?= cc
DSM_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -I$(TOP)/dqemu \
              -I$(TOP)/scheduler
DSM_LIBS := -lzmq -lpthread
DSM_LIB_SRCS := $(sort $(wildcard $(TOP)/dqemu/*.c $(TOP)/scheduler/*.c))
DSM_LIB_HDRS := $(wildcard $(TOP)/dqemu/*.h $(TOP)/scheduler/*.h)
# The raw TCP and ZeroMQ baselines both benchmarks compare against.
DSM_BENCH_BASE := $(TOP)/tests/bench/baseline.c $(TOP)/tests/bench/baseline.h

$(DSM_OUT)/dsm-node: $(DSM_SRC_DIR)/dsm-node.c $(DSM_LIB_SRCS) $(DSM_LIB_HDRS)
	@mkdir -p $(@D)
	$(DSM_CC) $(DSM_CFLAGS) -o $@ $< $(DSM_LIB_SRCS) $(DSM_LIBS)

$(DSM_OUT)/dsm-test: $(DSM_SRC_DIR)/dsm-test.c $(DSM_LIB_SRCS) $(DSM_LIB_HDRS)
	@mkdir -p $(@D)
	$(DSM_CC) $(DSM_CFLAGS) -o $@ $< $(DSM_LIB_SRCS) $(DSM_LIBS)

$(DSM_OUT)/xport-bench $(DSM_OUT)/dsm-bench: $(DSM_OUT)/%: \
        $(TOP)/tests/bench/%.c $(DSM_BENCH_BASE) $(DSM_LIB_SRCS) $(DSM_LIB_HDRS)
	@mkdir -p $(@D)
	$(DSM_CC) $(DSM_CFLAGS) -o $@ $< $(filter %.c,$(DSM_BENCH_BASE)) \
	    $(DSM_LIB_SRCS) $(DSM_LIBS)

# ---- the same node programs under ASan+UBSan (flags as in unit.mk) ----

DSM_ASAN_OUT := $(BUILD)/dsm-asan
DSM_ASAN_BINS := $(DSM_ASAN_OUT)/dsm-node $(DSM_ASAN_OUT)/dsm-test
DSM_SAN_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -I$(TOP)/dqemu \
                  -I$(TOP)/scheduler \
                  -fsanitize=address,undefined -fno-sanitize-recover=all \
                  -fno-omit-frame-pointer
# dsm-test resolves DSM faults in its own SIGSEGV handler, so ASan must not
# take SIGSEGV (a wild access still dies: for an address outside the region
# that handler restores SIG_DFL).  Any report exits 66, a code no test
# expects; the tests also fail on a report in stderr.  Only processes that
# exit by themselves are leak-checked (a SIGKILLed node never reports).
DSM_SAN_ENV := \
    ASAN_OPTIONS=handle_segv=0:allow_user_segv_handler=1:detect_leaks=1:exitcode=66 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=66

$(DSM_ASAN_BINS): $(DSM_ASAN_OUT)/%: $(DSM_SRC_DIR)/%.c $(DSM_LIB_SRCS) \
                                     $(DSM_LIB_HDRS)
	@mkdir -p $(@D)
	$(DSM_CC) $(DSM_SAN_CFLAGS) -o $@ $< $(DSM_LIB_SRCS) $(DSM_LIBS)

.PHONY: dsm-build dsm-asan-build test-dsm bench-xport
dsm-build: $(DSM_OUT)/dsm-node $(DSM_OUT)/dsm-test

dsm-asan-build: $(DSM_ASAN_BINS)

# Two passes, one after the other (the failure tests time detection to
# 2.5 s; two clusters at once on 2 cores would blur that).  The sanitized
# pass runs fewer, smaller cases (DSM_SANITIZED=1, see the test files)
# that still reach every scenario, home policy and failure path.  Both
# passes always run; either failing fails the target.
test-dsm: dsm-build dsm-asan-build
	@mkdir -p $(RESULTS)
	@status=0; \
	echo "== dsm: -O2 build, $(RESULTS)/dsm.xml"; \
	DSM_BUILD_DIR=$(DSM_OUT) \
	$(PYTEST) --junitxml=$(RESULTS)/dsm.xml $(DSM_SRC_DIR) || status=1; \
	echo "== dsm: ASan+UBSan build, $(RESULTS)/dsm-asan.xml"; \
	$(DSM_SAN_ENV) DSM_BUILD_DIR=$(DSM_ASAN_OUT) DSM_SANITIZED=1 \
	$(PYTEST) -o junit_suite_name=dsm-asan \
	    --junitxml=$(RESULTS)/dsm-asan.xml $(DSM_SRC_DIR) || status=1; \
	exit $$status

bench-xport: $(DSM_OUT)/xport-bench
	$(DSM_OUT)/xport-bench

.PHONY: bench-dsm
bench-dsm: $(DSM_OUT)/dsm-bench
	$(DSM_OUT)/dsm-bench

.PHONY: bench-lease
bench-lease: $(DSM_OUT)/dsm-test
	DSM_BUILD_DIR=$(DSM_OUT) /usr/bin/python3 $(DSM_SRC_DIR)/bench_lease.py \
	    $(BENCH_LEASE_ARGS)

.DEFAULT_GOAL := $(if $(DSM_SAVED_DEFAULT_GOAL),$(DSM_SAVED_DEFAULT_GOAL),\
                   dsm-build)
