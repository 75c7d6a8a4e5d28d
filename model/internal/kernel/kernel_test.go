package kernel

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refMatVec is the definition written out independently of matVecGeneric.
func refMatVec(w, x []int8, rows, cols int) []int32 {
	out := make([]int32, rows)
	for r := 0; r < rows; r++ {
		var acc int64
		for k := 0; k < cols; k++ {
			acc += int64(w[r*cols+k]) * int64(x[k])
		}
		out[r] = int32(acc)
	}
	return out
}

func fill(n int, f func(i int) int8) []int8 {
	v := make([]int8, n)
	for i := range v {
		v[i] = f(i)
	}
	return v
}

func TestKernelsEdgeValues(t *testing.T) {
	const rows, cols = 7, 96 // 4-row block plus 3 single rows, 3 column blocks
	cases := []struct {
		name string
		w, x func(i int) int8
	}{
		{"zeros", func(int) int8 { return 0 }, func(int) int8 { return 0 }},
		{"max·max", func(int) int8 { return 127 }, func(int) int8 { return 127 }},
		{"max·min", func(int) int8 { return 127 }, func(int) int8 { return -128 }},
		{"min·min", func(int) int8 { return -127 }, func(int) int8 { return -128 }},
		{"min·max", func(int) int8 { return -127 }, func(int) int8 { return 127 }},
		{"alternating signs", func(i int) int8 { return [...]int8{127, -127}[i%2] }, func(i int) int8 { return [...]int8{-128, 127, -128}[i%3] }},
		{"one hot", func(i int) int8 {
			if i%cols == i/cols {
				return -127
			}
			return 0
		}, func(i int) int8 { return int8(i - 128) }},
		{"zero point like", func(i int) int8 { return int8(i%255 - 127) }, func(int) int8 { return -128 }},
	}
	for _, k := range All() {
		if !k.Supported {
			t.Logf("kernel %s not supported on this CPU, skipped", k.Name)
			continue
		}
		for _, c := range cases {
			w, x := fill(rows*cols, c.w), fill(cols, c.x)
			got := make([]int32, rows)
			k.MatVec(got, w, x, rows, cols)
			if want := refMatVec(w, x, rows, cols); !slices.Equal(got, want) {
				t.Errorf("%s/%s: got %v, want %v", k.Name, c.name, got, want)
			}
			if k.MatVec2 != nil {
				x1 := slices.Clone(x)
				slices.Reverse(x1)
				got0, got1 := make([]int32, rows), make([]int32, rows)
				k.MatVec2(got0, got1, w, x, x1, rows, cols)
				if !slices.Equal(got0, refMatVec(w, x, rows, cols)) || !slices.Equal(got1, refMatVec(w, x1, rows, cols)) {
					t.Errorf("%s/%s MatVec2: got %v %v", k.Name, c.name, got0, got1)
				}
			}
		}
	}
}

func TestKernelsRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 200; iter++ {
		rows, cols := rng.IntN(20), Align*rng.IntN(6)
		w := fill(rows*cols, func(int) int8 { return int8(rng.IntN(255) - 127) })
		x := fill(cols, func(int) int8 { return int8(rng.IntN(256) - 128) })
		want := refMatVec(w, x, rows, cols)
		x1 := fill(cols, func(int) int8 { return int8(rng.IntN(256) - 128) })
		want1 := refMatVec(w, x1, rows, cols)
		for _, k := range All() {
			if !k.Supported {
				continue
			}
			got := make([]int32, rows+1)
			got[rows] = 12345 // must stay untouched
			k.MatVec(got, w, x, rows, cols)
			if !slices.Equal(got[:rows], want) || got[rows] != 12345 {
				t.Fatalf("%s rows %d cols %d: got %v, want %v", k.Name, rows, cols, got, want)
			}
			if k.MatVec2 != nil {
				got0, got1 := make([]int32, rows+1), make([]int32, rows+1)
				got0[rows], got1[rows] = 12345, 12345
				k.MatVec2(got0, got1, w, x, x1, rows, cols)
				if !slices.Equal(got0[:rows], want) || !slices.Equal(got1[:rows], want1) || got0[rows] != 12345 || got1[rows] != 12345 {
					t.Fatalf("%s MatVec2 rows %d cols %d: got %v %v, want %v %v", k.Name, rows, cols, got0, got1, want, want1)
				}
			}
		}
	}
}

