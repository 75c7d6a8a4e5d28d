package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// hostileBody is issue 10's file: FC 1 → 2^20, a conv1d with kernel 2^19
// over those 2^20 values, FC → 1, and golden vectors. Its parameters are
// never checked for consistency because the budget rejects it first.
func hostileBody(golden int) []byte {
	const wide = 1 << 20
	m := &Model{Name: "hostile", Version: 1}
	m.Input = InputSpec{Names: []string{"x"}, Mean: []float32{0}, Std: []float32{1}, Quant: Quant{Scale: 0.1}}
	q := Quant{Scale: 0.1}
	fc := func(in, out int) Layer {
		return Layer{Kind: FullyConnected, In: in, Out: out, Input: q, Output: q,
			Weights: make([]int8, in*out), WScales: make([]float32, out), Bias: make([]int32, out), Mult: make([]int32, out), Shift: make([]int8, out)}
	}
	const k = 1 << 19
	pos := wide - k + 1
	conv := Layer{Kind: Conv1D, In: wide, Out: pos, Input: q, Output: q, Length: wide, InCh: 1, OutCh: 1, Kernel: k, Stride: 1,
		Weights: make([]int8, k), WScales: make([]float32, 1), Bias: make([]int32, 1), Mult: make([]int32, 1), Shift: make([]int8, 1)}
	m.Layers = []Layer{fc(1, wide), conv, fc(pos, 1)}
	for i := 0; i < golden; i++ {
		m.Golden = append(m.Golden, Golden{Input: []float32{1}, Output: []int8{0}})
	}
	return encodeBody(m)
}

// allocated is the heap bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestHostileComputeIsRejectedBeforeAllocation(t *testing.T) {
	for _, golden := range []int{0, 4, 1024} {
		file := rawFile(hostileBody(golden))
		if len(file) < 15<<20 {
			t.Fatalf("hostile file is %d bytes, the issue's was 15.7 MB", len(file))
		}
		var err error
		// The FC 1 → 2^20 layer alone has 14 MB of parameters; a loader
		// that checks the budget first allocates a tiny fraction of that.
		n := allocated(func() { _, err = Decode(file, DecodeOptions{}) })
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "multiply-accumulates") {
			t.Fatalf("%d golden: %v, want ErrTooLarge naming the multiply-accumulates", golden, err)
		}
		if n > 1<<20 {
			t.Fatalf("%d golden: decoding allocated %d bytes before rejecting the file", golden, n)
		}
	}
}

func TestGoldenWorkBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(40, 41))
	m := randomModel(rng, DoubleRounding, 64, 32, 4) // 2,176 MACs per inference
	addGolden(m, rng, 10)
	file := encodeT(t, m, nil)
	if _, err := Decode(file, DecodeOptions{}); err != nil {
		t.Fatal(err)
	}
	macs := m.MACs()
	if macs != 64*32+32*4 {
		t.Fatalf("MACs() = %d", macs)
	}
	// Ten vectors need 10·macs; one less is over the budget.
	_, err := Decode(file, DecodeOptions{MaxGoldenMACs: 10*macs - 1})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "10 golden vectors") {
		t.Fatalf("golden budget: %v", err)
	}
	if _, err := Decode(file, DecodeOptions{MaxGoldenMACs: 10 * macs}); err != nil {
		t.Fatalf("golden budget exactly met: %v", err)
	}
	_, err = Decode(file, DecodeOptions{MaxMACs: macs - 1})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "layer 1") {
		t.Fatalf("MAC budget: %v", err)
	}
	// NewModel applies the default budget too.
	big := randomModel(rng, DoubleRounding, 8, 4)
	big.Layers[0].In, big.Layers[0].Out = 1<<14, 1<<13 // 2^27 MACs
	if err := big.checkBudget(DefaultMaxMACs, DefaultMaxGoldenMACs); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("checkBudget: %v", err)
	}
}

// cancelAfter is a context whose Err turns to Canceled after n calls, to
// cancel in the middle of the golden vectors deterministically.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

func TestDecodeIsCancellable(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 43))
	m := randomModel(rng, DoubleRounding, 16, 8, 3)
	addGolden(m, rng, 50)
	file := encodeT(t, m, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DecodeContext(ctx, file, DecodeOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	// Two checks before the golden vectors, then one per vector.
	_, err := DecodeContext(&cancelAfter{context.Background(), 2 + 7}, file, DecodeOptions{})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "golden 7 of 50") {
		t.Fatalf("cancelled during golden vectors: %v", err)
	}
	if _, err := LoadContext(ctx, strings.NewReader(string(file)), DecodeOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("LoadContext cancelled: %v", err)
	}
	if _, err := LoadContext(context.Background(), strings.NewReader(string(file)), DecodeOptions{}); err != nil {
		t.Fatal(err)
	}
}

