# SPDX-License-Identifier: Apache-2.0
#
# tenantd - one non-recursive Makefile.
#
#   make              build build/tenantd
#   make run          install what is missing, start a dev PostgreSQL and
#                     Redis, run tenantd in the foreground (Ctrl-C stops all)
#   make test         install what is missing, run unit and end-to-end tests
#   make SANITIZE=1   the same with ASan+UBSan (objects under build/asan)
#   make install      honours PREFIX and DESTDIR
#   make deb          build a Debian package under build/

VERSION	:= 0.1.0
PREFIX	?= /usr/local
SYSCONFDIR ?= /etc
DESTDIR	?=
PYTHON	?= /usr/bin/python3

PKGS	:= libevent libevent_openssl openssl libpq hiredis rdkafka jansson libconfig libcrypt
CC	?= cc
OPT	?= -O2
CFLAGS	?= $(OPT) -g
CFLAGS	+= -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter \
	   -fno-strict-aliasing -D_GNU_SOURCE -DTENANTD_VERSION='"$(VERSION)"' \
	   -Icommon
LDLIBS	+= -lpthread -lm

ifeq ($(SANITIZE),1)
BUILD	?= build/asan
CFLAGS	+= -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined
LDFLAGS	+= -fsanitize=address,undefined
else
BUILD	?= build
endif

# pkg-config is asked once, and only when something is compiled.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))

COMMON_SRC	:= $(wildcard common/*.c)
TENANTD_SRC	:= $(wildcard supervisor/*.c) $(wildcard workers/*/*.c)
UNIT_SRC	:= $(wildcard test/unit/test_*.c)
TESTLIB_SRC	:= $(wildcard test/unit/lib/*.c)
FUZZ_SRC	:= $(wildcard test/fuzz/fuzz_*.c)
VOICESIM_SRC	:= $(wildcard tools/voicesim/*.c)
KAFKAMOCK_SRC	:= $(wildcard tools/kafkamock/*.c)

COMMON_OBJ	:= $(COMMON_SRC:%.c=$(BUILD)/%.o)
TENANTD_OBJ	:= $(TENANTD_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN	:= $(UNIT_SRC:test/unit/%.c=$(BUILD)/test/%)
LIBCOMMON	:= $(BUILD)/libcommon.a
TESTLIB_OBJ	:= $(TESTLIB_SRC:%.c=$(BUILD)/%.o)
VOICESIM_OBJ	:= $(VOICESIM_SRC:%.c=$(BUILD)/%.o)
KAFKAMOCK_OBJ	:= $(KAFKAMOCK_SRC:%.c=$(BUILD)/%.o)
PROGRAMS	:= $(BUILD)/tenantd $(if $(VOICESIM_SRC),$(BUILD)/voicesim) \
		   $(if $(KAFKAMOCK_SRC),$(BUILD)/kafkamock)

.PHONY: all run test unit valgrind-unit e2e deps install uninstall deb clean fuzz bench \
	check-warnings
all: $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tenantd: $(TENANTD_OBJ) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $(TENANTD_OBJ) $(LIBCOMMON) $(PKG_LIBS) $(LDLIBS)

# The voice simulator (tools/voicesim, docs/voice-redis.md).
$(BUILD)/voicesim: $(VOICESIM_OBJ) $(LIBCOMMON)
	$(CC) $(LDFLAGS) -o $@ $(VOICESIM_OBJ) $(LIBCOMMON) $(PKG_LIBS) $(LDLIBS)

# librdkafka's mock cluster as a process, for tests (tools/kafkamock).
$(BUILD)/kafkamock: $(KAFKAMOCK_OBJ)
	$(CC) $(LDFLAGS) -o $@ $(KAFKAMOCK_OBJ) $(PKG_LIBS) $(LDLIBS)

# Unit tests link the helpers under test/unit/lib/ and libcommon; their
# objects are kept, not removed as intermediates.
.SECONDARY: $(TESTLIB_OBJ)
$(BUILD)/test/%: test/unit/%.c $(TESTLIB_OBJ) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itest/unit/lib $(PKG_CFLAGS) -MMD -MP $(LDFLAGS) -o $@ \
	    $< $(TESTLIB_OBJ) $(LIBCOMMON) $(PKG_LIBS) -lcmocka $(LDLIBS)

# Fuzz targets need clang's libFuzzer.  They link common/, but for a file
# a target includes whole (#include "../../common/x.c").  A target is one
# clang command, without a dependency file: any header, or any worker file
# a target may include, rebuilds it.
fuzz_own = $(patsubst ../../%,%,$(shell sed -n 's/^\#include "\(.*\.c\)"/\1/p' $(1)))
$(BUILD)/fuzz/%: test/fuzz/%.c $(COMMON_SRC) $(wildcard common/*.h workers/*/*.[ch])
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE \
	    -DTENANTD_VERSION='"$(VERSION)"' -Icommon $(PKG_CFLAGS) -o $@ $< \
	    $(filter-out $(call fuzz_own,$<),$(COMMON_SRC)) $(PKG_LIBS) $(LDLIBS)
