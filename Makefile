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

export CGO_ENABLED := 1

.PHONY: all build demo test test-faults test-short lint bench-store bench-uplink fmt bench bench-store bench-uplink fuzz fuzz-smoke cross clean help

all: build

help:
	@echo "make demo        run the simulated warehouse demo (DEMO_SECONDS=N to stop after N s)"
	@echo "make test        all tests (REQUIRE_MOSQUITTO=1 to fail instead of skip without mosquitto)"
	@echo "make build       bin/shelfgate, bin/shelfctl"
	@echo "make lint        gofmt check + go vet"
	@echo "make bench       FIGURE lines: store, uplink, model"
	@echo "make fuzz        run every fuzz target for FUZZTIME (default 5s; e.g. FUZZTIME=2m)"
	@echo "make cross       Raspberry Pi builds: dist/linux-arm64, dist/linux-armv7"

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfgate ./cmd/shelfgate
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfctl ./cmd/shelfctl

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

# The fault-injection suite (real mosquitto, a fault proxy, kill -9s): under
# 15 minutes; CI runs it after `make test`.
test-faults:
	$(GO) test -tags faults -run '^TestFault' -timeout 20m -v ./cmd/shelfgate/

test-short:
	$(GO) test -short ./...

# Every fuzz target runs briefly in `make test` (FUZZTIME=3s) and longer in
# `make fuzz FUZZTIME=10m`.
# Parsers of outside input (broker payloads, config, calibration files,
# scanner frames and key events, model files) and the kernel cross-check.
FUZZ_TARGETS := \
	./gateway:FuzzDecodeBatch \
	./gateway/compress:FuzzDecompress \
	./gateway/faultproxy:FuzzSplitter \
	./gateway/config:FuzzParse \
	./sensors/calibration:FuzzParse \
	./sensors/scanner:FuzzParseFrames \
	./sensors/scanner:FuzzDecodeEvents \
	./model:FuzzDecode \
	./model/internal/kernel:FuzzKernels

fuzz-smoke:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || \
			$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

fuzz: fuzz-smoke fuzz-model

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

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
	$(GO) run ./cmd/shelfbench compress

# Raspberry Pi builds with cgo (SQLite) using Debian's cross compilers.
CC_ARM64 ?= aarch64-linux-gnu-gcc
CC_ARMV7 ?= arm-linux-gnueabihf-gcc

cross:
	@for pair in "$(CC_ARM64):gcc-aarch64-linux-gnu" "$(CC_ARMV7):gcc-arm-linux-gnueabihf"; do \
		cc=$${pair%%:*}; pkg=$${pair##*:}; \
		if ! command -v $$cc >/dev/null 2>&1; then \
			if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
				echo "installing $$pkg"; (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg) || exit 1; \
			else echo "missing $$cc: run 'sudo apt-get install $$pkg'"; exit 1; fi; \
		fi; \
	done
	@mkdir -p $(DIST)/linux-arm64 $(DIST)/linux-armv7
	CC=$(CC_ARM64) GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o $(DIST)/linux-arm64/shelfgate ./cmd/shelfgate
	CC=$(CC_ARM64) GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o $(DIST)/linux-arm64/shelfctl ./cmd/shelfctl
	CC=$(CC_ARMV7) GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o $(DIST)/linux-armv7/shelfgate ./cmd/shelfgate
	CC=$(CC_ARMV7) GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o $(DIST)/linux-armv7/shelfctl ./cmd/shelfctl

clean:
	rm -rf $(BIN) $(DIST) tmp shelfgate-demo.db*

-include model/model.mk
