# Shelfgate. The two commands a newcomer needs:
#   make demo    simulated warehouse + in-process broker, readings and events scroll
#   make test    every test (tests that need mosquitto skip without it, unless REQUIRE_MOSQUITTO=1)

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin
DIST     := dist
DEMO_SECONDS ?= 0
TEST_FLAGS ?= -race -timeout 15m
FUZZTIME ?= 3s
DRAIN_READINGS ?= 10000000
CMDS     := shelfgate shelfctl shelfsim

# Tools run at pinned versions from the Go module proxy (cached after the
# first run): staticcheck 2026.2.2 and nfpm.
STATICCHECK_VERSION ?= v0.8.2
NFPM_VERSION ?= v2.48.0
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
NFPM ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

export CGO_ENABLED := 1

.PHONY: all build demo test test-faults test-short lint tidy-check fmt bench bench-store bench-uplink fuzz fuzz-smoke fuzz-list cross cross-amd64 check-cross deb test-deb deps clean help

all: build

help:
	@echo "make demo        run the simulated warehouse demo (DEMO_SECONDS=N to stop after N s)"
	@echo "make test        all tests (REQUIRE_MOSQUITTO=1 to fail instead of skip without mosquitto)"
	@echo "make build       bin/shelfgate, bin/shelfctl, bin/shelfsim"
	@echo "make lint        gofmt check, go vet, staticcheck, go mod tidy check"
	@echo "make bench       FIGURE lines: store, uplink, model"
	@echo "make fuzz        run every fuzz target for FUZZTIME (default 3s; e.g. FUZZTIME=2m)"
	@echo "make cross       Raspberry Pi builds, static: dist/linux-arm64, dist/linux-armv7"
	@echo "make check-cross the cross builds are static, small enough, and run under qemu"
	@echo "make deb         dist/shelfgate_VERSION_{amd64,arm64,armhf}.deb"
	@echo "make test-deb    build the packages, check their contents, install into a scratch root"
	@echo "make deps        apt-get install what CI and cross builds need (as root)"

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfgate ./cmd/shelfgate
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfctl ./cmd/shelfctl
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfsim ./cmd/shelfsim

# The demo runs the gateway on configs/demo.yaml (simulated warehouse, embedded
# broker on 127.0.0.1:1883) and `shelfctl tail` beside it. Ctrl-C stops both;
# the gateway flushes its outbox and prints a SUMMARY line.
demo: build
	@rm -f shelfgate-demo.db shelfgate-demo.db-wal shelfgate-demo.db-shm
	@set -u; dur=""; if [ "$(DEMO_SECONDS)" != "0" ]; then dur="--duration $(DEMO_SECONDS)s"; fi; \
	$(BIN)/shelfgate run --config configs/demo.yaml --summary $$dur & gw=$$!; \
	$(BIN)/shelfctl tail --broker tcp://127.0.0.1:1883 & tl=$$!; \
	trap 'kill -INT $$gw 2>/dev/null' INT TERM; \
	wait $$gw; rc=$$?; \
	if [ $$rc -gt 128 ]; then wait $$gw; rc=$$?; fi; \
	kill -INT $$tl 2>/dev/null; wait $$tl 2>/dev/null; \
	exit $$rc

