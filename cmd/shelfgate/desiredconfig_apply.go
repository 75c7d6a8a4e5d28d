package main

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/gateway/uplink"
)

// uplinkTuner changes the uplink's batching while it runs (uplink.Uplink).
type uplinkTuner interface {
	Tune(t uplink.Tuning) error
}

// binTuner changes a bin's thresholds while the detector runs
// (shelf.Detector).
type binTuner interface {
	TuneBin(binID string, t shelf.BinTuning) error
}

var (
	_ uplinkTuner = (*uplink.Uplink)(nil)
	_ binTuner    = (*shelf.Detector)(nil)
)

// liveSettings are the settings a reload or a desired configuration
// changes while the gateway runs; every other field takes effect only
// after a restart.
type liveSettings struct {
	logLevel string
	uplink   uplink.Tuning
	bins     map[string]liveBin // hx711 sensors by bin
}

// liveBin is one hx711 sensor's live thresholds and where it is listed.
type liveBin struct {
	index  int // in the sensors list
	tuning shelf.BinTuning
}

// liveOf reads c's live settings.
func liveOf(c *config.Config) liveSettings {
	u := c.Uplink
	ls := liveSettings{
		logLevel: c.Log.Level,
		uplink:   uplink.Tuning{BatchRecords: u.BatchRecords, Window: u.Window, AckTimeout: u.AckTimeout, ReplayRate: u.ReplayRate, Compress: u.Compress},
		bins:     map[string]liveBin{},
	}
	specs, _ := decodeSensors(c, sensorKinds())
	for i, s := range specs {
		if h, ok := s.conf.(*hx711Config); ok {
			ls.bins[h.Bin] = liveBin{index: i, tuning: shelf.BinTuning{SKU: h.SKU, UnitGrams: h.UnitGrams, LowStockUnits: h.LowStock}}
		}
	}
	return ls
}

// configApplier is the one path by which a new configuration (a SIGHUP's
// file or the cloud's desired configuration) reaches the running gateway:
// it lists the fields that differ from what runs, applies the live ones
// (log level, uplink batching, the load cells' bin thresholds) and names
// the ones that need a restart. Restart-only fields are compared with the
// configuration the gateway started with, so a change still waiting for a
// restart is named again at every apply.
type configApplier struct {
	level *slog.LevelVar
	up    uplinkTuner // nil: no uplink to tune
	bins  binTuner    // nil: no detector

	mu    sync.Mutex
	start *config.Config // what the restart-only fields run
	live  liveSettings   // what the live fields run now
}

// newConfigApplier returns the applier of a gateway started with cfg.
func newConfigApplier(cfg *config.Config, level *slog.LevelVar, up uplinkTuner, bins binTuner) *configApplier {
	return &configApplier{level: level, up: up, bins: bins, start: cfg, live: liveOf(cfg)}
}

// detectorOf returns the chain's settled-weight detector, or nil.
func detectorOf(chain []gateway.Classifier) binTuner {
	for _, c := range chain {
		if d, ok := c.(*shelf.Detector); ok {
			return d
		}
	}
	return nil
}

