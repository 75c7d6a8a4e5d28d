// Command modelbench measures the int8 engine on the reference shape
// (MLP 1000 → 500 ReLU → 100 softmax, one core) beside a float32 forward pass
// of the same shape with gonum BLAS and beside the portable Go kernel, all
// in the same run, and prints FIGURE lines for make bench-model. It first
// checks that every kernel gives bit-identical outputs.
//
// With -agreement it instead measures, for each calibration method, the
// int8/float top-1 agreement on several data sets (see agreement.go).
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/shelfgate/shelfgate/model"
	"github.com/shelfgate/shelfgate/model/quantize"
	"github.com/shelfgate/shelfgate/model/train"
)

const batch = 32

var rounds *int

func main() {
	benchtime := flag.Duration("benchtime", 0, "minimum time per measurement (default: testing's 1s)")
	rounds = flag.Int("rounds", 7, "interleaved measurement rounds; figures use each variant's best round")
	asmMix := flag.String("asm-mix", "", "instead of timing, report the inner-loop instruction mix of this arm64 .s file against matvec_amd64.s")
	saveModel := flag.String("save-model", "", "instead of timing, write the reference-shape model to this file")
	digest := flag.String("digest", "", "instead of timing, print a SHA-256 of every kernel's outputs of this model file on fixed inputs")
	agreement := flag.Bool("agreement", false, "instead of timing, measure int8/float top-1 agreement of every calibration on several data sets")
	agreementCache := flag.String("agreement-cache", "", "directory to keep the trained float models of -agreement between runs")
	agreementEpochs := flag.Int("agreement-epochs", 8, "maximum training epochs per data set for -agreement")
	agreementRows := flag.Int("agreement-rows", 10000, "test rows per data set for -agreement")
	testing.Init()
	flag.Parse()
	if *agreement {
		if err := runAgreement(*agreementCache, *agreementEpochs, *agreementRows); err != nil {
			fmt.Fprintln(os.Stderr, "modelbench:", err)
			os.Exit(1)
		}
		return
	}
	if *saveModel != "" || *digest != "" {
		var err error
		if *saveModel != "" {
			err = writeReference(*saveModel)
		} else {
			err = printDigest(*digest)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "modelbench:", err)
			os.Exit(1)
		}
		return
	}
	if *asmMix != "" {
		if err := reportMix(*asmMix); err != nil {
			fmt.Fprintln(os.Stderr, "modelbench:", err)
			os.Exit(1)
		}
		return
	}
	if *benchtime > 0 {
		flag.Set("test.benchtime", benchtime.String())
	}
	runtime.GOMAXPROCS(1)
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "modelbench:", err)
		os.Exit(1)
	}
}

