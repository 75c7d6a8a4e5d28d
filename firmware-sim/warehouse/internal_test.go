package warehouse

import (
	"math"
	"testing"
)

func TestClampCode(t *testing.T) {
	tests := []struct {
		in   float64
		want int32
	}{
		{0, 0},
		{1234.4, 1234},
		{-1234.6, -1235},
		{0x7FFFFF, 0x7FFFFF},
		{0x800000, 0x7FFFFF},
		{1e12, 0x7FFFFF},
		{-0x800000, -0x800000},
		{-0x800001, -0x800000},
		{math.Inf(-1), -0x800000},
	}
	for _, tt := range tests {
		if got := clampCode(tt.in); got != tt.want {
			t.Errorf("clampCode(%g) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

func TestCodeAtSaturates(t *testing.T) {
	w, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	w.bins[0].OffsetCounts = MaxCode - 10
	w.bins[1].OffsetCounts = MinCode
	w.bins[1].CountsPerGram = -w.bins[1].CountsPerGram // a cell wired backwards
	for k := range int64(200) {
		if c := w.CodeAt(0, k); c != MaxCode {
			t.Fatalf("bin 0 sample %d = %#x, want %#x", k, c, MaxCode)
		}
		if c := w.CodeAt(1, k); c != MinCode {
			t.Fatalf("bin 1 sample %d = %#x, want %#x", k, c, MinCode)
		}
	}
}

func TestNoiseIsGaussian(t *testing.T) {
	const n = 200000
	var sum, sq float64
	for k := range uint64(n) {
		g := gaussian(12345, k)
		sum += g
		sq += g * g
	}
	mean, sd := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
	if math.Abs(mean) > 0.01 || math.Abs(sd-1) > 0.01 {
		t.Errorf("noise mean %.4f sd %.4f, want 0 and 1", mean, sd)
	}
}
