package features

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRingMatchesExtract: at any point of a stream and for any anchor, a
// ring's window is Window.Extract's on the samples it retains.
func TestRingMatchesExtract(t *testing.T) {
	w := Window{Cells: 4, Samples: 12, Pre: 3, Rate: 10}
	r, err := NewRing(w, 20)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	stream := make([][]float64, 4)
	got, want := make([]float32, w.Len()), make([]float32, w.Len())
	sample := make([]float64, 4)
	for k := 0; k < 100; k++ {
		for c := range sample {
			sample[c] = 500 + 100*float64(c) + rng.NormFloat64()
			stream[c] = append(stream[c], sample[c])
		}
		if err := r.Push(sample); err != nil {
			t.Fatal(err)
		}
		lo := max(0, k+1-20)
		kept := make([][]float64, 4)
		for c := range kept {
			kept[c] = stream[c][lo : k+1]
		}
		for _, anchor := range []int64{int64(k) - 30, int64(lo), int64(k) - 8, int64(k) - 2, int64(k), int64(k) + 5} {
			if err := r.Extract(got, anchor, 2.5); err != nil {
				t.Fatal(err)
			}
			if err := w.Extract(want, kept, int(anchor)-lo, 2.5); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("sample %d anchor %d: ring %v, extract %v", k, anchor, got[:12], want[:12])
			}
			if ready := r.Ready(anchor); ready != (anchor-3+12 <= int64(k)+1) {
				t.Fatalf("sample %d anchor %d: ready %v", k, anchor, ready)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = r.Push(sample)
		_ = r.Extract(got, r.Count()-10, 1)
	}); n != 0 {
		t.Fatalf("push and extract allocate %v times", n)
	}
}

func TestRingRejects(t *testing.T) {
	w := Window{Cells: 2, Samples: 4, Pre: 1, Rate: 10}
	if _, err := NewRing(w, 3); !errors.Is(err, ErrWindow) {
		t.Errorf("capacity below the window: %v", err)
	}
	if _, err := NewRing(Window{}, 10); !errors.Is(err, ErrWindow) {
		t.Errorf("zero window: %v", err)
	}
	r, _ := NewRing(w, 8)
	if err := r.Extract(make([]float32, 8), 0, 1); !errors.Is(err, ErrWindow) {
		t.Errorf("extract from an empty ring: %v", err)
	}
	for _, s := range [][]float64{{1}, {1, math.NaN()}, {math.Inf(1), 0}} {
		if err := r.Push(s); !errors.Is(err, ErrWindow) {
			t.Errorf("push %v: %v", s, err)
		}
	}
	if r.Count() != 0 {
		t.Fatalf("rejected samples counted: %d", r.Count())
	}
}
