# Footprint and fleet benchmarks (issue 12). Included by the Makefile.
#
#   make bench-footprint  the real shelfgate binary on the issue's shape: 24
#                         simulated HX711 load cells at 80 samples/s (4 bins
#                         + 5 plates classified by the int8 model), 6
#                         simulated scanners, uplink to mosquitto: RSS, CPU
#                         per million readings, start to first commit, and
#                         the simulators alone in a process of their own
#                         (FIGURE lines, baselines from the same run);
#                         FOOTPRINT_FLAGS="-plates 6 -bins 1" etc. reshape it
#   make bench-statuspage the gateway pipeline (Emit → outbox → mosquitto)
#                         with the status page serving 100 SSE clients (and
#                         10 that never read) vs without the page, A/B
#                         interleaved: e2e readings/s and heap in use
#   make bench-modelpush  a 5 MB signed model pushed over mosquitto to three
#                         gateways (canary first) vs raw QoS1 publishing of
#                         the same bytes: throughput, push to all promoted,
#                         telemetry delivered during the pushes vs without
#   make bench-fleet      shelfsim fleet: FLEET_N simulated gateways against
#                         one mosquitto, a broker restart, a $share audit
#
# FLEET_N defaults to 100, which fits a 2-core machine shared with other
# work; the 500-gateway run of the issue is `make bench-fleet FLEET_N=500`.

FLEET_N ?= 100
FLEET_RATE ?= 20
FLEET_STEADY ?= 20s
FOOTPRINT_WINDOW ?= 30s

.PHONY: bench-footprint bench-fleet bench-statuspage bench-modelpush

bench-footprint:
	$(GO) run ./cmd/shelfbench footprint -window $(FOOTPRINT_WINDOW) $(FOOTPRINT_FLAGS)

bench-fleet:
	$(GO) run ./cmd/shelfsim fleet -n $(FLEET_N) --rate $(FLEET_RATE) --steady $(FLEET_STEADY)

bench-statuspage:
	$(GO) run ./cmd/shelfbench statuspage

bench-modelpush:
	$(GO) run ./cmd/shelfbench modelpush