// apply applies next's live fields and returns the fields it changed
// (applied) and the fields that differ from the running configuration but
// need a restart. An error means nothing was changed.
func (a *configApplier) apply(next *config.Config) (applied, restart []string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	nl := liveOf(next)
	cur := a.live
	if nl.uplink != cur.uplink && a.up != nil {
		if err := a.up.Tune(nl.uplink); err != nil {
			return nil, nil, fmt.Errorf("uplink: %w", err)
		}
	}
	if nl.logLevel != cur.logLevel {
		a.level.Set(parseLevel(nl.logLevel))
		applied = append(applied, "log.level")
	}
	if a.up != nil {
		applied = append(applied, uplinkChanges(cur.uplink, nl.uplink)...)
	} else {
		nl.uplink = cur.uplink
	}
	// A bin the detector watches takes its new thresholds live; a bin
	// added or removed is a sensors change (restart).
	ids := make([]string, 0, len(nl.bins))
	for id := range nl.bins {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		nb, old := nl.bins[id], cur.bins[id]
		if _, running := a.live.bins[id]; !running || nb.tuning == old.tuning || a.bins == nil {
			continue
		}
		if err := a.bins.TuneBin(id, nb.tuning); err != nil {
			continue // not a bin of the detector: reported as a restart below
		}
		path := fmt.Sprintf("sensors[%d].", nb.index)
		if nb.tuning.SKU != old.tuning.SKU {
			applied = append(applied, path+"sku")
		}
		if nb.tuning.UnitGrams != old.tuning.UnitGrams {
			applied = append(applied, path+"unit_grams")
		}
		if nb.tuning.LowStockUnits != old.tuning.LowStockUnits {
			applied = append(applied, path+"low_stock")
		}
		cur.bins[id] = liveBin{index: nb.index, tuning: nb.tuning}
	}
	a.live = liveSettings{logLevel: nl.logLevel, uplink: nl.uplink, bins: cur.bins}
	return applied, restartChanges(a.start, next), nil
}

// uplinkChanges names the live uplink fields that differ.
func uplinkChanges(a, b uplink.Tuning) []string {
	var out []string
	for _, f := range []struct {
		name string
		diff bool
	}{
		{"uplink.batch_records", a.BatchRecords != b.BatchRecords},
		{"uplink.window", a.Window != b.Window},
		{"uplink.ack_timeout", a.AckTimeout != b.AckTimeout},
		{"uplink.replay_rate", a.ReplayRate != b.ReplayRate},
		{"uplink.compress", a.Compress != b.Compress},
	} {
		if f.diff {
			out = append(out, f.name)
		}
	}
	return out
}

// restartChanges lists the fields outside the live set that differ
// between a and b: the sensors, outbox, connection, metrics, models and
// simulation are built once at start.
func restartChanges(a, b *config.Config) []string {
	same := func(x, y any) bool { return reflect.DeepEqual(x, y) }
	var out []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"gateway", same(a.Gateway, b.Gateway)},
		{"broker", same(a.Broker, b.Broker)},
		{"outbox", same(a.Outbox, b.Outbox)},
		{"uplink.flush_timeout", a.Uplink.FlushTimeout == b.Uplink.FlushTimeout},
		{"uplink.ack_mode", a.Uplink.AckMode == b.Uplink.AckMode},
		{"uplink.consumer_ack_timeout", a.Uplink.ConsumerAckTimeout == b.Uplink.ConsumerAckTimeout},
		{"calibration_file", a.CalibrationFile == b.CalibrationFile},
		{"simulation", sameSimulation(a, b)},
		{"metrics", same(a.Metrics, b.Metrics)},
		{"log.format", a.Log.Format == b.Log.Format},
		{"models", same(a.Models, b.Models)},
	} {
		if !f.same {
			out = append(out, f.name)
		}
	}
	return append(out, sensorRestarts(a, b)...)
}

// sensorRestarts names the sensors whose restart-only fields differ (all
// but an hx711's sku, unit_grams and low_stock): "sensors" when the list
// grew or shrank, else "sensors[i]" per changed entry.
func sensorRestarts(a, b *config.Config) []string {
	sa, _ := decodeSensors(a, sensorKinds())
	sb, _ := decodeSensors(b, sensorKinds())
	if len(sa) != len(sb) {
		return []string{"sensors"}
	}
	var out []string
	for i := range sa {
		if sa[i].name != sb[i].name || sa[i].typ != sb[i].typ || !reflect.DeepEqual(restartPart(sa[i].conf), restartPart(sb[i].conf)) {
			out = append(out, fmt.Sprintf("sensors[%d]", i))
		}
	}
	return out
}

// restartPart is a sensor's configuration without its live fields.
func restartPart(c sensorConfig) any {
	if h, ok := c.(*hx711Config); ok {
		m := *h
		m.SKU, m.UnitGrams, m.LowStock = "", 0, 0
		return m
	}
	return c
}
