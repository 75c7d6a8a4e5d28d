# Makefile fragment for the int8 model engine; the top-level Makefile
# includes it. Targets: bench-model, test-arm64, fuzz-model, eval-model,
# eval-windows, eval-plates, model, model-check, bench-shelf.

GO ?= go
MODEL_PKGS := ./model/...
MODEL_FUZZTIME ?= $(if $(FUZZTIME),$(FUZZTIME),30s)
MODEL_BENCHTIME ?= 500ms
MODEL_ARM64_DIR ?= $(CURDIR)/tmp/arm64
QEMU_AARCH64 ?= qemu-aarch64-static
QEMU_ARM ?= qemu-arm-static

MODEL_MK := $(lastword $(MAKEFILE_LIST))

.PHONY: bench-model test-arm64 fuzz-model eval-model model-arm64-equal eval-windows eval-plates

# FIGURE lines for the reference shape (1000 → 500 ReLU → 100 softmax, one
# core): int8 latency beside gonum float32 and the portable Go kernel,
# allocations, batch-32 throughput beside gonum Sgemm; then the arm64 kernels'
# instruction mix and their bit-exactness run under qemu (not timed).
bench-model:
	$(GO) run ./model/internal/modelbench -benchtime $(MODEL_BENCHTIME)
	@mkdir -p $(dir $(MODEL_ARM64_DIR))
	@$(MAKE) --no-print-directory -f $(MODEL_MK) test-arm64 >$(MODEL_ARM64_DIR).log 2>&1 || { cat $(MODEL_ARM64_DIR).log; exit 1; }
	@echo "# arm64/armv7: every model test (kernels against the reference, golden files) passed under qemu; log in $(MODEL_ARM64_DIR).log"
	@$(MAKE) --no-print-directory -f $(MODEL_MK) model-arm64-equal
	$(GO) run ./model/internal/modelbench -asm-mix model/internal/kernel/matvec_arm64.s

# The reference-shape model's outputs on fixed inputs, hashed per kernel on
# amd64 and under qemu on arm64 (Cortex-A72: neon; max: neon and sdot) and
# armv7: a FIGURE of 1 means the digests are equal.
model-arm64-equal:
	@mkdir -p $(MODEL_ARM64_DIR)
	@$(GO) run ./model/internal/modelbench -save-model $(MODEL_ARM64_DIR)/reference.sgm
	@GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -o $(MODEL_ARM64_DIR)/modelbench-arm64 ./model/internal/modelbench
	@GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) build -o $(MODEL_ARM64_DIR)/modelbench-armv7 ./model/internal/modelbench
	@set -e; ref=$(MODEL_ARM64_DIR)/reference.sgm; \
	native=$$($(GO) run ./model/internal/modelbench -digest $$ref); \
	echo "# $(shell $(GO) env GOARCH) digest $$native"; \
	for cpu in cortex-a72 max; do \
		d=$$($(QEMU_AARCH64) -cpu $$cpu $(MODEL_ARM64_DIR)/modelbench-arm64 -digest $$ref); \
		echo "# arm64 -cpu $$cpu digest $$d"; \
		eq=0; [ "$${d%% *}" = "$${native%% *}" ] && eq=1; \
		echo "FIGURE model_arm64_$$(echo $$cpu | tr - _)_outputs_equal=$$eq unit=bool baseline=1 ratio=$$eq"; \
	done; \
	if command -v $(QEMU_ARM) >/dev/null 2>&1; then \
		d=$$($(QEMU_ARM) $(MODEL_ARM64_DIR)/modelbench-armv7 -digest $$ref); \
		echo "# armv7 digest $$d"; \
		eq=0; [ "$${d%% *}" = "$${native%% *}" ] && eq=1; \
		echo "FIGURE model_armv7_outputs_equal=$$eq unit=bool baseline=1 ratio=$$eq"; \
	fi

