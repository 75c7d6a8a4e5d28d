package warehouse

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestClampCode(t *testing.T) {
	tests := []struct {
		in   float64
		want int32
	}{
		{0, 0},
		{1234.4, 1234},
		{-1234.6, -1235},
		{0x7FFFFF, 0x7FFFFF},
		{0x800000, 0x7FFFFF},
		{1e12, 0x7FFFFF},
		{-0x800000, -0x800000},
		{-0x800001, -0x800000},
		{math.Inf(-1), -0x800000},
	}
	for _, tt := range tests {
		if got := clampCode(tt.in); got != tt.want {
			t.Errorf("clampCode(%g) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

func TestCodeAtSaturates(t *testing.T) {
	w, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	w.bins[0].OffsetCounts = MaxCode - 10
	w.bins[1].OffsetCounts = MinCode
	w.bins[1].CountsPerGram = -w.bins[1].CountsPerGram // a cell wired backwards
	for k := range int64(200) {
		if c := w.CodeAt(0, k); c != MaxCode {
			t.Fatalf("bin 0 sample %d = %#x, want %#x", k, c, MaxCode)
		}
		if c := w.CodeAt(1, k); c != MinCode {
			t.Fatalf("bin 1 sample %d = %#x, want %#x", k, c, MinCode)
		}
	}
}

func TestNoiseIsGaussian(t *testing.T) {
	const n = 200000
	var sum, sq float64
	for k := range uint64(n) {
		g := gaussian(12345, k)
		sum += g
		sq += g * g
	}
	mean, sd := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
	if math.Abs(mean) > 0.01 || math.Abs(sd-1) > 0.01 {
		t.Errorf("noise mean %.4f sd %.4f, want 0 and 1", mean, sd)
	}
}

func TestVisitCacheIsBoundedAndRegenerates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Shelves, cfg.BinsPerShelf = 1, 1
	cfg.PicksPerBinPerHour = 3600
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const hours = 12
	step := int64(cfg.SampleRate) // one query per virtual second
	var want []float64
	for k := int64(0); k < hours*3600*int64(cfg.SampleRate); k += step {
		want = append(want, a.GramsAt(0, k))
	}
	s := a.state[0]
	if s.gen.count < 4*keepVisits {
		t.Fatalf("only %d visits in %d h; the cache was never pruned", s.gen.count, hours)
	}
	if len(s.visits) > 2*keepVisits || len(s.ckpts) != int(s.gen.count/checkpointEvery)+1 {
		t.Fatalf("%d visits generated: %d cached, %d checkpoints", s.gen.count, len(s.visits), len(s.ckpts))
	}

	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		i := r.IntN(len(want))
		for _, w := range []*Warehouse{a, b} { // a answers from its pruned cache
			if got := w.GramsAt(0, int64(i)*step); got != want[i] {
				t.Fatalf("GramsAt(0, %d) = %g out of order, %g in order", int64(i)*step, got, want[i])
			}
		}
	}
	labels := a.Labels(0, hours*time.Hour)
	if int64(len(labels)) < s.gen.count-keepVisits {
		t.Fatalf("%d labels, %d visits generated", len(labels), s.gen.count)
	}
	unit := a.bins[0].UnitGrams
	period := a.SampleTime(1)
	for _, l := range labels[len(labels)/2 : len(labels)/2+50] {
		before := a.GramsAt(0, int64((l.Start-1)/period))
		after := b.GramsAt(0, int64((l.Settled+period-1)/period))
		want := float64(l.Units) * unit
		if l.Kind == "pick" {
			want = -want
		}
		if math.Abs(after-before-want) > 1e-6 {
			t.Fatalf("%+v: %g g before, %g g after", l, before, after)
		}
	}
}
