package shelf_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/shelf"
)

const stream = gateway.StreamID("loadcell/shelf-01/bin-01")

var epoch = time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)

// seq builds a synthetic 10 Hz sequence of gram values for one bin.
type seq struct {
	rng    *rand.Rand
	noise  float64
	values []float64
	flags  []gateway.Quality
}

func newSeq(noise float64) *seq { return &seq{rng: rand.New(rand.NewPCG(1, 2)), noise: noise} }

// level appends n samples at grams plus gaussian noise.
func (s *seq) level(grams float64, n int) *seq {
	for range n {
		s.values = append(s.values, grams+s.noise*s.rng.NormFloat64())
		s.flags = append(s.flags, 0)
	}
	return s
}

// raw appends the given samples as they are.
func (s *seq) raw(vs ...float64) *seq {
	for _, v := range vs {
		s.values = append(s.values, v)
		s.flags = append(s.flags, 0)
	}
	return s
}

// flagged appends n samples at grams with quality q.
func (s *seq) flagged(grams float64, n int, q gateway.Quality) *seq {
	for range n {
		s.values = append(s.values, grams)
		s.flags = append(s.flags, q)
	}
	return s
}

func run(t *testing.T, d *shelf.Detector, s *seq) []gateway.Event {
	t.Helper()
	var out []gateway.Event
	for i, v := range s.values {
		r := gateway.Reading{Stream: stream, Time: epoch.Add(time.Duration(i) * 100 * time.Millisecond), Value: v, Unit: "g", Quality: s.flags[i]}
		out = append(out, d.Observe(r)...)
	}
	return out
}

func oneBin(initial, low int) shelf.Config {
	return shelf.Config{Bins: []shelf.Bin{{
		Stream: stream, ID: "shelf-01/bin-01", SKU: "4006381333931",
		UnitGrams: 100, LowStockUnits: low, InitialUnits: initial,
	}}}
}

type want struct {
	kind gateway.EventKind
	qty  int
}

func TestObserve(t *testing.T) {
	hand := []float64{1180, 930, 1240, 760, 1090} // a picker's hand in the bin
	tests := []struct {
		name      string
		cfg       shelf.Config
		seq       *seq
		want      []want
		wantStock int
	}{
		{"noise only", oneBin(10, 0), newSeq(1).level(1000, 300), nil, 10},
		{"first level only initialises", oneBin(10, 0), newSeq(0.5).level(4321, 50), nil, 10},
		{"pick of 3", oneBin(10, 0), newSeq(1).level(1000, 20).raw(hand...).level(700, 20),
			[]want{{gateway.EventPick, 3}}, 7},
		{"put of 2", oneBin(10, 0), newSeq(1).level(1000, 20).raw(hand...).level(1200, 20),
			[]want{{gateway.EventPut, 2}}, 12},
		{"spike returns to the same level", oneBin(10, 0), newSeq(1).level(1000, 20).raw(1500, 300, 1400, 1200).level(1000, 20), nil, 10},
		{"change below half a unit", oneBin(10, 0), newSeq(0.5).level(1000, 20).level(960, 20).level(1000, 20), nil, 10},
		{"slow drift is followed", oneBin(10, 0), drift(1000, 80, 400), nil, 10},
		{"low stock crossing", oneBin(5, 2),
			newSeq(1).level(500, 20).raw(hand...).
				level(300, 20).raw(hand...). // pick 2: stock 3
				level(200, 20).raw(hand...). // pick 1: stock 2, low
				level(100, 20).raw(hand...). // pick 1: stock 1, still low
				level(400, 20).raw(hand...). // put 3: stock 4, re-armed
				level(200, 20),              // pick 2: stock 2, low again
			[]want{{gateway.EventPick, 2}, {gateway.EventPick, 1}, {gateway.EventLowStock, 2}, {gateway.EventPick, 1},
				{gateway.EventPut, 3}, {gateway.EventPick, 2}, {gateway.EventLowStock, 2}}, 2},
		{"stock does not go negative", oneBin(1, 0), newSeq(1).level(500, 20).raw(hand...).level(200, 20),
			[]want{{gateway.EventPick, 3}, {gateway.EventLowStock, 0}}, 0},
		{"flagged readings do not settle", oneBin(10, 0),
			newSeq(1).level(1000, 20).flagged(700, 30, gateway.QualitySaturated).raw(700, 700, 700, 700).flagged(700, 1, gateway.QualityStale).raw(700, 700, 700, 700),
			nil, 10},
		{"good readings after flagged ones settle", oneBin(10, 0),
			newSeq(1).level(1000, 20).flagged(700, 30, gateway.QualitySaturated).level(700, 5),
			[]want{{gateway.EventPick, 3}}, 7},
		{"wider window rides out a slow hand", shelf.Config{Bins: oneBin(10, 0).Bins, WindowSamples: 10},
			newSeq(0.5).level(1000, 20).raw(1000, 1001, 1002, 1002, 1001, 1000, 1000).level(700, 20),
			[]want{{gateway.EventPick, 3}}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := shelf.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, d, tt.seq)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %+v, want %v", len(got), got, tt.want)
			}
			for i, ev := range got {
				if ev.Kind != tt.want[i].kind || ev.Quantity != tt.want[i].qty {
					t.Errorf("event %d: %s %d, want %s %d", i, ev.Kind, ev.Quantity, tt.want[i].kind, tt.want[i].qty)
				}
				if ev.Stream != stream || ev.Bin != "shelf-01/bin-01" || ev.SKU != "4006381333931" || ev.Time.Before(epoch) {
					t.Errorf("event %d: %+v", i, ev)
				}
				if ev.Kind == gateway.EventPick || ev.Kind == gateway.EventPut {
					if sign := math.Copysign(1, ev.DeltaGrams); (ev.Kind == gateway.EventPick) != (sign < 0) ||
						math.Abs(math.Abs(ev.DeltaGrams)-100*float64(ev.Quantity)) > 5 {
						t.Errorf("event %d: %s %d with delta %g g", i, ev.Kind, ev.Quantity, ev.DeltaGrams)
					}
					if ev.Confidence < 0.9 || ev.Confidence > 1 {
						t.Errorf("event %d: confidence %g", i, ev.Confidence)
					}
				}
			}
			if got, ok := d.Stock("shelf-01/bin-01"); !ok || got != tt.wantStock {
				t.Errorf("Stock = %d, %v; want %d", got, ok, tt.wantStock)
			}
		})
	}
}

