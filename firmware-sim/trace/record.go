package trace

import (
	"fmt"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
)

// RecordPlates writes every sample of every plate of w from sample 0 up
// to virtual time until to tw, time-ordered: for each sample index, each
// plate (left to right) and its cells 0..3, stamped start + SampleTime(k). With a
// Code writer the values are the raw codes (PlateCodeAt, faults included);
// with a Grams writer they are those codes converted with the cell's
// offset and scale, so noise, drift and faults show in grams too. If tw
// has label columns, each visit (PlateLabels) is labelled on the cell-0
// row of its plate at the first sample at or after it settled. It returns
// the number of records written; it does not Flush.
func RecordPlates(tw *Writer, w *warehouse.Warehouse, start time.Time, until time.Duration) (int, error) {
	plates := w.Plates()
	if len(plates) == 0 {
		return 0, fmt.Errorf("trace: record plates: the scenario has no plates")
	}
	period := w.SampleTime(1)
	n := int64((until + period - 1) / period)
	labels := make([]map[int64]warehouse.PlateLabel, len(plates))
	if tw.labels {
		for p := range plates {
			labels[p] = map[int64]warehouse.PlateLabel{}
			for _, l := range w.PlateLabels(p, until) {
				k := int64((l.Settled + period - 1) / period)
				if k < n {
					labels[p][k] = l // one visit at a time per plate
				}
			}
		}
	}
	rows := 0
	for k := range n {
		t := start.Add(w.SampleTime(k))
		for p, pl := range plates {
			codes := w.PlateCodes(p, k)
			for c, code := range codes {
				rec := Record{Time: t, Plate: pl.ID, Cell: c, Code: code}
				cell := pl.Cells[c]
				rec.Grams = float64(code-cell.OffsetCounts) / cell.CountsPerGram
				if l, ok := labels[p][k]; ok && c == 0 {
					rec.Label = &Label{Action: l.Kind, Facing: l.Facing, SKU: l.SKU, Qty: l.Units}
				}
				if err := tw.Write(rec); err != nil {
					return rows, fmt.Errorf("trace: record plate %s sample %d: %w", pl.ID, k, err)
				}
				rows++
			}
		}
	}
	return rows, nil
}