test:
	$(GO) test $(TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory fuzz-smoke FUZZTIME=$(FUZZTIME)

# The fault-injection suite (real mosquitto, a fault proxy, kill -9s) and the
# outbox's 32 MiB full-filesystem drain: under 16 minutes; CI runs it after
# `make test`.
test-faults:
	$(GO) test -tags faults -run '^TestFault' -timeout 20m -v ./cmd/shelfgate/
	$(GO) test -tags faults -run '^TestSpaceReturnsAfterDrainLarge$$' -timeout 10m -v ./gateway/outbox/

test-short:
	$(GO) test -short ./...

# Every fuzz target runs briefly in `make test` (FUZZTIME=3s) and longer in
# `make fuzz FUZZTIME=10m`. The list comes from `go test -list '^Fuzz'`, run
# on the packages whose test files declare a `func Fuzz` (gofmt puts it at a
# line start), so a new target is picked up without editing this file.
FUZZ_PKGS = $(sort $(patsubst %/,./%,$(dir $(shell git grep -l --untracked '^func Fuzz' -- '*_test.go' 2>/dev/null))))

# One "package:FuzzName" per line.
fuzz-list:
	@out=$$($(GO) test -list '^Fuzz' $(FUZZ_PKGS)) || { echo "$$out"; exit 1; }; \
	echo "$$out" | awk '/^Fuzz/ { n[++k] = $$1; next } /^ok/ { for (i = 1; i <= k; i++) print $$2 ":" n[i]; k = 0 }'

# FUZZ_JOBS targets run at a time: each fuzzes for a fixed wall time, and
# most of a target's run is building and replaying its corpus, so two at
# once on two cores halve the smoke's time (2.8 -> 1.4 min here).
FUZZ_JOBS ?= 2

fuzz-smoke:
	@set -e; targets=$$($(MAKE) --no-print-directory -s fuzz-list); \
	[ -n "$$targets" ] || { echo "no fuzz targets found"; exit 1; }; \
	echo "fuzz: $$(echo "$$targets" | wc -l) targets for $(FUZZTIME) each, $(FUZZ_JOBS) at a time"; \
	echo "$$targets" | xargs -P $(FUZZ_JOBS) -n 1 .ci/fuzz-one "$(GO)" "$(FUZZTIME)"

# fuzz-smoke covers the model's targets too (fuzz-model in model/model.mk
# runs just those, for MODEL_FUZZTIME).
fuzz: fuzz-smoke

# gofmt, go vet, staticcheck (pinned; checks configured in staticcheck.conf
# if ever needed) and go.mod/go.sum tidiness. govulncheck is not run: its
# vulnerability database (vuln.go.dev) is not reachable from CI.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@$(MAKE) --no-print-directory tidy-check

# `go mod tidy -diff` changes nothing and exits 1 with the diff if go.mod or
# go.sum is not tidy.
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum not tidy: run 'go mod tidy'"; exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks print `FIGURE name=value unit=U baseline=value ratio=value`,
# each beside a baseline measured in the same run.
bench: bench-store bench-uplink bench-model

bench-store:
	$(GO) run ./cmd/shelfbench store

bench-uplink:
	$(GO) run ./cmd/shelfbench uplink
	$(GO) run ./cmd/shelfbench latency
	$(GO) run ./cmd/shelfbench drain -readings $(DRAIN_READINGS)
	$(GO) run ./cmd/shelfbench drain -readings 100000 -window 2 -batch 50 -figure drain_window2_seconds
	$(GO) run ./cmd/shelfbench compress

# Raspberry Pi builds with cgo (SQLite) using Debian's cross compilers,
# linked fully static so one binary starts on any Raspberry Pi OS (Bullseye's
# glibc 2.31, Bookworm's 2.36) with no loader or libc. Static glibc cannot
# load NSS modules or dlopen: osusergo (user lookups from /etc/passwd and
# /etc/group only) and netgo (Go's DNS resolver, /etc/resolv.conf and
# /etc/hosts only, no mDNS/LDAP/systemd-resolved NSS) avoid both, and SQLite
# is built without extension loading.
CC_AMD64 ?= gcc
CC_ARM64 ?= aarch64-linux-gnu-gcc
CC_ARMV7 ?= arm-linux-gnueabihf-gcc
CROSS_TAGS := osusergo netgo sqlite_omit_load_extension
CROSS_LDFLAGS = $(LDFLAGS) -extldflags "-static"
MAX_ARM64_SHELFGATE_BYTES ?= 25000000

# $(call static-build,DIR,GOARCH,GOARM,CC,DEBIAN-PACKAGE)
define static-build
	@command -v $(4) >/dev/null 2>&1 || { echo "missing $(4): apt-get install $(5) (or 'make deps' as root)"; exit 1; }
	@mkdir -p $(DIST)/$(1)
	@set -e; for c in $(CMDS); do \
		echo "$(DIST)/$(1)/$$c"; \
		CC=$(4) GOOS=linux GOARCH=$(2) GOARM=$(3) $(GO) build -trimpath -tags '$(CROSS_TAGS)' \
			-ldflags '$(CROSS_LDFLAGS)' -o $(DIST)/$(1)/$$c ./cmd/$$c; \
	done
endef

cross:
	$(call static-build,linux-arm64,arm64,,$(CC_ARM64),gcc-aarch64-linux-gnu)
	$(call static-build,linux-armv7,arm,7,$(CC_ARMV7),gcc-arm-linux-gnueabihf)

# The same static build for amd64 (the amd64 .deb).
cross-amd64:
	$(call static-build,linux-amd64,amd64,,$(CC_AMD64),gcc)

# Every cross binary is static (or needs no GLIBC symbol above 2.31), arm64
# shelfgate fits the size budget, and each runs under qemu with no loader
# prefix.
check-cross:
	@DIST=$(DIST) CMDS='$(CMDS)' MAX_ARM64_SHELFGATE_BYTES=$(MAX_ARM64_SHELFGATE_BYTES) VERSION=$(VERSION) \
		sh packaging/check-cross.sh

# .deb packages (nfpm, pinned) from the static builds: amd64, arm64, armhf.
# Debian versions start with a digit: v1.2.3-4-gabc -> 1.2.3+4+gabc; an
# untagged commit abc1234 -> 0.0.0~gitabc1234 (sorts before any release).
DEB_VERSION ?= $(shell echo '$(VERSION)' | sed -e '/^v*[0-9][0-9]*\./!s/^/0.0.0~git/' -e 's/^v//' -e 's/-/+/g')
DEB_ARCHES := amd64:linux-amd64:amd64 arm64:linux-arm64:arm64 armhf:linux-armv7:arm7

deb: cross cross-amd64
	@set -e; for a in $(DEB_ARCHES); do \
		deb=$${a%%:*}; rest=$${a#*:}; dir=$${rest%%:*}; nfpm=$${rest#*:}; \
		rm -rf $(DIST)/stage; mkdir -p $(DIST)/stage; \
		for c in $(CMDS); do cp $(DIST)/$$dir/$$c $(DIST)/stage/$$c; done; \
		out=$(DIST)/shelfgate_$(DEB_VERSION)_$$deb.deb; rm -f $$out; \
		NFPM_ARCH=$$nfpm DEB_VERSION='$(DEB_VERSION)' $(NFPM) package --config packaging/nfpm.yaml --packager deb --target $$out; \
	done; rm -rf $(DIST)/stage

# Contents, modes and conffiles of every package; the amd64 one installed
# into a scratch root (postinst run chroot-less), upgraded over a local
# config edit, removed and purged; its binary run against the demo config.
test-deb: deb
	DIST=$(DIST) DEB_VERSION='$(DEB_VERSION)' VERSION=$(VERSION) sh packaging/test-deb.sh

# What CI and cross builds need from Debian. Tests that need mosquitto skip
# without it (unless REQUIRE_MOSQUITTO=1).
DEPS_APT := mosquitto qemu-user-static gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf sqlite3 binutils chromium
deps:
	@echo "make deps: apt-get install $(DEPS_APT)"
	@[ "$$(id -u)" = 0 ] || { echo "make deps: run as root (or: sudo apt-get install $(DEPS_APT))"; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEPS_APT)

clean:
	rm -rf $(BIN) $(DIST) tmp shelfgate-demo.db*

-include model/model.mk
-include bench.mk
