// Package model is Shelfgate's int8 neural-network engine: the model file
// format (see docs/model-format.md), a loader that verifies hash, signature
// and embedded golden vectors, and a forward pass that follows the TFLite
// int8 quantization specification bit for bit: fully connected and 1-D
// convolution layers with per-channel weights and fused ReLU, and the
// fixed-point softmax, with double (default) or single rounding.
//
// A Model is immutable and safe for concurrent use; each goroutine runs
// inferences through its own Session, which owns all scratch memory so that
// an inference allocates nothing. Session.InferBatch runs rows in pairs so
// each weight block is read once per pair.
//
// The int8 products, input quantization and requantization run on the
// fastest kernel the CPU has (AVX2 on amd64, NEON or SDOT on arm64, portable
// Go elsewhere; SHELFGATE_KERNEL=generic forces the portable one). All
// kernels give identical outputs.
package model

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Sentinel errors, checked with errors.Is.
var (
	ErrTruncated      = errors.New("truncated")
	ErrCorrupt        = errors.New("corrupt")
	ErrChecksum       = errors.New("checksum mismatch")
	ErrTooLarge       = errors.New("too large")
	ErrVersion        = errors.New("unsupported format version")
	ErrInconsistent   = errors.New("inconsistent")
	ErrGoldenMismatch = errors.New("golden vector mismatch")
	ErrBadSignature   = errors.New("bad signature")
	ErrUnsigned       = errors.New("unsigned model")
	ErrUntrustedKey   = errors.New("signed by an untrusted key")
	ErrInput          = errors.New("bad input")
	// ErrKernel reports a kernel that is not available on this CPU, named
	// by WithKernel or by the SHELFGATE_KERNEL environment variable.
	ErrKernel = errors.New("kernel not available")
)

// LayerKind names a layer type.
type LayerKind uint8

// Layer kinds.
const (
	FullyConnected LayerKind = 1
	Softmax        LayerKind = 2
	// Conv1D is a 1-D convolution over a window of samples, channels last
	// (input [Length][InCh], output [positions][OutCh]), VALID padding.
	Conv1D LayerKind = 3
)