// drift returns n samples rising linearly from start by total grams.
func drift(start, total float64, n int) *seq {
	s := newSeq(0.3)
	for i := range n {
		s.level(start+total*float64(i)/float64(n), 1)
	}
	return s
}

func TestAutoToleranceFollowsNoise(t *testing.T) {
	light := shelf.Config{Bins: []shelf.Bin{{Stream: stream, ID: "shelf-01/bin-01", UnitGrams: 12, InitialUnits: 40}}}
	hand := []float64{1100, 960, 1150, 900, 1010}
	tests := []struct {
		name      string
		tolerance float64
		seq       *seq
		want      []want
	}{
		// 4 g noise on 12 g units: a 3 g unit-based tolerance would almost
		// never see the bin settle.
		{"pick on a noisy cell", 0, newSeq(4).level(1000, 300).raw(hand...).level(952, 100), []want{{gateway.EventPick, 4}}},
		{"noise alone", 0, newSeq(4).level(1000, 3000), nil},
		{"explicit tolerance is kept", 3, newSeq(4).level(1000, 300).raw(hand...).level(952, 100), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := light
			cfg.SettleToleranceGrams = tt.tolerance
			d, err := shelf.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, d, tt.seq)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %+v, want %v", len(got), got, tt.want)
			}
			for i, ev := range got {
				if ev.Kind != tt.want[i].kind || ev.Quantity != tt.want[i].qty {
					t.Errorf("event %d: %s %d, want %s %d", i, ev.Kind, ev.Quantity, tt.want[i].kind, tt.want[i].qty)
				}
			}
		})
	}
}

