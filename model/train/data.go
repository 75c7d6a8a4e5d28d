package train

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/shelfgate/shelfgate/model/features"
)

// Dataset is the labelled feature rows Fit trains on: features.Dataset,
// read from a dataset file (features.ReadDataset), a CSV (ReadCSV) or made
// by Synthetic. The dataset builder in firmware-sim/dataset produces the
// shelf's labelled windows.
type Dataset = features.Dataset

// ReadCSV reads rows "feature…, label" (see features.ReadCSV).
func ReadCSV(r io.Reader, labels []string) (*Dataset, error) {
	return features.ReadCSV(r, labels)
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
