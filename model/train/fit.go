package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/shelfgate/shelfgate/model/features"
)

// Optimizer names.
const (
	SGD  = "sgd"
	Adam = "adam"
)

// Config controls Fit.
type Config struct {
	Hidden      []int   // hidden layer sizes
	Epochs      int     // maximum epochs
	Batch       int     // mini-batch size
	LR          float64 // learning rate
	Optimizer   string  // SGD (with Momentum) or Adam
	Momentum    float64
	WeightDecay float64 // L2 coefficient added to weight gradients
	ValFrac     float64 // fraction held out for early stopping
	Patience    int     // epochs without validation improvement before stopping
	Seed        uint64
	// Progress, when set, is called after every epoch.
	Progress func(EpochStats)
	// Init, when set, is the warm start: training starts from a copy of
	// its weights and keeps its standardization (Hidden is ignored). Its
	// input size and labels must be the data's.
	Init *MLP
}

// DefaultConfig is a reasonable starting point.
func DefaultConfig() Config {
	return Config{Hidden: []int{64}, Epochs: 30, Batch: 32, LR: 1e-3, Optimizer: Adam, Momentum: 0.9, WeightDecay: 1e-5, ValFrac: 0.1, Patience: 4, Seed: 1}
}

// EpochStats reports one epoch.
type EpochStats struct {
	Epoch           int
	TrainLoss       float64
	ValLoss, ValAcc float64
	Best            bool
}

// Result is what Fit returns besides the model.
type Result struct {
	Epochs    int // epochs run
	BestEpoch int
	ValLoss   float64
	ValAcc    float64
}

// Fit trains an MLP on d. Standardization statistics come from the
// training part of d; the weights returned are those of the epoch with the
// lowest validation loss.
func Fit(d *Dataset, c Config) (*MLP, Result, error) {
	if err := d.Validate(); err != nil {
		return nil, Result{}, fmt.Errorf("train: %w", err)
	}
	if len(d.X) < 2 || len(d.Labels) < 2 {
		return nil, Result{}, fmt.Errorf("train: need at least 2 rows and 2 classes, have %d and %d: %w", len(d.X), len(d.Labels), ErrData)
	}
	if c.Batch <= 0 || c.Epochs <= 0 || c.LR <= 0 {
		return nil, Result{}, fmt.Errorf("train: batch %d, epochs %d, learning rate %g must be positive: %w", c.Batch, c.Epochs, c.LR, ErrData)
	}
	trainSet, val := d, (*Dataset)(nil)
	if c.ValFrac > 0 {
		trainSet, val = d.Split(c.ValFrac, c.Seed)
		if len(val.X) == 0 || len(trainSet.X) == 0 {
			return nil, Result{}, fmt.Errorf("train: validation split %g of %d rows leaves an empty part: %w", c.ValFrac, len(d.X), ErrData)
		}
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x7a1))
	sizes := append(append([]int{d.Features()}, c.Hidden...), len(d.Labels))
	m := NewMLP(rng, sizes...)
	m.Names, m.Labels = d.Names, d.Labels
	if err := fitScaler(m, trainSet); err != nil {
		return nil, Result{}, err
	}
	if c.Init != nil {
		if err := warmStart(m, c.Init, d); err != nil {
			return nil, Result{}, err
		}
	}

	t := newTrainer(m, c)
	best := cloneWeights(m)
	res := Result{ValLoss: math.Inf(1)}
	since := 0
	order := make([]int, len(trainSet.X))
	for i := range order {
		order[i] = i
	}
	for epoch := 1; epoch <= c.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var lossSum float64
		for start := 0; start < len(order); start += c.Batch {
			idx := order[start:min(start+c.Batch, len(order))]
			lossSum += t.step(trainSet, idx) * float64(len(idx))
		}
		st := EpochStats{Epoch: epoch, TrainLoss: lossSum / float64(len(order))}
		res.Epochs = epoch
		if val != nil {
			st.ValLoss, st.ValAcc = t.evaluate(val)
			if st.ValLoss < res.ValLoss {
				st.Best = true
				res.ValLoss, res.ValAcc, res.BestEpoch = st.ValLoss, st.ValAcc, epoch
				best = cloneWeights(m)
				since = 0
			} else {
				since++
			}
		} else {
			best, res.BestEpoch = cloneWeights(m), epoch
		}
		if c.Progress != nil {
			c.Progress(st)
		}
		if val != nil && c.Patience > 0 && since >= c.Patience {
			break
		}
	}
	m.W, m.B = best.W, best.B
	return m, res, nil
}