// nanGoldenBody is a well-formed model whose first golden input is NaN.
func nanGoldenBody() []byte {
	rng := rand.New(rand.NewPCG(44, 45))
	m := randomModel(rng, DoubleRounding, 6, 4, 3)
	addGolden(m, rng, 2)
	m.Golden[0].Input[2] = float32(math.NaN())
	return encodeBody(m)
}

func TestNaNGoldenInputIsInconsistent(t *testing.T) {
	body := nanGoldenBody()
	_, err := Decode(rawFile(body), DecodeOptions{})
	if !errors.Is(err, ErrInconsistent) || errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "golden 0: input 2 is NaN") {
		t.Fatalf("NaN golden input: %v, want ErrInconsistent naming golden 0 input 2", err)
	}
	// The same file is a seed of both fuzz targets.
	for _, c := range []struct{ target, name string }{{"FuzzDecodeBody", "nan-golden-input"}, {"FuzzDecode", "nan-golden-input"}} {
		data := body
		if c.target == "FuzzDecode" {
			data = rawFile(body)
		}
		path := filepath.Join("testdata", "fuzz", c.target, c.name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: seed missing (go test -run TestNaNGoldenInputIsInconsistent -update): %v", path, err)
		}
		// The seed is compared by what it decodes to, not byte for byte:
		// the generated model's floats may round differently on another
		// CPU (fused multiply-add on arm64).
		quoted, ok := strings.CutPrefix(strings.TrimSpace(string(got)), "go test fuzz v1\n[]byte(")
		quoted, ok2 := strings.CutSuffix(quoted, ")")
		seed, uerr := strconv.Unquote(quoted)
		if !ok || !ok2 || uerr != nil {
			t.Fatalf("%s: not a go test fuzz v1 []byte seed: %v", path, uerr)
		}
		raw := []byte(seed)
		if c.target == "FuzzDecodeBody" {
			raw = rawFile(raw)
		}
		if _, err := Decode(raw, DecodeOptions{}); !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "is NaN") {
			t.Fatalf("%s: seed decodes to %v, want ErrInconsistent for a NaN golden input (go test -run TestNaNGoldenInputIsInconsistent -update)", path, err)
		}
	}
}

func TestInputScaleOverflowIsInconsistent(t *testing.T) {
	rng := rand.New(rand.NewPCG(46, 47))
	m := randomModel(rng, DoubleRounding, 4, 3)
	m.Input.Std[1] = 1e-40 // subnormal: 1/(1e-40 · 0.03) overflows float32
	_, err := Decode(rawFile(encodeBody(m)), DecodeOptions{})
	if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "feature 1") {
		t.Fatalf("overflowing input factor: %v", err)
	}
}

func TestUnknownKernelEnvironmentIsAnError(t *testing.T) {
	rng := rand.New(rand.NewPCG(48, 49))
	m := randomModel(rng, DoubleRounding, 4, 3)
	addGolden(m, rng, 1)
	file := encodeT(t, m, nil)
	t.Setenv("SHELFGATE_KERNEL", "avx9000")
	if _, err := DefaultKernel(); !errors.Is(err, ErrKernel) || !strings.Contains(err.Error(), `"avx9000"`) {
		t.Fatalf("DefaultKernel: %v", err)
	}
	if _, err := Decode(file, DecodeOptions{}); !errors.Is(err, ErrKernel) {
		t.Fatalf("Decode with golden vectors: %v", err)
	}
	q, err := Decode(file, DecodeOptions{SkipGolden: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.NewSessionWith(); !errors.Is(err, ErrKernel) {
		t.Fatalf("NewSessionWith: %v", err)
	}
	// An explicit kernel needs no environment.
	if s, err := q.NewSessionWith(WithKernel("generic")); err != nil || s.KernelName() != "generic" {
		t.Fatalf("WithKernel(generic): %v", err)
	}
	if _, err := q.NewSessionWith(WithKernel("avx9000")); !errors.Is(err, ErrKernel) {
		t.Fatalf("WithKernel(avx9000): %v", err)
	}
}
