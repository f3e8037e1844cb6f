# Host-only cluster tests of libdqemu (no QEMU): real node processes on
# 127.0.0.1 running tests/dsm/dsm-node.c over the ZeroMQ transport.
#
#   make dsm-build     build $(BUILD)/dsm/dsm-node and dsm-test (the DSM
#                      coherence engine over K processes)
#   make test-dsm      run tests/dsm/test_*.py (pytest), JUnit XML to
#                      $(RESULTS)/dsm.xml
#   make bench-xport   2-process 4 KiB request/reply: dqemu transport vs raw
#                      TCP vs ZeroMQ REQ/REP (prints, never fails on timing)
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
DSM_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -I$(TOP)/dqemu
DSM_LIBS := -lzmq -lpthread
DSM_LIB_SRCS := $(sort $(wildcard $(TOP)/dqemu/*.c))
DSM_LIB_HDRS := $(wildcard $(TOP)/dqemu/*.h)
DSM_BENCH_SRC := $(TOP)/tests/bench/xport-bench.c

$(DSM_OUT)/dsm-node: $(DSM_SRC_DIR)/dsm-node.c $(DSM_LIB_SRCS) $(DSM_LIB_HDRS)
	@mkdir -p $(@D)
	$(DSM_CC) $(DSM_CFLAGS) -o $@ $< $(DSM_LIB_SRCS) $(DSM_LIBS)

$(DSM_OUT)/dsm-test: $(DSM_SRC_DIR)/dsm-test.c $(DSM_LIB_SRCS) $(DSM_LIB_HDRS)
	@mkdir -p $(@D)
	$(DSM_CC) $(DSM_CFLAGS) -o $@ $< $(DSM_LIB_SRCS) $(DSM_LIBS)

$(DSM_OUT)/xport-bench: $(DSM_BENCH_SRC) $(DSM_LIB_SRCS) $(DSM_LIB_HDRS)
	@mkdir -p $(@D)
	$(DSM_CC) $(DSM_CFLAGS) -o $@ $< $(DSM_LIB_SRCS) $(DSM_LIBS)

.PHONY: dsm-build test-dsm bench-xport
dsm-build: $(DSM_OUT)/dsm-node $(DSM_OUT)/dsm-test

test-dsm: dsm-build
	@mkdir -p $(RESULTS)
	DSM_BUILD_DIR=$(DSM_OUT) \
	$(PYTEST) --junitxml=$(RESULTS)/dsm.xml $(DSM_SRC_DIR)

bench-xport: $(DSM_OUT)/xport-bench
	$(DSM_OUT)/xport-bench

.DEFAULT_GOAL := $(if $(DSM_SAVED_DEFAULT_GOAL),$(DSM_SAVED_DEFAULT_GOAL),\
                   dsm-build)
