// Package train trains float32 multilayer perceptrons for Shelfgate's
// classifiers: ReLU hidden layers, a softmax output with cross-entropy loss,
// mini-batch SGD with momentum or Adam, weight decay and early stopping on a
// validation split, all deterministic for a given seed. The trained MLP keeps
// its StandardScaler statistics (features.Scaler) so callers pass raw
// features. Training data is a features.Dataset; the package never drives a
// simulator (firmware-sim/dataset builds shelf datasets).
package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/shelfgate/shelfgate/model/features"
)

// ErrData reports unusable training data; it is features.ErrData, so a
// bad dataset file or CSV and a bad Fit argument match the same sentinel.
var ErrData = features.ErrData

// MLP is a float32 multilayer perceptron y = f(Wx + b) per layer, ReLU on
// hidden layers, softmax on the output.
type MLP struct {
	Sizes  []int       `json:"sizes"` // features, hidden..., classes
	W      [][]float32 `json:"w"`     // layer l: Sizes[l+1]×Sizes[l], row-major
	B      [][]float32 `json:"b"`     // layer l: Sizes[l+1]
	Mean   []float32   `json:"mean"`  // standardization of raw features
	Std    []float32   `json:"std"`
	Names  []string    `json:"names"`  // feature names
	Labels []string    `json:"labels"` // class labels
}

// NewMLP returns an MLP with He-initialized weights and zero biases.
func NewMLP(rng *rand.Rand, sizes ...int) *MLP {
	m := &MLP{Sizes: append([]int(nil), sizes...)}
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		w := make([]float32, in*out)
		sd := math.Sqrt(2 / float64(in))
		for i := range w {
			w[i] = float32(rng.NormFloat64() * sd)
		}
		m.W = append(m.W, w)
		m.B = append(m.B, make([]float32, out))
	}
	m.Mean = make([]float32, sizes[0])
	m.Std = make([]float32, sizes[0])
	for i := range m.Std {
		m.Std[i] = 1
	}
	return m
}

// Layers is the number of weight layers.
func (m *MLP) Layers() int { return len(m.W) }

// Classes is the output size.
func (m *MLP) Classes() int { return m.Sizes[len(m.Sizes)-1] }

// Scaler returns the MLP's standardization as a features.Scaler.
func (m *MLP) Scaler() features.Scaler { return features.Scaler{Mean: m.Mean, Std: m.Std} }

// Standardize writes (x − mean)/std into dst.
func (m *MLP) Standardize(dst, x []float32) { m.Scaler().Transform(dst, x) }

// Forward runs raw features through the network. It returns the
// standardized input and every layer's output (post-activation for hidden
// layers, logits for the last).
func (m *MLP) Forward(x []float32) (input []float32, acts [][]float32) {
	input = make([]float32, len(x))
	m.Standardize(input, x)
	cur := input
	for l := range m.W {
		out := m.Sizes[l+1]
		y := make([]float32, out)
		copy(y, m.B[l])
		blas32.Gemv(blas.NoTrans, 1, m.mat(l), blas32.Vector{N: len(cur), Inc: 1, Data: cur}, 1, blas32.Vector{N: out, Inc: 1, Data: y})
		if l+1 < len(m.W) {
			for i := range y {
				y[i] = max(y[i], 0)
			}
		}
		acts = append(acts, y)
		cur = y
	}
	return input, acts
}

// Predict returns the argmax class of raw features.
func (m *MLP) Predict(x []float32) int {
	_, acts := m.Forward(x)
	return Argmax(acts[len(acts)-1])
}

func (m *MLP) mat(l int) blas32.General {
	return blas32.General{Rows: m.Sizes[l+1], Cols: m.Sizes[l], Stride: m.Sizes[l], Data: m.W[l]}
}

// Argmax returns the first index of the largest value.
func Argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Softmax writes the softmax of logits into dst.
func Softmax(dst, logits []float32) {
	mx := logits[Argmax(logits)]
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v - mx))
		dst[i] = float32(e)
		sum += e
	}
	for i := range dst {
		dst[i] = float32(float64(dst[i]) / sum)
	}
}

// Save writes the MLP as JSON.
func (m *MLP) Save(w io.Writer) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("train: save: %w", err)
	}
	return nil
}

// LoadMLP reads an MLP written by Save and checks its shapes.
func LoadMLP(r io.Reader) (*MLP, error) {
	var m MLP
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, fmt.Errorf("train: load: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *MLP) check() error {
	if len(m.Sizes) < 2 || len(m.W) != len(m.Sizes)-1 || len(m.B) != len(m.W) {
		return fmt.Errorf("train: %d sizes for %d weight and %d bias layers: %w", len(m.Sizes), len(m.W), len(m.B), ErrData)
	}
	for l := range m.W {
		if len(m.W[l]) != m.Sizes[l]*m.Sizes[l+1] || len(m.B[l]) != m.Sizes[l+1] {
			return fmt.Errorf("train: layer %d: shape does not match %d×%d: %w", l, m.Sizes[l+1], m.Sizes[l], ErrData)
		}
	}
	if len(m.Mean) != m.Sizes[0] || len(m.Std) != m.Sizes[0] {
		return fmt.Errorf("train: standardization for %d features, model has %d: %w", len(m.Mean), m.Sizes[0], ErrData)
	}
	return nil
}
