package warehouse_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
)

func mustNew(t testing.TB, cfg warehouse.Config) *warehouse.Warehouse {
	t.Helper()
	w, err := warehouse.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w
}

type query struct {
	bin int
	k   int64
}

func randomQueries(seed uint64, bins int, maxK int64, n int) []query {
	r := rand.New(rand.NewPCG(seed, 7))
	qs := make([]query, n)
	for i := range qs {
		qs[i] = query{bin: r.IntN(bins), k: r.Int64N(maxK)}
	}
	return qs
}

func TestDeterministicAcrossCallOrder(t *testing.T) {
	cfg := warehouse.DefaultConfig()
	cfg.Seed = 42
	a, b := mustNew(t, cfg), mustNew(t, cfg)
	bins := len(a.Bins())
	const maxK = 2 * 3600 * 10 // two hours at 10 Hz
	qs := randomQueries(1, bins, maxK, 4000)

	want := make([]int32, len(qs))
	for i, q := range qs {
		want[i] = a.CodeAt(q.bin, q.k)
	}
	// b is asked in reverse order (so it generates late visits first) and
	// from several goroutines at once.
	got := make([]int32, len(qs))
	var wg sync.WaitGroup
	const workers = 4
	for g := range workers {
		wg.Go(func() {
			for i := len(qs) - 1 - g; i >= 0; i -= workers {
				got[i] = b.CodeAt(qs[i].bin, qs[i].k)
			}
		})
	}
	wg.Wait()
	for i := range qs {
		if got[i] != want[i] {
			t.Fatalf("CodeAt(%d, %d): %d in call order, %d in reverse order", qs[i].bin, qs[i].k, want[i], got[i])
		}
	}
	for bin := range bins {
		la, lb := a.Labels(bin, time.Hour), b.Labels(bin, time.Hour)
		if len(la) == 0 || len(la) != len(lb) {
			t.Fatalf("bin %d: %d and %d labels", bin, len(la), len(lb))
		}
		for i := range la {
			if la[i] != lb[i] {
				t.Fatalf("bin %d label %d: %+v != %+v", bin, i, la[i], lb[i])
			}
		}
	}

	cfg.Seed = 43
	c := mustNew(t, cfg)
	same := 0
	for i, q := range qs {
		if c.CodeAt(q.bin, q.k) == want[i] {
			same++
		}
	}
	if same > len(qs)/100 {
		t.Errorf("seeds 42 and 43 agree on %d of %d codes", same, len(qs))
	}
}

