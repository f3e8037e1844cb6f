# Guest test corpus: cross-compile tests/guest/*.c for every ISA, static and
# dynamic.  Included by the top-level Makefile (which sets BUILD), or run
# on its own:   make -f tests/guest/guest.mk guest [BUILD=/abs/build/dir]
#
# Output: $(GUEST_OUT)/<isa>/<name>-static and <name>-dynamic,
# with GUEST_OUT defaulting to $(BUILD)/guest.

# Resolve our own directory now, before any later include changes
# MAKEFILE_LIST, so this works from any including Makefile.
GUEST_SRC_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

# Being included must not make `guest` the includer's default goal.
GUEST_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

BUILD ?= $(CURDIR)/build
GUEST_OUT ?= $(BUILD)/guest

GUEST_ISAS ?= arm aarch64 riscv64

GUEST_CC_arm     ?= arm-linux-gnueabihf-gcc
GUEST_CC_aarch64 ?= aarch64-linux-gnu-gcc
GUEST_CC_riscv64 ?= riscv64-linux-gnu-gcc

# Debian packages that provide each compiler and its C library.
GUEST_PKG_arm     := gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
GUEST_PKG_aarch64 := gcc-aarch64-linux-gnu libc6-dev-arm64-cross
GUEST_PKG_riscv64 := gcc-riscv64-linux-gnu libc6-dev-riscv64-cross

GUEST_CFLAGS ?= -O2 -Wall -Wextra -pthread
GUEST_ARCH_CFLAGS_arm     :=
GUEST_ARCH_CFLAGS_aarch64 :=
GUEST_ARCH_CFLAGS_riscv64 := -march=rv64gc -mabi=lp64d

GUEST_SRCS  := $(sort $(wildcard $(GUEST_SRC_DIR)/*.c))
GUEST_HDRS  := $(wildcard $(GUEST_SRC_DIR)/*.h)
GUEST_NAMES := $(notdir $(GUEST_SRCS:.c=))

GUEST_BINS := $(foreach isa,$(GUEST_ISAS),\
                $(foreach n,$(GUEST_NAMES),\
                  $(GUEST_OUT)/$(isa)/$(n)-static $(GUEST_OUT)/$(isa)/$(n)-dynamic))

.PHONY: guest guest-check-tools guest-clean

guest: $(GUEST_BINS)

# Checks every compiler (and its static libc) before any compile starts:
# all binaries have it as an order-only prerequisite, so a missing
# toolchain stops the build up front instead of leaving a half-built tree.
guest-check-tools:
	@status=0; \
	$(foreach isa,$(GUEST_ISAS),\
	if ! command -v $(GUEST_CC_$(isa)) >/dev/null 2>&1; then \
	    echo "error: cross compiler '$(GUEST_CC_$(isa))' for $(isa) guests not found;" \
	         "install it with: apt-get install $(GUEST_PKG_$(isa))" >&2; \
	    status=1; \
	elif ! test -f "$$($(GUEST_CC_$(isa)) -print-file-name=libc.a)"; then \
	    echo "error: C library for $(isa) guests (libc.a for $(GUEST_CC_$(isa))) not found;" \
	         "install it with: apt-get install $(GUEST_PKG_$(isa))" >&2; \
	    status=1; \
	fi; ) \
	exit $$status

# One pair of pattern rules per ISA; a binary depends only on its own
# source plus the shared header, so editing one program rebuilds only it.
define GUEST_ISA_RULES
$(GUEST_OUT)/$(1)/%-static: $(GUEST_SRC_DIR)/%.c $(GUEST_HDRS) | guest-check-tools
	@mkdir -p $$(@D)
	$(GUEST_CC_$(1)) $(GUEST_CFLAGS) $(GUEST_ARCH_CFLAGS_$(1)) -static -o $$@.tmp $$< && mv -f $$@.tmp $$@

$(GUEST_OUT)/$(1)/%-dynamic: $(GUEST_SRC_DIR)/%.c $(GUEST_HDRS) | guest-check-tools
	@mkdir -p $$(@D)
	$(GUEST_CC_$(1)) $(GUEST_CFLAGS) $(GUEST_ARCH_CFLAGS_$(1)) -o $$@.tmp $$< && mv -f $$@.tmp $$@
endef
$(foreach isa,$(GUEST_ISAS),$(eval $(call GUEST_ISA_RULES,$(isa))))

guest-clean:
	rm -rf $(GUEST_OUT)

ifneq ($(abspath $(firstword $(MAKEFILE_LIST))),$(GUEST_SRC_DIR)/guest.mk)
.DEFAULT_GOAL := $(GUEST_SAVED_DEFAULT_GOAL)
endif
