package model

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// randomModel builds a plausible quantized MLP: sizes[0] features, hidden
// ReLU layers, a last fully connected layer and a softmax.
func randomModel(rng *rand.Rand, r Rounding, sizes ...int) *Model {
	nf := sizes[0]
	m := &Model{Name: "random", Version: 7, Rounding: r}
	for i := 0; i < nf; i++ {
		m.Input.Names = append(m.Input.Names, fmt.Sprintf("f%d", i))
		m.Input.Mean = append(m.Input.Mean, float32(rng.NormFloat64()))
		m.Input.Std = append(m.Input.Std, float32(0.5+rng.Float64()))
	}
	q := Quant{Scale: 0.02 + float32(rng.Float64())*0.02, Zero: int8(rng.IntN(40) - 20)}
	m.Input.Quant = q
	for li := 1; li < len(sizes); li++ {
		in, out := sizes[li-1], sizes[li]
		l := Layer{Kind: FullyConnected, In: in, Out: out, Input: q}
		if li < len(sizes)-1 {
			l.Act = ActReLU
			l.Output = Quant{Scale: 0.01 + float32(rng.Float64())*0.05, Zero: -128}
		} else {
			l.Output = Quant{Scale: 0.05 + float32(rng.Float64())*0.1, Zero: int8(rng.IntN(20) - 10)}
		}
		l.Weights = make([]int8, in*out)
		for i := range l.Weights {
			l.Weights[i] = int8(rng.IntN(255) - 127)
		}
		for c := 0; c < out; c++ {
			l.WScales = append(l.WScales, float32(0.5+rng.Float64())/float32(127*math.Sqrt(float64(in))))
			l.Bias = append(l.Bias, int32(rng.IntN(2001)-1000))
		}
		l.FillRequant(r)
		m.Layers = append(m.Layers, l)
		q = l.Output
	}
	sm := Layer{Kind: Softmax, In: q2n(sizes), Out: q2n(sizes), Input: q, Output: SoftmaxOutput, Beta: 1}
	sm.FillRequant(r)
	m.Layers = append(m.Layers, sm)
	for i := 0; i < nf; i++ {
		m.Output.Labels = m.Output.Labels[:0]
	}
	for c := 0; c < q2n(sizes); c++ {
		m.Output.Labels = append(m.Output.Labels, fmt.Sprintf("class-%d", c))
	}
	return m
}

func q2n(sizes []int) int { return sizes[len(sizes)-1] }

func randomFeatures(rng *rand.Rand, n int) []float32 {
	f := make([]float32, n)
	for i := range f {
		f[i] = float32(rng.NormFloat64() * 2)
	}
	return f
}

// addGolden computes golden outputs with the independent reference below.
func addGolden(m *Model, rng *rand.Rand, n int) {
	for i := 0; i < n; i++ {
		in := randomFeatures(rng, m.Features())
		m.Golden = append(m.Golden, Golden{Input: in, Output: referenceInfer(m, in)})
	}
}