func TestLabelsMatchGrams(t *testing.T) {
	cfg := warehouse.DefaultConfig()
	cfg.Seed = 7
	cfg.MaxUnitsPerPick = 6
	w := mustNew(t, cfg)
	const horizon = 3 * time.Hour
	period := w.SampleTime(1)
	kinds := map[string]int{}
	for _, b := range w.Bins() {
		labels := w.Labels(b.Index, horizon)
		if len(labels) < 100 {
			t.Fatalf("bin %s: only %d visits in %v at %g/h", b.ID, len(labels), horizon, cfg.PicksPerBinPerHour)
		}
		units := b.InitialUnits
		disturbed := 0
		for i, l := range labels {
			kinds[l.Kind]++
			if l.Bin != b.Index || l.SKU != b.SKU || (l.Scan != "" && l.Scan != b.SKU) {
				t.Fatalf("bin %s label %d: %+v", b.ID, i, l)
			}
			if d := l.Settled - l.Start; d < time.Second || d > 2*time.Second {
				t.Errorf("bin %s label %d lasts %v", b.ID, i, d)
			}
			if i > 0 && l.Start < labels[i-1].Settled {
				t.Errorf("bin %s label %d starts before the previous one settled", b.ID, i)
			}
			kBefore := int64((l.Start - 1) / period)           // last sample before the hand
			kAfter := int64((l.Settled + period - 1) / period) // first settled sample
			before, after := w.GramsAt(b.Index, kBefore), w.GramsAt(b.Index, kAfter)
			if want := b.TareGrams + float64(units)*b.UnitGrams; math.Abs(before-want) > 1e-9 {
				t.Fatalf("bin %s label %d: %g g before, want %g (%d units)", b.ID, i, before, want, units)
			}
			switch l.Kind {
			case "pick":
				units -= l.Units
			case "put":
				units += l.Units
			default:
				t.Fatalf("bin %s label %d: kind %q", b.ID, i, l.Kind)
			}
			if l.Units < 1 || l.Units > cfg.MaxUnitsPerPick || units < 0 || units > b.Capacity {
				t.Fatalf("bin %s label %d: %s %d leaves %d units (capacity %d)", b.ID, i, l.Kind, l.Units, units, b.Capacity)
			}
			if want := b.TareGrams + float64(units)*b.UnitGrams; math.Abs(after-want) > 1e-9 {
				t.Fatalf("bin %s label %d: %g g after %s %d, want %g", b.ID, i, after, l.Kind, l.Units, want)
			}
			for k := kBefore + 1; k < kAfter; k++ {
				g := w.GramsAt(b.Index, k)
				if g < 0 {
					t.Fatalf("bin %s sample %d: negative load %g", b.ID, k, g)
				}
				if math.Abs(g-before) > 20 && math.Abs(g-after) > 20 {
					disturbed++
					break
				}
			}
		}
		if disturbed < len(labels)/2 {
			t.Errorf("bin %s: only %d of %d visits disturb the weight", b.ID, disturbed, len(labels))
		}
	}
	if kinds["pick"] == 0 || kinds["put"] == 0 || kinds["pick"] < kinds["put"] {
		t.Errorf("visit kinds %v, want mostly picks and some puts", kinds)
	}
}

func TestDefaultConfigVisitsOften(t *testing.T) {
	w := mustNew(t, warehouse.DefaultConfig())
	n := 0
	for _, b := range w.Bins() {
		n += len(w.Labels(b.Index, time.Hour))
	}
	if gap := time.Hour / time.Duration(max(n, 1)); gap > 10*time.Second {
		t.Errorf("%d visits per hour: one every %v, want a pick within ~10 s", n, gap)
	}
}

func TestCellsDoNotSaturate(t *testing.T) {
	for seed := range int64(30) {
		cfg := warehouse.DefaultConfig()
		cfg.Seed = seed
		cfg.Shelves, cfg.BinsPerShelf = 4, 8
		w := mustNew(t, cfg)
		for _, b := range w.Bins() {
			if b.CountsPerGram < 90 || b.CountsPerGram > 430 {
				t.Errorf("seed %d bin %s: %g counts/g", seed, b.ID, b.CountsPerGram)
			}
			if a := math.Abs(float64(b.OffsetCounts)); a < 5000 || a > 100000 {
				t.Errorf("seed %d bin %s: offset %d", seed, b.ID, b.OffsetCounts)
			}
			if b.Capacity < 1 || b.InitialUnits < 0 || b.InitialUnits > b.Capacity {
				t.Errorf("seed %d bin %s: %d of %d units", seed, b.ID, b.InitialUnits, b.Capacity)
			}
			// full bin plus the hardest hand push (3 kg) stays in range
			full := float64(b.OffsetCounts) + b.CountsPerGram*(b.TareGrams+float64(b.Capacity)*b.UnitGrams+3000)
			if full >= float64(warehouse.MaxCode)/2 {
				t.Errorf("seed %d bin %s: full load reads %g counts, too close to %d", seed, b.ID, full, warehouse.MaxCode)
			}
			if b.UnitGrams < 10 || b.UnitGrams > 2300 {
				t.Errorf("seed %d bin %s: unit %g g", seed, b.ID, b.UnitGrams)
			}
			if err := warehouse.ValidEAN13(b.SKU); err != nil {
				t.Errorf("seed %d bin %s: SKU %q: %v", seed, b.ID, b.SKU, err)
			}
		}
	}
}

