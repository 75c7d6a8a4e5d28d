package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSaturatingRoundingDoublingHighMul(t *testing.T) {
	cases := []struct{ a, b, want int32 }{
		{math.MinInt32, math.MinInt32, math.MaxInt32}, // the one overflow
		{math.MaxInt32, math.MaxInt32, math.MaxInt32 - 1},
		{math.MinInt32, math.MaxInt32, -math.MaxInt32},
		{1 << 30, 1 << 30, 1 << 29},
		{1, 1 << 30, 1},   // 0.5 rounds up
		{-1, 1 << 30, 0},  // −0.5 rounds up too: the nudge is 1 − 2^30
		{3, 1 << 29, 1},   // 0.75 → 1
		{-3, 1 << 29, -1}, // −0.75 → −1
		{1, 1 << 29, 0},   // 0.25 → 0
		{0, math.MinInt32, 0},
		{100, 1518500250, 71}, // 100·0.70710678 = 70.71
	}
	for _, c := range cases {
		if got := SaturatingRoundingDoublingHighMul(c.a, c.b); got != c.want {
			t.Errorf("SRDHM(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestRoundingDivideByPOT(t *testing.T) {
	cases := []struct {
		x    int32
		e    int
		want int32
	}{
		{5, 1, 3}, {-5, 1, -3}, {4, 1, 2}, {-4, 1, -2}, {6, 2, 2}, {-6, 2, -2},
		{7, 2, 2}, {-7, 2, -2}, {5, 2, 1}, {-5, 2, -1}, {3, 0, 3},
		{math.MaxInt32, 31, 1}, {math.MinInt32, 31, -1}, {math.MinInt32, 1, math.MinInt32 / 2},
	}
	for _, c := range cases {
		if got := RoundingDivideByPOT(c.x, c.e); got != c.want {
			t.Errorf("RoundingDivideByPOT(%d, %d) = %d, want %d", c.x, c.e, got, c.want)
		}
	}
}

func TestQuantizeMultiplier(t *testing.T) {
	cases := []struct {
		real      float64
		r         Rounding
		wantM     int32
		wantShift int
	}{
		{0, DoubleRounding, 0, 0},
		{0.5, DoubleRounding, 1 << 30, 0},
		{1, DoubleRounding, 1 << 30, 1},
		{0.25, DoubleRounding, 1 << 30, -1},
		{0.75, DoubleRounding, 1610612736, 0},
		{1 - 1e-12, DoubleRounding, 1 << 30, 1}, // mantissa rounds up to 2^31
		{1e-12, DoubleRounding, 0, 0},           // shift below −31 flushes to zero
		{1e10, DoubleRounding, 1250000000, 34},
		{1e10, SingleRounding, math.MaxInt32, 30},
	}
	for _, c := range cases {
		m, s := QuantizeMultiplier(c.real, c.r)
		if m != c.wantM || s != c.wantShift {
			t.Errorf("QuantizeMultiplier(%g, %v) = %d, %d; want %d, %d", c.real, c.r, m, s, c.wantM, c.wantShift)
		}
	}
}

func TestMultiplyByQuantizedMultiplierMatchesReal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, r := range []Rounding{DoubleRounding, SingleRounding} {
		for i := 0; i < 10000; i++ {
			real := math.Exp(rng.Float64()*12 - 14) // 8e-7 … 0.14
			m, s := QuantizeMultiplier(real, r)
			x := int32(rng.IntN(1<<24) - 1<<23)
			got := MultiplyByQuantizedMultiplier(x, m, s, r)
			exact := float64(x) * float64(m) * math.Ldexp(1, s-31)
			tol := 0.5 + 1e-9 // one rounding
			if r == DoubleRounding {
				tol = 1 // two roundings
			}
			if math.Abs(float64(got)-exact) > tol {
				t.Fatalf("%v: x %d · %d·2^(%d−31) = %d, exact %g", r, x, m, s, got, exact)
			}
		}
	}
}

// Double and single rounding differ exactly on values that are ties after
// the first rounding; this pins one such case.
func TestRoundingModesDiffer(t *testing.T) {
	// 3·(0.5+2^-31)/4 = 0.375+ε: SRDHM gives 2 (1.5+ε), then 2/4 → 1.
	x, m, s := int32(3), int32(1<<30+1), -2
	d := MultiplyByQuantizedMultiplier(x, m, s, DoubleRounding)
	sg := MultiplyByQuantizedMultiplier(x, m, s, SingleRounding)
	if d != 1 || sg != 0 {
		t.Fatalf("double %d single %d, want 1 and 0", d, sg)
	}
	x, m, s = 5, 1<<30, -1 // 5·0.5/2 = 1.25: SRDHM gives 3 (2.5 rounded up), then 3/2 → 2; single gives 1
	d = MultiplyByQuantizedMultiplier(x, m, s, DoubleRounding)
	sg = MultiplyByQuantizedMultiplier(x, m, s, SingleRounding)
	if d != 2 || sg != 1 {
		t.Fatalf("double %d single %d, want 2 and 1", d, sg)
	}
}

func TestSoftmaxTableMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, scale := range []float64{1.0 / 256, 0.01, 0.05, 0.1, 0.25, 1, 4} {
		m, s, dmin := SoftmaxParams(1, scale)
		tab := newSoftmaxTable(m, s, dmin)
		for iter := 0; iter < 200; iter++ {
			n := 1 + rng.IntN(120)
			src := make([]int8, n)
			for i := range src {
				src[i] = int8(rng.IntN(256) - 128)
			}
			if iter%3 == 0 {
				src[rng.IntN(n)] = 127
				src[rng.IntN(n)] = -128
			}
			want, got := make([]int8, n), make([]int8, n)
			SoftmaxReference(want, src, m, s, dmin)
			tab.apply(got, src)
			for i := range want {
				if want[i] != got[i] {
					t.Fatalf("scale %g: table %v, reference %v for %v", scale, got, want, src)
				}
			}
		}
	}
}

func TestSoftmaxCloseToFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, scale := range []float64{0.02, 0.1, 0.3} {
		m, s, dmin := SoftmaxParams(1, scale)
		for iter := 0; iter < 100; iter++ {
			n := 2 + rng.IntN(100)
			src := make([]int8, n)
			for i := range src {
				src[i] = int8(rng.IntN(256) - 128)
			}
			got := make([]int8, n)
			SoftmaxReference(got, src, m, s, dmin)
			var sum float64
			for _, v := range src {
				sum += math.Exp(scale * float64(v))
			}
			for i, v := range src {
				p := math.Exp(scale*float64(v)) / sum
				q := math.Min(math.Round(p*256)-128, 127)
				if math.Abs(float64(got[i])-q) > 1 {
					t.Fatalf("scale %g: class %d: int8 %d, float %v (p=%g)", scale, i, got[i], q, p)
				}
			}
		}
	}
}

func TestSoftmaxUniform(t *testing.T) {
	m, s, dmin := SoftmaxParams(1, 0.1)
	for _, n := range []int{1, 2, 4, 100} {
		src := make([]int8, n)
		got := make([]int8, n)
		SoftmaxReference(got, src, m, s, dmin)
		want := int8(min(math.Round(256/float64(n))-128, 127))
		for i := range got {
			if got[i] != want {
				t.Errorf("n=%d: class %d = %d, want %d", n, i, got[i], want)
			}
		}
	}
}
