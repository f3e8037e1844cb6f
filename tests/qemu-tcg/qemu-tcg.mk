# -*- Mode: makefile -*-
#
# Build QEMU's own tests/tcg/multiarch C tests for arm, aarch64 and riscv64.
#
# Included by the top-level Makefile.  Inputs:
#   QEMU_SRC  extracted QEMU 10.0.2 source tree (read-only: never written to)
#   BUILD     build directory; outputs go to $(BUILD)/qemu-tcg/<isa>/
#
# For each ISA this produces one static binary per test, <test>.ref for
# tests that have an upstream reference output, and tests.txt listing the
# tests to run (all discovered tests minus skip.txt), which
# test_qemu_tcg.py reads.
#
# qemu-tcg-build re-runs make on this file alone, so the test list is
# computed only once QEMU_SRC exists (it may be extracted by an earlier
# prerequisite in the same make run).

QEMU_TCG_MK := $(abspath $(lastword $(MAKEFILE_LIST)))
QEMU_TCG_DIR := $(patsubst %/,%,$(dir $(QEMU_TCG_MK)))
BUILD ?= $(CURDIR)/build
PYTEST ?= pytest

ifndef QEMU_TCG_SUBMAKE

# Being included must not change the includer's default goal.
QEMU_TCG_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

.PHONY: qemu-tcg-build qemu-tcg-check qemu-tcg-clean
qemu-tcg-build:
	+@$(MAKE) --no-print-directory -f $(QEMU_TCG_MK) QEMU_TCG_SUBMAKE=1 \
		QEMU_SRC='$(QEMU_SRC)' BUILD='$(BUILD)' qemu-tcg-build

# Run the tests (needs $(DQEMU_BUILD_DIR)/dqemu-<isa>, default $(BUILD)).
qemu-tcg-check: qemu-tcg-build
	QEMU_TCG_BUILD_DIR='$(BUILD)/qemu-tcg' DQEMU_BUILD_DIR='$(or $(DQEMU_BUILD_DIR),$(BUILD))' \
		$(PYTEST) -q -p no:cacheprovider $(QEMU_TCG_DIR)/test_qemu_tcg.py

qemu-tcg-clean:
	rm -rf '$(BUILD)/qemu-tcg'

.DEFAULT_GOAL := $(QEMU_TCG_SAVED_DEFAULT_GOAL)

else # QEMU_TCG_SUBMAKE: the real build

