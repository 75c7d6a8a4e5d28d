package features

import (
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// TestExtractByHand checks the window definition on inputs small enough to
// work out on paper: alignment, base, scale, edge padding, cell order.
func TestExtractByHand(t *testing.T) {
	ramp := []float64{100, 101, 103, 106, 110, 115}
	for _, c := range []struct {
		name   string
		w      Window
		cells  [][]float64
		anchor int
		scale  float64
		want   []float32
	}{
		{"inside", Window{1, 3, 1, 10}, [][]float64{ramp}, 2, 1, []float32{0, 2, 5}},
		{"scaled", Window{1, 3, 1, 10}, [][]float64{ramp}, 2, 2, []float32{0, 1, 2.5}},
		{"pre 0", Window{1, 2, 0, 10}, [][]float64{ramp}, 4, 1, []float32{0, 5}},
		{"pad before start", Window{1, 4, 2, 10}, [][]float64{ramp}, 0, 1, []float32{0, 0, 0, 1}},
		{"pad after end", Window{1, 4, 1, 10}, [][]float64{ramp}, 5, 1, []float32{0, 5, 5, 5}},
		{"anchor far outside", Window{1, 2, 0, 10}, [][]float64{ramp}, -50, 1, []float32{0, 0}},
		{"one sample", Window{1, 3, 1, 10}, [][]float64{{7}}, 0, 1, []float32{0, 0, 0}},
		{"cell-major", Window{2, 2, 0, 80}, [][]float64{ramp[:3], {50, 40, 20}}, 1, 10, []float32{0, 0.2, 0, -2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := make([]float32, c.w.Len())
			if err := c.w.Extract(got, c.cells, c.anchor, c.scale); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestExtractErrors(t *testing.T) {
	w := Window{Cells: 2, Samples: 3, Pre: 1, Rate: 10}
	ok := [][]float64{{1, 2}, {3, 4}}
	for _, c := range []struct {
		name  string
		dst   int
		cells [][]float64
		scale float64
		msg   string
	}{
		{"short dst", 5, ok, 1, "dst has 5 elements"},
		{"one cell", 6, ok[:1], 1, "1 cells, window has 2"},
		{"ragged", 6, [][]float64{{1, 2}, {3}}, 1, "cell 1 has 1 samples"},
		{"empty", 6, [][]float64{{}, {}}, 1, "cell 0 has 0 samples"},
		{"zero scale", 6, ok, 0, "scale 0"},
		{"NaN scale", 6, ok, math.NaN(), "scale NaN"},
		{"inf scale", 6, ok, math.Inf(1), "scale +Inf"},
	} {
		err := w.Extract(make([]float32, c.dst), c.cells, 0, c.scale)
		if !errors.Is(err, ErrWindow) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.name, err, c.msg)
		}
	}
}

func TestExtractDoesNotAllocate(t *testing.T) {
	w := Window{Cells: 4, Samples: 240, Pre: 40, Rate: 80}
	cells := make([][]float64, 4)
	for c := range cells {
		cells[c] = make([]float64, 400)
	}
	dst := make([]float32, w.Len())
	if n := testing.AllocsPerRun(100, func() { _ = w.Extract(dst, cells, 100, 12.5) }); n != 0 {
		t.Fatalf("Extract allocates %v times per call", n)
	}
}

// goldenCase is one deterministic input of the golden test.
type goldenCase struct {
	Name   string    `json:"name"`
	Window string    `json:"window"`
	Anchor int       `json:"anchor"`
	Scale  float64   `json:"scale"`
	Out    []float32 `json:"out"`
}

// goldenCells is a plate-like input: four cells, 120 samples, a load step
// split unevenly over the cells, a triangular hand transient and a fixed
// noise pattern, so that float rounding of the definition is pinned down.
// Every product is rounded by an explicit conversion so no platform fuses
// it into a multiply-add: the fixture is the same on amd64 and arm64.
func goldenCells() [][]float64 {
	share := []float64{0.4, 0.3, 0.2, 0.1}
	cells := make([][]float64, 4)
	for c := range cells {
		cells[c] = make([]float64, 120)
		for k := range cells[c] {
			g := 812.3 + float64(17.1*float64(c))
			if k >= 60 {
				g -= float64(289.2 * share[c]) // three units of 96.4 g picked
			}
			if k >= 50 && k < 70 {
				tri := 1 - math.Abs(float64(k-60))/10
				g += float64(float64(140*share[c]) * tri)
			}
			g += float64(0.1 * float64((7*k+13*c)%11-5))
			cells[c][k] = g
		}
	}
	return cells
}

// TestExtractGolden pins the features of fixed inputs; -update rewrites
// testdata/extract.golden.json.
func TestExtractGolden(t *testing.T) {
	cells := goldenCells()
	cases := []goldenCase{
		{Name: "bin 10 Hz", Window: "cells=1 samples=30 pre=5 rate=10", Anchor: 50, Scale: 96.4},
		{Name: "bin at stream start", Window: "cells=1 samples=30 pre=5 rate=10", Anchor: 2, Scale: 96.4},
		{Name: "bin still filling", Window: "cells=1 samples=30 pre=5 rate=10", Anchor: 110, Scale: 96.4},
		{Name: "plate grams", Window: "cells=4 samples=40 pre=8 rate=10", Anchor: 50, Scale: 1},
	}
	for i := range cases {
		c := &cases[i]
		w, err := ParseWindow(c.Window)
		if err != nil {
			t.Fatal(err)
		}
		c.Out = make([]float32, w.Len())
		if err := w.Extract(c.Out, cells[:w.Cells], c.Anchor, c.Scale); err != nil {
			t.Fatal(err)
		}
	}
	got, err := json.MarshalIndent(cases, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "extract.golden.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	var wantCases []goldenCase
	if err := json.Unmarshal(want, &wantCases); err != nil {
		t.Fatal(err)
	}
	if len(wantCases) != len(cases) {
		t.Fatalf("golden has %d cases, test has %d", len(wantCases), len(cases))
	}
	for i, c := range cases {
		w := wantCases[i]
		if w.Name != c.Name || w.Window != c.Window || w.Anchor != c.Anchor || w.Scale != c.Scale {
			t.Fatalf("case %d: golden is for %+v", i, w)
		}
		for j := range c.Out {
			if math.Float32bits(c.Out[j]) != math.Float32bits(w.Out[j]) {
				t.Fatalf("%s: feature %d is %v, golden %v", c.Name, j, c.Out[j], w.Out[j])
			}
		}
	}
	// Sanity of the fixture itself: the 10 Hz window on cell 0 sees its
	// 40 % share of the three units leave, and the plate's cells sum to the
	// whole change in grams.
	if last := cases[0].Out[29]; math.Abs(float64(last)+1.2) > 0.05 {
		t.Errorf("bin window ends at %v units, want about −1.2", last)
	}
	var sum float64
	for c := 0; c < 4; c++ {
		sum += float64(cases[3].Out[c*40+39])
	}
	if math.Abs(sum+3*96.4) > 5 {
		t.Errorf("plate cells sum to %v g, want about %v", sum, -3*96.4)
	}
}

func TestWindowStringParseNames(t *testing.T) {
	for _, w := range []Window{DefaultWindow(10), DefaultWindow(80), {Cells: 4, Samples: 64, Pre: 0, Rate: 12.5}} {
		got, err := ParseWindow(w.String())
		if err != nil || got != w {
			t.Errorf("%v: parsed %v, %v", w, got, err)
		}
	}
	if w := DefaultWindow(10); w != (Window{1, 30, 5, 10}) {
		t.Errorf("DefaultWindow(10) = %v", w)
	}
	if w := DefaultWindow(80); w != (Window{1, 240, 40, 80}) {
		t.Errorf("DefaultWindow(80) = %v", w)
	}
	for _, c := range []struct{ in, msg string }{
		{"cells=1 samples=30 pre=5", "need cells"},
		{"cells=1 samples=30 pre=30 rate=10", "pre 30"},
		{"cells=0 samples=30 pre=5 rate=10", "cells 0"},
		{"cells=65 samples=30 pre=5 rate=10", "cells 65"},
		{"cells=1 samples=5000 pre=5 rate=10", "samples 5000"},
		{"cells=64 samples=4096 pre=5 rate=10", "more than"},
		{"cells=1 samples=30 pre=5 rate=NaN", "rate NaN"},
		{"cells=1 samples=30 pre=5 rate=0", "rate 0"},
		{"cells=1 cells=1 samples=30 pre=5 rate=10", "each key once"},
		{"cells=x samples=30 pre=5 rate=10", "not a number"},
		{"cells=1 samples=30 pre=5 rate=10 hz=3", "unknown field"},
	} {
		if _, err := ParseWindow(c.in); !errors.Is(err, ErrWindow) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v, want %q", c.in, err, c.msg)
		}
	}
	if n := (Window{1, 3, 0, 10}).Names(); !slices.Equal(n, []string{"s0", "s1", "s2"}) {
		t.Errorf("one-cell names %v", n)
	}
	plate := Window{2, 2, 0, 10}
	if n := plate.Names(); !slices.Equal(n, []string{"c0_s0", "c0_s1", "c1_s0", "c1_s1"}) {
		t.Errorf("two-cell names %v", n)
	}
	if err := plate.CheckNames(plate.Names()); err != nil {
		t.Error(err)
	}
	for _, names := range [][]string{{"c0_s0"}, {"c0_s0", "c0_s1", "c1_s1", "c1_s0"}} {
		if err := plate.CheckNames(names); !errors.Is(err, ErrWindow) {
			t.Errorf("%v accepted for %v: %v", names, plate, err)
		}
	}
}
