package trace

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Writer writes a trace. It is not safe for concurrent use.
type Writer struct {
	csv    *csv.Writer
	unit   Unit
	labels bool
	last   time.Time
	row    []string
	rows   int
}

// NewWriter writes the header of a trace of unit, with the four label
// columns if labels is set, and returns a Writer for its records. Call
// Flush at the end.
func NewWriter(w io.Writer, unit Unit, labels bool) (*Writer, error) {
	if unit != Code && unit != Grams {
		return nil, fmt.Errorf("trace: new writer: unit %v is neither code nor grams", unit)
	}
	hdr := []string{ColTime, ColPlate, ColCell, unit.String()}
	if labels {
		hdr = append(hdr, ColLabelAction, ColLabelFacing, ColLabelSKU, ColLabelQty)
	}
	tw := &Writer{csv: csv.NewWriter(w), unit: unit, labels: labels, row: make([]string, len(hdr))}
	if err := tw.csv.Write(hdr); err != nil {
		return nil, fmt.Errorf("trace: write header: %w", err)
	}
	return tw, nil
}

// Write checks rec as the Reader would and writes it. Times are written
// in UTC as RFC 3339 with nanoseconds, grams in the shortest form that
// reads back to the same float64. The line of a ParseError counts the
// header as line 1.
func (w *Writer) Write(rec Record) error {
	line := w.rows + 2
	if col, err := checkRecord(rec, w.unit, w.labels); err != nil {
		return &ParseError{Line: line, Column: col, Err: err}
	}
	if rec.Time.Before(w.last) {
		return &ParseError{Line: line, Column: ColTime, Err: fmt.Errorf("%w: %s after %s", ErrTimeBackward, rec.Time.Format(time.RFC3339Nano), w.last.Format(time.RFC3339Nano))}
	}
	r := w.row[:4]
	r[0] = rec.Time.UTC().Format(time.RFC3339Nano)
	r[1] = rec.Plate
	r[2] = strconv.Itoa(rec.Cell)
	if w.unit == Code {
		r[3] = strconv.FormatInt(int64(rec.Code), 10)
	} else {
		r[3] = strconv.FormatFloat(rec.Grams, 'f', -1, 64)
		if len(r[3]) > 24 {
			r[3] = strconv.FormatFloat(rec.Grams, 'g', -1, 64)
		}
	}
	if w.labels {
		r = w.row[:8]
		r[4], r[5], r[6], r[7] = "", "", "", ""
		if l := rec.Label; l != nil {
			r[4], r[6], r[7] = l.Action, l.SKU, strconv.Itoa(l.Qty)
			if l.Facing >= 0 {
				r[5] = strconv.Itoa(l.Facing)
			}
		}
	}
	if err := w.csv.Write(r); err != nil {
		return fmt.Errorf("trace: write line %d: %w", line, err)
	}
	w.last = rec.Time
	w.rows++
	return nil
}

// Flush writes buffered records and reports any write error.
func (w *Writer) Flush() error {
	w.csv.Flush()
	if err := w.csv.Error(); err != nil {
		return fmt.Errorf("trace: flush: %w", err)
	}
	return nil
}