// warmStart gives m init's sizes, weights and standardization (copies).
func warmStart(m, init *MLP, d *Dataset) error {
	if init.Sizes[0] != d.Features() || len(init.Labels) != len(d.Labels) {
		return fmt.Errorf("train: warm start: model has %d inputs and %d classes, data %d and %d: %w", init.Sizes[0], len(init.Labels), d.Features(), len(d.Labels), ErrData)
	}
	for i, l := range init.Labels {
		if l != d.Labels[i] {
			return fmt.Errorf("train: warm start: label %d is %q in the model, %q in the data: %w", i, l, d.Labels[i], ErrData)
		}
	}
	w := cloneWeights(init)
	m.Sizes = append([]int(nil), init.Sizes...)
	m.W, m.B = w.W, w.B
	m.Mean = append([]float32(nil), init.Mean...)
	m.Std = append([]float32(nil), init.Std...)
	return nil
}

// fitScaler sets m's standardization from the rows of d.
func fitScaler(m *MLP, d *Dataset) error {
	s, err := features.FitScaler(d.X)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if s.Len() != len(m.Mean) {
		return fmt.Errorf("train: %d features in the data, %d in the model: %w", s.Len(), len(m.Mean), ErrData)
	}
	m.Mean, m.Std = s.Mean, s.Std
	return nil
}

type weights struct{ W, B [][]float32 }

func cloneWeights(m *MLP) weights {
	var w weights
	for l := range m.W {
		w.W = append(w.W, append([]float32(nil), m.W[l]...))
		w.B = append(w.B, append([]float32(nil), m.B[l]...))
	}
	return w
}

// trainer holds the batch buffers and optimizer state.
type trainer struct {
	m      *MLP
	c      Config
	acts   [][]float32 // per layer input (0) and outputs, batch-major
	deltas [][]float32 // per layer δ
	gW, gB [][]float32
	s1W    [][]float32 // momentum / Adam first moment
	s1B    [][]float32
	s2W    [][]float32 // Adam second moment
	s2B    [][]float32
	t      int
}

func newTrainer(m *MLP, c Config) *trainer {
	t := &trainer{m: m, c: c}
	for l := range m.W {
		for _, p := range []*[][]float32{&t.gW, &t.s1W, &t.s2W} {
			*p = append(*p, make([]float32, len(m.W[l])))
		}
		for _, p := range []*[][]float32{&t.gB, &t.s1B, &t.s2B} {
			*p = append(*p, make([]float32, len(m.B[l])))
		}
	}
	return t
}

func gen(rows, cols int, data []float32) blas32.General {
	return blas32.General{Rows: rows, Cols: cols, Stride: cols, Data: data}
}

// forward fills t.acts for the rows idx of d and returns the batch size.
func (t *trainer) forward(d *Dataset, idx []int) int {
	m, n := t.m, len(idx)
	if len(t.acts) == 0 || len(t.acts[0]) < n*m.Sizes[0] {
		t.acts, t.deltas = nil, nil
		for l := range m.Sizes {
			t.acts = append(t.acts, make([]float32, n*m.Sizes[l]))
			t.deltas = append(t.deltas, make([]float32, n*m.Sizes[l]))
		}
	}
	in := m.Sizes[0]
	for r, i := range idx {
		m.Standardize(t.acts[0][r*in:(r+1)*in], d.X[i])
	}
	for l := range m.W {
		a, out := m.Sizes[l], m.Sizes[l+1]
		z := t.acts[l+1][:n*out]
		for r := 0; r < n; r++ {
			copy(z[r*out:], m.B[l])
		}
		blas32.Gemm(blas.NoTrans, blas.Trans, 1, gen(n, a, t.acts[l][:n*a]), m.mat(l), 1, gen(n, out, z))
		if l+1 < len(m.W) {
			for i, v := range z {
				z[i] = max(v, 0)
			}
		}
	}
	return n
}

