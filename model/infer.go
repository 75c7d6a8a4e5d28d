package model

import (
	"fmt"
	"math"

	"github.com/shelfgate/shelfgate/model/internal/kernel"
)

// plan is the compiled form of a model: weights packed to the kernel's
// alignment with zero-padded rows, the input zero point folded into the bias,
// and softmax tables.
type plan struct {
	inK    []float32 // per feature: float32(1/(f64(Std)·f64(scale)))
	layers []step
	maxOut int
	lastFC int // index of the last fully connected or Conv1D layer
}

type step struct {
	kind     LayerKind
	in, out  int
	stride   int            // padded columns
	w        []int8         // channels × stride
	ch       int            // output channels
	pos      int            // output positions (1 for fully connected)
	step     int            // Conv1D: input values between positions (stride · InCh)
	rq       kernel.Requant // bias (zero point folded in), multipliers, shifts, clamp
	shift    []int32        // TFLite shift, for single rounding
	zero     int32
	lo, hi   int32
	softmax  *softmaxTable
	rounding Rounding
	accScale []float64 // real value of one accumulator unit per channel: s_in·s_w[c]
}

func alignUp(n int) int { return (n + kernel.Align - 1) / kernel.Align * kernel.Align }

func (m *Model) compile() {
	p := plan{inK: make([]float32, m.Features()), lastFC: -1}
	for i := range p.inK {
		p.inK[i] = float32(1 / (float64(m.Input.Std[i]) * float64(m.Input.Quant.Scale)))
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		st := step{kind: l.Kind, in: l.In, out: l.Out, zero: int32(l.Output.Zero), rounding: m.Rounding, lo: math.MinInt8, hi: math.MaxInt8}
		switch l.Kind {
		case FullyConnected, Conv1D:
			p.lastFC = i
			ch, patch := l.channels(), l.patch()
			st.ch, st.pos, st.step = ch, 1, 0
			if l.Kind == Conv1D {
				st.pos, st.step = l.Positions(), l.Stride*l.InCh
			}
			st.stride = alignUp(patch)
			st.w = make([]int8, ch*st.stride)
			st.rq = kernel.Requant{Bias: make([]int32, ch), Mult: make([]int32, ch), LShift: make([]int32, ch), RShift: make([]int32, ch)}
			st.shift = make([]int32, ch)
			for c := 0; c < ch; c++ {
				row := l.Weights[c*patch : (c+1)*patch]
				copy(st.w[c*st.stride:], row)
				var sum int32
				for _, w := range row {
					sum += int32(w)
				}
				// Σ w·(x − z) + b = Σ w·x + (b − z·Σ w), exact in int32
				// wrap-around arithmetic.
				st.rq.Bias[c] = l.Bias[c] - int32(l.Input.Zero)*sum
				st.rq.Mult[c] = l.Mult[c]
				st.shift[c] = int32(l.Shift[c])
				st.rq.LShift[c] = max(st.shift[c], 0)
				st.rq.RShift[c] = max(-st.shift[c], 0)
				st.accScale = append(st.accScale, float64(l.Input.Scale)*float64(l.WScales[c]))
			}
			if l.Act == ActReLU {
				st.lo = max(st.lo, st.zero)
			}
			st.rq.Zero, st.rq.Lo, st.rq.Hi = st.zero, st.lo, st.hi
		case Softmax:
			st.softmax = newSoftmaxTable(l.SMMult, int(l.SMShift), l.SMDiffMn)
		}
		p.maxOut = max(p.maxOut, l.Out)
		p.layers = append(p.layers, st)
	}
	m.plan = p
}

// Session runs inferences of one model. It owns the scratch memory, so a
// Session must not be used by two goroutines at once; after the first call
// Infer allocates nothing.
type Session struct {
	m     *Model
	k     kernel.Kernel
	lanes [2]lane // InferBatch runs rows in pairs; single inferences use lane 0
}

// lane is the scratch memory of one inference.
type lane struct {
	x    []int8   // quantized input, padded
	acts [][]int8 // per layer output, padded
	acc  []int32  // accumulators; after a run, those of the last weighted layer
}

// SessionOption configures a Session.
type SessionOption func(*Session) error

// WithKernel forces a named kernel ("generic", "avx2", "neon", ...).
func WithKernel(name string) SessionOption {
	return func(s *Session) error {
		k, ok := kernel.Lookup(name)
		if !ok {
			return fmt.Errorf("model: kernel %q: this CPU has %v: %w", name, Kernels(), ErrKernel)
		}
		s.k = k
		return nil
	}
}