# Cross-compile every model test binary for arm64 and run it under qemu.
# The NEON kernels run with and without the SDOT path (SHELFGATE_KERNEL).
test-arm64:
	@command -v $(QEMU_AARCH64) >/dev/null 2>&1 || { \
		echo "installing qemu-user-static"; \
		apt-get update && apt-get install -y qemu-user-static; }
	@mkdir -p $(MODEL_ARM64_DIR)
	@echo "arm64 test binaries in $(MODEL_ARM64_DIR)"
	@set -e; for p in $$($(GO) list $(MODEL_PKGS)); do \
		name=$$(echo $$p | tr / _); \
		GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) test -c -o $(MODEL_ARM64_DIR)/$$name.test $$p; \
		if [ -f $(MODEL_ARM64_DIR)/$$name.test ]; then \
			dir=$$($(GO) list -f '{{.Dir}}' $$p); \
			echo "qemu-aarch64 $$p"; \
			(cd $$dir && $(QEMU_AARCH64) -cpu max $(MODEL_ARM64_DIR)/$$name.test -test.short -test.count=1) || exit 1; \
			(cd $$dir && SHELFGATE_KERNEL=neon $(QEMU_AARCH64) -cpu cortex-a72 $(MODEL_ARM64_DIR)/$$name.test -test.short -test.count=1) || exit 1; \
		fi; \
	done
	@# 32-bit Raspberry Pi OS (armv7, portable kernels) when qemu-arm is there.
	@if command -v $(QEMU_ARM) >/dev/null 2>&1; then set -e; for p in $$($(GO) list $(MODEL_PKGS)); do \
		name=$$(echo $$p | tr / _)-armv7; \
		GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 $(GO) test -c -o $(MODEL_ARM64_DIR)/$$name.test $$p; \
		if [ -f $(MODEL_ARM64_DIR)/$$name.test ]; then \
			echo "qemu-arm (armv7) $$p"; \
			(cd $$($(GO) list -f '{{.Dir}}' $$p) && $(QEMU_ARM) $(MODEL_ARM64_DIR)/$$name.test -test.short -test.count=1) || exit 1; \
		fi; \
	done; fi