// referenceModel builds the reference-shape int8 model (1000 → 500 ReLU →
// 100 softmax) from a seeded random float MLP, with calibration rows.
func referenceModel() (*train.MLP, *model.Model, [][]float32, error) {
	rng := rand.New(rand.NewPCG(42, 1))
	f := train.NewMLP(rng, 1000, 500, 100)
	for l := range f.B {
		for i := range f.B[l] {
			f.B[l][i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	for i := range f.Mean {
		f.Mean[i] = float32(rng.NormFloat64())
		f.Std[i] = float32(0.5 + rng.Float64())
	}
	rows := make([][]float32, 256)
	for i := range rows {
		rows[i] = make([]float32, 1000)
		for j := range rows[i] {
			rows[i][j] = f.Mean[j] + f.Std[j]*float32(rng.NormFloat64())
		}
	}
	q, err := quantize.Quantize(f, rows, quantize.Options{Name: "bench", Version: 1, Golden: 2})
	return f, q, rows, err
}

func writeReference(path string) error {
	_, q, _, err := referenceModel()
	if err != nil {
		return err
	}
	data, err := model.Encode(q, nil)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// printDigest hashes every kernel's logits, softmax outputs and classes for
// 256 input rows made with integer arithmetic only (exact on every CPU), so
// that two architectures can be compared by their digests.
func printDigest(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	q, err := model.Decode(data, model.DecodeOptions{})
	if err != nil {
		return err
	}
	x := make([]float32, q.Features())
	var first string
	for _, k := range model.Kernels() {
		s, err := q.NewSessionWith(model.WithKernel(k))
		if err != nil {
			return err
		}
		h := sha256.New()
		rng := rand.New(rand.NewPCG(7, 7))
		for r := 0; r < 256; r++ {
			for j := range x {
				x[j] = float32(int32(rng.Uint32()%4001)-2000) / 256 // exact
			}
			out, err := s.Infer(x)
			if err != nil {
				return err
			}
			for _, v := range out.Logits {
				h.Write([]byte{byte(v)})
			}
			for _, v := range out.Probs {
				h.Write([]byte{byte(v)})
			}
			h.Write([]byte{byte(out.Class)})
		}
		d := fmt.Sprintf("%x", h.Sum(nil))
		if first == "" {
			first = d
		} else if d != first {
			return fmt.Errorf("kernel %s digest %s differs from %s's %s", k, d, model.Kernels()[0], first)
		}
	}
	fmt.Printf("%s %s\n", first, strings.Join(model.Kernels(), ","))
	return nil
}

func run() error {
	f, q, rows, err := referenceModel()
	if err != nil {
		return err
	}

	// Bit-exactness across kernels before timing anything.
	var ref []byte
	for _, k := range model.Kernels() {
		s, err := q.NewSessionWith(model.WithKernel(k))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		for _, x := range rows {
			out, err := s.Infer(x)
			if err != nil {
				return err
			}
			for _, v := range out.Logits {
				b.WriteByte(byte(v))
			}
			for _, v := range out.Probs {
				b.WriteByte(byte(v))
			}
		}
		if ref == nil {
			ref = b.Bytes()
		} else if !bytes.Equal(ref, b.Bytes()) {
			return fmt.Errorf("kernel %s differs from %s", k, model.Kernels()[0])
		}
	}
	def, err := model.DefaultKernel()
	if err != nil {
		return err
	}
	fmt.Printf("# kernels %v agree bit for bit on %d rows; default %s; GOMAXPROCS=1 %s/%s\n", model.Kernels(), len(rows), def, runtime.GOOS, runtime.GOARCH)

	x := rows[0]
	fast, _ := q.NewSessionWith(model.WithKernel(def))
	generic, _ := q.NewSessionWith(model.WithKernel("generic"))
	fl := newFloatNet(f, batch)

	flat := make([]float32, 0, batch*1000)
	for _, r := range rows[:batch] {
		flat = append(flat, r...)
	}
	dst, classes := make([]int8, batch*100), make([]int, batch)
	if fl.predict1(x) != f.Predict(x) {
		return fmt.Errorf("gonum baseline disagrees with train.MLP")
	}

	// The machine is shared: measure every variant in each of several
	// interleaved rounds. The figures use each variant's best round (the
	// usual estimate of a cost under additive interference from other
	// load); the medians are printed beside them.
	cases := []struct {
		name string
		fn   func()
	}{
		{"int8", func() { fast.Infer(x) }},
		{"float", func() { fl.forward1(x) }},
		{"generic", func() { generic.Infer(x) }},
		{"int8batch", func() { fast.InferBatch(dst, classes, flat) }},
		{"floatbatch", func() { fl.forwardBatch(flat) }},
	}
	results := map[string][]testing.BenchmarkResult{}
	for round := 0; round < *rounds; round++ {
		for _, c := range cases {
			r := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c.fn()
				}
			})
			results[c.name] = append(results[c.name], r)
		}
	}
	for _, rs := range results {
		sort.Slice(rs, func(i, j int) bool { return nsPerOp(rs[i]) < nsPerOp(rs[j]) })
	}
	best := func(name string) testing.BenchmarkResult { return results[name][0] }
	median := func(name string) float64 { return nsPerOp(results[name][len(results[name])/2]) / 1e3 }
	int8Lat, fLat, genLat := best("int8"), best("float"), best("generic")
	int8Batch, fBatch := best("int8batch"), best("floatbatch")
	fmt.Printf("# medians of %d rounds: int8 %.2f µs, gonum float32 %.2f µs (ratio %.3f), portable int8 %.1f µs; batch-32 int8 %.0f µs, Sgemm %.0f µs per batch\n",
		*rounds, median("int8"), median("float"), median("int8")/median("float"), median("generic"), median("int8batch"), median("floatbatch"))

	us := func(r testing.BenchmarkResult) float64 { return float64(r.NsPerOp()) / 1e3 }
	ips := func(r testing.BenchmarkResult) float64 {
		return batch / (float64(r.T.Nanoseconds()) / float64(r.N) / 1e9)
	}
	figure("model_int8_latency", us(int8Lat), "us", us(fLat))
	figure("model_int8_vs_portable_latency", us(int8Lat), "us", us(genLat))
	figure("model_int8_allocs", float64(int8Lat.AllocsPerOp()), "allocs/op", float64(fLat.AllocsPerOp()))
	figure("model_int8_batch32_throughput", ips(int8Batch), "inf/s", ips(fBatch))
	figure("model_int8_batch32_allocs", float64(int8Batch.AllocsPerOp()), "allocs/op", 0)
	return nil
}

func nsPerOp(r testing.BenchmarkResult) float64 { return float64(r.T.Nanoseconds()) / float64(r.N) }

// figure prints one FIGURE line; ratio = value / baseline.
func figure(name string, value float64, unit string, baseline float64) {
	ratio := value / baseline
	if baseline == 0 && value == 0 {
		ratio = 1 // e.g. zero allocations beside zero allocations
	}
	fmt.Printf("FIGURE %s=%.4g unit=%s baseline=%.4g ratio=%.3g\n", name, value, unit, baseline, ratio)
}

// floatNet is the float32 forward pass of the same MLP with gonum BLAS:
// standardization, Gemv/Gemm, bias, ReLU, softmax.
type floatNet struct {
	f          *train.MLP
	in, h, out []float32
	bin, bh    []float32
	bout       []float32
}

func newFloatNet(f *train.MLP, b int) *floatNet {
	return &floatNet{f: f, in: make([]float32, 1000), h: make([]float32, 500), out: make([]float32, 100),
		bin: make([]float32, b*1000), bh: make([]float32, b*500), bout: make([]float32, b*100)}
}

func (n *floatNet) w(l int) blas32.General {
	return blas32.General{Rows: n.f.Sizes[l+1], Cols: n.f.Sizes[l], Stride: n.f.Sizes[l], Data: n.f.W[l]}
}

func vec(v []float32) blas32.Vector { return blas32.Vector{N: len(v), Inc: 1, Data: v} }

func (n *floatNet) forward1(x []float32) {
	n.f.Standardize(n.in, x)
	copy(n.h, n.f.B[0])
	blas32.Gemv(blas.NoTrans, 1, n.w(0), vec(n.in), 1, vec(n.h))
	for i, v := range n.h {
		n.h[i] = max(v, 0)
	}
	copy(n.out, n.f.B[1])
	blas32.Gemv(blas.NoTrans, 1, n.w(1), vec(n.h), 1, vec(n.out))
	train.Softmax(n.out, n.out)
}

func (n *floatNet) predict1(x []float32) int {
	n.forward1(x)
	return train.Argmax(n.out)
}

func (n *floatNet) forwardBatch(flat []float32) {
	b := len(flat) / 1000
	for r := 0; r < b; r++ {
		n.f.Standardize(n.bin[r*1000:(r+1)*1000], flat[r*1000:(r+1)*1000])
		copy(n.bh[r*500:], n.f.B[0])
		copy(n.bout[r*100:], n.f.B[1])
	}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, blas32.General{Rows: b, Cols: 1000, Stride: 1000, Data: n.bin}, n.w(0), 1, blas32.General{Rows: b, Cols: 500, Stride: 500, Data: n.bh})
	for i, v := range n.bh {
		n.bh[i] = max(v, 0)
	}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, blas32.General{Rows: b, Cols: 500, Stride: 500, Data: n.bh}, n.w(1), 1, blas32.General{Rows: b, Cols: 100, Stride: 100, Data: n.bout})
	for r := 0; r < b; r++ {
		train.Softmax(n.bout[r*100:(r+1)*100], n.bout[r*100:(r+1)*100])
	}
}
