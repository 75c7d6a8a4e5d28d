package trace

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
)

var _ hx711sim.PlateSource = (*Frames)(nil)

func loadFrames(t *testing.T, in string, o FrameOpts) (*Frames, error) {
	t.Helper()
	r, err := NewReader(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	return LoadFrames(r, o)
}

// TestFramesReplayScenario: a recorded scenario loads back into frames
// that give every plate's codes and labels as the warehouse does, so a
// trace can stand in for the scenario behind hx711sim.NewPlate.
func TestFramesReplayScenario(t *testing.T) {
	cfg := warehouse.DefaultConfig()
	cfg.Plates = warehouse.DefaultPlateConfig()
	cfg.Plates.Faults = []warehouse.CellFault{{Plate: 2, Cell: 1, Kind: warehouse.FaultStuck, From: 20 * time.Second}}
	w := mustWarehouse(t, cfg)
	var b bytes.Buffer
	tw, err := NewWriter(&b, Code, true)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1764925200, 0).UTC()
	if _, err := RecordPlates(tw, w, start, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := LoadFrames(r, FrameOpts{Rate: cfg.SampleRate})
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != 1200 || len(f.Plates) != 4 || f.Gaps != 0 || !f.Start.Equal(start) || f.Unit != Code {
		t.Fatalf("frames: len %d, plates %v, gaps %d, start %s", f.Len(), f.Plates, f.Gaps, f.Start)
	}
	for p, pl := range w.Plates() {
		if f.Plates[p] != pl.ID {
			t.Fatalf("plate %d is %s, want %s", p, f.Plates[p], pl.ID)
		}
		for k := range f.Len() {
			if got, want := f.PlateCodes(p, k), w.PlateCodes(p, k); got != want {
				t.Fatalf("plate %d sample %d: %v, want %v", p, k, got, want)
			}
		}
		if got, want := f.PlateCodes(p, 1<<40), w.PlateCodes(p, f.Len()-1); got != want {
			t.Errorf("past the end: %v, want the last frame %v", got, want)
		}
		var got, want []Label
		for _, l := range f.Labels {
			if l.Plate == p {
				got = append(got, l.Label)
				if !l.Time.Equal(start.Add(w.SampleTime(l.K))) {
					t.Errorf("label at %s, sample %d", l.Time, l.K)
				}
			}
		}
		for _, l := range w.PlateLabels(p, 2*time.Minute-w.SampleTime(1)) {
			want = append(want, Label{Action: l.Kind, Facing: l.Facing, SKU: l.SKU, Qty: l.Units})
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("plate %d labels %v, want %v", p, got, want)
		}
	}
}

func TestFramesGapsAndGrams(t *testing.T) {
	in := `time,plate,cell,grams
10.0,a,0,1
10.0,a,1,2
10.0,bin,0,5
10.1,a,0,1.5
10.2,a,0,2
10.2,a,1,3
10.3,bin,0,6
`
	f, err := loadFrames(t, in, FrameOpts{Rate: 10, CountsPerGram: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][][4]int32{
		"a":   {{100, 200}, {150, 200}, {200, 300}, {200, 300}},
		"bin": {{500}, {500}, {500}, {600}},
	}
	for p, id := range f.Plates {
		for k, w := range want[id] {
			if got := f.PlateCodes(p, int64(k)); got != w {
				t.Errorf("%s sample %d: %v, want %v", id, k, got, w)
			}
		}
	}
	// a: cell 1 at 10.1, cells 0 and 1 at 10.3; bin: 10.1 and 10.2.
	if f.Gaps != 5 || f.Len() != 4 || f.Unit != Grams {
		t.Errorf("gaps %d, len %d, unit %v", f.Gaps, f.Len(), f.Unit)
	}
}

func TestFramesErrors(t *testing.T) {
	const hdr = "time,plate,cell,code\n"
	tests := []struct {
		in     string
		o      FrameOpts
		line   int
		column string
		target error
	}{
		{hdr + "10,a,0,1\n10.05,a,0,1\n", FrameOpts{Rate: 10}, 3, ColTime, ErrGrid},
		{hdr + "10,a,0,1\n10,a,0,2\n", FrameOpts{Rate: 10}, 3, ColCell, ErrGrid},
		{hdr + "10,a,0,1\n11,a,0,2\n", FrameOpts{Rate: 10, MaxFrames: 5}, 3, ColTime, ErrValue},
		{hdr, FrameOpts{Rate: 10}, 1, "", ErrValue},
		{hdr + "10,a,0,1\n10,a,9,1\n", FrameOpts{Rate: 10}, 3, ColCell, ErrValue},
	}
	for _, tt := range tests {
		_, err := loadFrames(t, tt.in, tt.o)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != tt.line || pe.Column != tt.column || !errors.Is(err, tt.target) {
			t.Errorf("%q: %v, want line %d column %q %v", tt.in, err, tt.line, tt.column, tt.target)
		}
	}
	for _, o := range []FrameOpts{{Rate: 0}, {Rate: -1}, {Rate: 1e9}} {
		if _, err := loadFrames(t, hdr, o); err == nil || !strings.Contains(err.Error(), "rate") {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := loadFrames(t, "time,plate,cell,grams\n", FrameOpts{Rate: 10}); err == nil || !strings.Contains(err.Error(), "counts per gram") {
		t.Errorf("grams without scale: %v", err)
	}
}
