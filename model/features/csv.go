package features

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ReadCSV reads rows "feature…, label". A first row whose first feature
// field is not a number is taken as a header of feature names. Labels are
// strings; classes are numbered in order of first appearance unless labels
// is given, in which case it fixes the numbering and unknown labels are an
// error. CSV carries no metadata.
func ReadCSV(r io.Reader, labels []string) (*Dataset, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	d := &Dataset{Labels: append([]string(nil), labels...)}
	index := map[string]int{}
	for i, l := range labels {
		index[l] = i
	}
	fixed := len(labels) > 0
	line := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		if err != nil {
			return nil, fmt.Errorf("features: csv: %w", err)
		}
		if len(rec) < 2 {
			return nil, fmt.Errorf("features: csv line %d: %d fields, need features and a label: %w", line, len(rec), ErrData)
		}
		feats := rec[:len(rec)-1]
		if line == 1 {
			if _, err := strconv.ParseFloat(strings.TrimSpace(feats[0]), 32); err != nil {
				for _, f := range feats {
					d.Names = append(d.Names, strings.TrimSpace(f))
				}
				continue
			}
		}
		if n := d.Features(); (len(d.X) > 0 || len(d.Names) > 0) && len(feats) != n {
			return nil, fmt.Errorf("features: csv line %d: %d features, earlier rows have %d: %w", line, len(feats), n, ErrData)
		}
		x := make([]float32, len(feats))
		for i, f := range feats {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("features: csv line %d field %d: %q is not a finite number: %w", line, i+1, f, ErrData)
			}
			x[i] = float32(v)
		}
		lab := strings.TrimSpace(rec[len(rec)-1])
		c, ok := index[lab]
		if !ok {
			if fixed {
				return nil, fmt.Errorf("features: csv line %d: unknown label %q: %w", line, lab, ErrData)
			}
			c = len(d.Labels)
			index[lab] = c
			d.Labels = append(d.Labels, lab)
		}
		d.X = append(d.X, x)
		d.Y = append(d.Y, c)
	}
	if len(d.X) == 0 {
		return nil, fmt.Errorf("features: csv: no rows: %w", ErrData)
	}
	if len(d.Names) == 0 {
		for i := 0; i < d.Features(); i++ {
			d.Names = append(d.Names, fmt.Sprintf("f%d", i))
		}
	}
	return d, nil
}

// WriteCSV writes the dataset with a header row of feature names and
// "label"; values in the shortest form that reads back as the same
// float32. Metadata is not written.
func (d *Dataset) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write(append(append([]string(nil), d.Names...), "label"))
	rec := make([]string, d.Features()+1)
	for i, x := range d.X {
		for j, v := range x {
			rec[j] = strconv.FormatFloat(float64(v), 'g', -1, 32)
		}
		rec[len(x)] = d.Labels[d.Y[i]]
		cw.Write(rec)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("features: write csv: %w", err)
	}
	return nil
}
