# tfgit: Terraform HTTP state backend on git. `make` builds, `make test` proves, `make run` serves.
CC      ?= cc
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2
PKGS     = libgit2 json-c openssl libssh2 zlib
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
BUILD   ?= build
PORT    ?= 8080
STATE_DIR ?= /var/tmp/tfgit
NGINX_INCLUDE ?=

# where make install puts things (see make install below); SYSCONFDIR is also built into the
# programs: the settings file they find by themselves, $(SYSCONFDIR)/tfgit/tfgit.conf
PREFIX     ?= /usr/local
DESTDIR    ?=
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
LIBEXECDIR ?= $(PREFIX)/libexec/tfgit
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share
DOCDIR     ?= $(DATADIR)/doc/tfgit
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d

CORE_SRC = core/acl.c core/batch.c core/crypt/crypt.c core/crypt/filter.c core/errors.c core/health.c core/init.c \
           core/format/jsoncheck.c core/format/lockinfo.c core/format/statediff.c core/format/validate.c \
           core/history.c core/lock.c core/log.c core/mapped.c core/metrics.c core/failures.c core/net/credentials.c core/net/deadline.c \
           core/net/httpresponse.c core/net/httpstream.c core/net/keepalive.c core/net/lsrefs.c core/net/pktline.c core/net/push.c core/net/receivepack.c core/net/remote.c core/net/roundtrips.c \
           core/net/sockets.c core/net/sshkeep.c core/net/tap.c core/net/url.c core/op.c core/probe.c core/rotate.c \
           core/settings.c core/state.c core/store/cache.c core/store/cachedir.c core/store/known.c core/store/maint.c \
           core/store/packwrite.c core/store/stage.c
FCGI_SRC = fcgi/crosssite.c fcgi/query.c fcgi/request.c fcgi/response.c fcgi/route.c fcgi/html.c fcgi/style.c fcgi/ui.c
CORE_OBJ = $(CORE_SRC:%.c=$(BUILD)/%.o)
FCGI_OBJ = $(FCGI_SRC:%.c=$(BUILD)/%.o)
UNIT     = $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(wildcard tests/unit/test_*.c))

.PHONY: all deps test unit run clean sanitize valgrind stress bench fuzz static install uninstall screenshots
all: $(BUILD)/tfgit.fcgi $(BUILD)/tfgit

deps:
	@scripts/deps.sh