func (k LayerKind) String() string {
	switch k {
	case FullyConnected:
		return "fully_connected"
	case Softmax:
		return "softmax"
	case Conv1D:
		return "conv1d"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Activation is a fused activation of a fully connected layer.
type Activation uint8

// Activations.
const (
	ActNone Activation = 0
	ActReLU Activation = 1
)

func (a Activation) String() string {
	switch a {
	case ActNone:
		return "none"
	case ActReLU:
		return "relu"
	}
	return fmt.Sprintf("activation(%d)", uint8(a))
}

// Quant is the affine quantization of an int8 tensor: real = Scale·(q − Zero).
type Quant struct {
	Scale float32
	Zero  int8
}

// Layer is one layer with all its parameters as stored in the file.
type Layer struct {
	Kind     LayerKind
	In, Out  int
	Input    Quant
	Output   Quant
	Act      Activation // FullyConnected, Conv1D
	Weights  []int8     // FullyConnected: Out×In; Conv1D: OutCh×Kernel×InCh; symmetric, in [−127, 127]
	WScales  []float32  // FullyConnected, Conv1D: per output channel
	Bias     []int32    // FullyConnected, Conv1D: scale Input.Scale·WScales[c], zero point 0
	Mult     []int32    // FullyConnected, Conv1D: requantization multipliers
	Shift    []int8     // FullyConnected, Conv1D: requantization shifts
	Beta     float32    // Softmax
	SMMult   int32      // Softmax: input_multiplier
	SMShift  int8       // Softmax: input_left_shift
	SMDiffMn int32      // Softmax: diff_min

	// Conv1D shape: In = Length·InCh, Out = Positions()·OutCh.
	Length, InCh, OutCh, Kernel, Stride int
}

// Positions is the number of output positions of a Conv1D layer with VALID
// padding.
func (l *Layer) Positions() int {
	if l.Kind != Conv1D || l.Stride <= 0 || l.Length < l.Kernel {
		return 0
	}
	return (l.Length-l.Kernel)/l.Stride + 1
}

// channels is the number of output channels (per-channel parameters).
func (l *Layer) channels() int {
	if l.Kind == Conv1D {
		return l.OutCh
	}
	return l.Out
}

// patch is the number of inputs each output value reads.
func (l *Layer) patch() int {
	if l.Kind == Conv1D {
		return l.Kernel * l.InCh
	}
	return l.In
}

// InputSpec describes the raw float features a model takes.
type InputSpec struct {
	Names []string  // one per feature
	Mean  []float32 // standardization: (x − Mean)/Std, as a StandardScaler
	Std   []float32
	Quant Quant // quantization of the standardized features
}

// OutputSpec describes the classes a model produces.
type OutputSpec struct {
	Labels []string // one per class, or none
}

// Golden is an embedded test vector: raw features and the exact int8 output
// of the last layer.
type Golden struct {
	Input  []float32
	Output []int8
}

// Model is a loaded int8 network. Fields other than the compiled plan are
// exported for inspection; do not change them after NewModel or Decode.
type Model struct {
	Name     string
	Version  uint64
	Rounding Rounding
	Input    InputSpec
	Output   OutputSpec
	Layers   []Layer
	Golden   []Golden

	// Set by Decode and Encode.
	Digest    [32]byte // SHA-256 of the body
	Signed    bool
	PublicKey []byte // signer's ed25519 public key when Signed

	plan plan
}

// Features is the number of raw input features.
func (m *Model) Features() int { return len(m.Input.Mean) }

// Classes is the number of outputs of the last layer.
func (m *Model) Classes() int { return m.Layers[len(m.Layers)-1].Out }

// FillRequant computes the precomputed fixed-point parameters of l
// (multipliers, shifts, softmax parameters) from its scales.
func (l *Layer) FillRequant(r Rounding) {
	switch l.Kind {
	case FullyConnected, Conv1D:
		l.Mult = make([]int32, l.channels())
		l.Shift = make([]int8, l.channels())
		for c := range l.Mult {
			m, s := QuantizeMultiplier(effectiveScale(l.Input.Scale, l.WScales[c], l.Output.Scale), r)
			l.Mult[c], l.Shift[c] = m, int8(s)
		}
	case Softmax:
		m, s, d := SoftmaxParams(float64(l.Beta), float64(l.Input.Scale))
		l.SMMult, l.SMShift, l.SMDiffMn = m, int8(s), d
	}
}

// effectiveScale is TFLite's GetQuantizedConvolutionMultipler: the real
// requantization multiplier in double precision.
func effectiveScale(in, w, out float32) float64 {
	return float64(in) * float64(w) / float64(out)
}

// SoftmaxOutput is the fixed output quantization of int8 softmax.
var SoftmaxOutput = Quant{Scale: 1.0 / 256, Zero: -128}

// NewModel validates m, checks it against the default compute budgets
// (DefaultMaxMACs, DefaultMaxGoldenMACs), compiles its plan and checks its
// golden vectors.
func NewModel(m *Model) (*Model, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if err := m.checkBudget(DefaultMaxMACs, DefaultMaxGoldenMACs); err != nil {
		return nil, err
	}
	m.compile()
	if err := m.checkGolden(context.Background()); err != nil {
		return nil, err
	}
	return m, nil
}

// MACs is the number of multiply-accumulates of one inference.
func (m *Model) MACs() int64 {
	var n int64
	for i := range m.Layers {
		l := &m.Layers[i]
		switch l.Kind {
		case FullyConnected:
			n += int64(l.In) * int64(l.Out)
		case Conv1D:
			n += int64(l.Positions()) * int64(l.OutCh) * int64(l.Kernel) * int64(l.InCh)
		}
	}
	return n
}

func (m *Model) checkBudget(maxMACs, maxGoldenMACs int64) error {
	n := m.MACs()
	if n > maxMACs {
		return fmt.Errorf("model: %d multiply-accumulates per inference, over the budget of %d: %w", n, maxMACs, ErrTooLarge)
	}
	if g := int64(len(m.Golden)); g > 0 && n > maxGoldenMACs/g {
		return fmt.Errorf("model: %d golden vectors × %d multiply-accumulates each exceed the load budget of %d: %w", g, n, maxGoldenMACs, ErrTooLarge)
	}
	return nil
}

func finite(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

func (m *Model) validate() error {
	if m.Rounding > SingleRounding {
		return fmt.Errorf("model: rounding mode %d: %w", m.Rounding, ErrInconsistent)
	}
	nf := len(m.Input.Mean)
	if nf == 0 {
		return fmt.Errorf("model: input: no features: %w", ErrInconsistent)
	}
	if len(m.Input.Std) != nf || len(m.Input.Names) != nf {
		return fmt.Errorf("model: input: %d means, %d stds, %d names: %w", nf, len(m.Input.Std), len(m.Input.Names), ErrInconsistent)
	}
	for i := 0; i < nf; i++ {
		if !finite(m.Input.Mean[i]) || !finite(m.Input.Std[i]) || m.Input.Std[i] <= 0 {
			return fmt.Errorf("model: input: feature %d: mean %v std %v: %w", i, m.Input.Mean[i], m.Input.Std[i], ErrInconsistent)
		}
	}
	if !finite(m.Input.Quant.Scale) || m.Input.Quant.Scale <= 0 {
		return fmt.Errorf("model: input: scale %v: %w", m.Input.Quant.Scale, ErrInconsistent)
	}
	for i, sd := range m.Input.Std {
		// The quantizer multiplies by float32(1/(std·scale)); an infinite
		// factor would turn a feature equal to its mean into NaN.
		if k := float32(1 / (float64(sd) * float64(m.Input.Quant.Scale))); !finite(k) {
			return fmt.Errorf("model: input: feature %d: 1/(std %v × scale %v) overflows float32: %w", i, sd, m.Input.Quant.Scale, ErrInconsistent)
		}
	}
	if len(m.Layers) == 0 {
		return fmt.Errorf("model: no layers: %w", ErrInconsistent)
	}
	prevN, prevQ := nf, m.Input.Quant
	for i := range m.Layers {
		l := &m.Layers[i]
		if err := l.validate(prevN, prevQ, m.Rounding); err != nil {
			return fmt.Errorf("model: layer %d (%v): %w", i, l.Kind, err)
		}
		prevN, prevQ = l.Out, l.Output
	}
	if l := len(m.Output.Labels); l != 0 && l != prevN {
		return fmt.Errorf("model: output: %d labels for %d classes: %w", l, prevN, ErrInconsistent)
	}
	for i, g := range m.Golden {
		if len(g.Input) != nf || len(g.Output) != prevN {
			return fmt.Errorf("model: golden %d: %d inputs and %d outputs, want %d and %d: %w", i, len(g.Input), len(g.Output), nf, prevN, ErrInconsistent)
		}
		for j, x := range g.Input {
			if x != x {
				return fmt.Errorf("model: golden %d: input %d is NaN: %w", i, j, ErrInconsistent)
			}
		}
	}
	return nil
}

func (l *Layer) validate(in int, q Quant, r Rounding) error {
	if l.In != in {
		return fmt.Errorf("input size %d, previous layer gives %d: %w", l.In, in, ErrInconsistent)
	}
	if l.Input != q {
		return fmt.Errorf("input quantization %+v, previous layer gives %+v: %w", l.Input, q, ErrInconsistent)
	}
	if !finite(l.Output.Scale) || l.Output.Scale <= 0 {
		return fmt.Errorf("output scale %v: %w", l.Output.Scale, ErrInconsistent)
	}
	switch l.Kind {
	case FullyConnected, Conv1D:
		if l.Kind == Conv1D {
			if l.Length <= 0 || l.InCh <= 0 || l.OutCh <= 0 || l.Kernel <= 0 || l.Stride <= 0 || l.Kernel > l.Length {
				return fmt.Errorf("length %d, channels %d→%d, kernel %d, stride %d: %w", l.Length, l.InCh, l.OutCh, l.Kernel, l.Stride, ErrInconsistent)
			}
			if int64(l.In) != int64(l.Length)*int64(l.InCh) || int64(l.Out) != int64(l.Positions())*int64(l.OutCh) {
				return fmt.Errorf("sizes %d→%d, shape gives %d→%d: %w", l.In, l.Out, l.Length*l.InCh, l.Positions()*l.OutCh, ErrInconsistent)
			}
		}
		ch, patch := l.channels(), l.patch()
		if ch <= 0 || patch <= 0 {
			return fmt.Errorf("output size %d: %w", l.Out, ErrInconsistent)
		}
		if l.Act > ActReLU {
			return fmt.Errorf("activation %d: %w", l.Act, ErrInconsistent)
		}
		if int64(len(l.Weights)) != int64(ch)*int64(patch) || len(l.WScales) != ch || len(l.Bias) != ch || len(l.Mult) != ch || len(l.Shift) != ch {
			return fmt.Errorf("parameter counts do not match %d×%d: %w", ch, patch, ErrInconsistent)
		}
		for j, w := range l.Weights {
			if w == math.MinInt8 {
				return fmt.Errorf("weight [%d][%d] is −128, outside the symmetric range [−127, 127]: %w", j/patch, j%patch, ErrInconsistent)
			}
		}
		for c := 0; c < ch; c++ {
			if !finite(l.WScales[c]) || l.WScales[c] <= 0 {
				return fmt.Errorf("channel %d: weight scale %v: %w", c, l.WScales[c], ErrInconsistent)
			}
			m, s := QuantizeMultiplier(effectiveScale(l.Input.Scale, l.WScales[c], l.Output.Scale), r)
			if l.Mult[c] != m || int(l.Shift[c]) != s {
				return fmt.Errorf("channel %d: multiplier %d shift %d, scales give %d and %d: %w", c, l.Mult[c], l.Shift[c], m, s, ErrInconsistent)
			}
			if s > 30 || s < -31 || m < 0 {
				return fmt.Errorf("channel %d: requantization scale %g out of range: %w", c, effectiveScale(l.Input.Scale, l.WScales[c], l.Output.Scale), ErrInconsistent)
			}
		}
	case Softmax:
		if l.Out != l.In {
			return fmt.Errorf("output size %d for input %d: %w", l.Out, l.In, ErrInconsistent)
		}
		if l.Output != SoftmaxOutput {
			return fmt.Errorf("output quantization %+v, int8 softmax needs scale 1/256 zero point −128: %w", l.Output, ErrInconsistent)
		}
		if !finite(l.Beta) || l.Beta <= 0 {
			return fmt.Errorf("beta %v: %w", l.Beta, ErrInconsistent)
		}
		m, s, d := SoftmaxParams(float64(l.Beta), float64(l.Input.Scale))
		if s < 0 || s > 31 {
			return fmt.Errorf("beta·input scale %v gives left shift %d, outside [0, 31]: %w", l.Beta*l.Input.Scale, s, ErrInconsistent)
		}
		if l.SMMult != m || int(l.SMShift) != s || l.SMDiffMn != d {
			return fmt.Errorf("multiplier %d shift %d diff_min %d, scales give %d, %d and %d: %w", l.SMMult, l.SMShift, l.SMDiffMn, m, s, d, ErrInconsistent)
		}
	default:
		return fmt.Errorf("unknown layer kind %d: %w", l.Kind, ErrInconsistent)
	}
	return nil
}

func (m *Model) checkGolden(ctx context.Context, opts ...SessionOption) error {
	if len(m.Golden) == 0 {
		return nil
	}
	s, err := m.NewSessionWith(opts...)
	if err != nil {
		return err
	}
	for i, g := range m.Golden {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("model: golden %d of %d: %w", i, len(m.Golden), err)
		}
		out, err := s.Infer(g.Input)
		if err != nil {
			// validate rules out inputs the engine refuses; this is a
			// file the engine cannot check, never the caller's input.
			return fmt.Errorf("model: golden %d: %v: %w", i, err, ErrInconsistent)
		}
		got := out.Last()
		for j := range got {
			if got[j] != g.Output[j] {
				return fmt.Errorf("model: golden %d: output %d is %d, file says %d (kernel %s): %w", i, j, got[j], g.Output[j], s.KernelName(), ErrGoldenMismatch)
			}
		}
	}
	return nil
}
