package shelf

import (
	"fmt"
	"math"
)

// BinTuning is what may change of a bin while the detector runs (a
// reloaded or desired configuration): its SKU, the weight of one unit and
// the low-stock threshold. The settled level and the stock estimate stay.
type BinTuning struct {
	SKU           string
	UnitGrams     float64 // > 0
	LowStockUnits int     // >= 0
}

// TuneBin sets the thresholds of the bin with the given ID. It is safe to
// call concurrently with Observe: the bin takes them before its next
// reading. With the automatic tolerance the settle tolerance follows the
// new unit weight; the least change stays the same number of units. A
// low_stock event is decided at the bin's next pick or put.
func (d *Detector) TuneBin(binID string, t BinTuning) error {
	i, ok := d.byID[binID]
	if !ok {
		return fmt.Errorf("shelf: tune bin %q: no such bin", binID)
	}
	if math.IsNaN(t.UnitGrams) || math.IsInf(t.UnitGrams, 0) || t.UnitGrams <= 0 {
		return fmt.Errorf("shelf: tune bin %q: unit_grams %v must be > 0", binID, t.UnitGrams)
	}
	if t.LowStockUnits < 0 {
		return fmt.Errorf("shelf: tune bin %q: low_stock_units %d must be >= 0", binID, t.LowStockUnits)
	}
	d.bins[i].pending.Store(&t)
	return nil
}

// retune applies t; only the goroutine observing the bin calls it.
func (b *binState) retune(t *BinTuning) {
	units := b.minChange / b.UnitGrams
	b.SKU, b.UnitGrams, b.LowStockUnits = t.SKU, t.UnitGrams, t.LowStockUnits
	b.minChange = units * t.UnitGrams
	if b.autoTol {
		b.tolerance = AutoTolerance(t.UnitGrams)
	}
}