// referenceInfer is TFLite's reference int8 forward pass written out
// directly from the stored parameters: input offset inside the dot product,
// bias added, MultiplyByQuantizedMultiplier, output offset, clamp.
func referenceInfer(m *Model, features []float32) []int8 {
	x := make([]int8, len(features))
	for i, f := range features {
		k := float32(1 / (float64(m.Input.Std[i]) * float64(m.Input.Quant.Scale)))
		v := float64(min(max(float32(f-m.Input.Mean[i])*k, -512), 512))
		x[i] = int8(min(max(math.Round(v)+float64(m.Input.Quant.Zero), -128), 127))
	}
	for _, l := range m.Layers {
		y := make([]int8, l.Out)
		switch l.Kind {
		case FullyConnected:
			lo, hi := int32(-128), int32(127)
			if l.Act == ActReLU {
				lo = max(lo, int32(l.Output.Zero))
			}
			for c := 0; c < l.Out; c++ {
				acc := int32(0)
				for d := 0; d < l.In; d++ {
					acc += int32(l.Weights[c*l.In+d]) * (int32(x[d]) - int32(l.Input.Zero))
				}
				acc += l.Bias[c]
				acc = MultiplyByQuantizedMultiplier(acc, l.Mult[c], int(l.Shift[c]), m.Rounding)
				acc += int32(l.Output.Zero)
				y[c] = int8(min(max(acc, lo), hi))
			}
		case Conv1D:
			lo, hi := int32(-128), int32(127)
			if l.Act == ActReLU {
				lo = max(lo, int32(l.Output.Zero))
			}
			for t := 0; t < l.Positions(); t++ {
				for co := 0; co < l.OutCh; co++ {
					acc := int32(0)
					for k := 0; k < l.Kernel; k++ {
						for ci := 0; ci < l.InCh; ci++ {
							xv := int32(x[(t*l.Stride+k)*l.InCh+ci]) - int32(l.Input.Zero)
							acc += int32(l.Weights[(co*l.Kernel+k)*l.InCh+ci]) * xv
						}
					}
					acc += l.Bias[co]
					acc = MultiplyByQuantizedMultiplier(acc, l.Mult[co], int(l.Shift[co]), m.Rounding)
					acc += int32(l.Output.Zero)
					y[t*l.OutCh+co] = int8(min(max(acc, lo), hi))
				}
			}
		case Softmax:
			SoftmaxReference(y, x, l.SMMult, int(l.SMShift), l.SMDiffMn)
		}
		x = y
	}
	return x
}

// randomConvModel is a window classifier: Conv1D (ReLU) over length×inCh
// samples, then fully connected layers and softmax.
func randomConvModel(rng *rand.Rand, r Rounding, length, inCh, outCh, kernel, stride, classes int) *Model {
	m := randomModel(rng, r, length*inCh, 4, classes) // borrow input spec and the tail
	conv := Layer{Kind: Conv1D, Length: length, InCh: inCh, OutCh: outCh, Kernel: kernel, Stride: stride, Act: ActReLU,
		In: length * inCh, Input: m.Input.Quant, Output: Quant{Scale: 0.02 + float32(rng.Float64())*0.03, Zero: -128}}
	conv.Out = conv.Positions() * outCh
	conv.Weights = make([]int8, outCh*kernel*inCh)
	for i := range conv.Weights {
		conv.Weights[i] = int8(rng.IntN(255) - 127)
	}
	for c := 0; c < outCh; c++ {
		conv.WScales = append(conv.WScales, float32(0.5+rng.Float64())/float32(127*math.Sqrt(float64(kernel*inCh))))
		conv.Bias = append(conv.Bias, int32(rng.IntN(2001)-1000))
	}
	conv.FillRequant(r)
	fc := Layer{Kind: FullyConnected, In: conv.Out, Out: classes, Input: conv.Output, Output: Quant{Scale: 0.1, Zero: 3}}
	fc.Weights = make([]int8, fc.In*fc.Out)
	for i := range fc.Weights {
		fc.Weights[i] = int8(rng.IntN(255) - 127)
	}
	for c := 0; c < classes; c++ {
		fc.WScales = append(fc.WScales, float32(0.5+rng.Float64())/float32(127*math.Sqrt(float64(fc.In))))
		fc.Bias = append(fc.Bias, int32(rng.IntN(201)-100))
	}
	fc.FillRequant(r)
	sm := Layer{Kind: Softmax, In: classes, Out: classes, Input: fc.Output, Output: SoftmaxOutput, Beta: 1}
	sm.FillRequant(r)
	m.Layers = []Layer{conv, fc, sm}
	return m
}

