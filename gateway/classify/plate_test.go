package classify

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

var figures = flag.Bool("figures", false, "benchmarks print FIGURE lines")

// testPlate is a 600 × 400 mm plate with four facings of different unit
// weights.
func testPlate() Plate {
	p := Plate{ID: "plate-01", Stream: "loadcell/plate-01", WidthMM: 600, DepthMM: 400}
	for c := range p.Cells {
		p.Cells[c] = gateway.StreamID(fmt.Sprintf("loadcell/plate-01/c%d", c))
	}
	units := []float64{250, 180, 410, 95}
	for f := range 4 {
		p.Facings = append(p.Facings, Facing{SKU: fmt.Sprintf("40000000000%02d", f), UnitGrams: units[f], XMM: (float64(f) + 0.5) * 150, YMM: 200})
	}
	return p
}

// script is a plate's load over time: per 10 Hz sample, grams per cell.
type script struct {
	p     *Plate
	rng   *rand.Rand
	load  [4]float64
	t0    time.Time
	k     int
	noise float64
}

func newScript(p *Plate, seed uint64) *script {
	s := &script{p: p, rng: rand.New(rand.NewPCG(seed, 1)), t0: time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC), noise: 0.3}
	for c := range s.load {
		s.load[c] = 500 // tare and stock
	}
	return s
}

// add moves grams at (x, y) onto (or, negative, off) the plate.
func (s *script) add(grams, x, y float64) {
	for c := range s.load {
		s.load[c] += grams * s.p.share(c, x, y)
	}
}

// samples emits n lockstep samples of the current load plus extra (a hand).
func (s *script) samples(n int, extra func(i int) [4]float64) []gateway.Reading {
	var out []gateway.Reading
	for i := range n {
		var e [4]float64
		if extra != nil {
			e = extra(i)
		}
		t := s.t0.Add(time.Duration(s.k) * 100 * time.Millisecond)
		for c := range 4 {
			out = append(out, gateway.Reading{Stream: s.p.Cells[c], Time: t, Unit: "g", Value: s.load[c] + e[c] + s.noise*s.rng.NormFloat64()})
		}
		s.k++
	}
	return out
}

// visit is a pick of units of facing f: a hand pressing for 1.5 s, then
// the units gone.
func (s *script) visit(f, units int) []gateway.Reading {
	fc := s.p.Facings[f]
	out := s.samples(30, nil)
	out = append(out, s.samples(15, func(i int) [4]float64 {
		var e [4]float64
		for c := range e {
			e[c] = 300 * math.Sin(math.Pi*float64(i)/15) * s.p.share(c, fc.XMM, fc.YMM)
		}
		return e
	})...)
	s.add(-float64(units)*fc.UnitGrams, fc.XMM, fc.YMM+20)
	return append(out, s.samples(30, nil)...)
}

func observeAll(c gateway.Classifier, rs []gateway.Reading) []gateway.Event {
	var out []gateway.Event
	for _, r := range rs {
		out = append(out, c.Observe(r)...)
	}
	return out
}

func newTestDetector(t testing.TB, primary, shadow Identifier, stats *Stats) (*PlateDetector, *Plate) {
	t.Helper()
	d, err := NewPlateDetector(Config{Plates: []Plate{testPlate()}, Rate: 10, Primary: primary, Shadow: shadow, Stats: stats})
	if err != nil {
		t.Fatal(err)
	}
	return d, &d.cfg.Plates[0]
}

func TestAnalyticNamesFacingAndQuantity(t *testing.T) {
	for _, tc := range []struct{ facing, units int }{{0, 1}, {1, 3}, {2, 2}, {3, 4}} {
		t.Run(fmt.Sprintf("facing%d_x%d", tc.facing, tc.units), func(t *testing.T) {
			var st Stats
			d, p := newTestDetector(t, Analytic{}, nil, &st)
			s := newScript(p, uint64(tc.facing))
			s.add(2000, 300, 200)
			rs := s.samples(20, nil)
			rs = append(rs, s.visit(tc.facing, tc.units)...)
			evs := observeAll(d, rs)
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1: %+v", len(evs), evs)
			}
			ev := evs[0]
			inf := ev.Inference
			if ev.Kind != gateway.EventPick || ev.SKU != p.Facings[tc.facing].SKU || ev.Quantity != tc.units || ev.Stream != p.Stream {
				t.Errorf("event %+v, want pick of %d × %s on %s", ev, tc.units, p.Facings[tc.facing].SKU, p.Stream)
			}
			if inf == nil || inf.Plate != "plate-01" || inf.Facing != tc.facing || inf.Action != "pick" || inf.Classifier != "analytic" || inf.Quantity != tc.units || inf.Shadow != nil {
				t.Errorf("inference %+v", inf)
			}
			if got := st.Snapshot(); got.Inferences != 1 || got.Classes[0][tc.facing] != 1 {
				t.Errorf("stats %+v", got)
			}
		})
	}
}

