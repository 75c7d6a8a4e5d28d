package rollout

import (
	"crypto/ed25519"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/shelfgate/shelfgate/model"
)

// SyntheticModel returns a valid signed model file of about size bytes
// (one wide fully connected layer, deterministic weights from seed, golden
// vectors computed by the engine) named name at version. It exists for
// transfer tests and benchmarks, where the bytes matter, not the accuracy.
func SyntheticModel(name string, version uint64, size int, seed uint64, key ed25519.PrivateKey) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	const nf, classes = 64, 4
	hidden := max(size/(nf+classes+13), 8) // weights, scale, bias, multiplier, shift per unit
	m := &model.Model{Name: name, Version: version, Rounding: model.DoubleRounding}
	for i := range nf {
		m.Input.Names = append(m.Input.Names, fmt.Sprintf("f%d", i))
		m.Input.Mean = append(m.Input.Mean, float32(rng.NormFloat64()))
		m.Input.Std = append(m.Input.Std, float32(0.5+rng.Float64()))
	}
	q := model.Quant{Scale: 0.03, Zero: 0}
	m.Input.Quant = q
	sizes := []int{nf, hidden, classes}
	for li := 1; li < len(sizes); li++ {
		in, out := sizes[li-1], sizes[li]
		l := model.Layer{Kind: model.FullyConnected, In: in, Out: out, Input: q}
		if li < len(sizes)-1 {
			l.Act = model.ActReLU
			l.Output = model.Quant{Scale: 0.03, Zero: -128}
		} else {
			l.Output = model.Quant{Scale: 0.08, Zero: 0}
		}
		l.Weights = make([]int8, in*out)
		for i := range l.Weights {
			l.Weights[i] = int8(rng.IntN(255) - 127)
		}
		for range out {
			l.WScales = append(l.WScales, float32(0.5+rng.Float64())/float32(127*math.Sqrt(float64(in))))
			l.Bias = append(l.Bias, int32(rng.IntN(2001)-1000))
		}
		l.FillRequant(m.Rounding)
		m.Layers = append(m.Layers, l)
		q = l.Output
	}
	sm := model.Layer{Kind: model.Softmax, In: classes, Out: classes, Input: q, Output: model.SoftmaxOutput, Beta: 1}
	sm.FillRequant(m.Rounding)
	m.Layers = append(m.Layers, sm)
	for c := range classes {
		m.Output.Labels = append(m.Output.Labels, fmt.Sprintf("class-%d", c))
	}
	built, err := model.NewModel(m)
	if err != nil {
		return nil, fmt.Errorf("synthetic model: %w", err)
	}
	s := built.NewSession()
	for range 4 {
		in := make([]float32, nf)
		for i := range in {
			in[i] = float32(rng.NormFloat64() * 2)
		}
		out, err := s.Infer(in)
		if err != nil {
			return nil, fmt.Errorf("synthetic model: golden: %w", err)
		}
		m.Golden = append(m.Golden, model.Golden{Input: in, Output: append([]int8(nil), out.Last()...)})
	}
	return model.Encode(m, key)
}
