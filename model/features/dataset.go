package features

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// Sentinel errors.
var (
	// ErrData reports unusable data: a non-finite value, a row of the wrong
	// length, a label out of range.
	ErrData = errors.New("bad data")
	// ErrFormat reports a dataset or scaler encoding that cannot be read:
	// bad magic, version or checksum, truncation, a count over its limit.
	ErrFormat = errors.New("bad dataset file")
)

// Dataset is a set of labelled feature rows: row i has features X[i] and
// class Y[i], an index into Labels. Meta holds free-form provenance
// (window definition, scenario, seeds) that the binary file keeps.
//
// Metadata keys written by the dataset builder: "window" (Window.String),
// "scale" (what the features are divided by), "source", "seed",
// "duration", "idle", "idle_seed".
type Dataset struct {
	X      [][]float32
	Y      []int
	Names  []string          // feature names; may be empty
	Labels []string          // class labels, indexed by Y
	Meta   map[string]string // may be nil
}

// Features is the number of features per row.
func (d *Dataset) Features() int {
	if len(d.X) == 0 {
		return len(d.Names)
	}
	return len(d.X[0])
}

// Validate checks the shape and values: as many labels as rows, every row
// as long as the first (and as Names, when given), finite values, labels
// in range, distinct non-empty label and feature names.
func (d *Dataset) Validate() error {
	if len(d.X) != len(d.Y) {
		return fmt.Errorf("features: dataset: %d rows, %d labels: %w", len(d.X), len(d.Y), ErrData)
	}
	f := d.Features()
	if len(d.Names) != 0 && len(d.Names) != f {
		return fmt.Errorf("features: dataset: %d feature names, rows have %d features: %w", len(d.Names), f, ErrData)
	}
	if err := distinct("feature name", d.Names); err != nil {
		return err
	}
	if err := distinct("label", d.Labels); err != nil {
		return err
	}
	for i, x := range d.X {
		if len(x) != f {
			return fmt.Errorf("features: dataset: row %d has %d features, row 0 has %d: %w", i, len(x), f, ErrData)
		}
		for j, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("features: dataset: row %d feature %d: %v is not finite: %w", i, j, v, ErrData)
			}
		}
		if y := d.Y[i]; y < 0 || y >= len(d.Labels) {
			return fmt.Errorf("features: dataset: row %d: label index %d, have %d labels: %w", i, y, len(d.Labels), ErrData)
		}
	}
	return nil
}

func distinct(what string, s []string) error {
	seen := make(map[string]bool, len(s))
	for i, v := range s {
		if v == "" {
			return fmt.Errorf("features: dataset: %s %d is empty: %w", what, i, ErrData)
		}
		if seen[v] {
			return fmt.Errorf("features: dataset: %s %q appears twice: %w", what, v, ErrData)
		}
		seen[v] = true
	}
	return nil
}

// Counts returns the number of rows per label.
func (d *Dataset) Counts() map[string]int {
	c := make(map[string]int, len(d.Labels))
	for _, y := range d.Y {
		c[d.Labels[y]]++
	}
	return c
}

// Split shuffles the rows with seed and returns the first (1−frac) and the
// remaining frac of them. Both parts share d's names, labels and metadata.
func (d *Dataset) Split(frac float64, seed uint64) (a, b *Dataset) {
	idx := rand.New(rand.NewPCG(seed, 0x5eed)).Perm(len(d.X))
	n := len(idx) - int(math.Round(frac*float64(len(idx))))
	pick := func(ix []int) *Dataset {
		s := &Dataset{Names: d.Names, Labels: d.Labels, Meta: d.Meta}
		for _, i := range ix {
			s.X = append(s.X, d.X[i])
			s.Y = append(s.Y, d.Y[i])
		}
		return s
	}
	return pick(idx[:n]), pick(idx[n:])
}

// Merge concatenates datasets with the same feature names, in order. The
// labels of the result are the union of theirs, sorted; metadata keeps the
// entries all parts agree on. Rows are shared, not copied.
func Merge(parts ...*Dataset) (*Dataset, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("features: merge: no datasets: %w", ErrData)
	}
	out := &Dataset{Names: parts[0].Names}
	for i, p := range parts {
		if !slices.Equal(p.Names, out.Names) || p.Features() != parts[0].Features() {
			return nil, fmt.Errorf("features: merge: dataset %d has %d features %v…, dataset 0 has %d: %w", i, p.Features(), head(p.Names), parts[0].Features(), ErrData)
		}
		for _, l := range p.Labels {
			if !slices.Contains(out.Labels, l) {
				out.Labels = append(out.Labels, l)
			}
		}
	}
	sort.Strings(out.Labels)
	for k, v := range parts[0].Meta {
		agree := true
		for _, p := range parts[1:] {
			if pv, ok := p.Meta[k]; !ok || pv != v {
				agree = false
				break
			}
		}
		if agree {
			if out.Meta == nil {
				out.Meta = map[string]string{}
			}
			out.Meta[k] = v
		}
	}
	for _, p := range parts {
		for i, x := range p.X {
			out.X = append(out.X, x)
			out.Y = append(out.Y, slices.Index(out.Labels, p.Labels[p.Y[i]]))
		}
	}
	return out, nil
}

func head(s []string) []string { return s[:min(len(s), 3)] }

// Window returns the window recorded under the "window" metadata key.
func (d *Dataset) Window() (Window, error) {
	s, ok := d.Meta["window"]
	if !ok {
		return Window{}, fmt.Errorf("features: dataset has no window metadata: %w", ErrWindow)
	}
	return ParseWindow(s)
}
