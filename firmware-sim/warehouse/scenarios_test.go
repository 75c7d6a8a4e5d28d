package warehouse_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
)

// The shipped scenarios of issue 10: every one has a training and an
// evaluation file of the same name.
var shipped = []string{
	"quiet-shift", "peak-shift", "forklift-lane", "drifting-sensor",
	"faulty-cell", "light-items", "mixed-plate-similar-weights",
}

const scenarioDir = "../../configs/scenarios"

func loadSet(t *testing.T, set string) map[string]warehouse.Config {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(scenarioDir, set, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]warehouse.Config{}
	for _, p := range paths {
		cfg, err := warehouse.LoadScenario(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(p), ".yaml")] = cfg
	}
	return out
}

// TestShippedScenariosRun loads every scenario file and runs it for a
// simulated minute: every sample of every plate cell and bin is computed,
// visits happen and their labels are consistent with the plates.
func TestShippedScenariosRun(t *testing.T) {
	for _, set := range []string{"train", "eval"} {
		cfgs := loadSet(t, set)
		for _, name := range shipped {
			t.Run(set+"/"+name, func(t *testing.T) {
				cfg, ok := cfgs[name]
				if !ok {
					t.Fatalf("%s/%s.yaml missing", set, name)
				}
				if cfg.Plates.Count == 0 {
					t.Fatal("no plates")
				}
				w, err := warehouse.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				n := int64(60 * cfg.SampleRate)
				plates := w.Plates()
				labels := 0
				for p, pl := range plates {
					for k := range n {
						w.PlateCodes(p, k)
					}
					for _, l := range w.PlateLabels(p, time.Minute) {
						labels++
						if l.Plate != p || l.Facing < 0 || l.Facing >= len(pl.Facings) || l.SKU != pl.Facings[l.Facing].SKU {
							t.Errorf("plate %d: label %+v does not match the plate", p, l)
						}
						if l.Units < 1 || (l.Kind != "pick" && l.Kind != "put") || l.Settled <= l.Start || l.Settled > time.Minute {
							t.Errorf("plate %d: bad label %+v", p, l)
						}
					}
				}
				for b := range w.Bins() {
					for k := range n {
						w.CodeAt(b, k)
					}
				}
				if labels == 0 {
					t.Errorf("no plate visit settled in the first minute")
				}
				t.Logf("%d plates, %d visits in a minute", len(plates), labels)
			})
		}
	}
}

// TestScenarioSetsAreDisjoint: evaluation scenarios never reuse a training
// seed, and differ from their training namesake in more than the seed.
func TestScenarioSetsAreDisjoint(t *testing.T) {
	train, eval := loadSet(t, "train"), loadSet(t, "eval")
	if len(train) != len(shipped) || len(eval) != len(shipped) {
		t.Fatalf("%d training and %d evaluation scenarios, want %d each", len(train), len(eval), len(shipped))
	}
	seeds := map[int64]string{}
	for name, c := range train {
		seeds[c.Seed] = name
	}
	for name, e := range eval {
		if tn, ok := seeds[e.Seed]; ok {
			t.Errorf("eval/%s reuses the seed %d of train/%s", name, e.Seed, tn)
		}
		tr := train[name]
		tr.Seed, e.Seed = 0, 0
		if reflect.DeepEqual(tr.Plates, e.Plates) {
			t.Errorf("eval/%s has the plate parameters of train/%s", name, name)
		}
		if tr.NoiseGrams == e.NoiseGrams && tr.DriftGramsPerHour == e.DriftGramsPerHour {
			t.Errorf("eval/%s has the noise and drift of train/%s", name, name)
		}
	}
}

// TestScenarioCharacter checks that each scenario has what its name says.
func TestScenarioCharacter(t *testing.T) {
	for _, set := range []string{"train", "eval"} {
		for name, cfg := range loadSet(t, set) {
			w, err := warehouse.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			pc := cfg.Plates
			var labels []warehouse.PlateLabel
			for p := range w.Plates() {
				labels = append(labels, w.PlateLabels(p, 10*time.Minute)...)
			}
			where := set + "/" + name
			switch name {
			case "quiet-shift":
				if pc.VibrationPerHour != 0 || pc.VisitsPerHour > 60 {
					t.Errorf("%s: not quiet: %+v", where, pc)
				}
			case "peak-shift":
				adj := 0
				for _, l := range labels {
					if l.Adjacent {
						adj++
					}
				}
				if adj < len(labels)/4 {
					t.Errorf("%s: %d of %d visits overlap one on an adjacent plate", where, adj, len(labels))
				}
			case "forklift-lane":
				if len(w.Bursts(10*time.Minute)) < 10 {
					t.Errorf("%s: %d vibration bursts in 10 min", where, len(w.Bursts(10*time.Minute)))
				}
			case "drifting-sensor":
				f := pc.Faults[0]
				k0, k1 := int64(f.From.Seconds()*cfg.SampleRate), int64(600*cfg.SampleRate)
				pl := w.Plates()[f.Plate]
				drift := (float64(w.PlateCodeAt(f.Plate, f.Cell, k1)-w.PlateCodeAt(f.Plate, f.Cell, k0)))/pl.Cells[f.Cell].CountsPerGram -
					(w.PlateGramsAt(f.Plate, f.Cell, k1) - w.PlateGramsAt(f.Plate, f.Cell, k0))
				if f.Kind != warehouse.FaultDrift || drift < f.Grams/6/2 {
					t.Errorf("%s: drifting cell moved %.1f g beyond its load in 10 min (fault %+v)", where, drift, f)
				}
			case "faulty-cell":
				for _, f := range pc.Faults {
					if f.Kind != warehouse.FaultStuck {
						continue
					}
					k := int64(f.From.Seconds() * cfg.SampleRate)
					a, b := w.PlateCodeAt(f.Plate, f.Cell, k), w.PlateCodeAt(f.Plate, f.Cell, k+int64(5*cfg.SampleRate))
					if a != b {
						t.Errorf("%s: stuck cell reads %d then %d", where, a, b)
					}
				}
				if len(pc.Faults) < 3 {
					t.Errorf("%s: %d faults", where, len(pc.Faults))
				}
			case "light-items":
				if cfg.SampleRate != 80 {
					t.Errorf("%s: %v samples/s, want 80", where, cfg.SampleRate)
				}
				for _, pl := range w.Plates() {
					for _, f := range pl.Facings {
						if f.UnitGrams < 10 || f.UnitGrams > 30 {
							t.Errorf("%s: facing of %.1f g", where, f.UnitGrams)
						}
					}
				}
			case "mixed-plate-similar-weights":
				for _, pl := range w.Plates() {
					lo, hi := pl.Facings[0].UnitGrams, pl.Facings[0].UnitGrams
					for _, f := range pl.Facings {
						lo, hi = min(lo, f.UnitGrams), max(hi, f.UnitGrams)
					}
					if hi/lo > 1.2 || len(pl.Facings) < 5 {
						t.Errorf("%s: %d facings from %.0f to %.0f g", where, len(pl.Facings), lo, hi)
					}
				}
			default:
				t.Errorf("%s: not a shipped scenario", where)
			}
		}
	}
}