func TestConv1DMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, r := range []Rounding{DoubleRounding, SingleRounding} {
		for _, sh := range [][5]int{{20, 3, 8, 5, 2}, {64, 1, 4, 64, 1}, {33, 2, 5, 1, 3}, {50, 4, 16, 9, 4}} {
			m, err := NewModel(randomConvModel(rng, r, sh[0], sh[1], sh[2], sh[3], sh[4], 6))
			if err != nil {
				t.Fatal(err)
			}
			addGolden(m, rng, 2)
			data := encodeT(t, m, nil)
			back, err := Decode(data, DecodeOptions{})
			if err != nil {
				t.Fatalf("%v: %v", sh, err)
			}
			for _, kn := range Kernels() {
				s, _ := back.NewSessionWith(WithKernel(kn))
				for i := 0; i < 20; i++ {
					in := randomFeatures(rng, m.Features())
					out, err := s.Infer(in)
					if err != nil {
						t.Fatal(err)
					}
					if want := referenceInfer(m, in); !slices.Equal(out.Last(), want) {
						t.Fatalf("%v %v kernel %s: got %v, want %v", r, sh, kn, out.Last(), want)
					}
				}
			}
		}
	}
	bad := randomConvModel(rng, DoubleRounding, 20, 3, 8, 5, 2, 6)
	bad.Layers[0].Stride = 3 // positions change, sizes no longer match
	if _, err := NewModel(bad); !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "conv1d") {
		t.Fatalf("inconsistent conv accepted: %v", err)
	}
}

func TestInferMatchesReferenceOnEveryKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, r := range []Rounding{DoubleRounding, SingleRounding} {
		for _, sizes := range [][]int{{1, 1}, {5, 3}, {33, 17, 4}, {70, 64, 31, 10}, {200, 100, 20}} {
			m, err := NewModel(randomModel(rng, r, sizes...))
			if err != nil {
				t.Fatal(err)
			}
			for _, kn := range Kernels() {
				s, err := m.NewSessionWith(WithKernel(kn))
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 50; i++ {
					in := randomFeatures(rng, m.Features())
					want := referenceInfer(m, in)
					out, err := s.Infer(in)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(out.Last(), want) {
						t.Fatalf("%v %v kernel %s: got %v, want %v", r, sizes, kn, out.Last(), want)
					}
					if want[out.Class] != slices.Max(want) || len(out.Logits) != sizes[len(sizes)-1] {
						t.Fatalf("class %d is not a top class of %v", out.Class, want)
					}
				}
			}
		}
	}
}

func TestInferEdgeInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	m, err := NewModel(randomModel(rng, DoubleRounding, 64, 40, 8))
	if err != nil {
		t.Fatal(err)
	}
	for _, kn := range Kernels() {
		s, _ := m.NewSessionWith(WithKernel(kn))
		for _, v := range []float32{-1e30, 1e30, 0, float32(math.Inf(1)), float32(math.Inf(-1))} {
			in := make([]float32, 64)
			for i := range in {
				in[i] = v
			}
			out, err := s.Infer(in)
			if err != nil {
				t.Fatal(err)
			}
			if want := referenceInfer(m, in); !slices.Equal(out.Last(), want) {
				t.Fatalf("kernel %s input %v: got %v want %v", kn, v, out.Last(), want)
			}
		}
		in := make([]float32, 64)
		in[3] = float32(math.NaN())
		if _, err := s.Infer(in); !errors.Is(err, ErrInput) {
			t.Fatalf("NaN input: %v", err)
		}
		if _, err := s.Infer(in[:10]); !errors.Is(err, ErrInput) {
			t.Fatalf("short input: %v", err)
		}
	}
}

func TestInferQuantizedAndBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	m, err := NewModel(randomModel(rng, DoubleRounding, 50, 30, 6))
	if err != nil {
		t.Fatal(err)
	}
	s := m.NewSession()
	const b = 5
	feats := randomFeatures(rng, b*50)
	dst := make([]int8, b*6)
	classes := make([]int, b)
	if err := s.InferBatch(dst, classes, feats); err != nil {
		t.Fatal(err)
	}
	q := make([]int8, 50)
	for i := 0; i < b; i++ {
		want := referenceInfer(m, feats[i*50:(i+1)*50])
		if !slices.Equal(dst[i*6:(i+1)*6], want) || want[classes[i]] != slices.Max(want) {
			t.Fatalf("row %d: got %v class %d, want %v", i, dst[i*6:(i+1)*6], classes[i], want)
		}
		if err := s.Quantize(q, feats[i*50:(i+1)*50]); err != nil {
			t.Fatal(err)
		}
		out, err := s.InferQuantized(q)
		if err != nil || !slices.Equal(out.Last(), want) {
			t.Fatalf("quantized row %d: %v %v", i, out.Last(), err)
		}
	}
	if err := s.Quantize(q[:3], feats[:50]); !errors.Is(err, ErrInput) {
		t.Fatalf("short quantize destination: %v", err)
	}
	if err := s.InferBatch(dst[:7], classes, feats); !errors.Is(err, ErrInput) {
		t.Fatalf("bad batch: %v", err)
	}
}

// referenceLogitsReal is the real-valued last fully connected layer output
// before requantization, from the stored parameters.
func referenceLogitsReal(m *Model, features []float32) []float64 {
	x := make([]int8, len(features))
	for i, f := range features {
		k := float32(1 / (float64(m.Input.Std[i]) * float64(m.Input.Quant.Scale)))
		v := float64(min(max(float32(f-m.Input.Mean[i])*k, -512), 512))
		x[i] = int8(min(max(math.Round(v)+float64(m.Input.Quant.Zero), -128), 127))
	}
	var real []float64
	for _, l := range m.Layers {
		if l.Kind != FullyConnected {
			break
		}
		y := make([]int8, l.Out)
		real = make([]float64, l.Out)
		for c := 0; c < l.Out; c++ {
			acc := int32(0)
			for d := 0; d < l.In; d++ {
				acc += int32(l.Weights[c*l.In+d]) * (int32(x[d]) - int32(l.Input.Zero))
			}
			acc += l.Bias[c]
			real[c] = float64(acc) * (float64(l.Input.Scale) * float64(l.WScales[c]))
			v := MultiplyByQuantizedMultiplier(acc, l.Mult[c], int(l.Shift[c]), m.Rounding) + int32(l.Output.Zero)
			if l.Act == ActReLU {
				v = max(v, int32(l.Output.Zero))
			}
			y[c] = int8(min(max(v, -128), 127))
		}
		x = y
	}
	return real
}

func TestClassBreaksTiesWithAccumulators(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	m := randomModel(rng, DoubleRounding, 30, 20, 12)
	m.Layers[1].Output.Scale *= 8 // coarse logits make ties common
	m.Layers[1].FillRequant(DoubleRounding)
	m.Layers[2].Input = m.Layers[1].Output
	m.Layers[2].FillRequant(DoubleRounding)
	if _, err := NewModel(m); err != nil {
		t.Fatal(err)
	}
	s := m.NewSession()
	ties := 0
	for i := 0; i < 300; i++ {
		in := randomFeatures(rng, 30)
		out, err := s.Infer(in)
		if err != nil {
			t.Fatal(err)
		}
		want := referenceInfer(m, in)
		top := slices.Max(want)
		real := referenceLogitsReal(m, in)
		best := -1
		for c, v := range want {
			if v == top && (best < 0 || real[c] > real[best]) {
				best = c
			}
		}
		if n := bytes.Count(func() []byte {
			b := make([]byte, len(want))
			for c, v := range want {
				if v == top {
					b[c] = 1
				}
			}
			return b
		}(), []byte{1}); n > 1 {
			ties++
		}
		if out.Class != best {
			t.Fatalf("class %d, want %d (outputs %v, real logits %v)", out.Class, best, want, real)
		}
	}
	if ties == 0 {
		t.Fatal("no ties exercised")
	}
	t.Logf("%d of 300 rows had tied top outputs", ties)
}

func TestInferDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	m, err := NewModel(randomModel(rng, DoubleRounding, 100, 50, 10))
	if err != nil {
		t.Fatal(err)
	}
	s := m.NewSession()
	in := randomFeatures(rng, 100)
	batch := randomFeatures(rng, 4*100)
	dst, classes := make([]int8, 40), make([]int, 4)
	if n := testing.AllocsPerRun(50, func() { s.Infer(in) }); n != 0 {
		t.Errorf("Infer: %v allocs", n)
	}
	if n := testing.AllocsPerRun(50, func() { s.InferBatch(dst, classes, batch) }); n != 0 {
		t.Errorf("InferBatch: %v allocs", n)
	}
}

func encodeT(t testing.TB, m *Model, key ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := Encode(m, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawFile wraps a body in a header and digest without validating it, to
// feed the decoder files Encode would refuse to write.
func rawFile(body []byte) []byte {
	var b []byte
	b = append(b, Magic...)
	b = binary.LittleEndian.AppendUint16(b, FormatVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	b = append(b, body...)
	sum := sha256.Sum256(body)
	return append(b, sum[:]...)
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for _, r := range []Rounding{DoubleRounding, SingleRounding} {
		m := randomModel(rng, r, 40, 20, 5)
		addGolden(m, rng, 3)
		data := encodeT(t, m, nil)
		got, err := Decode(data, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != sha256.Sum256(data[headerSize:len(data)-digestSize]) || got.Signed {
			t.Fatalf("digest or signed flag wrong")
		}
		if !bytes.Equal(encodeBody(got), encodeBody(m)) || got.Name != m.Name || got.Version != m.Version || got.Rounding != r {
			t.Fatalf("round trip changed the model")
		}
	}
}

func TestSignature(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	pub, priv, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
	otherPub, _, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{2}, 64)))
	m := randomModel(rng, DoubleRounding, 10, 4)
	signed := encodeT(t, m, priv)
	unsigned := encodeT(t, m, nil)

	got, err := Decode(signed, DecodeOptions{TrustedKeys: []ed25519.PublicKey{otherPub, pub}})
	if err != nil || !got.Signed || !bytes.Equal(got.PublicKey, pub) {
		t.Fatalf("signed model: %v", err)
	}
	if _, err := Decode(signed, DecodeOptions{}); err != nil {
		t.Fatalf("signed model without trusted keys: %v", err)
	}
	if _, err := Decode(signed, DecodeOptions{TrustedKeys: []ed25519.PublicKey{otherPub}}); !errors.Is(err, ErrUntrustedKey) {
		t.Fatalf("untrusted key: %v", err)
	}
	if _, err := Decode(unsigned, DecodeOptions{TrustedKeys: []ed25519.PublicKey{pub}}); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned: %v", err)
	}
	bad := bytes.Clone(signed)
	bad[len(bad)-1] ^= 1
	if _, err := Decode(bad, DecodeOptions{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("flipped signature bit: %v", err)
	}
	// Same body, digest re-signed by another key but the block claims pub.
	bad = bytes.Clone(signed)
	copy(bad[len(bad)-ed25519.SignatureSize-ed25519.PublicKeySize:], otherPub)
	if _, err := Decode(bad, DecodeOptions{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("swapped public key: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	m := randomModel(rng, DoubleRounding, 12, 6, 3)
	addGolden(m, rng, 2)
	good := encodeT(t, m, nil)
	body := encodeBody(m)

	mutate := func(f func(*Model)) []byte {
		c := randomModel(rand.New(rand.NewPCG(23, 24)), DoubleRounding, 12, 6, 3)
		addGolden(c, rand.New(rand.NewPCG(99, 99)), 2)
		f(c)
		return rawFile(encodeBody(c))
	}
	cases := []struct {
		name    string
		data    []byte
		opts    DecodeOptions
		want    error
		message string
	}{
		{"empty", nil, DecodeOptions{}, ErrTruncated, "header needs 16"},
		{"bad magic", append([]byte("NOTMODEL"), good[8:]...), DecodeOptions{}, ErrCorrupt, "magic"},
		{"future version", func() []byte { b := bytes.Clone(good); b[8] = 9; return b }(), DecodeOptions{}, ErrVersion, "format version 9"},
		{"unknown flag", func() []byte { b := bytes.Clone(good); b[10] = 4; return b }(), DecodeOptions{}, ErrCorrupt, "flags"},
		{"truncated", good[:len(good)-1], DecodeOptions{}, ErrTruncated, "header declares"},
		{"trailing", append(bytes.Clone(good), 0), DecodeOptions{}, ErrCorrupt, "trailing"},
		{"flipped body bit", func() []byte { b := bytes.Clone(good); b[headerSize+20] ^= 0x10; return b }(), DecodeOptions{}, ErrChecksum, "SHA-256"},
		{"over limit", good, DecodeOptions{MaxSize: len(good) - 1}, ErrTooLarge, "limit"},
		{"declared over limit", func() []byte {
			b := bytes.Clone(good[:headerSize])
			binary.LittleEndian.PutUint32(b[12:], 1<<31)
			return b
		}(), DecodeOptions{}, ErrTooLarge, "declares"},
		{"body cut short", rawFile(body[:len(body)-5]), DecodeOptions{}, ErrTruncated, "golden vectors at body offset"},
		{"extra body bytes", rawFile(append(bytes.Clone(body), 1, 2)), DecodeOptions{}, ErrCorrupt, "2 unread bytes"},
		{"wrong multiplier", mutate(func(c *Model) { c.Layers[0].Mult[2]++ }), DecodeOptions{}, ErrInconsistent, "layer 0 (fully_connected): channel 2: multiplier"},
		{"wrong softmax shift", mutate(func(c *Model) { c.Layers[2].SMShift++ }), DecodeOptions{}, ErrInconsistent, "layer 2 (softmax)"},
		{"weight −128", mutate(func(c *Model) { c.Layers[1].Weights[4] = -128 }), DecodeOptions{}, ErrInconsistent, "weight [0][4]"},
		{"broken chain", mutate(func(c *Model) { c.Layers[1].Input.Zero++ }), DecodeOptions{}, ErrInconsistent, "layer 1 (fully_connected): input quantization"},
		{"softmax output scale", mutate(func(c *Model) { c.Layers[2].Output.Scale = 0.5 }), DecodeOptions{}, ErrInconsistent, "1/256"},
		{"zero std", mutate(func(c *Model) { c.Input.Std[3] = 0 }), DecodeOptions{}, ErrInconsistent, "feature 3"},
		{"golden mismatch", mutate(func(c *Model) { c.Golden[1].Output[0]++ }), DecodeOptions{}, ErrGoldenMismatch, "golden 1: output 0"},
		{"huge feature count", func() []byte {
			b := bytes.Clone(body)
			off := 8 + 2 + len(m.Name) + 1
			binary.LittleEndian.PutUint32(b[off:], 1<<30)
			return rawFile(b)
		}(), DecodeOptions{}, ErrTooLarge, "feature count"},
		{"feature count past end", func() []byte {
			b := bytes.Clone(body)
			off := 8 + 2 + len(m.Name) + 1
			binary.LittleEndian.PutUint32(b[off:], 1<<19)
			return rawFile(b)
		}(), DecodeOptions{}, ErrTruncated, "feature count"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.data, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.message) {
				t.Fatalf("error %q does not mention %q", err, c.message)
			}
		})
	}
	if _, err := Decode(good, DecodeOptions{}); err != nil {
		t.Fatalf("good file: %v", err)
	}
	// Every proper prefix is rejected.
	for n := 0; n < len(good); n++ {
		if _, err := Decode(good[:n], DecodeOptions{}); err == nil {
			t.Fatalf("prefix of %d bytes accepted", n)
		}
	}
}

func TestLoadLimit(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	good := encodeT(t, randomModel(rng, DoubleRounding, 8, 2), nil)
	if _, err := Load(bytes.NewReader(good), DecodeOptions{MaxSize: 10}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Load over limit: %v", err)
	}
	if _, err := Load(bytes.NewReader(good), DecodeOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestReferenceModelGolden pins bit-exact outputs of the reference models
// in testdata (an MLP with double rounding, the same shape with single
// rounding, and a Conv1D window classifier) on every kernel; go test
// -update regenerates the model files and their .golden outputs.
func TestReferenceModelGolden(t *testing.T) {
	cases := []struct {
		name  string
		build func(rng *rand.Rand) *Model
	}{
		{"reference", func(rng *rand.Rand) *Model { return randomModel(rng, DoubleRounding, 48, 32, 10) }},
		{"reference-single", func(rng *rand.Rand) *Model { return randomModel(rng, SingleRounding, 48, 32, 10) }},
		{"reference-conv", func(rng *rand.Rand) *Model { return randomConvModel(rng, DoubleRounding, 30, 2, 8, 5, 2, 6) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join("testdata", c.name+".sgm")
			outPath := filepath.Join("testdata", c.name+".golden")
			if *update {
				rng := rand.New(rand.NewPCG(2026, 4))
				m := c.build(rng)
				m.Name, m.Version = c.name, 1
				addGolden(m, rng, 4)
				if err := os.WriteFile(path, encodeT(t, m, nil), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Decode(data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, kn := range Kernels() {
				s, _ := m.NewSessionWith(WithKernel(kn))
				inRng := rand.New(rand.NewPCG(1, 1))
				var b bytes.Buffer
				for i := 0; i < 20; i++ {
					out, err := s.Infer(randomFeatures(inRng, m.Features()))
					if err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&b, "%d logits=%v probs=%v class=%d\n", i, out.Logits, out.Probs, out.Class)
				}
				if got == nil {
					got = b.Bytes()
				} else if !bytes.Equal(got, b.Bytes()) {
					t.Fatalf("kernel %s differs from %s", kn, Kernels()[0])
				}
			}
			if *update {
				if err := os.WriteFile(outPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(outPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("outputs differ from %s:\n%s", outPath, got)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(27, 28))
	m := randomModel(rng, DoubleRounding, 6, 4, 3)
	addGolden(m, rng, 1)
	good, _ := Encode(m, nil)
	f.Add(good)
	_, priv, _ := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{3}, 64)))
	signed, _ := Encode(m, priv)
	f.Add(signed)
	f.Add([]byte(Magic))
	f.Add(rawFile(nanGoldenBody()))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data, DecodeOptions{MaxSize: 1 << 20})
		if err != nil {
			for _, e := range []error{ErrTruncated, ErrCorrupt, ErrChecksum, ErrTooLarge, ErrVersion, ErrInconsistent, ErrGoldenMismatch, ErrBadSignature} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("error without a documented sentinel: %v", err)
		}
		// Whatever decodes must run and re-encode to an equivalent file.
		s := m.NewSession()
		if _, err := s.Infer(make([]float32, m.Features())); err != nil {
			t.Fatal(err)
		}
		if _, err := Encode(m, nil); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeBody skips the digest so the fuzzer reaches the body parser and
// the consistency checks.
func FuzzDecodeBody(f *testing.F) {
	rng := rand.New(rand.NewPCG(29, 30))
	m := randomModel(rng, DoubleRounding, 6, 4, 3)
	addGolden(m, rng, 1)
	f.Add(encodeBody(m))
	f.Add(encodeBody(randomModel(rng, SingleRounding, 3, 2)))
	f.Add(encodeBody(randomConvModel(rng, DoubleRounding, 8, 2, 3, 3, 2, 3)))
	f.Add(nanGoldenBody())
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(rawFile(body), DecodeOptions{MaxSize: 1 << 20})
		if err != nil {
			for _, e := range []error{ErrTruncated, ErrCorrupt, ErrTooLarge, ErrInconsistent, ErrGoldenMismatch} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		if !bytes.Equal(encodeBody(m), body) {
			t.Fatal("accepted body does not re-encode identically")
		}
		s := m.NewSession()
		if _, err := s.Infer(make([]float32, m.Features())); err != nil {
			t.Fatal(err)
		}
	})
}

func BenchmarkInferReferenceShape(b *testing.B) {
	rng := rand.New(rand.NewPCG(31, 32))
	m, err := NewModel(randomModel(rng, DoubleRounding, 1000, 500, 100))
	if err != nil {
		b.Fatal(err)
	}
	for _, kn := range Kernels() {
		s, _ := m.NewSessionWith(WithKernel(kn))
		in := randomFeatures(rng, 1000)
		b.Run(kn, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Infer(in)
			}
		})
	}
}

func TestSessionsRunConcurrently(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	m, err := NewModel(randomModel(rng, DoubleRounding, 40, 24, 6))
	if err != nil {
		t.Fatal(err)
	}
	inputs := make([][]float32, 50)
	wants := make([][]int8, 50)
	for i := range inputs {
		inputs[i] = randomFeatures(rng, 40)
		wants[i] = referenceInfer(m, inputs[i])
	}
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			s := m.NewSession()
			for round := 0; round < 20; round++ {
				for i, in := range inputs {
					out, err := s.Infer(in)
					if err == nil && !slices.Equal(out.Last(), wants[i]) {
						err = fmt.Errorf("row %d: %v, want %v", i, out.Last(), wants[i])
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestInferBatchEqualsInfer runs odd and even batches, on an MLP and a
// Conv1D model, on every kernel: outputs and classes (tie-breaks included)
// must equal one Infer per row.
func TestInferBatchEqualsInfer(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	coarse := randomModel(rng, DoubleRounding, 30, 20, 12)
	coarse.Layers[1].Output.Scale *= 8 // frequent ties
	coarse.Layers[1].FillRequant(DoubleRounding)
	coarse.Layers[2].Input = coarse.Layers[1].Output
	coarse.Layers[2].FillRequant(DoubleRounding)
	for _, raw := range []*Model{coarse, randomConvModel(rng, DoubleRounding, 20, 3, 8, 5, 2, 6), randomModel(rng, SingleRounding, 70, 33, 9)} {
		m, err := NewModel(raw)
		if err != nil {
			t.Fatal(err)
		}
		nf, nc := m.Features(), m.Classes()
		for _, kn := range Kernels() {
			s, _ := m.NewSessionWith(WithKernel(kn))
			one, _ := m.NewSessionWith(WithKernel(kn))
			for _, b := range []int{1, 2, 7, 32} {
				feats := randomFeatures(rng, b*nf)
				dst, classes := make([]int8, b*nc), make([]int, b)
				if err := s.InferBatch(dst, classes, feats); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < b; i++ {
					out, _ := one.Infer(feats[i*nf : (i+1)*nf])
					if !slices.Equal(dst[i*nc:(i+1)*nc], out.Last()) || classes[i] != out.Class {
						t.Fatalf("kernel %s batch %d row %d: %v class %d, Infer gives %v class %d", kn, b, i, dst[i*nc:(i+1)*nc], classes[i], out.Last(), out.Class)
					}
				}
			}
		}
	}
}

func BenchmarkInferBatch32ReferenceShape(b *testing.B) {
	rng := rand.New(rand.NewPCG(31, 32))
	m, err := NewModel(randomModel(rng, DoubleRounding, 1000, 500, 100))
	if err != nil {
		b.Fatal(err)
	}
	s := m.NewSession()
	feats := randomFeatures(rng, 32*1000)
	dst, classes := make([]int8, 32*100), make([]int, 32)
	b.Run("batch", func(b *testing.B) {
		for b.Loop() {
			s.InferBatch(dst, classes, feats)
		}
	})
	b.Run("rows", func(b *testing.B) {
		for b.Loop() {
			for i := 0; i < 32; i++ {
				s.Infer(feats[i*1000 : (i+1)*1000])
			}
		}
	})
}