// lossAndDelta turns the logits into softmax probabilities in place, writes
// δ = (p − y)/n for the output layer and returns the mean cross-entropy.
func (t *trainer) lossAndDelta(d *Dataset, idx []int) float64 {
	m, n := t.m, len(idx)
	k := m.Classes()
	L := len(m.W)
	logits, delta := t.acts[L], t.deltas[L]
	var loss float64
	for r, i := range idx {
		row := logits[r*k : (r+1)*k]
		Softmax(row, row)
		y := d.Y[i]
		loss -= math.Log(math.Max(float64(row[y]), 1e-30))
		for c := range row {
			g := row[c]
			if c == y {
				g--
			}
			delta[r*k+c] = g / float32(n)
		}
	}
	return loss / float64(n)
}

// step runs one mini-batch: forward, backpropagation δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f′(z_l),
// and the optimizer update. It returns the batch loss.
func (t *trainer) step(d *Dataset, idx []int) float64 {
	m := t.m
	n := t.forward(d, idx)
	loss := t.lossAndDelta(d, idx)
	for l := len(m.W) - 1; l >= 0; l-- {
		a, out := m.Sizes[l], m.Sizes[l+1]
		delta := gen(n, out, t.deltas[l+1][:n*out])
		blas32.Gemm(blas.Trans, blas.NoTrans, 1, delta, gen(n, a, t.acts[l][:n*a]), 0, gen(out, a, t.gW[l]))
		gb := t.gB[l]
		clear(gb)
		for r := 0; r < n; r++ {
			for c := 0; c < out; c++ {
				gb[c] += delta.Data[r*out+c]
			}
		}
		if l > 0 {
			prev := t.deltas[l][:n*a]
			blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, delta, m.mat(l), 0, gen(n, a, prev))
			act := t.acts[l][:n*a]
			for i, v := range act {
				if v <= 0 { // ReLU′
					prev[i] = 0
				}
			}
		}
	}
	t.update()
	return loss
}

func (t *trainer) update() {
	t.t++
	c := t.c
	lr, wd := float32(c.LR), float32(c.WeightDecay)
	switch c.Optimizer {
	case Adam:
		const b1, b2, eps = 0.9, 0.999, 1e-8
		c1 := float32(1 - math.Pow(b1, float64(t.t)))
		c2 := float32(1 - math.Pow(b2, float64(t.t)))
		adam := func(p, g, m1, m2 []float32, decay float32) {
			for i := range p {
				gi := g[i] + decay*p[i]
				m1[i] = b1*m1[i] + (1-b1)*gi
				m2[i] = b2*m2[i] + (1-b2)*gi*gi
				p[i] -= lr * (m1[i] / c1) / (float32(math.Sqrt(float64(m2[i]/c2))) + eps)
			}
		}
		for l := range t.m.W {
			adam(t.m.W[l], t.gW[l], t.s1W[l], t.s2W[l], wd)
			adam(t.m.B[l], t.gB[l], t.s1B[l], t.s2B[l], 0)
		}
	default:
		mu := float32(c.Momentum)
		sgd := func(p, g, v []float32, decay float32) {
			for i := range p {
				v[i] = mu*v[i] - lr*(g[i]+decay*p[i])
				p[i] += v[i]
			}
		}
		for l := range t.m.W {
			sgd(t.m.W[l], t.gW[l], t.s1W[l], wd)
			sgd(t.m.B[l], t.gB[l], t.s1B[l], 0)
		}
	}
}

// evaluate returns mean cross-entropy and accuracy on d.
func (t *trainer) evaluate(d *Dataset) (loss, acc float64) {
	const chunk = 256
	correct := 0
	idx := make([]int, 0, chunk)
	k := t.m.Classes()
	for start := 0; start < len(d.X); start += chunk {
		idx = idx[:0]
		for i := start; i < min(start+chunk, len(d.X)); i++ {
			idx = append(idx, i)
		}
		t.forward(d, idx)
		loss += t.lossAndDelta(d, idx) * float64(len(idx))
		probs := t.acts[len(t.m.W)]
		for r, i := range idx {
			if Argmax(probs[r*k:(r+1)*k]) == d.Y[i] {
				correct++
			}
		}
	}
	return loss / float64(len(d.X)), float64(correct) / float64(len(d.X))
}

// Accuracy is the fraction of rows of d the MLP classifies correctly.
func (m *MLP) Accuracy(d *Dataset) float64 {
	t := newTrainer(m, Config{})
	_, acc := t.evaluate(d)
	return acc
}
