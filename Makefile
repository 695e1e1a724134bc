# gosoccr: see README.md. `make help` lists the targets.

# Go may be outside PATH (at /usr/local/go/bin on a fresh machine): find it,
# and put its folder first in PATH for the scripts that this file runs.
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
export PATH := $(dir $(GO)):$(PATH)

CC      ?= cc
CFLAGS  ?= -O2 -g
DEMO_CFLAGS = -std=gnu11 -Wall -Wextra -Werror -pthread -Iinclude
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
PCDIR   ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

# Go test settings. GOSOCCR_REQUIRE_ROOT=1 (as .ci/run sets) turns every
# skipped privileged test into a failure.
GOTESTFLAGS ?= -count=1 -timeout 10m
ifdef GOSOCCR_REQUIRE_ROOT
export GOSOCCR_REQUIRE_ROOT
endif

LIB  = build/libgosoccr.so
DEMO = build/demo
# The demo runs in a network namespace of its own, with lo up. As root it is
# a plain `unshare -n`. Otherwise a user namespace gives it CAP_NET_ADMIN
# there, where the kernel allows unprivileged user namespaces; but restoring
# a queue larger than the socket's buffer needs SO_SNDBUFFORCE, which only
# root has, so the demo is meant to run as root.
NETNS = unshare $(if $(filter 0,$(shell id -u)),-n,-r -n) sh -c 'ip link set lo up && exec "$$0" "$$@"'

.DEFAULT_GOAL := help
.PHONY: help deps build test bench demo install uninstall clean FORCE

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install what is missing (Debian 12, as root): gcc, make, iproute2, util-linux, strace, nftables, musl-tools, crit, pkg-config, Go modules, CRIU 4.2
	@GO=$(GO) test/install-deps.sh
	@GOSOCCR_CRIU_QUIET=1 test/install-criu.sh >/dev/null

# The criu that runs: CRIU >= 4.2, the system's or Debian testing's
# unpacked in a cache (test/install-criu.sh, run by deps).
CRIU_CMD = GOSOCCR_CRIU=$$(GOSOCCR_CRIU_QUIET=1 test/install-criu.sh | tail -n 1)
USCLIENT = build/usclient
CRIUDEMO = build/criudemo
TCPDEMO  = build/tcpdemo

