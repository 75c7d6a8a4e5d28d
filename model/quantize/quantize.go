// Package quantize converts a trained float32 MLP into an int8 model file by
// post-training quantization: per-output-channel symmetric weights, int32
// biases, and per-tensor asymmetric activations calibrated on sample data
// with a min/max or percentile observer. It also measures how well the int8
// model agrees with the float one.
package quantize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/shelfgate/shelfgate/model"
	"github.com/shelfgate/shelfgate/model/train"
)

// ErrCalibration reports calibration data that cannot fix the ranges.
var ErrCalibration = errors.New("bad calibration data")

// Observer records the values of one tensor during calibration.
type Observer interface {
	Observe(v []float32)
	// Range returns the real range to map onto int8.
	Range() (lo, hi float64)
}

// MinMax observes the exact minimum and maximum.
type MinMax struct {
	lo, hi float64
	seen   bool
}

// Observe implements Observer.
func (o *MinMax) Observe(v []float32) {
	for _, x := range v {
		f := float64(x)
		if !o.seen {
			o.lo, o.hi, o.seen = f, f, true
		}
		o.lo, o.hi = math.Min(o.lo, f), math.Max(o.hi, f)
	}
}

// Range implements Observer.
func (o *MinMax) Range() (float64, float64) { return o.lo, o.hi }

// Percentile keeps a bounded uniform sample of the values (reservoir
// sampling with a fixed seed) and clips the range to the given percentile
// at each end, e.g. 99.99.
type Percentile struct {
	P      float64
	Max    int // sample size; 0 means 1<<20
	sample []float32
	n      int
	rng    *rand.Rand
}

// Observe implements Observer.
func (o *Percentile) Observe(v []float32) {
	if o.rng == nil {
		o.rng = rand.New(rand.NewPCG(1, 2))
		if o.Max == 0 {
			o.Max = 1 << 20
		}
	}
	for _, x := range v {
		o.n++
		if len(o.sample) < o.Max {
			o.sample = append(o.sample, x)
		} else if j := o.rng.IntN(o.n); j < o.Max {
			o.sample[j] = x
		}
	}
}

// Range implements Observer.
func (o *Percentile) Range() (float64, float64) {
	s := o.sorted()
	if len(s) == 0 {
		return 0, 0
	}
	return percentileOf(s, 100-o.P), percentileOf(s, o.P)
}

func (o *Percentile) sorted() []float32 {
	s := slices.Clone(o.sample)
	slices.Sort(s)
	return s
}

// DefaultPercentile is the percentile of the default calibration.
const DefaultPercentile = 99.99

// DefaultObserver is the calibration Quantize uses unless told otherwise: a
// Percentile observer at DefaultPercentile. It was chosen by measured
// int8/float top-1 agreement over several data sets (modelbench
// -agreement; docs/model-format.md has the table): it is best or within
// 0.04 points of the best on each, while min-max, whose range a few
// outliers stretch, lost up to 2.55 points on noisy data.
func DefaultObserver() Observer { return &Percentile{P: DefaultPercentile} }

func percentileOf(s []float32, p float64) float64 {
	i := int(math.Round(p / 100 * float64(len(s)-1)))
	return float64(s[min(max(i, 0), len(s)-1)])
}

// Options controls Quantize.
type Options struct {
	Name     string
	Version  uint64
	Rounding model.Rounding
	// NewObserver makes one observer per activation tensor (the
	// standardized input and every hidden layer's output); nil means the
	// default calibration, DefaultObserver.
	NewObserver func() Observer
	// NewLogitObserver makes the observer of the logits (the last layer's
	// output, the softmax input); nil means NewObserver.
	NewLogitObserver func() Observer
	// Golden is how many calibration rows to embed as golden vectors.
	Golden int
	// LogitWindow, when positive, narrows the calibrated range of the
	// logits (the softmax input) from below: values more than LogitWindow
	// under the smallest per-row maximum seen in calibration only feed
	// softmax terms below e^−LogitWindow of the top class, so they can
	// saturate at −128. The finer scale separates close top classes.
	LogitWindow float64
}

// Quantize calibrates on the raw feature rows calib and returns a validated
// int8 model whose golden vectors are the engine's own outputs for the
// first Golden rows.
func Quantize(f *train.MLP, calib [][]float32, o Options) (*model.Model, error) {
	return QuantizeContext(context.Background(), f, calib, o)
}

