package warehouse

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// binDigest hashes the bins' description, a sample of their codes over an
// hour and their labels.
func binDigest(t *testing.T, cfg Config) string {
	t.Helper()
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for bin, b := range w.Bins() {
		fmt.Fprintf(h, "%+v\n", b)
		for k := int64(0); k < 36000; k += 7 {
			binary.Write(h, binary.LittleEndian, w.CodeAt(bin, k))
		}
		for _, l := range w.Labels(bin, time.Hour) {
			fmt.Fprintf(h, "%+v\n", l)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestBinsUnchangedByPlates pins the bins' output to the digests taken
// before plates existed, with and without plates in the scenario.
func TestBinsUnchangedByPlates(t *testing.T) {
	fast := DefaultConfig()
	fast.SampleRate, fast.Seed = 80, 7
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{DefaultConfig(), "a39c175ce3717266df6c6e6cb6b5b4c38b0a1cc9de658ea3bcf60fe1e8375fcb"},
		{fast, "6e02f11224d7a7ae67442b5f71adf9b3c3d64efcb57d045e4052b3594167fff1"},
	} {
		if got := binDigest(t, c.cfg); got != c.want {
			t.Errorf("bins at %v Hz seed %d: digest %s, want %s", c.cfg.SampleRate, c.cfg.Seed, got, c.want)
		}
		c.cfg.Plates = DefaultPlateConfig()
		if got := binDigest(t, c.cfg); got != c.want {
			t.Errorf("bins with plates at %v Hz: digest %s, want %s", c.cfg.SampleRate, got, c.want)
		}
	}
}

func plateConfig() Config {
	c := DefaultConfig()
	c.Plates = DefaultPlateConfig()
	return c
}

func newPlates(t *testing.T, c Config) *Warehouse {
	t.Helper()
	w, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPlateLoadsSplitBilinearly: at rest the four cells carry the tare and
// every facing's stock by the bilinear shares of its position, and a
// visit's change of load divides over the cells by its facing's position,
// adds up to the label's grams, and is Units units of about UnitGrams.
func TestPlateLoadsSplitBilinearly(t *testing.T) {
	w := newPlates(t, plateConfig())
	plates := w.Plates()
	if len(plates) != 4 || len(plates[0].Facings) != 4 {
		t.Fatalf("%d plates, %d facings", len(plates), len(plates[0].Facings))
	}
	spread := plateConfig().Plates.UnitSpread
	n := 0
	for p, pl := range plates {
		for _, l := range w.PlateLabels(p, 2*time.Hour) {
			k0 := int64(l.Start.Seconds()*10) - 1
			k1 := int64(l.Settled.Seconds()*10) + 2
			var total float64
			for c := 0; c < 4; c++ {
				d := w.PlateGramsAt(p, c, k1) - w.PlateGramsAt(p, c, k0)
				if want := l.Grams * pl.Share(c, l.XMM, l.YMM); math.Abs(d-want) > 1e-6 {
					t.Fatalf("plate %d visit at %v: cell %d changed %.4f g, bilinear share %.4f g", p, l.Start, c, d, want)
				}
				total += d
			}
			if math.Abs(total-l.Grams) > 1e-6 {
				t.Fatalf("cells changed %.4f g in total, label says %.4f", total, l.Grams)
			}
			unit := pl.Facings[l.Facing].UnitGrams
			per := math.Abs(l.Grams) / float64(l.Units)
			if l.Units < 1 || per < unit*(1-spread)-1e-9 || per > unit*(1+spread)+1e-9 || (l.Kind == "pick") != (l.Grams < 0) {
				t.Fatalf("%s of %d units moved %.2f g, unit %.2f g ± %.0f%%", l.Kind, l.Units, l.Grams, unit, 100*spread)
			}
			if l.SKU != pl.Facings[l.Facing].SKU || l.XMM != pl.Facings[l.Facing].XMM || l.Settled-l.Start < time.Second {
				t.Fatalf("label %+v does not match facing %+v", l, pl.Facings[l.Facing])
			}
			n++
		}
	}
	if n < 200 {
		t.Fatalf("%d visits on 4 plates in 2 h at 90 per plate per hour", n)
	}
	// Corners: the front-left cell carries all of a load in its corner.
	pl := plates[0]
	for c, want := range []float64{1, 0, 0, 0} {
		if got := pl.Share(c, 0, 0); got != want {
			t.Errorf("share of cell %d at the front-left corner = %v", c, got)
		}
	}
}

// TestPlatesDeterministicAcrossCallOrder: two engines from one config agree
// sample for sample whatever order the samples are asked in, across
// checkpoints and the epoch cache.
func TestPlatesDeterministicAcrossCallOrder(t *testing.T) {
	c := plateConfig()
	a, b := newPlates(t, c), newPlates(t, c)
	ks := []int64{0, 1, 599, 600, 601, 38399, 38400, 100000, 250000}
	want := map[[2]int64][4]int32{}
	for _, k := range ks {
		for p := 0; p < 4; p++ {
			want[[2]int64{int64(p), k}] = a.PlateCodes(p, k)
		}
	}
	for i := len(ks) - 1; i >= 0; i-- {
		for p := 3; p >= 0; p-- {
			if got := b.PlateCodes(p, ks[i]); got != want[[2]int64{int64(p), ks[i]}] {
				t.Fatalf("plate %d sample %d: %v backwards, %v forwards", p, ks[i], got, want[[2]int64{int64(p), ks[i]}])
			}
		}
	}
	la, lb := a.PlateLabels(2, 3*time.Hour), b.PlateLabels(2, 3*time.Hour)
	if len(la) == 0 || fmt.Sprint(la) != fmt.Sprint(lb) {
		t.Fatalf("labels differ: %d and %d", len(la), len(lb))
	}
	c.Seed++
	if o := newPlates(t, c); fmt.Sprint(o.PlateLabels(2, time.Hour)) == fmt.Sprint(a.PlateLabels(2, time.Hour)) {
		t.Fatal("another seed gave the same visits")
	}
}

// TestPlateDisturbances: adjacent visits overlap a visit on a neighbouring
// plate, leaning visits exist, vibration bursts move the codes beyond the
// noise, and the temperature cycle drifts the zero.
func TestPlateDisturbances(t *testing.T) {
	c := plateConfig()
	c.Plates.AdjacentProbability, c.Plates.LeanProbability, c.Plates.VibrationPerHour = 0.5, 0.3, 30
	c.NoiseGrams = 0.5
	w := newPlates(t, c)
	labels := make([][]PlateLabel, 4)
	for p := range labels {
		labels[p] = w.PlateLabels(p, 2*time.Hour)
	}
	adjacent, lean := 0, 0
	for p, ls := range labels {
		for _, l := range ls {
			if l.Lean {
				lean++
			}
			if !l.Adjacent {
				continue
			}
			adjacent++
			found := false
			for _, q := range []int{p - 1, p + 1} {
				if q < 0 || q >= 4 {
					continue
				}
				for _, o := range labels[q] {
					if o.Adjacent && o.Start < l.Settled && l.Start < o.Settled {
						found = true
					}
				}
			}
			if !found {
				t.Fatalf("plate %d visit at %v is marked adjacent but overlaps no neighbour", p, l.Start)
			}
		}
	}
	if adjacent == 0 || lean == 0 {
		t.Fatalf("%d adjacent and %d leaning visits", adjacent, lean)
	}
	bursts := w.Bursts(2 * time.Hour)
	if len(bursts) < 20 {
		t.Fatalf("%d bursts in 2 h at 30 per hour", len(bursts))
	}
	// Inside a burst the code departs from the true load by far more than
	// the noise; PlateGramsAt has no vibration.
	pl := w.Plates()[1]
	worst := 0.0
	b := bursts[len(bursts)/2]
	for k := int64(b.Start.Seconds()*10) + 1; k < int64(b.End.Seconds()*10); k++ {
		g := float64(w.PlateCodeAt(1, 0, k)-pl.Cells[0].OffsetCounts) / pl.Cells[0].CountsPerGram
		worst = max(worst, math.Abs(g-w.PlateGramsAt(1, 0, k)))
	}
	if worst < 5 {
		t.Fatalf("burst of %.1f g moved the cell by at most %.2f g", b.Grams, worst)
	}
}

func TestPlateLightItemsAnd80Hz(t *testing.T) {
	c := plateConfig()
	c.SampleRate = 80
	c.Plates.LightShare = 1
	w := newPlates(t, c)
	for _, pl := range w.Plates() {
		for _, f := range pl.Facings {
			if f.UnitGrams < 10 || f.UnitGrams > 31.5 {
				t.Fatalf("light facing of %.1f g", f.UnitGrams)
			}
		}
	}
	ls := w.PlateLabels(0, time.Hour)
	if len(ls) == 0 {
		t.Fatal("no visits")
	}
	l := ls[0]
	k0, k1 := int64(l.Start.Seconds()*80)-1, int64(l.Settled.Seconds()*80)+2
	var d float64
	for cell := 0; cell < 4; cell++ {
		d += w.PlateGramsAt(0, cell, k1) - w.PlateGramsAt(0, cell, k0)
	}
	if math.Abs(d-l.Grams) > 1e-6 || math.Abs(l.Grams) > 31.5*float64(l.Units)*1.03 {
		t.Fatalf("80 Hz visit moved %.3f g, label %.3f g", d, l.Grams)
	}
}

func TestPlateValidate(t *testing.T) {
	c := plateConfig()
	c.Plates.Facings = 0
	c.Plates.UnitSpread = math.NaN()
	c.Plates.WidthMM = 50
	c.Plates.ChipFilter = "sinc3"
	err := c.Validate()
	for _, want := range []string{"plates.facings: 0", "plates.unit_spread: NaN", "plates.width_mm: 50", `plates.chip_filter: "sinc3"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	w := newPlates(t, DefaultConfig())
	if w.Plates() != nil || w.Bursts(time.Hour) != nil {
		t.Fatal("plates without plates configured")
	}
}

// The sinc⁴ filter's step response: nothing of a step at its instant,
// half two periods later, all of it four periods later; a constant load
// passes unchanged.
func TestChipSinc4Step(t *testing.T) {
	const period = 100 * time.Millisecond
	at := 10 * time.Second
	step := func(t time.Duration) float64 {
		if t < at {
			return 20
		}
		return 120
	}
	for _, tc := range []struct {
		after time.Duration
		want  float64
	}{
		{0, 20},
		{period, 20 + 100.0/24}, // the B-spline's first period holds 1/24 of its weight
		{2 * period, 70},        // symmetric: half
		{3 * period, 120 - 100.0/24},
		{4 * period, 120},
		{10 * period, 120},
	} {
		if got := chipSinc4(at+tc.after, period, step); math.Abs(got-tc.want) > 0.3 {
			t.Errorf("%v after the step: %.3f g, want %.3f", tc.after, got, tc.want)
		}
	}
	if got := chipSinc4(0, period, func(time.Duration) float64 { return 7 }); got != 7 {
		t.Errorf("constant 7 g at time 0: %v", got)
	}
}

// With chip_filter sinc4 a forklift burst is all but gone at 10
// samples/s (the filter's nulls are at multiples of the rate, the 8–15 Hz
// bursts near the first) and passes at 80; a visit's step reaches the
// code four periods after the load settled.
func TestPlateChipFilterSinc4(t *testing.T) {
	worst := func(rate float64, filter string) (float64, Burst) {
		c := plateConfig()
		c.SampleRate = rate
		c.Plates.VibrationPerHour, c.Plates.VisitsPerHour, c.Plates.TempDriftGrams = 60, 0, 0
		c.NoiseGrams, c.DriftGramsPerHour = 0, 0
		c.Plates.ChipFilter = filter
		w := newPlates(t, c)
		bursts := w.Bursts(time.Hour)
		if len(bursts) == 0 {
			t.Fatal("no bursts")
		}
		b := bursts[len(bursts)/2]
		pl := w.Plates()[0]
		var dev float64
		for k := int64(b.Start.Seconds() * rate); k < int64(b.End.Seconds()*rate)+1; k++ {
			g := float64(w.PlateCodeAt(0, 0, k)-pl.Cells[0].OffsetCounts) / pl.Cells[0].CountsPerGram
			dev = max(dev, math.Abs(g-w.PlateGramsAt(0, 0, k)))
		}
		return dev, b
	}
	raw10, b := worst(10, "")
	filt10, _ := worst(10, ChipFilterSinc4)
	if raw10 < 5 || filt10 > raw10/50 {
		t.Errorf("10 samples/s, %.1f Hz burst of %.0f g: the cell moved %.3f g unfiltered, %.3f g through sinc4", b.FreqHz, b.Grams, raw10, filt10)
	}
	raw80, b := worst(80, "none")
	filt80, _ := worst(80, ChipFilterSinc4)
	if raw80 < 5 || filt80 < raw80/2 {
		t.Errorf("80 samples/s, %.1f Hz burst of %.0f g: the cell moved %.3f g unfiltered, only %.3f g through sinc4", b.FreqHz, b.Grams, raw80, filt80)
	}

	c := plateConfig()
	c.NoiseGrams, c.DriftGramsPerHour, c.Plates.TempDriftGrams, c.Plates.VibrationPerHour = 0, 0, 0, 0
	c.Plates.ChipFilter = ChipFilterSinc4
	w := newPlates(t, c)
	l := w.PlateLabels(0, time.Hour)[0]
	pl := w.Plates()[0]
	total := func(k int64) (g float64) {
		for cell := range 4 {
			g += float64(w.PlateCodeAt(0, cell, k)-pl.Cells[cell].OffsetCounts) / pl.Cells[cell].CountsPerGram
		}
		return g
	}
	settled := int64(math.Ceil(l.Settled.Seconds() * 10))
	before := total(int64(l.Start.Seconds()*10) - 1)
	if d := total(settled+4) - before; math.Abs(d-l.Grams) > 0.05*math.Abs(l.Grams)+0.5 {
		t.Errorf("four periods after the visit settled the codes moved %.2f g, the visit %.2f g", d, l.Grams)
	}
}
