package shelf_test

import (
	"fmt"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/shelf"
)

func Example() {
	d, err := shelf.New(shelf.Config{Bins: []shelf.Bin{{
		Stream:        "loadcell/shelf-01/bin-03",
		ID:            "shelf-01/bin-03",
		SKU:           "4006381333931",
		UnitGrams:     250,
		LowStockUnits: 2,
		InitialUnits:  4,
	}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	// 10 Hz readings in grams: a settled bin, a picker's hand, two units
	// fewer. The first five readings within the tolerance (a fifth of a
	// unit) make the new level.
	grams := []float64{1000, 1000, 1001, 999, 1000, 1000, 1000, 1400, 700, 1300, 480, 500, 501, 499, 500, 500, 500}
	start := time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)
	for i, g := range grams {
		r := gateway.Reading{Stream: "loadcell/shelf-01/bin-03", Time: start.Add(time.Duration(i) * 100 * time.Millisecond), Value: g, Unit: "g"}
		for _, ev := range d.Observe(r) {
			fmt.Printf("%s %s qty=%d delta=%.1fg confidence=%.2f at +%v\n", ev.Kind, ev.Bin, ev.Quantity, ev.DeltaGrams, ev.Confidence, ev.Time.Sub(start))
		}
	}
	units, _ := d.Stock("shelf-01/bin-03")
	fmt.Println("stock", units)
	// Output:
	// pick shelf-01/bin-03 qty=2 delta=-504.0g confidence=0.97 at +1.4s
	// low_stock shelf-01/bin-03 qty=2 delta=0.0g confidence=0.00 at +1.4s
	// stock 2
}
