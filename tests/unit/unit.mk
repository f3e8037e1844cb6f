# Unit tests of libdqemu (dqemu/) and the scheduler (scheduler/), built
# standalone with the host compiler and cmocka, twice: plain and under
# ASan+UBSan.  No QEMU involved, so these build and run in seconds.
# Included by the top-level Makefile.

UNIT_SRC_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
UNIT_OUT := $(BUILD)/unit

DQEMU_LIB_SRCS := $(sort $(wildcard $(TOP)/dqemu/*.c $(TOP)/scheduler/*.c))
DQEMU_LIB_HDRS := $(wildcard $(TOP)/dqemu/*.h $(TOP)/scheduler/*.h)
UNIT_TESTS := $(notdir $(basename $(sort $(wildcard $(UNIT_SRC_DIR)/test-*.c))))

UNIT_CC ?= cc
UNIT_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -I$(TOP)/dqemu \
               -I$(TOP)/scheduler
UNIT_SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
                  -fno-omit-frame-pointer
UNIT_LIBS := -lcmocka -lzmq -lpthread

UNIT_BINS := $(addprefix $(UNIT_OUT)/plain/,$(UNIT_TESTS)) \
             $(addprefix $(UNIT_OUT)/asan/,$(UNIT_TESTS))

$(UNIT_OUT)/plain/%: $(UNIT_SRC_DIR)/%.c $(DQEMU_LIB_SRCS) $(DQEMU_LIB_HDRS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) -o $@ $< $(DQEMU_LIB_SRCS) $(UNIT_LIBS)

$(UNIT_OUT)/asan/%: $(UNIT_SRC_DIR)/%.c $(DQEMU_LIB_SRCS) $(DQEMU_LIB_HDRS)
	@mkdir -p $(@D)
	$(UNIT_CC) $(UNIT_CFLAGS) $(UNIT_SAN_FLAGS) -o $@ $< $(DQEMU_LIB_SRCS) $(UNIT_LIBS)

.PHONY: unit-build test-unit
unit-build: $(UNIT_BINS)

test-unit: deps unit-build
	@mkdir -p $(RESULTS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	sh $(TOP)/tests/run-cmocka.sh $(RESULTS)/unit.counts $(UNIT_BINS)