ifeq ($(strip $(QEMU_SRC)),)
$(error qemu-tcg: QEMU_SRC is not set: pass QEMU_SRC=<extracted qemu-10.0.2 source tree>)
endif
QT_TCG := $(patsubst %/,%,$(QEMU_SRC))/tests/tcg
QT_MULTI := $(QT_TCG)/multiarch
ifeq ($(wildcard $(QT_MULTI)/*.c),)
$(error qemu-tcg: QEMU_SRC=$(QEMU_SRC) has no tests/tcg/multiarch/*.c: not a QEMU source tree?)
endif

QT_ISAS := arm aarch64 riscv64
QT_OUT := $(BUILD)/qemu-tcg
QT_SKIP := $(QEMU_TCG_DIR)/skip.txt

QT_CC_arm := arm-linux-gnueabihf-gcc
QT_CC_aarch64 := aarch64-linux-gnu-gcc
QT_CC_riscv64 := riscv64-linux-gnu-gcc
QT_GCC_PKG_arm := gcc-arm-linux-gnueabihf
QT_GCC_PKG_aarch64 := gcc-aarch64-linux-gnu
QT_GCC_PKG_riscv64 := gcc-riscv64-linux-gnu
QT_LIBC_PKG_arm := libc6-dev-armhf-cross
QT_LIBC_PKG_aarch64 := libc6-dev-arm64-cross
QT_LIBC_PKG_riscv64 := libc6-dev-riscv64-cross

# A missing compiler or static libc fails here, before anything is built.
$(foreach i,$(QT_ISAS),\
  $(if $(shell command -v $(QT_CC_$i)),,\
    $(error qemu-tcg: cross compiler $(QT_CC_$i) not found: apt-get install $(QT_GCC_PKG_$i)))\
  $(if $(filter /%,$(shell $(QT_CC_$i) -print-file-name=libc.a)),,\
    $(error qemu-tcg: $(QT_CC_$i) has no static libc (libc.a): apt-get install $(QT_LIBC_PKG_$i))))

# Upstream builds with -O0 -g -Wall -Werror -fno-strict-aliasing; we use -O2.
QT_CFLAGS := -O2 -Wall -fno-strict-aliasing -static -pthread
QT_CFLAGS_riscv64 := -march=rv64gc

# Tests: every multiarch/*.c and multiarch/linux/*.c, plus the variants of
# sha1/sha512 that arm/ and aarch64/Makefile.target build from them.
QT_COMMON := $(basename $(notdir $(wildcard $(QT_MULTI)/*.c $(QT_MULTI)/linux/*.c)))
QT_VARIANTS_arm := sha1-vector sha512-vector
QT_VARIANTS_aarch64 := sha1-vector sha512-vector sha512-sve
QT_BASE_sha1-vector := sha1
QT_BASE_sha512-vector := sha512
QT_BASE_sha512-sve := sha512

# Per-test flags, as in QEMU's multiarch/, arm/ and aarch64/Makefile.target.
# float_*: FP exception flag tests; GCC has no FENV_ACCESS, and at -O2 it
# moves the conversions past fetestexcept() (INVALID flags then differ from
# the .ref files), so keep upstream's -O0.
QT_FLAGS_float_convd := -O0
QT_FLAGS_float_convs := -O0
QT_FLAGS_float_madds := -O0
QT_FLAGS_arm_float_madds := -mfpu=neon-vfpv4
# GCC false positive, see QEMU's multiarch/Makefile.target.
QT_FLAGS_sha1 := -Wno-stringop-overread
QT_FLAGS_sha1-vector := -O3 -Wno-stringop-overread
QT_FLAGS_sha512-vector := -O3
QT_FLAGS_aarch64_sha512-sve := -O3 -march=armv8.1-a+sve
QT_LIBS_float_convd := -lm
QT_LIBS_float_convs := -lm
QT_LIBS_float_madds := -lm
QT_LIBS_signals := -lrt

# The tests built and run for each ISA: all of them minus skip.txt's.
qt_skipped = $(shell awk '!/^\#/ && ($$1 == "*" || $$1 == "$1") { print $$2 }' $(QT_SKIP))
$(foreach i,$(QT_ISAS),\
  $(eval QT_TESTS_$i := $(filter-out $(call qt_skipped,$i),$(QT_COMMON) $(QT_VARIANTS_$i))))
# $1 = test
qt_srcs = $(firstword $(wildcard $(addsuffix /$(or $(QT_BASE_$1),$1).c,$(QT_MULTI) $(QT_MULTI)/linux))) \
	$(if $(filter float_%,$1),$(QT_MULTI)/libs/float_helpers.c)

Q := $(if $(V),,@)

# $1 = isa, $2 = test
define qt_test_rules
$(QT_OUT)/$1/$2: $(call qt_srcs,$2) $(QEMU_TCG_MK)
	@mkdir -p $$(@D)
	@$(if $(V),:,echo "  CC      qemu-tcg/$1/$2")
	$(Q)$(QT_CC_$1) $(QT_CFLAGS) $(QT_CFLAGS_$1) $(QT_FLAGS_$2) $(QT_FLAGS_$1_$2) \
		-o $$@ $(call qt_srcs,$2) $(QT_LIBS_$2)
QT_ALL += $(QT_OUT)/$1/$2
ifneq ($(wildcard $(QT_TCG)/$1/$2.ref),)
$(QT_OUT)/$1/$2.ref: $(QT_TCG)/$1/$2.ref
	@mkdir -p $$(@D)
	$(Q)cp $$< $$@
QT_ALL += $(QT_OUT)/$1/$2.ref
endif
endef

# $1 = isa
define qt_isa_rules
$(foreach t,$(QT_TESTS_$1),$(eval $(call qt_test_rules,$1,$t)))
$(QT_OUT)/$1/tests.txt: $(addprefix $(QT_OUT)/$1/,$(QT_TESTS_$1)) FORCE
	@mkdir -p $$(@D)
	$(Q)printf '%s\n' $(QT_TESTS_$1) > $$@.tmp && mv $$@.tmp $$@
QT_ALL += $(QT_OUT)/$1/tests.txt
endef

$(foreach i,$(QT_ISAS),$(eval $(call qt_isa_rules,$i)))

.PHONY: qemu-tcg-build FORCE
qemu-tcg-build: $(QT_ALL)
FORCE:

endif # QEMU_TCG_SUBMAKE