func TestEAN13(t *testing.T) {
	tests := []struct {
		code string
		ok   bool
	}{
		{"4006381333931", true},
		{"4006381333932", false},
		{"400638133393", false},
		{"40063813339a1", false},
		{"5901234123457", true},
	}
	for _, tt := range tests {
		if err := warehouse.ValidEAN13(tt.code); (err == nil) != tt.ok {
			t.Errorf("ValidEAN13(%q) = %v, want ok=%v", tt.code, err, tt.ok)
		}
	}
}

func TestCustomSKUs(t *testing.T) {
	cfg := warehouse.DefaultConfig()
	cfg.SKUs = []warehouse.SKU{{Code: "4006381333931", Name: "pen", UnitGrams: 12}, {Code: "5901234123457", Name: "jar", UnitGrams: 2000}}
	w := mustNew(t, cfg)
	for _, b := range w.Bins() {
		want := cfg.SKUs[b.Index%2]
		if b.SKU != want.Code || b.UnitGrams != want.UnitGrams {
			t.Errorf("bin %s: %s %g g, want %s %g g", b.ID, b.SKU, b.UnitGrams, want.Code, want.UnitGrams)
		}
	}
	if got := w.Bins()[5].ID; got != "shelf-02/bin-02" {
		t.Errorf("bin 5 ID %q", got)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*warehouse.Config)
		want   string // substring of the error; "" = valid
	}{
		{"default", func(*warehouse.Config) {}, ""},
		{"80 Hz", func(c *warehouse.Config) { c.SampleRate = 80 }, ""},
		{"no visits", func(c *warehouse.Config) { c.PicksPerBinPerHour = 0 }, ""},
		{"no shelves", func(c *warehouse.Config) { c.Shelves = 0 }, "warehouse: shelves: 0 must be between 1 and 64"},
		{"too many bins", func(c *warehouse.Config) { c.BinsPerShelf = 65 }, "bins_per_shelf: 65"},
		{"rate", func(c *warehouse.Config) { c.SampleRate = 20 }, "sample_rate: 20 must be 10 or 80"},
		{"speed", func(c *warehouse.Config) { c.Speed = 0 }, "speed: 0"},
		{"speed NaN", func(c *warehouse.Config) { c.Speed = math.NaN() }, "speed: NaN"},
		{"noise", func(c *warehouse.Config) { c.NoiseGrams = -1 }, "noise_grams: -1"},
		{"drift", func(c *warehouse.Config) { c.DriftGramsPerHour = math.Inf(1) }, "drift_grams_per_hour: +Inf"},
		{"visits", func(c *warehouse.Config) { c.PicksPerBinPerHour = 4000 }, "picks_per_bin_per_hour: 4000"},
		{"units", func(c *warehouse.Config) { c.MaxUnitsPerPick = 0 }, "max_units_per_pick: 0"},
		{"put", func(c *warehouse.Config) { c.PutProbability = 1.5 }, "put_probability: 1.5"},
		{"scan", func(c *warehouse.Config) { c.ScanProbability = -0.1 }, "scan_probability: -0.1"},
		{"sku code", func(c *warehouse.Config) {
			c.SKUs = []warehouse.SKU{{Code: "4006381333932", Name: "x", UnitGrams: 10}}
		}, `skus[0].code: "4006381333932" has check digit 2, want 1`},
		{"sku grams", func(c *warehouse.Config) {
			c.SKUs = []warehouse.SKU{{Code: "4006381333931", Name: "x", UnitGrams: 0}}
		}, "skus[0].unit_grams: 0"},
		{"sku name", func(c *warehouse.Config) {
			c.SKUs = []warehouse.SKU{{Code: "4006381333931", UnitGrams: 5}}
		}, "skus[0].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := warehouse.DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tt.want)
			}
			if _, err := warehouse.New(cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func BenchmarkCodeAt(b *testing.B) {
	w := mustNew(b, warehouse.DefaultConfig())
	bins := int64(len(w.Bins()))
	b.ReportAllocs()
	k := int64(0)
	for b.Loop() {
		w.CodeAt(int(k%bins), k/bins)
		k++
	}
}
