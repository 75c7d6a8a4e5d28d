package train

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Dataset is a set of labelled feature rows.
type Dataset struct {
	X      [][]float32
	Y      []int
	Names  []string // feature names
	Labels []string // class labels, indexed by Y
}

// Features is the number of features per row.
func (d *Dataset) Features() int {
	if len(d.X) == 0 {
		return len(d.Names)
	}
	return len(d.X[0])
}

// ReadCSV reads rows "feature…, label". A first row whose feature fields
// are not all numbers is taken as a header of feature names. Labels are
// strings; classes are numbered in order of first appearance unless
// labels is given, in which case it fixes the numbering and unknown labels
// are an error.
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
			return nil, fmt.Errorf("train: csv: %w", err)
		}
		if len(rec) < 2 {
			return nil, fmt.Errorf("train: csv line %d: %d fields, need features and a label: %w", line, len(rec), ErrData)
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
			return nil, fmt.Errorf("train: csv line %d: %d features, earlier rows have %d: %w", line, len(feats), n, ErrData)
		}
		x := make([]float32, len(feats))
		for i, f := range feats {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("train: csv line %d field %d: %q is not a finite number: %w", line, i+1, f, ErrData)
			}
			x[i] = float32(v)
		}
		lab := strings.TrimSpace(rec[len(rec)-1])
		c, ok := index[lab]
		if !ok {
			if fixed {
				return nil, fmt.Errorf("train: csv line %d: unknown label %q: %w", line, lab, ErrData)
			}
			c = len(d.Labels)
			index[lab] = c
			d.Labels = append(d.Labels, lab)
		}
		d.X = append(d.X, x)
		d.Y = append(d.Y, c)
	}
	if len(d.X) == 0 {
		return nil, fmt.Errorf("train: csv: no rows: %w", ErrData)
	}
	if len(d.Names) == 0 {
		for i := 0; i < d.Features(); i++ {
			d.Names = append(d.Names, fmt.Sprintf("f%d", i))
		}
	}
	return d, nil
}

// WriteCSV writes the dataset with a header row.
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
		return fmt.Errorf("train: write csv: %w", err)
	}
	return nil
}

// Split shuffles the rows with seed and returns the first (1−frac) and the
// remaining frac of them.
func (d *Dataset) Split(frac float64, seed uint64) (a, b *Dataset) {
	idx := rand.New(rand.NewPCG(seed, 0x5eed)).Perm(len(d.X))
	n := len(idx) - int(math.Round(frac*float64(len(idx))))
	pick := func(ix []int) *Dataset {
		s := &Dataset{Names: d.Names, Labels: d.Labels}
		for _, i := range ix {
			s.X = append(s.X, d.X[i])
			s.Y = append(s.Y, d.Y[i])
		}
		return s
	}
	return pick(idx[:n]), pick(idx[n:])
}

// SyntheticOptions shapes a synthetic classification problem.
type SyntheticOptions struct {
	Samples, Features, Classes int
	Latent                     int     // dimension of the class structure (default 16)
	Noise                      float64 // latent noise relative to class spacing (default 0.35)
	Seed                       uint64  // fixes the classes and the feature map
	SampleSeed                 uint64  // fixes the rows drawn; vary it for an independent test set
}

// Synthetic generates a non-linearly separable classification problem:
// each class is a cluster in a low-dimensional latent space, mapped into
// feature space by a fixed random projection followed by a mix of linear,
// tanh and squared features, with per-feature offsets and scales so the
// standardization matters, and independent feature noise.
func Synthetic(o SyntheticOptions) *Dataset {
	if o.Latent == 0 {
		o.Latent = 16
	}
	if o.Noise == 0 {
		o.Noise = 0.35
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0xda7a))
	centers := make([][]float64, o.Classes)
	for c := range centers {
		centers[c] = make([]float64, o.Latent)
		for j := range centers[c] {
			centers[c][j] = rng.NormFloat64()
		}
	}
	proj := make([]float64, o.Features*o.Latent)
	for i := range proj {
		proj[i] = rng.NormFloat64() / math.Sqrt(float64(o.Latent))
	}
	offset, scale := make([]float64, o.Features), make([]float64, o.Features)
	for i := range offset {
		offset[i] = rng.NormFloat64() * 5
		scale[i] = math.Exp(rng.NormFloat64())
	}
	d := &Dataset{}
	for i := 0; i < o.Features; i++ {
		d.Names = append(d.Names, fmt.Sprintf("f%d", i))
	}
	for c := 0; c < o.Classes; c++ {
		d.Labels = append(d.Labels, fmt.Sprintf("c%d", c))
	}
	z := make([]float64, o.Latent)
	rng = rand.New(rand.NewPCG(o.Seed, o.SampleSeed^0x5a3b1e))
	for s := 0; s < o.Samples; s++ {
		c := rng.IntN(o.Classes)
		for j := range z {
			z[j] = centers[c][j] + rng.NormFloat64()*o.Noise
		}
		x := make([]float32, o.Features)
		for i := range x {
			var v float64
			for j, zj := range z {
				v += proj[i*o.Latent+j] * zj
			}
			switch i % 3 {
			case 1:
				v = 2 * math.Tanh(v)
			case 2:
				v = v * v / 2
			}
			v += rng.NormFloat64() * 0.3
			x[i] = float32(offset[i] + scale[i]*v)
		}
		d.X = append(d.X, x)
		d.Y = append(d.Y, c)
	}
	return d
}
