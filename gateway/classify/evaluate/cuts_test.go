package evaluate

import (
	"context"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/classify"
)

// CompareCuts matches changes by Δ in order and finds a window whose cell
// is shifted by one sample; Cuts gives the windows Windows trains on.
func TestCompareCuts(t *testing.T) {
	cfg := scenario(t, "../../../configs/scenarios/eval/quiet-shift.yaml")
	cfg.Plates.Count = 2
	o := Options{Name: "quiet", Config: cfg, Duration: 10 * time.Minute}
	a, err := Cuts(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cs := range a {
		n += len(cs)
	}
	ds, err := Windows(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 || n != len(ds.X) {
		t.Fatalf("%d cuts, %d training windows", n, len(ds.X))
	}
	same := CompareCuts(a, a)
	if mx, _, _ := same.Worst(); same.Pairs != n || same.OnlyA+same.OnlyB+same.Differing != 0 || mx != 0 {
		t.Fatalf("a run against itself: %+v", same)
	}
	win := classify.PlateWindow(classify.ModelRate)
	shifted := map[string][]Cut{}
	dropped := 0
	for plate, cs := range a {
		for i, c := range cs {
			x := append([]float32(nil), c.X...)
			if i%2 == 0 { // cell 1 one sample late: its features k ← k−1
				for k := win.Samples - 1; k > 0; k-- {
					x[win.Samples+k] = c.X[win.Samples+k-1]
				}
			}
			if i == 1 {
				dropped++
				continue
			}
			shifted[plate] = append(shifted[plate], Cut{Plate: plate, Time: c.Time, Delta: c.Delta, X: x})
		}
	}
	d := CompareCuts(a, shifted)
	if d.Pairs != n-dropped || d.OnlyA != dropped || d.OnlyB != 0 || d.Differing == 0 {
		t.Errorf("against a copy with cell 1 shifted in every other window and one window dropped per plate: %+v", d)
	}
}