// Kernels lists the kernels this CPU can run, the default last.
func Kernels() []string {
	var names []string
	for _, k := range kernel.All() {
		if k.Supported {
			names = append(names, k.Name)
		}
	}
	return names
}

// DefaultKernel is the kernel sessions use unless told otherwise: the one
// SHELFGATE_KERNEL names, else the fastest. A SHELFGATE_KERNEL naming no
// supported kernel is an error wrapping ErrKernel.
func DefaultKernel() (string, error) {
	k, err := kernel.Best()
	if err != nil {
		return "", fmt.Errorf("model: %v: %w", err, ErrKernel)
	}
	return k.Name, nil
}

// NewSession returns a session with its own buffers. It panics if the
// kernel cannot be chosen (SHELFGATE_KERNEL naming no supported kernel; a
// model that loaded with golden vectors has already passed that check);
// use NewSessionWith to get the error.
func (m *Model) NewSession() *Session {
	s, err := m.NewSessionWith()
	if err != nil {
		panic(err)
	}
	return s
}

// NewSessionWith returns a session configured by opts. Without WithKernel
// it runs DefaultKernel and fails as DefaultKernel does.
func (m *Model) NewSessionWith(opts ...SessionOption) (*Session, error) {
	s := &Session{m: m}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.k.MatVec == nil {
		k, err := kernel.Best()
		if err != nil {
			return nil, fmt.Errorf("model: %v: %w", err, ErrKernel)
		}
		s.k = k
	}
	// Kernels read whole Align blocks; a Conv1D patch may end up to Align
	// values past its layer's input, so every buffer has that much slack.
	for i := range s.lanes {
		l := &s.lanes[i]
		l.x = make([]int8, alignUp(m.Features())+kernel.Align)
		for _, st := range m.plan.layers {
			l.acts = append(l.acts, make([]int8, alignUp(st.out)+kernel.Align))
		}
		l.acc = make([]int32, m.plan.maxOut)
	}
	return s, nil
}

// KernelName is the kernel this session runs.
func (s *Session) KernelName() string { return s.k.Name }

// Output is the result of one inference. Its slices point into the session
// and stay valid until the session's next call.
type Output struct {
	Logits []int8 // output of the last fully connected layer
	Probs  []int8 // softmax output (scale 1/256, zero point −128), nil without softmax
	// Class is the argmax of the last layer's int8 output. When several
	// classes share the top int8 value, the tie is broken by the int32
	// accumulator (plus bias) of the last fully connected layer scaled by
	// its real step s_in·s_w[c], which resolves what int8 rounding merged;
	// remaining ties go to the first index.
	Class int
}

// Last is the output of the model's last layer.
func (o Output) Last() []int8 {
	if o.Probs != nil {
		return o.Probs
	}
	return o.Logits
}

// Infer standardizes and quantizes raw features and runs the network.
func (s *Session) Infer(features []float32) (Output, error) {
	if err := s.Quantize(s.lanes[0].x, features); err != nil {
		return Output{}, err
	}
	return s.run(1)[0], nil
}

// InferQuantized runs the network on an already quantized input (as
// produced by Quantize).
func (s *Session) InferQuantized(q []int8) (Output, error) {
	if len(q) != s.m.Features() {
		return Output{}, fmt.Errorf("model: %d quantized inputs, model takes %d: %w", len(q), s.m.Features(), ErrInput)
	}
	copy(s.lanes[0].x, q)
	return s.run(1)[0], nil
}

// Quantize standardizes and quantizes raw features into dst:
// q = clamp(round((x − mean)·k) + z) with k = float32(1/(std·scale)) (the
// division in float64), the subtraction and product in float32, and
// rounding half away from zero; see docs/model-format.md.
func (s *Session) Quantize(dst []int8, features []float32) error {
	m := s.m
	if len(features) != m.Features() || len(dst) < len(features) {
		return fmt.Errorf("model: %d features into %d values, model takes %d: %w", len(features), len(dst), m.Features(), ErrInput)
	}
	if !s.k.Quantize(dst[:len(features)], features, m.Input.Mean, m.plan.inK, m.Input.Quant.Zero) {
		for i, x := range features {
			if v := float32(x-m.Input.Mean[i]) * m.plan.inK[i]; v != v {
				return fmt.Errorf("model: feature %d is NaN: %w", i, ErrInput)
			}
		}
		return fmt.Errorf("model: a feature is NaN: %w", ErrInput)
	}
	return nil
}

