package shelf_test

import (
	"sync"
	"testing"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/shelf"
)

// TestTuneBin changes a bin's unit weight, SKU and low-stock threshold
// between two picks: the second pick is counted in the new units, carries
// the new SKU and raises low_stock at the new threshold; the settled level
// is kept (no event from the tune itself).
func TestTuneBin(t *testing.T) {
	d, err := shelf.New(shelf.Config{Bins: []shelf.Bin{{Stream: stream, ID: "b1", SKU: "OLD", UnitGrams: 100, LowStockUnits: 0, InitialUnits: 20}}})
	if err != nil {
		t.Fatal(err)
	}
	evs := run(t, d, newSeq(0.2).level(2000, 20).level(1800, 20))
	if len(evs) != 1 || evs[0].Kind != gateway.EventPick || evs[0].Quantity != 2 || evs[0].SKU != "OLD" {
		t.Fatalf("before the tune: %+v, want one pick of 2 OLD", evs)
	}
	if err := d.TuneBin("b1", shelf.BinTuning{SKU: "NEW", UnitGrams: 50, LowStockUnits: 15}); err != nil {
		t.Fatal(err)
	}
	evs = run(t, d, newSeq(0.2).level(1800, 20).level(1600, 20))
	if len(evs) != 2 {
		t.Fatalf("after the tune: %+v, want a pick and low_stock", evs)
	}
	if evs[0].Kind != gateway.EventPick || evs[0].Quantity != 4 || evs[0].SKU != "NEW" {
		t.Errorf("pick after the tune %+v, want 4 units (200 g / 50 g) of NEW", evs[0])
	}
	if evs[1].Kind != gateway.EventLowStock || evs[1].Quantity != 14 {
		t.Errorf("%+v, want low_stock at 14 (18-4 <= 15)", evs[1])
	}
}

func TestTuneBinRefuses(t *testing.T) {
	d, err := shelf.New(shelf.Config{Bins: []shelf.Bin{{Stream: stream, ID: "b1", UnitGrams: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bin string
		t   shelf.BinTuning
	}{
		{"nope", shelf.BinTuning{UnitGrams: 1}},
		{"b1", shelf.BinTuning{UnitGrams: 0}},
		{"b1", shelf.BinTuning{UnitGrams: 1, LowStockUnits: -1}},
	} {
		if err := d.TuneBin(tc.bin, tc.t); err == nil {
			t.Errorf("TuneBin(%q, %+v) accepted", tc.bin, tc.t)
		}
	}
}

// TestTuneBinConcurrent tunes while another goroutine observes (run with
// -race).
func TestTuneBinConcurrent(t *testing.T) {
	d, err := shelf.New(shelf.Config{Bins: []shelf.Bin{{Stream: stream, ID: "b1", UnitGrams: 100, InitialUnits: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 2000 {
			d.Observe(gateway.Reading{Stream: stream, Value: float64(i % 7), Unit: "g"})
		}
	})
	for i := range 200 {
		if err := d.TuneBin("b1", shelf.BinTuning{UnitGrams: float64(50 + i), LowStockUnits: i % 3}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}