func TestKernelRejectsBadArguments(t *testing.T) {
	for _, k := range All() {
		if !k.Supported || k.Name == Generic.Name {
			continue
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: unaligned cols accepted", k.Name)
				}
			}()
			k.MatVec(make([]int32, 1), make([]int8, 33), make([]int8, 33), 1, 33)
		}()
	}
}

func TestBestHonoursEnvironment(t *testing.T) {
	t.Setenv("SHELFGATE_KERNEL", "generic")
	if got, err := Best(); err != nil || got.Name != "generic" {
		t.Fatalf("Best() = %s, %v with SHELFGATE_KERNEL=generic", got.Name, err)
	}
	t.Setenv("SHELFGATE_KERNEL", "")
	if got, err := Best(); err != nil || got.Name != Fastest().Name {
		t.Fatalf("Best() = %s, %v without SHELFGATE_KERNEL; fastest is %s", got.Name, err, Fastest().Name)
	}
	// An unknown name is an error naming the value, not a silent fallback.
	t.Setenv("SHELFGATE_KERNEL", "no-such-kernel")
	if got, err := Best(); err == nil || !strings.Contains(err.Error(), `"no-such-kernel"`) || !strings.Contains(err.Error(), "generic") {
		t.Fatalf("Best() = %s, %v with SHELFGATE_KERNEL=no-such-kernel", got.Name, err)
	}
}

// FuzzKernels compares every supported kernel with the reference on
// fuzzer-chosen weights and inputs (weights folded into [−127, 127]).
func FuzzKernels(f *testing.F) {
	f.Add(uint8(3), []byte{0x80, 0x7f, 0x81, 0x00, 0xff}, []byte{0x80, 0x80, 0x7f})
	f.Add(uint8(5), []byte{0x7f}, []byte{0x80})
	f.Fuzz(func(t *testing.T, rowsB uint8, wb, xb []byte) {
		rows := int(rowsB%9) + 1
		cols := Align * (len(xb)/Align + 1)
		if cols > 4*Align {
			cols = 4 * Align
		}
		x := fill(cols, func(i int) int8 {
			if len(xb) == 0 {
				return 0
			}
			return int8(xb[i%len(xb)])
		})
		w := fill(rows*cols, func(i int) int8 {
			if len(wb) == 0 {
				return 127
			}
			v := int8(wb[(i*7)%len(wb)] + byte(i/len(wb)))
			if v == -128 {
				v = -127
			}
			return v
		})
		want := refMatVec(w, x, rows, cols)
		for _, k := range All() {
			if !k.Supported {
				continue
			}
			got := make([]int32, rows)
			k.MatVec(got, w, x, rows, cols)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: got %v, want %v", k.Name, got, want)
			}
			if k.MatVec2 != nil {
				x1 := slices.Clone(x)
				slices.Reverse(x1)
				got1 := make([]int32, rows)
				k.MatVec2(got, got1, w, x, x1, rows, cols)
				if !slices.Equal(got, want) || !slices.Equal(got1, refMatVec(w, x1, rows, cols)) {
					t.Fatalf("%s MatVec2: got %v %v", k.Name, got, got1)
				}
			}
		}
	})
}