// QuantizeContext is Quantize that stops with ctx's error when ctx is done.
func QuantizeContext(ctx context.Context, f *train.MLP, calib [][]float32, o Options) (*model.Model, error) {
	if len(calib) == 0 {
		return nil, fmt.Errorf("quantize: no calibration rows: %w", ErrCalibration)
	}
	newObs := o.NewObserver
	if newObs == nil {
		newObs = DefaultObserver
	}
	newLogit := o.NewLogitObserver
	if newLogit == nil {
		newLogit = newObs
	}
	L := f.Layers()
	obs := make([]Observer, L+1) // 0: standardized input, l+1: output of layer l
	for i := range obs {
		obs[i] = newObs()
	}
	obs[L] = newLogit()
	minTop := math.Inf(1)
	for i, x := range calib {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("quantize: calibration row %d: %w", i, err)
			}
		}
		if len(x) != f.Sizes[0] {
			return nil, fmt.Errorf("quantize: calibration row %d has %d features, model takes %d: %w", i, len(x), f.Sizes[0], ErrCalibration)
		}
		in, acts := f.Forward(x)
		obs[0].Observe(in)
		for l, a := range acts {
			obs[l+1].Observe(a)
		}
		logits := acts[len(acts)-1]
		minTop = math.Min(minTop, float64(logits[train.Argmax(logits)]))
	}
	quants := make([]model.Quant, L+1)
	for i, ob := range obs {
		lo, hi := ob.Range()
		if i == L && o.LogitWindow > 0 {
			lo = math.Max(lo, minTop-o.LogitWindow)
		}
		q, err := activationQuant(lo, hi)
		if err != nil {
			return nil, fmt.Errorf("quantize: tensor %d: %w", i, err)
		}
		quants[i] = q
	}
	m := &model.Model{Name: o.Name, Version: o.Version, Rounding: o.Rounding}
	m.Input = model.InputSpec{Names: names(f), Mean: slices.Clone(f.Mean), Std: slices.Clone(f.Std), Quant: quants[0]}
	m.Output.Labels = slices.Clone(f.Labels)
	for l := 0; l < L; l++ {
		in, out := f.Sizes[l], f.Sizes[l+1]
		ly := model.Layer{Kind: model.FullyConnected, In: in, Out: out, Input: quants[l], Output: quants[l+1]}
		if l+1 < L {
			ly.Act = model.ActReLU
		}
		ly.Weights = make([]int8, in*out)
		ly.WScales = make([]float32, out)
		ly.Bias = make([]int32, out)
		for c := 0; c < out; c++ {
			row := f.W[l][c*in : (c+1)*in]
			var mx float64
			for _, w := range row {
				mx = math.Max(mx, math.Abs(float64(w)))
			}
			s := float32(mx / 127)
			if s == 0 {
				s = 1.0 / 127 // an all-zero channel: any scale quantizes it to zeros
			}
			ly.WScales[c] = s
			for k, w := range row {
				ly.Weights[c*in+k] = int8(math.Max(-127, math.Min(127, math.Round(float64(w)/float64(s)))))
			}
			bs := float64(quants[l].Scale) * float64(s)
			ly.Bias[c] = int32(math.Max(math.MinInt32, math.Min(math.MaxInt32, math.Round(float64(f.B[l][c])/bs))))
		}
		ly.FillRequant(o.Rounding)
		m.Layers = append(m.Layers, ly)
	}
	sm := model.Layer{Kind: model.Softmax, In: f.Classes(), Out: f.Classes(), Input: quants[L], Output: model.SoftmaxOutput, Beta: 1}
	sm.FillRequant(o.Rounding)
	m.Layers = append(m.Layers, sm)

	qm, err := model.NewModel(m)
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	s, err := qm.NewSessionWith()
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	for i := 0; i < min(o.Golden, len(calib)); i++ {
		out, err := s.Infer(calib[i])
		if err != nil {
			return nil, fmt.Errorf("quantize: golden %d: %w", i, err)
		}
		qm.Golden = append(qm.Golden, model.Golden{Input: slices.Clone(calib[i]), Output: slices.Clone(out.Last())})
	}
	return qm, nil
}

func names(f *train.MLP) []string {
	if len(f.Names) == f.Sizes[0] {
		return slices.Clone(f.Names)
	}
	n := make([]string, f.Sizes[0])
	for i := range n {
		n[i] = fmt.Sprintf("f%d", i)
	}
	return n
}

// activationQuant maps [lo, hi] (widened to contain 0, as TFLite requires so
// that zero is exact) onto int8 asymmetrically.
func activationQuant(lo, hi float64) (model.Quant, error) {
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return model.Quant{}, fmt.Errorf("range [%g, %g] is not finite: %w", lo, hi, ErrCalibration)
	}
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	if hi-lo < 1e-6 {
		hi = lo + 1e-6
	}
	scale := float32((hi - lo) / 255)
	zero := math.Round(-128 - lo/float64(scale))
	return model.Quant{Scale: scale, Zero: int8(math.Max(-128, math.Min(127, zero)))}, nil
}

// Report compares a float model with its int8 version on labelled data.
type Report struct {
	Rows      int
	FloatAcc  float64
	Int8Acc   float64
	Agreement float64 // fraction of rows where both predict the same class
	// Confusion[true][predicted] counts the int8 model's predictions.
	Confusion [][]int
}

// Compare runs both models over d; with a nil float model only the int8
// figures are filled in.
func Compare(f *train.MLP, q *model.Model, d *train.Dataset) (Report, error) {
	return CompareContext(context.Background(), f, q, d)
}

// CompareContext is Compare that stops with ctx's error when ctx is done.
func CompareContext(ctx context.Context, f *train.MLP, q *model.Model, d *train.Dataset) (Report, error) {
	k := q.Classes()
	r := Report{Rows: len(d.X), Confusion: make([][]int, k)}
	for i := range r.Confusion {
		r.Confusion[i] = make([]int, k)
	}
	s, err := q.NewSessionWith()
	if err != nil {
		return Report{}, fmt.Errorf("quantize: %w", err)
	}
	var fc, qc, agree int
	for i, x := range d.X {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return Report{}, fmt.Errorf("quantize: row %d: %w", i, err)
			}
		}
		out, err := s.Infer(x)
		if err != nil {
			return Report{}, fmt.Errorf("quantize: row %d: %w", i, err)
		}
		fp := -1
		if f != nil {
			fp = f.Predict(x)
		}
		y := d.Y[i]
		if fp == y {
			fc++
		}
		if out.Class == y {
			qc++
		}
		if fp == out.Class {
			agree++
		}
		if y < k {
			r.Confusion[y][out.Class]++
		}
	}
	n := float64(len(d.X))
	if n > 0 {
		r.FloatAcc, r.Int8Acc, r.Agreement = float64(fc)/n, float64(qc)/n, float64(agree)/n
	}
	return r, nil
}
