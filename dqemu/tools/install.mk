# install.mk - `make install`, `make uninstall` and `make man`, so dqemu
# installs like the tools it sits beside (GNU conventions: PREFIX, DESTDIR
# for packagers).  Included by the top-level Makefile, which defines TOP,
# BUILD, ISAS, DQEMU_BINS and the `qemu` target that builds them.
#
#   make install [PREFIX=/usr/local] [DESTDIR=/stage]
#   make uninstall (same PREFIX and DESTDIR)  removes exactly what install put
#   make man        build/dqemu.1, generated from the --help option table
#
# The man page is printed by build/tools/mkman, a host program linked with
# dqemu/options.c, so its OPTIONS section is the table --help prints.

TOOLS_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
TOOLS_OUT := $(BUILD)/tools

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/dqemu
INSTALL ?= install

# What options.c needs to link, and nothing QEMU.
MKMAN := $(TOOLS_OUT)/mkman
MKMAN_SRCS := $(TOOLS_DIR)/mkman.c $(TOP)/dqemu/options.c $(TOP)/dqemu/status.c \
              $(TOP)/scheduler/sched.c
MKMAN_HDRS := $(wildcard $(TOP)/dqemu/*.h $(TOP)/scheduler/*.h)
MKMAN_CFLAGS := -std=gnu11 -O1 -Wall -Wextra -Werror -I$(TOP)/dqemu -I$(TOP)/scheduler

MAN_PAGE := $(BUILD)/dqemu.1
MAN_STUBS := $(addprefix $(TOOLS_OUT)/man/dqemu-,$(addsuffix .1,$(ISAS)))
EXAMPLES_FILE := $(TOOLS_OUT)/examples
BINFMT_SCRIPT := $(TOOLS_DIR)/dqemu-binfmt

# Installed paths (without DESTDIR): uninstall removes exactly these.
INSTALLED_BINS := $(addprefix $(BINDIR)/,$(notdir $(DQEMU_BINS)) dqemu-binfmt)
INSTALLED_MANS := $(MANDIR)/man1/dqemu.1 $(addprefix $(MANDIR)/man1/,$(notdir $(MAN_STUBS)))
INSTALLED_DOCS := $(DOCDIR)/README.md $(DOCDIR)/examples

.PHONY: install uninstall man

$(MKMAN): $(MKMAN_SRCS) $(MKMAN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(MKMAN_CFLAGS) -o $@ $(MKMAN_SRCS)

# Written to a temporary first: a failed run leaves no half page behind.
$(MAN_PAGE): $(MKMAN)
	$(MKMAN) > $@.tmp && mv -f $@.tmp $@

$(EXAMPLES_FILE): $(MKMAN)
	$(MKMAN) --examples > $@.tmp && mv -f $@.tmp $@

# dqemu-arm(1) and friends are the same page.
$(MAN_STUBS):
	@mkdir -p $(@D)
	printf '.so man1/dqemu.1\n' > $@

man: $(MAN_PAGE) $(MAN_STUBS) $(EXAMPLES_FILE)

install: $(DQEMU_BINS) man
	$(INSTALL) -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(DOCDIR)"
	$(INSTALL) -m 755 $(DQEMU_BINS) "$(DESTDIR)$(BINDIR)/"
	$(INSTALL) -m 755 $(BINFMT_SCRIPT) "$(DESTDIR)$(BINDIR)/dqemu-binfmt"
	$(INSTALL) -m 644 $(MAN_PAGE) $(MAN_STUBS) "$(DESTDIR)$(MANDIR)/man1/"
	$(INSTALL) -m 644 $(TOP)/README.md $(EXAMPLES_FILE) "$(DESTDIR)$(DOCDIR)/"

# Only the doc directory is ours alone; bin/ and man1/ stay.
uninstall:
	rm -f $(addprefix "$(DESTDIR),$(addsuffix ",$(INSTALLED_BINS) $(INSTALLED_MANS) $(INSTALLED_DOCS)))
	rmdir "$(DESTDIR)$(DOCDIR)" 2>/dev/null || true

# This suite (tests/install); not yet in the top-level SUITES list.
.PHONY: test-install
test-install: qemu
	@mkdir -p $(RESULTS)
	$(PYTEST) --junitxml=$(RESULTS)/install.xml $(TOP)/tests/install