# the operators' command: the same core, no HTTP
CLI_SRC  = cli/main.c cli/views.c cli/actions.c cli/doctor.c
$(BUILD)/tfgit: $(CLI_SRC:%.c=$(BUILD)/%.o) $(CORE_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/%.o: %.c core/*.h core/*/*.h fcgi/*.h cli/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

# SYSCONFDIR built into settings.o: a stamp that changes with it rebuilds it (make install PREFIX=/usr
# after make: /etc/tfgit/tfgit.conf, not /usr/local/etc/tfgit/tfgit.conf)
$(BUILD)/sysconfdir.stamp: FORCE
	@mkdir -p $(dir $@); echo '$(SYSCONFDIR)' | cmp -s - $@ || echo '$(SYSCONFDIR)' >$@
$(BUILD)/core/settings.o $(BUILD)/static/core/settings.o: $(BUILD)/sysconfdir.stamp
$(BUILD)/core/settings.o $(BUILD)/static/core/settings.o: override CFLAGS += -DTFGIT_SYSCONFDIR='"$(SYSCONFDIR)"'
FORCE:

$(BUILD)/tfgit.fcgi: $(BUILD)/fcgi/main.o $(FCGI_OBJ) $(CORE_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -lfcgi $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/unit/%: tests/unit/%.c $(FCGI_OBJ) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $^ -lcmocka -lfcgi $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/tools/cryptbench: tests/tools/cryptbench.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)

# headless Chromium over the DevTools pipe (the web view's tests): json-c, libcrypto's base64
$(BUILD)/tools/browse: tests/tools/browse.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -lpthread

$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FCGI_OBJ) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $^ -lfcgi $(PKG_LIBS) $(LDFLAGS)

# the router's target stubs the git operations (state.c, lock.c, history.c, batch.c): no remote
FUZZ_NO_GIT = core/state.c core/lock.c core/history.c core/batch.c
$(BUILD)/fuzz/replay_route: tests/fuzz/fuzz_route.c tests/fuzz/replay.c $(FCGI_OBJ) \
		$(filter-out $(FUZZ_NO_GIT:%.c=$(BUILD)/%.o),$(CORE_OBJ))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $^ -lfcgi $(PKG_LIBS) $(LDFLAGS)

FUZZ = $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/replay_%,$(wildcard tests/fuzz/fuzz_*.c))
unit: $(UNIT) $(FUZZ) $(BUILD)/tools/blackhole $(BUILD)/tools/loadgen $(BUILD)/tools/cryptbench \
      $(BUILD)/tools/delayproxy $(BUILD)/tools/browse

# libFuzzer (clang) on each target (query parser, JSON check, the router, a git server's push answers, ...) for FUZZ_SECONDS, starting from the corpus in tests/fuzz/corpus.
FUZZ_SECONDS ?= 60
fuzz:
	@$(MAKE) --no-print-directory deps
	@command -v clang >/dev/null || apt-get install -y -qq clang
	@mkdir -p build-fuzz
	@for t in tests/fuzz/fuzz_*.c; do n=$$(basename $$t .c | sed 's/^fuzz_//'); \
	  clang -g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) \
	    -o build-fuzz/$$n $$t $(FCGI_SRC) \
	    $$(if [ $$n = route ]; then echo $(filter-out $(FUZZ_NO_GIT),$(CORE_SRC)); else echo $(CORE_SRC); fi) \
	    -lfcgi $(PKG_LIBS) || exit 1; \
	  mkdir -p build-fuzz/corpus-$$n; \
	  build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -close_fd_mask=2 build-fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; \
	done

# Installs what is missing, builds, runs every test; the last line is "N passed, N failed".
test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory static
	@BUILD=$(BUILD) tests/run.sh

# A long stress run on a local, a git:// and a smart-HTTP remote; prints its figures. Bounded: 5 min each.
STRESS_ARGS ?= -k 8 -m 8 -r 250 -t 300
stress:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory all unit
	@BUILD=$(BUILD) tests/stress.sh $(STRESS_ARGS) -x local
	@BUILD=$(BUILD) tests/stress.sh $(STRESS_ARGS) -x git
	@BUILD=$(BUILD) tests/stress.sh $(STRESS_ARGS) -x http

# The benchmark table (README, Performance); BENCH_QUICK=1 for a short run.
# The web view's screenshots that tests/t-ui.sh took in the last run, for the README.
screenshots:
	@test -f $(BUILD)/screenshots/ui-repository.png || { echo "run make test (or TESTS=t-ui tests/run.sh) first"; exit 1; }
	@mkdir -p tests/screenshots
	cp $(BUILD)/screenshots/ui-repository.png $(BUILD)/screenshots/ui-state.png tests/screenshots/

bench:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory all unit
	@BUILD=$(BUILD) tests/bench.sh

# Builds and serves on 127.0.0.1:$(PORT) in the foreground until Ctrl-C.
run:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) PORT=$(PORT) STATE_DIR=$(STATE_DIR) NGINX_INCLUDE="$(NGINX_INCLUDE)" exec scripts/run.sh

# The same tests with AddressSanitizer and UBSan in every worker; any report fails the run.
CHECK_LOGS = /tmp/tfgit-checks
SANITIZE_CFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
sanitize:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="$(SANITIZE_CFLAGS)" all unit
	@rm -rf $(CHECK_LOGS) && mkdir -m 1777 $(CHECK_LOGS)
	@# CFLAGS too: a test that runs make on build-asan (t-apache's make install rebuilds settings.o
	@# for its PREFIX) builds with the sanitizers, as the rest of it was
	@BUILD=build-asan CFLAGS="$(SANITIZE_CFLAGS)" ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:log_path=$(CHECK_LOGS)/asan \
	 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	 UBSAN_OPTIONS=print_stacktrace=1:log_path=$(CHECK_LOGS)/ubsan tests/run.sh
	@scripts/check-logs.sh $(CHECK_LOGS)

# The same tests with every worker under valgrind memcheck; any error or leak fails the run.
valgrind:
	@$(MAKE) --no-print-directory deps
	@command -v valgrind >/dev/null || apt-get install -y -qq valgrind
	@$(MAKE) --no-print-directory all unit
	@rm -rf $(CHECK_LOGS) && mkdir -m 1777 $(CHECK_LOGS)
	@TFGIT_WRAPPER="$$(command -v valgrind) -q --leak-check=full --errors-for-leak-kinds=definite --suppressions=$(CURDIR)/tests/valgrind.supp --log-file=$(CHECK_LOGS)/vg.%p" \
	 tests/run.sh
	@scripts/check-logs.sh $(CHECK_LOGS)

clean:
	rm -rf build build-asan build-fuzz

# ---- make static: a self-contained tfgit.fcgi for hosts without the libraries -----------------
# Everything tfgit links is taken from Debian's .a files: libfcgi, json-c, OpenSSL (tfgit's TLS
# stream, libssh2's crypto), libgit2 with what it was built with (mbedTLS, http-parser, libssh2,
# pcre2, zlib). Left dynamic: glibc (NSS and getaddrinfo need it shared), and GSSAPI, which
# Debian's libgit2 is built with for Negotiate authentication: MIT Kerberos ships no .a files.
STATIC      = $(BUILD)/static
STATIC_OBJ  = $(patsubst %.c,$(STATIC)/%.o,fcgi/main.c $(FCGI_SRC) $(CORE_SRC))
STATIC_LIBS = -lfcgi -lgit2 -lmbedtls -lmbedx509 -lmbedcrypto -lhttp_parser -lssh2 -lpcre2-8 \
              -ljson-c -lssl -lcrypto -lz
STATIC_DYNAMIC_LIBS = -lgssapi_krb5 -lpthread -ldl -lrt

static: $(STATIC)/tfgit.fcgi

$(STATIC)/%.o: %.c core/*.h core/*/*.h fcgi/*.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(STATIC)/tfgit.fcgi: $(STATIC_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ -Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic $(STATIC_DYNAMIC_LIBS) $(LDFLAGS)

# ---- make install [PREFIX=/usr/local] [DESTDIR=]: where a packager expects the files ---------
# The binary is started by spawn-fcgi, systemd or a web server, never by a user: it goes to
# $(LIBEXECDIR) (GNU's libexecdir, FHS 3.0's /usr/libexec), not bin/, nor /usr/lib/cgi-bin,
# which Apache's default configuration serves to anyone.
# Configuration under $(SYSCONFDIR)/tfgit is installed only where absent (a reference copy
# of each goes to $(DATADIR)/tfgit); @LIBEXECDIR@-style names in the units, the settings
# examples and apache/* are filled in with the paths below.
SUBST = -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' \
        -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'

# The settings file, $(SYSCONFDIR)/tfgit/tfgit.conf, is made 0640 root:$(TFGIT_GROUP) (the service's
# group reads it: www-data for spawn-fcgi's pool, TFGIT_GROUP=tfgit for tfgit.service) when that
# group exists and make install runs as root without DESTDIR; else 0640 as it is, and said so.
TFGIT_GROUP ?= www-data
install: all $(if $(wildcard $(STATIC)/tfgit.fcgi),static)
	@set -e; d='$(DESTDIR)'; tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	subst() { sed $(SUBST) "$$1" >"$$tmp"; install -m "$$3" "$$tmp" "$$2"; echo "  $$2"; }; \
	conf() { if [ -e "$$2" ]; then echo "  $$2 exists: kept (the shipped one is in $(DATADIR)/tfgit)"; \
	         else subst "$$1" "$$2" 0640; fi; }; \
	install -d -m 0755 "$$d$(LIBEXECDIR)" "$$d$(SBINDIR)" "$$d$(SYSCONFDIR)/tfgit" "$$d$(DATADIR)/tfgit/nginx" \
	        "$$d$(DOCDIR)" "$$d$(SYSTEMDUNITDIR)" "$$d$(SYSUSERSDIR)"; \
	install -m 0755 $(BUILD)/tfgit.fcgi "$$d$(LIBEXECDIR)/tfgit.fcgi"; echo "  $$d$(LIBEXECDIR)/tfgit.fcgi"; \
	if [ -f $(STATIC)/tfgit.fcgi ]; then install -m 0755 $(STATIC)/tfgit.fcgi "$$d$(LIBEXECDIR)/tfgit-static.fcgi"; \
	  echo "  $$d$(LIBEXECDIR)/tfgit-static.fcgi"; fi; \
	install -m 0755 scripts/pool.sh "$$d$(LIBEXECDIR)/pool.sh"; echo "  $$d$(LIBEXECDIR)/pool.sh"; \
	install -d -m 0755 "$$d$(BINDIR)"; install -m 0755 $(BUILD)/tfgit "$$d$(BINDIR)/tfgit"; echo "  $$d$(BINDIR)/tfgit"; \
	printf '%s\n' '#!/bin/sh' '# tfgit-pool: the tfgit FastCGI pool under spawn-fcgi, in the foreground (made by make install).' \
	  ': "$${TFGIT_CONF:=$(SYSCONFDIR)/tfgit/spawn-fcgi.conf}" "$${TFGIT_BIN:=$(LIBEXECDIR)/tfgit.fcgi}"' \
	  'export TFGIT_CONF TFGIT_BIN' 'exec $(LIBEXECDIR)/pool.sh "$$@"' >"$$tmp"; \
	install -m 0755 "$$tmp" "$$d$(SBINDIR)/tfgit-pool"; echo "  $$d$(SBINDIR)/tfgit-pool"; \
	conf spawn-fcgi.conf "$$d$(SYSCONFDIR)/tfgit/spawn-fcgi.conf"; \
	conf systemd/tfgit.env "$$d$(SYSCONFDIR)/tfgit/tfgit.env"; \
	f="$$d$(SYSCONFDIR)/tfgit/tfgit.conf"; new=0; [ -e "$$f" ] || new=1; conf systemd/tfgit.conf "$$f"; \
	if [ $$new = 1 ]; then \
	  if [ -z "$$d" ] && [ "$$(id -u)" -eq 0 ] && getent group '$(TFGIT_GROUP)' >/dev/null; then \
	    chgrp '$(TFGIT_GROUP)' "$$f"; echo "    (0640 root:$(TFGIT_GROUP): the service's group reads it)"; \
	  else echo "    (0640: give it the service's group, chgrp www-data or tfgit, so that the service reads it)"; fi; fi; \
	subst systemd/tfgit.conf "$$d$(DATADIR)/tfgit/tfgit.conf" 0644; \
	subst spawn-fcgi.conf "$$d$(DATADIR)/tfgit/spawn-fcgi.conf" 0644; \
	subst systemd/tfgit.env "$$d$(DATADIR)/tfgit/tfgit.env" 0644; \
	subst nginx/tfgit-location.conf "$$d$(DATADIR)/tfgit/nginx/tfgit-location.conf" 0644; \
	for f in apache/*; do [ -f "$$f" ] || continue; install -d -m 0755 "$$d$(DATADIR)/tfgit/apache"; \
	  subst "$$f" "$$d$(DATADIR)/tfgit/apache/$${f#apache/}" 0644; done; \
	subst systemd/tfgit.socket "$$d$(SYSTEMDUNITDIR)/tfgit.socket" 0644; \
	subst systemd/tfgit.service "$$d$(SYSTEMDUNITDIR)/tfgit.service" 0644; \
	subst systemd/tfgit.sysusers "$$d$(SYSUSERSDIR)/tfgit.conf" 0644; \
	install -m 0644 README.md "$$d$(DOCDIR)/README.md"; echo "  $$d$(DOCDIR)/README.md"

# Removes what make install put there, except the configuration under $(SYSCONFDIR)/tfgit.
uninstall:
	rm -f '$(DESTDIR)$(LIBEXECDIR)/tfgit.fcgi' '$(DESTDIR)$(LIBEXECDIR)/tfgit-static.fcgi' \
	      '$(DESTDIR)$(LIBEXECDIR)/pool.sh' '$(DESTDIR)$(SBINDIR)/tfgit-pool' '$(DESTDIR)$(BINDIR)/tfgit' \
	      '$(DESTDIR)$(SYSTEMDUNITDIR)/tfgit.socket' '$(DESTDIR)$(SYSTEMDUNITDIR)/tfgit.service' \
	      '$(DESTDIR)$(SYSUSERSDIR)/tfgit.conf'
	rm -rf '$(DESTDIR)$(DATADIR)/tfgit' '$(DESTDIR)$(DOCDIR)'
	-rmdir '$(DESTDIR)$(LIBEXECDIR)'
