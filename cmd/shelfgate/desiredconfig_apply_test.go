package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/gateway/uplink"
)

const applyBase = `gateway: {id: gw-1, site: s1}
broker: {urls: [embedded]}
outbox: {path: outbox.db}
uplink: {batch_records: 500, window: 32}
sensors:
  - name: bin1
    bin: shelf-01/bin-01
    sku: SKU-1
    unit_grams: 100
    low_stock: 3
    pins: {clk: GPIO5, data: GPIO6}
    calibration: {offset: 1000, counts_per_gram: 200}
  - name: bin2
    bin: shelf-01/bin-02
    unit_grams: 50
    pins: {clk: GPIO13, data: GPIO19}
    calibration: {offset: 0, counts_per_gram: 100}
log: {level: info}
`

type fakeTuner struct {
	got []uplink.Tuning
	err error
}

func (f *fakeTuner) Tune(t uplink.Tuning) error {
	if f.err != nil {
		return f.err
	}
	f.got = append(f.got, t)
	return nil
}

type fakeBins map[string]shelf.BinTuning

func (f fakeBins) TuneBin(id string, t shelf.BinTuning) error { f[id] = t; return nil }

func parseApply(t *testing.T, s string) *config.Config {
	t.Helper()
	c, err := config.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConfigApplier lists, per change, the fields applied live and the
// ones that need a restart, and checks the live ones reached the uplink,
// the detector and the log level.
func TestConfigApplier(t *testing.T) {
	for _, tc := range []struct {
		name             string
		from, to         string
		applied, restart string
		check            func(t *testing.T, up *fakeTuner, bins fakeBins, level slog.Level)
	}{
		{name: "unchanged", applied: "[]", restart: "[]"},
		{name: "bin thresholds", from: "low_stock: 3", to: "low_stock: 7\n    initial_units: 0", applied: "[sensors[0].low_stock]", restart: "[]",
			check: func(t *testing.T, _ *fakeTuner, bins fakeBins, _ slog.Level) {
				if got := bins["shelf-01/bin-01"]; got != (shelf.BinTuning{SKU: "SKU-1", UnitGrams: 100, LowStockUnits: 7}) {
					t.Errorf("detector got %+v", got)
				}
				if len(bins) != 1 {
					t.Errorf("bins tuned %v, want only bin-01", bins)
				}
			}},
		{name: "unit and sku", from: "sku: SKU-1\n    unit_grams: 100", to: "sku: SKU-9\n    unit_grams: 120", applied: "[sensors[0].sku sensors[0].unit_grams]", restart: "[]"},
		{name: "initial units need a restart", from: "low_stock: 3", to: "low_stock: 3\n    initial_units: 40", applied: "[]", restart: "[sensors[0]]"},
		{name: "pins need a restart", from: "GPIO13", to: "GPIO26", applied: "[]", restart: "[sensors[1]]"},
		{name: "sensors added", from: "  - name: bin2", to: "  - name: bin2\n    type: hx711\n  - name: bin3\n    bin: b3\n    unit_grams: 1\n    pins: {clk: GPIO20, data: GPIO21}\n    calibration: {offset: 0, counts_per_gram: 1}\n  - name: bin4", applied: "[]", restart: "[sensors]"},
		{name: "batching and level", from: "uplink: {batch_records: 500, window: 32}\n", to: "uplink: {batch_records: 50, window: 4, replay_rate: 100, compress: true, ack_timeout: 5s, flush_timeout: 9s}\n",
			applied: "[uplink.batch_records uplink.window uplink.ack_timeout uplink.replay_rate uplink.compress]", restart: "[uplink.flush_timeout]",
			check: func(t *testing.T, up *fakeTuner, _ fakeBins, _ slog.Level) {
				want := uplink.Tuning{BatchRecords: 50, Window: 4, AckTimeout: 5e9, ReplayRate: 100, Compress: true}
				if len(up.got) != 1 || up.got[0] != want {
					t.Errorf("uplink tuned %+v, want %+v", up.got, want)
				}
			}},
		{name: "log level", from: "level: info", to: "level: debug", applied: "[log.level]", restart: "[]",
			check: func(t *testing.T, _ *fakeTuner, _ fakeBins, l slog.Level) {
				if l != slog.LevelDebug {
					t.Errorf("level %v", l)
				}
			}},
		{name: "restart-only sections", from: "broker: {urls: [embedded]}\noutbox: {path: outbox.db}", to: "broker: {urls: [\"tcp://b:1883\"]}\noutbox: {path: other.db}\nmodels: {quiet: 5s}",
			applied: "[]", restart: "[broker outbox models]"},
		{name: "log format", from: "log: {level: info}", to: "log: {level: info, format: json}", applied: "[]", restart: "[log.format]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := parseApply(t, applyBase)
			next := parseApply(t, strings.Replace(applyBase, tc.from, tc.to, 1))
			if tc.from != "" && !strings.Contains(applyBase, tc.from) {
				t.Fatalf("%q not in the base config", tc.from)
			}
			up, bins, level := &fakeTuner{}, fakeBins{}, new(slog.LevelVar)
			a := newConfigApplier(start, level, up, bins)
			applied, restart, err := a.apply(next)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(applied) != tc.applied || fmt.Sprint(restart) != tc.restart {
				t.Errorf("applied %v restart %v, want %s %s", applied, restart, tc.applied, tc.restart)
			}
			if tc.check != nil {
				tc.check(t, up, bins, level.Level())
			}
			// Applied again: nothing new is live, the restart list stays.
			applied, restart2, err := a.apply(next)
			if err != nil || len(applied) != 0 || fmt.Sprint(restart2) != tc.restart {
				t.Errorf("second apply: applied %v restart %v err %v", applied, restart2, err)
			}
		})
	}
}

// TestConfigApplierRefusal: when the uplink refuses its tuning, nothing
// is applied (the log level included) and the next apply tries again.
func TestConfigApplierRefusal(t *testing.T) {
	start := parseApply(t, applyBase)
	next := parseApply(t, strings.NewReplacer("batch_records: 500", "batch_records: 5", "level: info", "level: debug").Replace(applyBase))
	up, level := &fakeTuner{err: errors.New("no")}, new(slog.LevelVar)
	a := newConfigApplier(start, level, up, fakeBins{})
	if _, _, err := a.apply(next); err == nil {
		t.Fatal("no error")
	}
	if level.Level() != slog.LevelInfo {
		t.Errorf("level changed to %v by a refused apply", level.Level())
	}
	up.err = nil
	applied, _, err := a.apply(next)
	if err != nil || fmt.Sprint(applied) != "[log.level uplink.batch_records]" {
		t.Errorf("retry: applied %v err %v", applied, err)
	}
}