# Run every model fuzz target for MODEL_FUZZTIME each.
fuzz-model:
	@set -e; for p in $$($(GO) list $(MODEL_PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz' || true); do \
			echo "fuzz $$p $$f"; \
			$(GO) test $$p -run '^$$' -fuzz "^$$f\$$" -fuzztime $(MODEL_FUZZTIME); \
		done; \
	done

MODEL_EVAL_DIR ?= $(CURDIR)/tmp/model-eval

# Accuracy on the reference shape: a synthetic 100-class problem with 1000
# features, independent train and test draws, float MLP 1000 → 500 → 100,
# post-training quantization, then eval (int8 vs float accuracy, agreement).
eval-model:
	@mkdir -p $(MODEL_EVAL_DIR)
	$(GO) build -o $(MODEL_EVAL_DIR)/modelctl ./model/internal/modelctl
	$(MODEL_EVAL_DIR)/modelctl synth -samples 8000 -features 1000 -classes 100 -noise 0.7 -seed 1 -sample-seed 1 -o $(MODEL_EVAL_DIR)/train.csv
	$(MODEL_EVAL_DIR)/modelctl synth -samples 2000 -features 1000 -classes 100 -noise 0.7 -seed 1 -sample-seed 2 -o $(MODEL_EVAL_DIR)/test.csv
	$(MODEL_EVAL_DIR)/modelctl train -q -hidden 500 -epochs 8 -seed 1 -o $(MODEL_EVAL_DIR)/float.json $(MODEL_EVAL_DIR)/train.csv
	$(MODEL_EVAL_DIR)/modelctl quantize -f $(MODEL_EVAL_DIR)/float.json -observer percentile -percentile 99.99 -name synthetic100 -eval $(MODEL_EVAL_DIR)/test.csv -o $(MODEL_EVAL_DIR)/model.sgm $(MODEL_EVAL_DIR)/train.csv
	$(MODEL_EVAL_DIR)/modelctl eval -m $(MODEL_EVAL_DIR)/model.sgm -f $(MODEL_EVAL_DIR)/float.json $(MODEL_EVAL_DIR)/test.csv

MODEL_WINDOWS_DIR ?= $(CURDIR)/tmp/model-windows
MODEL_WINDOWS_SCENARIOS ?= configs/scenarios/corner-shop.yaml configs/scenarios/cold-room.yaml

# The shelf's own data: labelled load-cell windows (model/features) built by
# cmd/shelfdata from the 10 Hz scenarios, training with the scenario files'
# seeds and evaluation with another seed (unseen samples and visits); float
# MLP 30 → 64 → classes, quantization, eval. Every step has a fixed seed,
# so model.sgm is the same file on every run.
eval-windows:
	@mkdir -p $(MODEL_WINDOWS_DIR)
	$(GO) build -o $(MODEL_WINDOWS_DIR)/modelctl ./model/internal/modelctl
	$(GO) run ./cmd/shelfdata -duration 12h -idle-seed 1 -o $(MODEL_WINDOWS_DIR)/train.sgds $(MODEL_WINDOWS_SCENARIOS)
	$(GO) run ./cmd/shelfdata -duration 6h -seed 1001 -idle-seed 2 -o $(MODEL_WINDOWS_DIR)/test.sgds $(MODEL_WINDOWS_SCENARIOS)
	$(MODEL_WINDOWS_DIR)/modelctl train -q -hidden 64 -epochs 60 -seed 1 -o $(MODEL_WINDOWS_DIR)/float.json $(MODEL_WINDOWS_DIR)/train.sgds
	$(MODEL_WINDOWS_DIR)/modelctl quantize -f $(MODEL_WINDOWS_DIR)/float.json -name windows10hz -eval $(MODEL_WINDOWS_DIR)/test.sgds -o $(MODEL_WINDOWS_DIR)/model.sgm $(MODEL_WINDOWS_DIR)/train.sgds
	$(MODEL_WINDOWS_DIR)/modelctl eval -m $(MODEL_WINDOWS_DIR)/model.sgm -f $(MODEL_WINDOWS_DIR)/float.json $(MODEL_WINDOWS_DIR)/test.sgds

MODEL_PLATES_DIR ?= $(CURDIR)/tmp/model-plates

# Plates (firmware-sim/warehouse default plates: four cells, four facings,
# light items, leaning, adjacent visits, vibration): 4-cell windows labelled
# by facing or "none", training on 12 h with seed 1, evaluation on 4 h of
# another seed's plates (other SKUs at the same positions); float MLP
# 120 → 64 → 5, percentile calibration, eval. Reproducible like eval-windows.
eval-plates:
	@mkdir -p $(MODEL_PLATES_DIR)
	$(GO) build -o $(MODEL_PLATES_DIR)/modelctl ./model/internal/modelctl
	$(GO) run ./cmd/shelfdata -plates -duration 12h -seed 1 -idle-seed 1 -o $(MODEL_PLATES_DIR)/train.sgds
	$(GO) run ./cmd/shelfdata -plates -duration 4h -seed 99 -idle-seed 5 -o $(MODEL_PLATES_DIR)/test.sgds
	$(MODEL_PLATES_DIR)/modelctl train -q -hidden 64 -epochs 60 -seed 1 -o $(MODEL_PLATES_DIR)/float.json $(MODEL_PLATES_DIR)/train.sgds
	$(MODEL_PLATES_DIR)/modelctl quantize -f $(MODEL_PLATES_DIR)/float.json -observer percentile -percentile 99.99 -name plates -eval $(MODEL_PLATES_DIR)/test.sgds -o $(MODEL_PLATES_DIR)/model.sgm $(MODEL_PLATES_DIR)/train.sgds
	$(MODEL_PLATES_DIR)/modelctl eval -m $(MODEL_PLATES_DIR)/model.sgm -f $(MODEL_PLATES_DIR)/float.json $(MODEL_PLATES_DIR)/test.sgds

# ---------------------------------------------------------------------------
# The shipped plate model (issue 10): configs/models/plate.sgm, rebuilt
# byte-for-byte by `make model` (every step has a fixed seed; nothing reads
# the clock). Training windows are cut by the serving detector itself
# (shelfctl eval --windows → gateway/classify/evaluate.Windows) from the
# TRAINING scenarios only: configs/scenarios/train/*.yaml (seeds 101-107)
# and the extra layouts configs/models/train/*.yaml (seeds 201-208); the
# evaluation scenarios (configs/scenarios/eval, seeds 901-907, other
# parameter ranges) are never read here. Signed with the TEST-ONLY key
# configs/models/test-signing.key (see configs/models/README.md).
MODEL_PLATE_DIR ?= $(CURDIR)/tmp/plate-model
MODEL_PLATE_TRAIN := $(sort $(wildcard configs/scenarios/train/*.yaml)) $(sort $(wildcard configs/models/train/*.yaml))
MODEL_PLATE_EVAL := $(sort $(wildcard configs/scenarios/eval/*.yaml))
MODEL_PLATE_OUT ?= configs/models/plate.sgm
MODEL_PLATE_HIDDEN ?= 64

.PHONY: model model-check bench-shelf

model:
	@mkdir -p $(MODEL_PLATE_DIR) $(dir $(MODEL_PLATE_OUT))
	$(GO) build -o $(MODEL_PLATE_DIR)/modelctl ./model/internal/modelctl
	$(GO) build -o $(MODEL_PLATE_DIR)/shelfctl ./cmd/shelfctl
	$(MODEL_PLATE_DIR)/shelfctl eval --windows $(MODEL_PLATE_DIR)/train.sgds --duration 4h $(MODEL_PLATE_TRAIN)
	$(MODEL_PLATE_DIR)/modelctl train -q -hidden $(MODEL_PLATE_HIDDEN) -epochs 60 -seed 1 -o $(MODEL_PLATE_DIR)/float.json $(MODEL_PLATE_DIR)/train.sgds
	$(MODEL_PLATE_DIR)/modelctl quantize -f $(MODEL_PLATE_DIR)/float.json -observer percentile -percentile 99.99 -name plates -version 1 -golden 8 -sign-key configs/models/test-signing.key -o $(MODEL_PLATE_OUT) $(MODEL_PLATE_DIR)/train.sgds
	@ls -l $(MODEL_PLATE_OUT); sha256sum $(MODEL_PLATE_OUT)

# Rebuilds the model into tmp and compares it byte for byte with the
# shipped one.
model-check:
	@$(MAKE) --no-print-directory -f $(MODEL_MK) model MODEL_PLATE_OUT=$(MODEL_PLATE_DIR)/rebuilt.sgm
	cmp configs/models/plate.sgm $(MODEL_PLATE_DIR)/rebuilt.sgm && echo "FIGURE model_rebuild_identical=1 unit=bool baseline=1 ratio=1"

# FIGURE lines: every evaluation scenario, analytic, int8 model and the
# float model it was quantized from, 1 h each of simulated time (shelfctl
# eval; JSON in tmp/bench-shelf.json), then the per-change cost of features
# + model inference beside the analytic identifier (Go benchmarks, one
# core). The float model comes from a rebuild into tmp when missing.
bench-shelf:
	@mkdir -p $(MODEL_PLATE_DIR)
	@test -f $(MODEL_PLATE_DIR)/float.json || $(MAKE) --no-print-directory -f $(MODEL_MK) model MODEL_PLATE_OUT=$(MODEL_PLATE_DIR)/rebuilt.sgm
	$(GO) build -o $(MODEL_PLATE_DIR)/shelfctl ./cmd/shelfctl
	$(MODEL_PLATE_DIR)/shelfctl eval --classifier all --model configs/models/plate.sgm --float $(MODEL_PLATE_DIR)/float.json --duration 1h --json $(CURDIR)/tmp/bench-shelf.json $(MODEL_PLATE_EVAL)
	$(GO) test -run '^$$' -bench 'BenchmarkIdentify' -benchmem -cpu 1 -count 1 ./gateway/classify -args -figures

# The evaluation with the HX711's own filter simulated (docs/inference.md,
# "The simulated chip and its filter"; shelfctl eval --chip-filter sinc4):
# every evaluation scenario with the shipped model, then with a model
# trained exactly as `make model` trains, on the training scenarios with the
# filter, into $(MODEL_SINC4_DIR) (not shipped). FIGURE names end in
# _sinc4; JSON in tmp/bench-shelf-sinc4-shipped.json and
# tmp/bench-shelf-sinc4-retrained.json. About 3 minutes.
MODEL_SINC4_DIR ?= $(CURDIR)/tmp/sinc4-model
.PHONY: bench-shelf-sinc4
bench-shelf-sinc4:
	@mkdir -p $(MODEL_PLATE_DIR) $(MODEL_SINC4_DIR)
	@test -f $(MODEL_PLATE_DIR)/float.json || $(MAKE) --no-print-directory -f $(MODEL_MK) model MODEL_PLATE_OUT=$(MODEL_PLATE_DIR)/rebuilt.sgm
	$(GO) build -o $(MODEL_SINC4_DIR)/modelctl ./model/internal/modelctl
	$(GO) build -o $(MODEL_SINC4_DIR)/shelfctl ./cmd/shelfctl
	$(MODEL_SINC4_DIR)/shelfctl eval --chip-filter sinc4 --classifier all --model configs/models/plate.sgm --float $(MODEL_PLATE_DIR)/float.json --duration 1h --json $(CURDIR)/tmp/bench-shelf-sinc4-shipped.json $(MODEL_PLATE_EVAL)
	$(MODEL_SINC4_DIR)/shelfctl eval --chip-filter sinc4 --windows $(MODEL_SINC4_DIR)/train.sgds --duration 4h $(MODEL_PLATE_TRAIN)
	$(MODEL_SINC4_DIR)/modelctl train -q -hidden $(MODEL_PLATE_HIDDEN) -epochs 60 -seed 1 -o $(MODEL_SINC4_DIR)/float.json $(MODEL_SINC4_DIR)/train.sgds
	$(MODEL_SINC4_DIR)/modelctl quantize -f $(MODEL_SINC4_DIR)/float.json -observer percentile -percentile 99.99 -name plates-sinc4 -version 1 -golden 8 -sign-key configs/models/test-signing.key -o $(MODEL_SINC4_DIR)/plate.sgm $(MODEL_SINC4_DIR)/train.sgds
	$(MODEL_SINC4_DIR)/shelfctl eval --chip-filter sinc4 --classifier all --model $(MODEL_SINC4_DIR)/plate.sgm --float $(MODEL_SINC4_DIR)/float.json --duration 1h --json $(CURDIR)/tmp/bench-shelf-sinc4-retrained.json $(MODEL_PLATE_EVAL)

# Bus-level evaluation (docs/inference.md, "Bus-level evaluation"): every
# evaluation scenario through simulated HX711 buses (hx711sim groups, one
# shared clock per plate, loadcell.Group, loadcell.Source) into the same
# chains, beside the direct path on the same slice. FIGURE
# eval_bus_<scenario>_<classifier>_<metric> has the direct path's value as
# baseline (ratio = bus/direct). A 5-minute slice per scenario at
# BUS_SHELF_PERIOD of wall clock per conversion (10 ms: 10× real time at
# 10 samples/s, 1.25× at 80; about 7.5 minutes in all; 5 ms halves it but
# a loaded machine then misses more conversions). JSON in
# tmp/bench-shelf-bus.json.
BUS_SHELF_DURATION ?= 5m
BUS_SHELF_PERIOD ?= 10ms
.PHONY: bench-shelf-bus
bench-shelf-bus:
	@mkdir -p $(MODEL_PLATE_DIR) $(CURDIR)/tmp
	$(GO) build -o $(MODEL_PLATE_DIR)/shelfctl ./cmd/shelfctl
	$(MODEL_PLATE_DIR)/shelfctl eval --bus --bus-glitch --bus-period $(BUS_SHELF_PERIOD) --classifier both --model configs/models/plate.sgm --duration $(BUS_SHELF_DURATION) --json $(CURDIR)/tmp/bench-shelf-bus.json $(MODEL_PLATE_EVAL)