build: $(LIB) ## build build/libgosoccr.so (libsoccr C ABI, Go c-shared) and build/criu/gosoccr.so (the CRIU plugin)
	@mkdir -p build/criu
	$(CC) $(CFLAGS) -std=gnu11 -Wall -Werror -fPIC -shared -Wl,-z,defs -Iinclude -o build/criu/gosoccr.so plugin/criu/*.c -ldl

# go build knows what changed; always ask it.
$(LIB): FORCE
	@mkdir -p build
	$(GO) build -buildmode=c-shared -ldflags=-extldflags=-Wl,-soname,libgosoccr.so,-z,pack-relative-relocs -o $@ ./plugin

$(DEMO): test/demo/demo.c include/soccr.h $(LIB)
	$(CC) $(CFLAGS) $(DEMO_CFLAGS) -o $@ test/demo/demo.c -Lbuild -lgosoccr -Wl,-rpath,'$$ORIGIN'

$(USCLIENT): test/e2e/usclient/usclient.c
	$(CC) $(CFLAGS) -Wall -Werror -o $@ $<

$(CRIUDEMO): FORCE
	$(GO) build -o $@ ./test/demo/criudemo

$(TCPDEMO): FORCE
	$(GO) build -o $@ ./test/demo/tcpdemo

# The test logs go to build/ so that the last line can count every test.
test: SHELL := /bin/bash
test: .SHELLFLAGS := -o pipefail -c
test: deps build ## go vet, Go tests (CRIU end-to-end tests included), C tests, a one-iteration run of every benchmark
	$(GO) vet ./...
	@if [ "$$(id -u)" != 0 ]; then echo "make test: not root: privileged Go tests skip"; fi
	$(CRIU_CMD) $(GO) test $(GOTESTFLAGS) -v ./... 2>&1 | tee build/go-test.log | grep -E '^(ok|FAIL|panic|--- FAIL|--- SKIP|\s+--- (FAIL|SKIP))|^\s+\S+_test.go:' || true
	@! grep -qE '^(FAIL|panic:)' build/go-test.log
	test/run-c-tests.sh | tee build/c-test.log
	$(GO) test -run '^$$' -bench . -benchtime=1x $(GOTESTFLAGS) ./... | tee build/bench-smoke.log
	@test/summary.sh build/go-test.log build/c-test.log build/bench-smoke.log

bench: deps build ## Go benchmarks and the C benchmark, with their figures
	$(GO) test -run '^$$' -bench . -benchmem $(GOTESTFLAGS) ./...
	test/run-c-tests.sh bench

.PHONY: bench-libsoccr
bench-libsoccr: deps ## the C benchmark against CRIU's own libsoccr (built in the cache), side by side: a markdown table (ROUNDS=5)
	test/bench-vs-libsoccr.sh $(or $(ROUNDS),5)

.PHONY: cost
cost: deps ## how checkpoint and restore cost grows over n × queue size: build/cost/cost.{csv,md,png} (COUNT=7 runs per cell)
	GO=$(GO) test/cost.sh $(or $(COUNT),7)

demo: deps build $(DEMO) $(TCPDEMO) $(USCLIENT) $(CRIUDEMO) ## TCP through the C ABI, TCP through the hooks and images, an external unix socket through CRIU and the plugin; each in a private netns
	$(NETNS) $(DEMO) $(DEMO_ARGS)
	@echo
	$(NETNS) $(TCPDEMO)
	@echo
	$(CRIU_CMD) $(NETNS) $(CRIUDEMO) -lib build/criu -usclient $(USCLIENT)

install: build ## install the library, the CRIU plugin (lib/criu), headers and pkg-config files (PREFIX=/usr/local, DESTDIR)
	install -d $(DESTDIR)$(LIBDIR)/criu $(DESTDIR)$(INCDIR)/soccr $(DESTDIR)$(PCDIR)
	install -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/libgosoccr.so
	install -m 0755 build/criu/gosoccr.so $(DESTDIR)$(LIBDIR)/criu/gosoccr.so
	ln -sf libgosoccr.so $(DESTDIR)$(LIBDIR)/libsoccr.so
	install -m 0644 include/soccr.h $(DESTDIR)$(INCDIR)/soccr/soccr.h
	@if [ -f include/gosoccr.h ]; then install -m 0644 include/gosoccr.h $(DESTDIR)$(INCDIR)/soccr/gosoccr.h; fi
	@echo "writing $(DESTDIR)$(PCDIR)/gosoccr.pc and soccr.pc (prefix $(PREFIX))"
	@$(call pcfile,gosoccr,gosoccr) > $(DESTDIR)$(PCDIR)/gosoccr.pc
	@$(call pcfile,soccr,soccr) > $(DESTDIR)$(PCDIR)/soccr.pc
	@if [ -z "$(DESTDIR)" ]; then echo ldconfig; $$(command -v ldconfig || echo /sbin/ldconfig); fi

uninstall: ## remove what install installed
	rm -f $(DESTDIR)$(LIBDIR)/libgosoccr.so $(DESTDIR)$(LIBDIR)/libsoccr.so $(DESTDIR)$(LIBDIR)/criu/gosoccr.so
	rm -f $(DESTDIR)$(INCDIR)/soccr/soccr.h $(DESTDIR)$(INCDIR)/soccr/gosoccr.h
	rm -f $(DESTDIR)$(PCDIR)/gosoccr.pc $(DESTDIR)$(PCDIR)/soccr.pc
	-rmdir $(DESTDIR)$(INCDIR)/soccr 2>/dev/null
	@if [ -z "$(DESTDIR)" ]; then echo ldconfig; $$(command -v ldconfig || echo /sbin/ldconfig); fi

clean: ## remove build/
	rm -rf build test/bin

FORCE:

# pcfile NAME,LIB prints a pkg-config file that links -lLIB. Both names
# link the same library: libsoccr.so is a link to libgosoccr.so. Cflags
# allow both #include <soccr/soccr.h> and libsoccr's #include "soccr.h".
define pcfile
	printf '%s\n' \
	  'prefix=$(PREFIX)' \
	  'libdir=$(LIBDIR)' \
	  'includedir=$(INCDIR)' \
	  '' \
	  'Name: $(1)' \
	  'Description: TCP connection checkpoint/restore (libsoccr C ABI), in Go' \
	  'URL: https://github.com/gosoccr/gosoccr' \
	  'Version: 0.1.0' \
	  'Cflags: -I$${includedir} -I$${includedir}/soccr' \
	  'Libs: -L$${libdir} -l$(2)'
endef
