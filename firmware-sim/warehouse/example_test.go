package warehouse_test

import (
	"fmt"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
)

func Example() {
	cfg := warehouse.DefaultConfig()
	cfg.Speed = 1000 // 10 Hz accelerated: a sample every 100 µs
	w, err := warehouse.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	bins := w.Bins()
	fmt.Println(len(bins), "bins, first", bins[0].ID, "last", bins[len(bins)-1].ID)

	// A paced reader has the ReadTimeout contract of periph's hx711.Dev.
	var dev interface {
		ReadTimeout(time.Duration) (int32, error)
	} = w.NewReader(0, time.Now())
	code, err := dev.ReadTimeout(time.Second)
	fmt.Println(err, code == w.CodeAt(0, 0))

	// Raw code to grams on the cell, as a calibrated load-cell source does.
	b := bins[0]
	grams := float64(code-b.OffsetCounts) / b.CountsPerGram
	want := b.TareGrams + float64(b.InitialUnits)*b.UnitGrams
	fmt.Println(grams > want-5 && grams < want+5)

	// Ground truth: every visit that has settled in the first hour.
	for _, l := range w.Labels(0, time.Hour)[:1] {
		fmt.Println(l.Kind == "pick" || l.Kind == "put", l.Units > 0, l.Settled > l.Start)
	}
	// Output:
	// 8 bins, first shelf-01/bin-01 last shelf-02/bin-04
	// <nil> true
	// true
	// true true true
}
