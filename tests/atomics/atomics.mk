# Atomics test programs (issue 6): cross-compile tests/atomics/*.c for
# every ISA.  Included by the top-level Makefile (which sets BUILD), or
# run on its own:   make -f tests/atomics/atomics.mk atomics [BUILD=/abs/build]
#
# Output: $(ATOMICS_OUT)/<isa>/<name>-static (and sync-dynamic), with
# ATOMICS_OUT defaulting to $(BUILD)/atomics.  The compilers, their
# Debian packages and the base flags are tests/guest/guest.mk's (included
# here when the includer has not already), so both suites build alike.

# Resolve our own directory now, before any later include changes
# MAKEFILE_LIST.
ATOMICS_SRC_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

# Being included must not make `atomics` the includer's default goal.
ATOMICS_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

BUILD ?= $(CURDIR)/build
ATOMICS_OUT ?= $(BUILD)/atomics

ifndef GUEST_SRC_DIR
include $(ATOMICS_SRC_DIR)/../guest/guest.mk
endif

# excp-atomic exists only where a guest instruction reaches QEMU's
# EXCP_ATOMIC path on an x86-64 host (see excp-atomic.c): not on arm.
ATOMICS_PROGS_arm     := counters exclusive sync litmus stack-atomics
ATOMICS_PROGS_aarch64 := counters exclusive sync litmus stack-atomics excp-atomic
ATOMICS_PROGS_riscv64 := counters exclusive sync litmus stack-atomics excp-atomic
# One program also dynamically linked: glibc's pthread code then runs from
# the shared library the guest maps, on every node.
ATOMICS_DYNAMIC := sync

# guest-check.h comes from tests/guest; the shared header is ours.
ATOMICS_HDRS := $(wildcard $(ATOMICS_SRC_DIR)/*.h) $(GUEST_SRC_DIR)/guest-check.h
ATOMICS_CFLAGS := $(GUEST_CFLAGS) -I$(GUEST_SRC_DIR)

ATOMICS_BINS := $(foreach isa,$(GUEST_ISAS),\
                  $(foreach n,$(ATOMICS_PROGS_$(isa)),$(ATOMICS_OUT)/$(isa)/$(n)-static) \
                  $(foreach n,$(ATOMICS_DYNAMIC),$(ATOMICS_OUT)/$(isa)/$(n)-dynamic))

.PHONY: atomics atomics-clean

atomics: $(ATOMICS_BINS)

# guest-check-tools (guest.mk) stops the build up front, naming the
# package to install, when a cross compiler or its libc is missing.
define ATOMICS_ISA_RULES
$(ATOMICS_OUT)/$(1)/%-static: $(ATOMICS_SRC_DIR)/%.c $(ATOMICS_HDRS) | guest-check-tools
	@mkdir -p $$(@D)
	$(GUEST_CC_$(1)) $(ATOMICS_CFLAGS) $(GUEST_ARCH_CFLAGS_$(1)) -static -o $$@.tmp $$< && mv -f $$@.tmp $$@

$(ATOMICS_OUT)/$(1)/%-dynamic: $(ATOMICS_SRC_DIR)/%.c $(ATOMICS_HDRS) | guest-check-tools
	@mkdir -p $$(@D)
	$(GUEST_CC_$(1)) $(ATOMICS_CFLAGS) $(GUEST_ARCH_CFLAGS_$(1)) -o $$@.tmp $$< && mv -f $$@.tmp $$@
endef
$(foreach isa,$(GUEST_ISAS),$(eval $(call ATOMICS_ISA_RULES,$(isa))))

atomics-clean:
	rm -rf $(ATOMICS_OUT)

ifneq ($(abspath $(firstword $(MAKEFILE_LIST))),$(ATOMICS_SRC_DIR)/atomics.mk)
.DEFAULT_GOAL := $(ATOMICS_SAVED_DEFAULT_GOAL)
endif