fuzz: $(FUZZ_SRC:test/fuzz/%.c=$(BUILD)/fuzz/%)

deps:
	@tools/deps.sh test

run:
	@tools/deps.sh run
	@$(MAKE) --no-print-directory all
	@tools/devenv.sh $(BUILD)/tenantd conf/tenantd.conf

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; \
	    exit $$fail

valgrind-unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== valgrind $$t"; \
	    valgrind -q --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite,indirect $$t || fail=1; done; \
	    exit $$fail

e2e: $(PROGRAMS)
	TENANTD_BIN=$(abspath $(BUILD)/tenantd) \
	    VOICESIM_BIN=$(abspath $(BUILD)/voicesim) \
	    KAFKAMOCK_BIN=$(abspath $(BUILD)/kafkamock) $(PYTHON) -m pytest -q test/e2e

test: deps
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory e2e

bench:
	@tools/deps.sh bench
	@$(MAKE) --no-print-directory all
	@test/bench/run.sh $(abspath $(BUILD)/tenantd)

MANPAGES	:= packaging/man/tenantd.8 packaging/man/tenantd.conf.5
# Paths the unit and the manual pages name, as this install lays them.
PATHS_SED	:= -e 's|/usr/sbin/tenantd|$(PREFIX)/sbin/tenantd|g' \
		   -e 's|/etc/tenantd/|$(SYSCONFDIR)/tenantd/|g' \
		   -e 's|/usr/share/|$(PREFIX)/share/|g' \
		   -e 's|/lib/systemd/system/|$(PREFIX)/lib/systemd/system/|g'

install: $(BUILD)/tenantd
	install -D -m 0755 $(BUILD)/tenantd $(DESTDIR)$(PREFIX)/sbin/tenantd
	# An existing configuration is the operator's: never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/tenantd/tenantd.conf || \
	    install -D -m 0640 conf/tenantd.conf \
	    $(DESTDIR)$(SYSCONFDIR)/tenantd/tenantd.conf
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed -e 's|/usr/sbin/tenantd|$(PREFIX)/sbin/tenantd|g' \
	    -e 's|/etc/tenantd/|$(SYSCONFDIR)/tenantd/|g' \
	    packaging/systemd/tenantd.service > \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system/tenantd.service
	install -d $(DESTDIR)$(PREFIX)/share/doc/tenantd
	install -m 0644 README.md LICENSE $(wildcard docs/*.md) \
	    $(DESTDIR)$(PREFIX)/share/doc/tenantd/
	# The manual pages and the operator's kit (Prometheus rules with
	# their tests, the Grafana dashboard), their paths made this install's.
	for m in $(MANPAGES); do \
	    s=$${m##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$s && \
	    sed $(PATHS_SED) $$m > \
	    $(DESTDIR)$(PREFIX)/share/man/man$$s/$${m##*/} || exit 1; \
	done
	install -d $(DESTDIR)$(PREFIX)/share/tenantd/prometheus \
	    $(DESTDIR)$(PREFIX)/share/tenantd/grafana
	install -m 0644 $(wildcard packaging/prometheus/*.yml) \
	    $(DESTDIR)$(PREFIX)/share/tenantd/prometheus/
	install -m 0644 packaging/grafana/tenantd.json \
	    $(DESTDIR)$(PREFIX)/share/tenantd/grafana/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/tenantd \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system/tenantd.service \
	    $(DESTDIR)$(PREFIX)/share/man/man8/tenantd.8 \
	    $(DESTDIR)$(PREFIX)/share/man/man5/tenantd.conf.5
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/tenantd \
	    $(DESTDIR)$(PREFIX)/share/tenantd

deb: $(BUILD)/tenantd
	packaging/debian/build-deb.sh $(BUILD) $(VERSION)

clean:
	rm -rf build

-include $(COMMON_OBJ:.o=.d) $(TENANTD_OBJ:.o=.d) $(TESTLIB_OBJ:.o=.d) \
    $(VOICESIM_OBJ:.o=.d) $(KAFKAMOCK_OBJ:.o=.d) \
    $(UNIT_BIN:=.d)
