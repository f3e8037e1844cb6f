# Fuzzing of the wire-protocol decoder (dqemu/proto.c).
#
#   make fuzz              build tests/fuzz/fuzz-proto.c with clang's libFuzzer
#                          (+ ASan/UBSan) and run it for FUZZ_SECONDS (60),
#                          seeded from tests/fuzz/corpus.  New inputs go to
#                          $(BUILD)/fuzz/corpus-proto, crashes to
#                          $(BUILD)/fuzz/artifacts/; the tree is never written.
#   make test-fuzz-corpus  replay every seed through the same target, built
#                          with plain cc + ASan/UBSan (no libFuzzer needed);
#                          writes $(RESULTS)/fuzz-corpus.counts.
#   make fuzz-seeds        regenerate tests/fuzz/corpus with make-corpus.c.
#
# Included by the top-level Makefile (which sets TOP, BUILD, RESULTS), or
# run on its own:   make -f tests/fuzz/fuzz.mk fuzz FUZZ_SECONDS=300

# Resolve our own directory before a later include changes MAKEFILE_LIST.
FUZZ_SRC_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

# Being included must not make our first target the includer's default.
FUZZ_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

TOP ?= $(abspath $(FUZZ_SRC_DIR)/../..)
BUILD ?= $(TOP)/build
RESULTS ?= $(BUILD)/test-results

FUZZ_OUT := $(BUILD)/fuzz
FUZZ_CORPUS := $(FUZZ_SRC_DIR)/corpus
FUZZ_SECONDS ?= 60
# Extra libFuzzer options, e.g. FUZZ_FLAGS='-jobs=2 -workers=2'.
FUZZ_FLAGS ?= -use_value_profile=1

FUZZ_CC ?= clang
FUZZ_REPLAY_CC ?= cc
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -I$(TOP)/dqemu
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
            -fno-omit-frame-pointer
FUZZ_LIB_SRCS := $(TOP)/dqemu/proto.c $(TOP)/dqemu/status.c
FUZZ_DEPS := $(FUZZ_LIB_SRCS) $(TOP)/dqemu/proto.h $(TOP)/dqemu/dqemu.h

$(FUZZ_OUT)/fuzz-proto: $(FUZZ_SRC_DIR)/fuzz-proto.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -fno-omit-frame-pointer \
	    -o $@ $< $(FUZZ_LIB_SRCS)

$(FUZZ_OUT)/replay-proto: $(FUZZ_SRC_DIR)/fuzz-proto.c \
                          $(FUZZ_SRC_DIR)/replay.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_REPLAY_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ \
	    $(FUZZ_SRC_DIR)/replay.c $< $(FUZZ_LIB_SRCS)

$(FUZZ_OUT)/make-corpus: $(FUZZ_SRC_DIR)/make-corpus.c $(FUZZ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_REPLAY_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRCS)

.PHONY: fuzz fuzz-build test-fuzz-corpus fuzz-seeds

fuzz-build: $(FUZZ_OUT)/fuzz-proto $(FUZZ_OUT)/replay-proto

# The first corpus directory is where libFuzzer writes what it finds; the
# committed seeds are only read.
fuzz: $(FUZZ_OUT)/fuzz-proto
	@mkdir -p $(FUZZ_OUT)/corpus-proto $(FUZZ_OUT)/artifacts
	cd $(FUZZ_OUT) && ASAN_OPTIONS=abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1 \
	    $< $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_OUT)/artifacts/ \
	    $(FUZZ_OUT)/corpus-proto $(FUZZ_CORPUS)

test-fuzz-corpus: $(FUZZ_OUT)/replay-proto
	@mkdir -p $(RESULTS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	$< $(RESULTS)/fuzz-corpus.counts $(FUZZ_CORPUS)

# Deliberate: rewrites the committed seeds (deterministic output).
fuzz-seeds: $(FUZZ_OUT)/make-corpus
	@mkdir -p $(FUZZ_CORPUS)
	$< $(FUZZ_CORPUS)

.DEFAULT_GOAL := $(if $(FUZZ_SAVED_DEFAULT_GOAL),$(FUZZ_SAVED_DEFAULT_GOAL),\
                   fuzz-build)