func BenchmarkMatVec(b *testing.B) {
	for _, shape := range [][2]int{{500, 1024}, {100, 512}} {
		rows, cols := shape[0], shape[1]
		w := fill(rows*cols, func(i int) int8 { return int8(i%255 - 127) })
		x := fill(cols, func(i int) int8 { return int8(i) })
		dst := make([]int32, rows)
		for _, k := range All() {
			if !k.Supported {
				continue
			}
			b.Run(k.Name+"/"+string(rune('0'+rows/100))+"00x"+itoa(cols), func(b *testing.B) {
				b.SetBytes(int64(rows * cols))
				for b.Loop() {
					k.MatVec(dst, w, x, rows, cols)
				}
			})
		}
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func TestRoundHalfAway(t *testing.T) {
	vals := []float32{0, float32(math.Copysign(0, -1)), 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997,
		0.50000006, 1.4999999, 255.5, -255.5, 511.49997, math.Nextafter32(0.5, 0), math.Nextafter32(1.5, 2)}
	rng := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 100000; i++ {
		vals = append(vals, float32((rng.Float64()-0.5)*1024), float32(rng.IntN(1000)-500)/2)
	}
	for _, v := range vals {
		if got, want := roundHalfAway(v), int32(math.Round(float64(v))); got != want {
			t.Fatalf("roundHalfAway(%v) = %d, want %d", v, got, want)
		}
	}
}

// quantizeRef is the definition with math.Round.
func quantizeRef(x, mean, k float32, z int8) int8 {
	v := float32(x-mean) * k
	r := math.Round(float64(min(max(v, -512), 512))) + float64(z)
	return int8(min(max(r, -128), 127))
}

func TestQuantizeKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	special := []float32{0, -0, 0.5, -0.5, 1.5, -2.5, 127.5, -128.5, 1e30, -1e30, float32(math.Inf(1)), float32(math.Inf(-1)), 0.49999997}
	for iter := 0; iter < 300; iter++ {
		n := rng.IntN(41)
		if iter%2 == 0 {
			n = rng.IntN(5) * 8
		}
		x, mean, k := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 50)
			if rng.IntN(4) == 0 {
				x[i] = special[rng.IntN(len(special))]
			}
			if rng.IntN(3) == 0 {
				x[i] = float32(rng.IntN(400)-200) / 2 // exact halves
			}
			if rng.IntN(2) == 0 {
				mean[i] = float32(rng.NormFloat64())
			}
			k[i] = []float32{1, 0.5, 25, float32(rng.Float64() * 3)}[rng.IntN(4)]
		}
		z := int8(rng.IntN(256) - 128)
		want := make([]int8, n)
		for i := range want {
			want[i] = quantizeRef(x[i], mean[i], k[i], z)
		}
		for _, kern := range All() {
			if !kern.Supported {
				continue
			}
			got := make([]int8, n)
			if !kern.Quantize(got, x, mean, k, z) {
				t.Fatalf("%s: NaN reported for %v", kern.Name, x)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: got %v, want %v (x %v mean %v k %v z %d)", kern.Name, got, want, x, mean, k, z)
			}
		}
	}
	for _, kern := range All() {
		if !kern.Supported {
			continue
		}
		for _, pos := range []int{0, 3, 7, 12, 16} {
			x := make([]float32, 17)
			x[pos] = float32(math.NaN())
			if kern.Quantize(make([]int8, 17), x, make([]float32, 17), make([]float32, 17), 0) {
				t.Errorf("%s: NaN at %d not reported", kern.Name, pos)
			}
		}
		// ∞ − ∞ is NaN too.
		inf := float32(math.Inf(1))
		xs, ms, ks := make([]float32, 8), make([]float32, 8), make([]float32, 8)
		xs[5], ms[5], ks[5] = inf, inf, 1
		if kern.Quantize(make([]int8, 8), xs, ms, ks, 0) {
			t.Errorf("%s: inf − inf not reported", kern.Name)
		}
	}
}

// requantRef is TFLite's double-rounding MultiplyByQuantizedMultiplier
// written with 64-bit division, as gemmlowp states it.
func requantRef(acc, bias, m int32, shift int, zero, lo, hi int32) int8 {
	x := acc + bias
	left, right := max(shift, 0), max(-shift, 0)
	a := x * (1 << left)
	var h int32
	if a == m && a == math.MinInt32 {
		h = math.MaxInt32
	} else {
		ab := int64(a) * int64(m)
		nudge := int64(1 << 30)
		if ab < 0 {
			nudge = 1 - (1 << 30)
		}
		h = int32((ab + nudge) / (1 << 31))
	}
	// RoundingDivideByPOT by plain arithmetic: round half away from zero.
	q := int64(h)
	d := int64(1) << right
	r := q / d
	if rem := q % d; 2*rem > d || (2*rem == d) {
		r++
	} else if 2*rem < -d || (2*rem == -d) {
		r--
	}
	v := int32(r) + zero
	return int8(min(max(v, lo), hi))
}

func TestRequantizeKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	edges := []int32{0, 1, -1, math.MaxInt32, math.MinInt32, 1 << 30, -(1 << 30), 12345, -12345}
	for iter := 0; iter < 500; iter++ {
		n := rng.IntN(40)
		p := Requant{Zero: int32(rng.IntN(256) - 128), Lo: -128, Hi: 127}
		if rng.IntN(2) == 0 {
			p.Lo = p.Zero
		}
		acc := make([]int32, n)
		shifts := make([]int, n)
		for c := 0; c < n; c++ {
			acc[c] = int32(rng.Uint32())
			if rng.IntN(3) == 0 {
				acc[c] = int32(rng.IntN(1<<20) - 1<<19)
			}
			if rng.IntN(8) == 0 {
				acc[c] = edges[rng.IntN(len(edges))]
			}
			b := int32(rng.IntN(1<<16) - 1<<15)
			m := int32(1<<30 + rng.IntN(1<<30))
			if rng.IntN(10) == 0 {
				m = []int32{0, 1 << 30, math.MaxInt32}[rng.IntN(3)]
			}
			sh := rng.IntN(32) - 31 // [−31, 0]
			if rng.IntN(5) == 0 {
				sh = rng.IntN(8)
			}
			shifts[c] = sh
			p.Bias = append(p.Bias, b)
			p.Mult = append(p.Mult, m)
			p.LShift = append(p.LShift, int32(max(sh, 0)))
			p.RShift = append(p.RShift, int32(max(-sh, 0)))
		}
		want := make([]int8, n)
		for c := range want {
			want[c] = requantRef(acc[c], p.Bias[c], p.Mult[c], shifts[c], p.Zero, p.Lo, p.Hi)
		}
		for _, k := range All() {
			if !k.Supported {
				continue
			}
			got := make([]int8, n)
			k.Requantize(got, acc, &p)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: got %v, want %v", k.Name, got, want)
			}
		}
	}
}

// FuzzQuantizeRequantize compares every kernel's Quantize and Requantize
// with the generic ones on fuzzer-chosen bits.
func FuzzQuantizeRequantize(f *testing.F) {
	f.Add([]byte{0, 0, 0xc0, 0x7f, 1, 2, 3, 4, 0x80, 0, 0, 0}, int8(-3), uint8(5))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0x80}, int8(127), uint8(31))
	f.Fuzz(func(t *testing.T, raw []byte, z int8, sh uint8) {
		n := len(raw) / 4
		x, mean, k := make([]float32, n), make([]float32, n), make([]float32, n)
		acc := make([]int32, n)
		p := Requant{Zero: int32(z), Lo: -128, Hi: 127}
		for i := 0; i < n; i++ {
			u := uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
			x[i] = math.Float32frombits(u)
			mean[i] = float32(int8(raw[4*i])) / 4
			k[i] = float32(raw[4*i+1]) / 16
			acc[i] = int32(u)
			s := int32(sh%40) - 31 + int32(i%3)
			p.Bias = append(p.Bias, int32(raw[4*i+2])-128)
			p.Mult = append(p.Mult, int32(u>>1))
			p.LShift = append(p.LShift, min(max(s, 0), 8))
			p.RShift = append(p.RShift, max(-s, 0))
		}
		wantQ := make([]int8, n)
		okWant := quantizeGeneric(wantQ, x, mean, k, z)
		wantR := make([]int8, n)
		requantizeGeneric(wantR, acc, &p)
		for _, kern := range All() {
			if !kern.Supported {
				continue
			}
			got := make([]int8, n)
			if ok := kern.Quantize(got, x, mean, k, z); ok != okWant || (ok && !slices.Equal(got, wantQ)) {
				t.Fatalf("%s Quantize: %v %v, want %v %v", kern.Name, got, ok, wantQ, okWant)
			}
			kern.Requantize(got, acc, &p)
			if !slices.Equal(got, wantR) {
				t.Fatalf("%s Requantize: %v, want %v", kern.Name, got, wantR)
			}
		}
	})
}
