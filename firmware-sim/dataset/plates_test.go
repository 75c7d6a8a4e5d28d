package dataset

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/model/features"
)

func plates() PlateOptions {
	cfg := warehouse.DefaultConfig()
	cfg.Shelves, cfg.BinsPerShelf = 1, 1
	cfg.Plates = warehouse.DefaultPlateConfig()
	return PlateOptions{Name: "plates", Config: cfg, Duration: 2 * time.Hour, Seed: 1}
}

// TestBuildPlatesLabelsMatchTheScenario: one window per fitting visit with
// its facing, round(Idle·visits) "none" windows per plate, and the cells of
// each visit window together end at the grams the label says moved.
func TestBuildPlatesLabelsMatchTheScenario(t *testing.T) {
	o := plates()
	d, err := BuildPlates(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	w, _ := d.Window()
	if w.Cells != 4 || w.Samples != 30 || d.Features() != 120 || d.Meta["scale"] != "grams" {
		t.Fatalf("window %v, %d features, meta %v", w, d.Features(), d.Meta)
	}
	wh, err := warehouse.New(o.Config)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	var grams []float64
	for p := range wh.Plates() {
		ls := wh.PlateLabels(p, o.Duration)
		for _, l := range ls {
			if l.Start >= 500*time.Millisecond {
				want["facing"+strconv.Itoa(l.Facing)]++
				grams = append(grams, l.Grams)
			}
		}
		want[NoneLabel] += int(0.5*float64(len(ls)) + 0.5)
	}
	got := d.Counts()
	for l, n := range want {
		if got[l] != n {
			t.Fatalf("windows per label %v, scenario says %v", got, want)
		}
	}
	for i := 0; i < 4; i++ {
		if share := float64(want["facing"+strconv.Itoa(i)]) / float64(len(grams)); share < 0.15 || share > 0.35 {
			t.Errorf("facing %d has %.2f of the visits", i, share)
		}
	}
	// Rows are plate by plate, visits then "none" windows: walk them.
	vi, bad := 0, 0
	for i, x := range d.X {
		var end float64
		for c := 0; c < 4; c++ {
			end += float64(x[c*30+29])
		}
		if d.Labels[d.Y[i]] == NoneLabel {
			continue
		}
		// Noise, drift and vibration bursts: allow 10 g plus 2 %.
		if math.Abs(end-grams[vi]) > 10+0.02*math.Abs(grams[vi]) {
			bad++
		}
		vi++
	}
	if vi != len(grams) || bad > len(grams)/50 {
		t.Fatalf("%d of %d visit windows do not end at the label's grams", bad, vi)
	}
	b1, _ := d.MarshalBinary()
	d2, _ := BuildPlates(o)
	if b2, _ := d2.MarshalBinary(); !bytes.Equal(b1, b2) {
		t.Fatal("same options, different plate dataset")
	}
}

func TestBuildPlatesRejects(t *testing.T) {
	none := plates()
	none.Config.Plates = warehouse.PlateConfig{}
	one := plates()
	one.Window = features.DefaultWindow(10)
	if _, err := BuildPlates(none); !errors.Is(err, ErrNoVisits) {
		t.Errorf("no plates: %v", err)
	}
	if _, err := BuildPlates(one); !errors.Is(err, features.ErrWindow) {
		t.Errorf("one-cell window: %v", err)
	}
}

// TestBuildPlatesRecordsFaults: a dataset cut from a scenario with faulty
// cells says which, and one without faults has no faults entry.
func TestBuildPlatesRecordsFaults(t *testing.T) {
	o := plates()
	o.Duration = 10 * time.Minute
	d, err := BuildPlates(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Meta["faults"]; ok {
		t.Errorf("faults %q without faults", d.Meta["faults"])
	}
	o.Config.Plates.Faults = []warehouse.CellFault{{Plate: 1, Cell: 2, Kind: warehouse.FaultStuck, From: time.Minute}}
	if d, err = BuildPlates(o); err != nil {
		t.Fatal(err)
	}
	if got, want := d.Meta["faults"], "plate1/cell2=stuck@1m0s-0s:0g"; got != want {
		t.Errorf("faults %q, want %q", got, want)
	}
}