// run runs lanes 0..n−1 (n is 1 or 2) through the network; with two lanes
// each weight block is read once for both when the kernel can.
func (s *Session) run(n int) (out [2]Output) {
	p := &s.m.plan
	lanes := s.lanes[:n]
	var x [2][]int8
	for j := range lanes {
		x[j] = lanes[j].x
	}
	for i := range p.layers {
		st := &p.layers[i]
		switch st.kind {
		case FullyConnected, Conv1D:
			for t := 0; t < st.pos; t++ {
				if n == 2 && s.k.MatVec2 != nil {
					s.k.MatVec2(lanes[0].acc, lanes[1].acc, st.w, x[0][t*st.step:], x[1][t*st.step:], st.ch, st.stride)
				} else {
					for j := range lanes {
						s.k.MatVec(lanes[j].acc, st.w, x[j][t*st.step:], st.ch, st.stride)
					}
				}
				for j := range lanes {
					yt := lanes[j].acts[i][t*st.ch : (t+1)*st.ch]
					if st.rounding == SingleRounding {
						requantizeSingle(yt, lanes[j].acc[:st.ch], st)
					} else {
						s.k.Requantize(yt, lanes[j].acc[:st.ch], &st.rq)
					}
				}
			}
			if i == p.lastFC {
				for j := range lanes {
					out[j].Logits = lanes[j].acts[i][:st.out]
				}
			}
		case Softmax:
			for j := range lanes {
				y := lanes[j].acts[i][:st.out]
				st.softmax.apply(y, x[j][:st.in])
				out[j].Probs = y
			}
		}
		for j := range lanes {
			x[j] = lanes[j].acts[i]
		}
	}
	for j := range lanes {
		out[j].Class = s.classOf(lanes[j].acc, out[j].Last())
	}
	return out
}

// classOf is the argmax of v with ties broken by acc, the accumulators of
// the last weighted layer.
func (s *Session) classOf(acc []int32, v []int8) int {
	best, tied := 0, false
	for i := 1; i < len(v); i++ {
		switch {
		case v[i] > v[best]:
			best, tied = i, false
		case v[i] == v[best]:
			tied = true
		}
	}
	p := &s.m.plan
	if !tied || p.lastFC < 0 || p.layers[p.lastFC].kind != FullyConnected || p.layers[p.lastFC].out != len(v) {
		return best
	}
	st := &p.layers[p.lastFC]
	top, bestScore := v[best], math.Inf(-1)
	for i, x := range v {
		if x != top {
			continue
		}
		score := float64(float64(acc[i]+st.rq.Bias[i]) * st.accScale[i])
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// requantizeSingle is requantization with TFLITE_SINGLE_ROUNDING.
func requantizeSingle(y []int8, acc []int32, st *step) {
	bias, mult, shift := st.rq.Bias[:len(y)], st.rq.Mult[:len(y)], st.shift[:len(y)]
	acc = acc[:len(y)]
	for c := range y {
		v := MultiplyByQuantizedMultiplier(acc[c]+bias[c], mult[c], int(shift[c]), SingleRounding) + st.zero
		y[c] = int8(min(max(v, st.lo), st.hi))
	}
}

// InferBatch runs len(classes) inferences on features laid out row by row
// (len(features) = batch·Features()). It writes each row's last-layer output
// to dst (batch·Classes() values) and its argmax to classes.
func (s *Session) InferBatch(dst []int8, classes []int, features []float32) error {
	nf, nc, b := s.m.Features(), s.m.Classes(), len(classes)
	if len(features) != b*nf || len(dst) != b*nc {
		return fmt.Errorf("model: batch of %d needs %d features and %d outputs, got %d and %d: %w", b, b*nf, b*nc, len(features), len(dst), ErrInput)
	}
	for i := 0; i < b; i += 2 {
		n := min(2, b-i)
		for j := 0; j < n; j++ {
			if err := s.Quantize(s.lanes[j].x, features[(i+j)*nf:(i+j+1)*nf]); err != nil {
				return fmt.Errorf("model: batch row %d: %w", i+j, err)
			}
		}
		out := s.run(n)
		for j := 0; j < n; j++ {
			copy(dst[(i+j)*nc:], out[j].Last())
			classes[i+j] = out[j].Class
		}
	}
	return nil
}

// Dequantize converts int8 values of tensor quantization q to reals.
func Dequantize(dst []float32, src []int8, q Quant) {
	for i, v := range src {
		dst[i] = q.Scale * float32(int32(v)-int32(q.Zero))
	}
}