// The four cell streams are committed concurrently, so a cell may deliver
// a batch before the others: the detector must see the same samples.
func TestLockstepAcrossBatches(t *testing.T) {
	d1, p := newTestDetector(t, Analytic{}, nil, nil)
	s := newScript(p, 7)
	s.add(1500, 300, 200)
	rs := append(s.samples(20, nil), s.visit(2, 2)...)
	want := observeAll(d1, rs)
	d2, _ := newTestDetector(t, Analytic{}, nil, nil)
	var got []gateway.Event
	for i := 0; i < len(rs); i += 40 { // batches of 10 samples, cell by cell
		end := min(len(rs), i+40)
		for c := range 4 {
			for j := i + c; j < end; j += 4 {
				got = append(got, d2.Observe(rs[j])...)
			}
		}
	}
	if len(want) != 1 || len(got) != 1 || got[0].SKU != want[0].SKU || got[0].Quantity != want[0].Quantity || !got[0].Time.Equal(want[0].Time) {
		t.Fatalf("batched %+v, interleaved %+v", got, want)
	}
	// Cells stamped a few ms apart (as a Source stamps them), and one
	// reading of cell 2 lost: still one event, the same.
	d3, _ := newTestDetector(t, Analytic{}, nil, nil)
	got = nil
	for i, r := range rs {
		if i == 4*10+2 {
			continue
		}
		r.Time = r.Time.Add(time.Duration(i%4) * 3 * time.Millisecond)
		got = append(got, d3.Observe(r)...)
	}
	if len(got) != 1 || got[0].SKU != want[0].SKU || got[0].Quantity != want[0].Quantity {
		t.Fatalf("jittered %+v, want %+v", got, want)
	}
	if d3.plates[0].misalign != 3 {
		t.Errorf("%d readings dropped for the lost one, want 3", d3.plates[0].misalign)
	}
}

func TestFlaggedReadingsBreakSettling(t *testing.T) {
	d, p := newTestDetector(t, Analytic{}, nil, nil)
	s := newScript(p, 3)
	s.add(1500, 300, 200)
	rs := s.samples(20, nil)
	s.add(-410, 375, 200)
	after := s.samples(30, nil)
	for i := range after {
		after[i].Quality = gateway.QualityStale // a stuck cell: nothing settles
	}
	if evs := observeAll(d, append(rs, after...)); len(evs) != 0 {
		t.Fatalf("events from flagged readings: %+v", evs)
	}
}