func TestEventTimeAndConfidence(t *testing.T) {
	tests := []struct {
		to       float64
		kind     gateway.EventKind
		qty      int
		conf     float64
		settledK int // index of the reading that completes the settled window
	}{
		{700, gateway.EventPick, 3, 1, 24},
		{780, gateway.EventPick, 2, 0.6, 24},
		{1310, gateway.EventPut, 3, 0.8, 24},
		{1340, gateway.EventPut, 3, 0.2, 24},
		{1049, gateway.EventPut, 0, 0, -1}, // below MinChangeUnits: nothing
	}
	for _, tt := range tests {
		d, err := shelf.New(oneBin(10, 0))
		if err != nil {
			t.Fatal(err)
		}
		got := run(t, d, newSeq(0).level(1000, 20).level(tt.to, 20))
		if tt.settledK < 0 {
			if len(got) != 0 {
				t.Errorf("1000 -> %g g: %+v, want no event", tt.to, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Fatalf("1000 -> %g g: %+v, want one event", tt.to, got)
		}
		ev := got[0]
		if ev.Kind != tt.kind || ev.Quantity != tt.qty || math.Abs(ev.Confidence-tt.conf) > 1e-9 ||
			math.Abs(ev.DeltaGrams-(tt.to-1000)) > 1e-9 || !ev.Time.Equal(epoch.Add(time.Duration(tt.settledK)*100*time.Millisecond)) {
			t.Errorf("1000 -> %g g: %+v, want %s %d confidence %g at sample %d", tt.to, ev, tt.kind, tt.qty, tt.conf, tt.settledK)
		}
	}
}

func TestUnknownStreamIgnored(t *testing.T) {
	d, err := shelf.New(oneBin(10, 0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		v := 1000.0
		if i >= 50 {
			v = 500
		}
		if evs := d.Observe(gateway.Reading{Stream: "loadcell/other", Time: epoch, Value: v}); evs != nil {
			t.Fatalf("events for an unknown stream: %+v", evs)
		}
	}
	if _, ok := d.Stock("shelf-09/bin-09"); ok {
		t.Error("Stock of an unknown bin reported ok")
	}
}

func TestNewValidates(t *testing.T) {
	good := oneBin(10, 2).Bins[0]
	tests := []struct {
		name   string
		modify func(*shelf.Config)
		want   string
	}{
		{"defaults", func(*shelf.Config) {}, ""},
		{"no bins", func(c *shelf.Config) { c.Bins = nil }, "shelf: bins: none configured"},
		{"window", func(c *shelf.Config) { c.WindowSamples = 1 }, "shelf: window_samples: 1 must be between 2 and 1024"},
		{"tolerance", func(c *shelf.Config) { c.SettleToleranceGrams = -1 }, "settle_tolerance_grams: -1"},
		{"min change", func(c *shelf.Config) { c.MinChangeUnits = math.NaN() }, "min_change_units: NaN"},
		{"unit", func(c *shelf.Config) { c.Bins[0].UnitGrams = 0 }, "bins[0].unit_grams: 0 must be > 0"},
		{"stream", func(c *shelf.Config) { c.Bins[0].Stream = "" }, "bins[0].stream: empty"},
		{"duplicate stream", func(c *shelf.Config) {
			b := good
			b.ID = "other"
			c.Bins = append(c.Bins, b)
		}, `bins[1].stream: "loadcell/shelf-01/bin-01" already used by bins[0]`},
		{"duplicate id", func(c *shelf.Config) {
			b := good
			b.Stream = "other"
			c.Bins = append(c.Bins, b)
		}, `bins[1].id: "shelf-01/bin-01" already used by bins[0]`},
		{"low stock", func(c *shelf.Config) { c.Bins[0].LowStockUnits = -1 }, "bins[0].low_stock_units: -1"},
		{"initial", func(c *shelf.Config) { c.Bins[0].InitialUnits = -3 }, "bins[0].initial_units: -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := shelf.Config{Bins: []shelf.Bin{good}}
			tt.modify(&cfg)
			d, err := shelf.New(cfg)
			if tt.want == "" {
				if err != nil || d == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	d, err := shelf.New(oneBin(10, 0))
	if err != nil {
		t.Fatal(err)
	}
	s := newSeq(1).level(1000, 1000)
	i := 0
	allocs := testing.AllocsPerRun(500, func() {
		if d.Observe(gateway.Reading{Stream: stream, Time: epoch, Value: s.values[i%len(s.values)]}) != nil {
			t.Fatal("event on a quiet bin")
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("Observe allocates %g times per reading", allocs)
	}
}

func BenchmarkObserve(b *testing.B) {
	var cfg shelf.Config
	streams := make([]gateway.StreamID, 8)
	for i := range streams {
		streams[i] = gateway.StreamID("loadcell/shelf-01/bin-0" + string(rune('1'+i)))
		cfg.Bins = append(cfg.Bins, shelf.Bin{Stream: streams[i], ID: string(streams[i]), UnitGrams: 100, InitialUnits: 10})
	}
	d, err := shelf.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := newSeq(1).level(1000, 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Observe(gateway.Reading{Stream: streams[i&7], Time: epoch, Value: s.values[i&4095], Unit: "g"})
		i++
	}
}