func TestNewPlateDetectorErrors(t *testing.T) {
	p := testPlate()
	bad := p
	bad.Facings = []Facing{{SKU: "x", UnitGrams: 0}}
	for name, cfg := range map[string]Config{
		"no plates":   {Rate: 10, Primary: Analytic{}},
		"rate":        {Plates: []Plate{p}, Rate: 0, Primary: Analytic{}},
		"ring rate":   {Plates: []Plate{p}, Rate: 80, RingRate: 30, Primary: Analytic{}},
		"no primary":  {Plates: []Plate{p}, Rate: 10},
		"unit grams":  {Plates: []Plate{bad}, Rate: 10, Primary: Analytic{}},
		"dup streams": {Plates: []Plate{p, p}, Rate: 10, Primary: Analytic{}},
	} {
		if _, err := NewPlateDetector(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ParseMode("neural"); err == nil {
		t.Error("ParseMode accepted neural")
	}
}

// shippedModel loads configs/models/plate.sgm, trusting only the test key.
func shippedModel(t testing.TB) *Loaded {
	t.Helper()
	pub, err := os.ReadFile("../../configs/models/test-signing.pub")
	if err != nil {
		t.Fatal(err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := LoadFile(context.Background(), "../../configs/models/plate.sgm", []ed25519.PublicKey{k})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestModelIdentifierWithShadow(t *testing.T) {
	l := shippedModel(t)
	var st Stats
	d, p := newTestDetector(t, NewModelID(NewHolder(l), 1), Analytic{}, &st)
	s := newScript(p, 11)
	s.add(2000, 300, 200)
	rs := s.samples(20, nil)
	rs = append(rs, s.visit(2, 2)...)
	rs = append(rs, s.visit(0, 1)...)
	evs := observeAll(d, rs)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2: %+v", len(evs), evs)
	}
	for i, want := range []struct{ facing, qty int }{{2, 2}, {0, 1}} {
		inf := evs[i].Inference
		if inf.Classifier != "model" || inf.ModelVersion != l.Version || inf.Facing != want.facing || evs[i].Quantity != want.qty {
			t.Errorf("event %d: inference %+v, want model v%d facing %d qty %d", i, inf, l.Version, want.facing, want.qty)
		}
		if inf.Shadow == nil || inf.Shadow.Classifier != "analytic" || inf.Shadow.Facing != want.facing {
			t.Errorf("event %d: shadow %+v", i, inf.Shadow)
		}
		if evs[i].Confidence <= 0 || evs[i].Confidence > 1 {
			t.Errorf("event %d: confidence %v", i, evs[i].Confidence)
		}
	}
	if got := st.Snapshot(); got.Classes[1][2] != 1 || got.Classes[1][0] != 1 {
		t.Errorf("per-class counts %+v", got.Classes[1])
	}
}

func TestNewLoadedRejectsOtherModels(t *testing.T) {
	l := shippedModel(t)
	m := *l.M
	m.Output.Labels = append([]string(nil), m.Output.Labels...)
	m.Output.Labels[3] = "facing2"
	if _, err := NewLoaded(&m); err == nil {
		t.Error("accepted a label that is no position bin")
	}
	m = *l.M
	m.Input.Names = append([]string(nil), m.Input.Names...)
	m.Input.Names[0] = "s0"
	if _, err := NewLoaded(&m); err == nil {
		t.Error("accepted another window's feature names")
	}
}

// A model update swaps the pointer while plates are being read; under
// -race this shows the readers and the swapper share nothing unguarded.
func TestHolderSwapWhileReading(t *testing.T) {
	l := shippedModel(t)
	l2 := &Loaded{M: l.M, Version: l.Version + 1, binOf: l.binOf}
	h := NewHolder(l)
	plates := []Plate{testPlate(), testPlate()}
	plates[1].ID, plates[1].Stream = "plate-02", "loadcell/plate-02"
	for c := range plates[1].Cells {
		plates[1].Cells[c] = gateway.StreamID(fmt.Sprintf("loadcell/plate-02/c%d", c))
	}
	d, err := NewPlateDetector(Config{Plates: plates, Rate: 10, Primary: NewModelID(h, 2)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	versions := make([][]uint64, 2)
	for pi := range plates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newScript(&d.cfg.Plates[pi], uint64(pi))
			s.add(2000, 300, 200)
			rs := s.samples(20, nil)
			for range 6 {
				rs = append(rs, s.visit(1, 1)...)
			}
			for _, ev := range observeAll(d, rs) {
				versions[pi] = append(versions[pi], ev.Inference.ModelVersion)
			}
		}()
	}
	for range 100 {
		h.Swap(l2)
		h.Swap(l)
	}
	h.Swap(l2)
	wg.Wait()
	for pi, vs := range versions {
		if len(vs) != 6 {
			t.Errorf("plate %d: %d events, want 6", pi, len(vs))
		}
		for _, v := range vs {
			if v != l.Version && v != l2.Version {
				t.Errorf("plate %d: version %d", pi, v)
			}
		}
	}
	if h.Version() != l2.Version {
		t.Errorf("holder serves %d", h.Version())
	}
}

// Steady state allocates nothing: readings that settle no change, and a
// model inference once the plate has its session.
func TestSteadyStateAllocations(t *testing.T) {
	l := shippedModel(t)
	mid := NewModelID(NewHolder(l), 1)
	d, p := newTestDetector(t, mid, nil, nil)
	s := newScript(p, 5)
	s.add(2000, 300, 200)
	observeAll(d, s.samples(50, nil))
	rs := s.samples(100, nil)
	i := 0
	if a := testing.AllocsPerRun(300, func() {
		d.Observe(rs[i%len(rs)])
		i++
	}); a != 0 {
		t.Errorf("Observe: %v allocs per reading", a)
	}
	evs := observeAll(d, s.visit(1, 1))
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ch := d.plates[0].change
	if a := testing.AllocsPerRun(100, func() { mid.Identify(&ch) }); a != 0 {
		t.Errorf("model Identify: %v allocs", a)
	}
	if a := testing.AllocsPerRun(100, func() { Analytic{}.Identify(&ch) }); a != 0 {
		t.Errorf("analytic Identify: %v allocs", a)
	}
}

func benchIdentify(b *testing.B, id func(*Loaded) Identifier) float64 {
	l := shippedModel(b)
	d, p := newTestDetector(b, Analytic{}, nil, nil)
	s := newScript(p, 5)
	s.add(2000, 300, 200)
	observeAll(d, append(s.samples(20, nil), s.visit(1, 2)...))
	ch := d.plates[0].change
	idf := id(l)
	idf.Identify(&ch)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		idf.Identify(&ch)
	}
	return float64(time.Since(start).Nanoseconds()) / float64(b.N)
}

var analyticNs float64

func BenchmarkIdentifyAnalytic(b *testing.B) {
	analyticNs = benchIdentify(b, func(*Loaded) Identifier { return Analytic{} })
	if *figures {
		fmt.Printf("FIGURE identify_analytic_ns=%.0f unit=ns baseline=%.0f ratio=1\n", analyticNs, analyticNs)
	}
}

// BenchmarkIdentifyModel is features + int8 inference per change; the
// baseline is the analytic identifier measured in the same run.
func BenchmarkIdentifyModel(b *testing.B) {
	ns := benchIdentify(b, func(l *Loaded) Identifier { return NewModelID(NewHolder(l), 1) })
	if *figures && analyticNs > 0 {
		fmt.Printf("FIGURE identify_model_ns=%.0f unit=ns baseline=%.0f ratio=%.2f\n", ns, analyticNs, ns/analyticNs)
		fmt.Printf("FIGURE identify_model_budget_ms=%.4f unit=ms baseline=1 ratio=%.4f\n", ns/1e6, ns/1e6)
	}
}

// The gated identifier's cost per change: the model's plus the analytic
// one's, beside the analytic baseline (run after BenchmarkIdentifyAnalytic).
func BenchmarkIdentifyGated(b *testing.B) {
	ns := benchIdentify(b, func(l *Loaded) Identifier { return Gated{Gate: NewModelID(NewHolder(l), 1), Namer: Analytic{}} })
	if *figures && analyticNs > 0 {
		fmt.Printf("FIGURE identify_gated_ns=%.0f unit=ns baseline=%.0f ratio=%.2f\n", ns, analyticNs, ns/analyticNs)
	}
}

// Light facings side by side (peak shift's plate-02: 26.2, 11.8, 11.5,
// 22.3, 12.9 g at 150 mm spacing): 4 × 11.5 g taken from the middle lane
// with a hand's 4 g still in the reading is 3.63 units of it but 1.87 of
// its 22.3 g neighbour. A centre measured within a few mm of the middle
// lane, from a change far above the noise, must win over the quotient;
// the same change seen through heavy noise may not.
func TestAnalyticTrustsAPreciseCentre(t *testing.T) {
	p := Plate{ID: "plate-02", WidthMM: 750, DepthMM: 400}
	for i, u := range []float64{26.2, 11.8, 11.5, 22.3, 12.9} {
		p.Facings = append(p.Facings, Facing{SKU: fmt.Sprintf("sku%d", i), UnitGrams: u, XMM: 75 + 150*float64(i), YMM: 200})
	}
	ch := &Change{Plate: &p, Delta: -41.7, Degraded: -1}
	for c := range ch.After {
		ch.Before[c] = 500
		ch.After[c] = 500 + ch.Delta*p.share(c, 373, 201)
	}
	for _, tc := range []struct {
		sigma float64 // Change.CentreSigma
		want  int
	}{
		{0.006, 2}, // 0.6 g of noise per cell over a 4-sample window
		{0.3, 3},   // a centre that uncertain says little: the quotient decides
	} {
		ch.CentreSigma = tc.sigma
		if r := (Analytic{}).Identify(ch); r.Facing != tc.want {
			t.Errorf("centre σ %.3f: facing %d ×%d (confidence %.2f), want facing %d", tc.sigma, r.Facing, r.Quantity, r.Confidence, tc.want)
		}
	}
}
