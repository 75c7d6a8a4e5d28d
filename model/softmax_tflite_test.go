package model

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// This file checks the engine's softmax against a second transcription of
// the published algorithm, written separately from fixedpoint.go and kept
// deliberately literal: gemmlowp's FixedPoint<int32, IntegerBits> is a value
// with its integer-bit count, each operator follows fixedpoint.h
// (SaturatingRoundingDoublingHighMul with its int64 product and truncating
// division, RoundingDivideByPOT with its mask/threshold form, Rescale,
// ExactMulByPot, exp_on_negative_values with its barrel shifter,
// one_over_one_plus_x_for_x_in_0_1), and the row loop follows TFLite's
// reference_ops::Softmax<int8_t, int8_t> (kernels/internal/reference/
// softmax.h) with GetReciprocal from kernels/internal/common.h. The vectors
// in testdata/softmax-tflite.txt were produced by it (go test -run
// TestSoftmaxTFLiteVectors -update) and one row is pinned to the values
// a TFLite reference run gave in issue 10.

// gfp is gemmlowp's FixedPoint<int32, ib>.
type gfp struct {
	raw int32
	ib  int
}

func gSRDHM(a, b int32) int32 {
	overflow := a == b && a == math.MinInt32
	ab := int64(a) * int64(b)
	nudge := int64(1 << 30)
	if ab < 0 {
		nudge = 1 - (1 << 30)
	}
	high := int32((ab + nudge) / (1 << 31)) // C++ integer division truncates toward zero, as Go's does
	if overflow {
		return math.MaxInt32
	}
	return high
}

func gRoundingDivideByPOT(x int32, exponent int) int32 {
	mask := int32((int64(1) << exponent) - 1)
	remainder := x & mask
	threshold := mask >> 1
	if x < 0 {
		threshold++
	}
	r := x >> exponent
	if remainder > threshold {
		r++
	}
	return r
}

func gSaturatingRoundingMultiplyByPOT(x int32, exponent int) int32 {
	switch {
	case exponent == 0:
		return x
	case exponent < 0:
		return gRoundingDivideByPOT(x, -exponent)
	}
	threshold := int32((int64(1) << (31 - exponent)) - 1)
	if x > threshold {
		return math.MaxInt32
	}
	if x < -threshold {
		return math.MinInt32
	}
	return int32(int64(x) << exponent)
}

func gOne(ib int) gfp {
	if ib == 0 {
		return gfp{math.MaxInt32, 0}
	}
	return gfp{int32(1) << (31 - ib), ib}
}

func gConstantPOT(ib, exponent int) gfp { return gfp{int32(1) << (31 - ib + exponent), ib} }
func gAdd(a, b gfp) gfp                 { return gfp{a.raw + b.raw, a.ib} }
func gSub(a, b gfp) gfp                 { return gfp{a.raw - b.raw, a.ib} }
func gMul(a, b gfp) gfp                 { return gfp{gSRDHM(a.raw, b.raw), a.ib + b.ib} }
func gRescale(x gfp, dst int) gfp {
	return gfp{gSaturatingRoundingMultiplyByPOT(x.raw, x.ib-dst), dst}
}
func gExactMulByPot(x gfp, exponent int) gfp { return gfp{x.raw, x.ib + exponent} }
func gSRMulByPOT(x gfp, exponent int) gfp {
	return gfp{gSaturatingRoundingMultiplyByPOT(x.raw, exponent), x.ib}
}

func gRoundingHalfSum(a, b gfp) gfp {
	sum := int64(a.raw) + int64(b.raw)
	sign := int64(1)
	if sum < 0 {
		sign = -1
	}
	return gfp{int32((sum + sign) / 2), a.ib}
}

func gExpOnIntervalBetweenNegativeOneQuarterAnd0Excl(a gfp) gfp {
	constantTerm := gfp{1895147668, 0}
	constant1Over3 := gfp{715827883, 0}
	x := gAdd(a, gConstantPOT(0, -3))
	x2 := gMul(x, x)
	x3 := gMul(x2, x)
	x4 := gMul(x2, x2)
	x4Over4 := gSRMulByPOT(x4, -2)
	poly := gSRMulByPOT(gAdd(gMul(gAdd(x4Over4, x3), constant1Over3), x2), -1)
	return gAdd(constantTerm, gMul(constantTerm, gAdd(x, poly)))
}

func gExpOnNegativeValues(a gfp) gfp {
	kIntegerBits := a.ib
	kFractionalBits := 31 - a.ib
	oneQuarter := gConstantPOT(a.ib, -2)
	mask := gSub(oneQuarter, gfp{1, a.ib})
	aModQuarterMinusOneQuarter := gSub(gfp{a.raw & mask.raw, a.ib}, oneQuarter)
	result := gExpOnIntervalBetweenNegativeOneQuarterAnd0Excl(gRescale(aModQuarterMinusOneQuarter, 0))
	remainder := gSub(aModQuarterMinusOneQuarter, a).raw
	for _, b := range []struct {
		exponent   int
		multiplier int32
	}{{-2, 1672461947}, {-1, 1302514674}, {0, 790015084}, {1, 290630308}, {2, 39332535}, {3, 720401}, {4, 242}} {
		if kIntegerBits > b.exponent {
			shift := kFractionalBits + b.exponent
			if remainder&(int32(1)<<shift) != 0 {
				result = gMul(result, gfp{b.multiplier, 0})
			}
		}
	}
	if kIntegerBits > 5 {
		clamp := gfp{-(int32(1) << (36 - kIntegerBits)), a.ib}
		if a.raw < clamp.raw {
			result = gfp{0, 0}
		}
	}
	if a.raw == 0 {
		result = gOne(0)
	}
	return result
}

func gOneOverOnePlusXForXIn01(a gfp) gfp { return gOneOverOnePlusX(a, false) }

// gOneOverOnePlusX is one_over_one_plus_x_for_x_in_0_1; halving selects
// the final step the engine had before issue 10 (x>>1, then ·4), so that
// TestSoftmaxIssue10Row can show the transcription reproduces the bug too.
func gOneOverOnePlusX(a gfp, halving bool) gfp {
	halfDenominator := gRoundingHalfSum(a, gOne(0))
	constant48Over17 := gfp{1515870810, 2}
	constantNeg32Over17 := gfp{-1010580540, 2}
	x := gAdd(constant48Over17, gMul(halfDenominator, constantNeg32Over17))
	for i := 0; i < 3; i++ {
		halfDenominatorTimesX := gMul(halfDenominator, x)
		oneMinus := gSub(gOne(2), halfDenominatorTimesX)
		x = gAdd(x, gRescale(gMul(x, oneMinus), 2))
	}
	if halving {
		return gfp{gSaturatingRoundingMultiplyByPOT(x.raw>>1, 2), 0}
	}
	return gRescale(gExactMulByPot(x, -1), 0)
}

func gCountLeadingZeros(x uint32) int {
	n := 0
	for bit := uint32(1) << 31; bit != 0 && x&bit == 0; bit >>= 1 {
		n++
	}
	return n
}

func gGetReciprocal(x int32, xIntegerDigits int, halving bool) (int32, int) {
	headroomPlusOne := gCountLeadingZeros(uint32(x))
	numBitsOverUnit := xIntegerDigits - headroomPlusOne
	shiftedSumMinusOne := int32((uint32(x) << headroomPlusOne) - (uint32(1) << 31))
	return gOneOverOnePlusX(gfp{shiftedSumMinusOne, 0}, halving).raw, numBitsOverUnit
}

// tfliteSoftmaxInt8 is reference_ops::Softmax<int8_t, int8_t> for one row.
func tfliteSoftmaxInt8(in []int8, inputMultiplier int32, inputLeftShift int, diffMin int32) []int8 {
	return softmaxRow(in, inputMultiplier, inputLeftShift, diffMin, false)
}

func softmaxRow(in []int8, inputMultiplier int32, inputLeftShift int, diffMin int32, halving bool) []int8 {
	const kScaledDiffIntegerBits, kAccumulationIntegerBits = 5, 12
	out := make([]int8, len(in))
	maxInRow := int8(math.MinInt8)
	for _, v := range in {
		maxInRow = max(maxInRow, v)
	}
	rescale := func(diff int32) gfp {
		// MultiplyByQuantizedMultiplierGreaterThanOne, double rounding.
		return gfp{gSRDHM(int32(int64(diff)*(int64(1)<<inputLeftShift)), inputMultiplier), kScaledDiffIntegerBits}
	}
	sumOfExps := gfp{0, kAccumulationIntegerBits}
	for _, v := range in {
		diff := int32(v) - int32(maxInRow)
		if diff >= diffMin {
			sumOfExps = gAdd(sumOfExps, gRescale(gExpOnNegativeValues(rescale(diff)), kAccumulationIntegerBits))
		}
	}
	shiftedScale, numBitsOverUnit := gGetReciprocal(sumOfExps.raw, kAccumulationIntegerBits, halving)
	for c, v := range in {
		diff := int32(v) - int32(maxInRow)
		if diff < diffMin {
			out[c] = math.MinInt8
			continue
		}
		exp := gExpOnNegativeValues(rescale(diff))
		unsat := gRoundingDivideByPOT(gMul(gfp{shiftedScale, 0}, exp).raw, numBitsOverUnit+31-8)
		shifted := unsat + math.MinInt8
		out[c] = int8(min(max(shifted, math.MinInt8), math.MaxInt8))
	}
	return out
}

// issue10Row is the row of issue 10, with the first outputs its TFLite
// reference run gave.
var issue10Row = struct {
	in                []int8
	mult              int32
	shift             int
	diffMin           int32
	wantPrefix        []int8
	brokenEnginePrefx []int8
}{
	in:   []int8{127, 126, 126, 113, 82, 54, 4, -128},
	mult: 1717986944, shift: 23, diffMin: -248,
	wantPrefix:        []int8{-45, -52, -52, -107},
	brokenEnginePrefx: []int8{-45, -53, -53, -107},
}

func TestSoftmaxIssue10Row(t *testing.T) {
	r := issue10Row
	want := tfliteSoftmaxInt8(r.in, r.mult, r.shift, r.diffMin)
	if !slices.Equal(want[:4], r.wantPrefix) {
		t.Fatalf("transcription gives %v, TFLite gave %v…", want, r.wantPrefix)
	}
	got := make([]int8, len(r.in))
	SoftmaxReference(got, r.in, r.mult, r.shift, r.diffMin)
	if !slices.Equal(got, want) {
		t.Fatalf("SoftmaxReference %v, published algorithm %v (the halving bug gave %v…)", got, want, r.brokenEnginePrefx)
	}
	if old := softmaxRow(r.in, r.mult, r.shift, r.diffMin, true); !slices.Equal(old[:4], r.brokenEnginePrefx) {
		t.Fatalf("transcription with the old halving gives %v, the old engine gave %v…", old, r.brokenEnginePrefx)
	}
	tab := newSoftmaxTable(r.mult, r.shift, r.diffMin)
	tab.apply(got, r.in)
	if !slices.Equal(got, want) {
		t.Fatalf("engine table %v, published algorithm %v", got, want)
	}
}

// The reciprocal differs from the halving bug exactly when the Newton
// iterate is odd; check the primitive over a sweep of sums.
func TestOneOverOnePlusXMatchesTranscription(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	odd := 0
	for i := 0; i < 200000; i++ {
		a := int32(rng.Uint32() >> 1) // [0, 1) in Q0.31
		if i < 3 {
			a = []int32{0, 1, math.MaxInt32}[i]
		}
		want := gOneOverOnePlusXForXIn01(gfp{a, 0}).raw
		if got := oneOverOnePlusXForXIn01(a); got != want {
			t.Fatalf("one_over_one_plus_x(%d) = %d, transcription %d", a, got, want)
		}
		if want&1 != 0 {
			odd++
		}
	}
	if odd == 0 {
		t.Fatal("the sweep never produced an odd result; it cannot tell the rounding apart")
	}
}

func TestSoftmaxMatchesTranscription(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, scale := range []float64{1.0 / 256, 0.01, 0.0625, 0.1, 0.25, 1, 4} {
		m, s, dmin := SoftmaxParams(1, scale)
		tab := newSoftmaxTable(m, s, dmin)
		for iter := 0; iter < 400; iter++ {
			src := randomSoftmaxRow(rng, 1+rng.IntN(120))
			want := tfliteSoftmaxInt8(src, m, s, dmin)
			got := make([]int8, len(src))
			SoftmaxReference(got, src, m, s, dmin)
			if !slices.Equal(got, want) {
				t.Fatalf("scale %g: SoftmaxReference %v, published %v for %v", scale, got, want, src)
			}
			tab.apply(got, src)
			if !slices.Equal(got, want) {
				t.Fatalf("scale %g: table %v, published %v for %v", scale, got, want, src)
			}
		}
	}
}

func randomSoftmaxRow(rng *rand.Rand, n int) []int8 {
	src := make([]int8, n)
	top := rng.IntN(256) - 128
	for i := range src {
		switch rng.IntN(3) {
		case 0:
			src[i] = int8(rng.IntN(256) - 128)
		default: // near the maximum, where the outputs are large
			src[i] = int8(max(top-rng.IntN(40), -128))
		}
	}
	return src
}

const softmaxVectorsPath = "softmax-tflite.txt"

// softmaxVectorCases are the parameter sets of the vector file: the issue's
// and those SoftmaxParams gives for a spread of logit scales.
func softmaxVectorCases() [][3]int64 {
	cases := [][3]int64{{int64(issue10Row.mult), int64(issue10Row.shift), int64(issue10Row.diffMin)}}
	for _, scale := range []float64{0.02, 0.05, 0.1, 0.2, 0.5} {
		m, s, d := SoftmaxParams(1, scale)
		cases = append(cases, [3]int64{int64(m), int64(s), int64(d)})
	}
	return cases
}

func formatInts(v []int8) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(int(x))
	}
	return strings.Join(s, " ")
}

func TestSoftmaxTFLiteVectors(t *testing.T) {
	path := filepath.Join("testdata", softmaxVectorsPath)
	if *update {
		var b bytes.Buffer
		b.WriteString(`# int8 softmax test vectors: TFLite reference_ops::Softmax<int8_t, int8_t>
# (tensorflow/lite/kernels/internal/reference/softmax.h) with gemmlowp's
# fixedpoint.h, computed by the literal transcription tfliteSoftmaxInt8 in
# model/softmax_tflite_test.go, which shares no code with model/fixedpoint.go.
# The first row is issue 10's; its first four outputs equal a TFLite
# reference run's (-45 -52 -52 -107). Regenerate: go test ./model -run
# TestSoftmaxTFLiteVectors -update
# Only the first row tells the engine's old halving step (x>>1, then ·4) in
# one_over_one_plus_x apart: the reciprocal then differs by 2 in 2^31 and
# must sit on a rounding boundary, which a search of 350,000 small rows
# never hit; TestOneOverOnePlusXMatchesTranscription checks the primitive
# itself on 200,000 inputs.
# Each line: input_multiplier input_left_shift diff_min | inputs | outputs
`)
		rng := rand.New(rand.NewPCG(2026, 10))
		for i, c := range softmaxVectorCases() {
			rows := [][]int8{}
			if i == 0 {
				rows = append(rows, issue10Row.in)
			}
			rows = append(rows, []int8{0}, []int8{5, 5, 5, 5}, []int8{127, -128}, []int8{-128, -128, -128})
			for len(rows) < 10 {
				rows = append(rows, randomSoftmaxRow(rng, []int{3, 8, 10, 33, 100}[rng.IntN(5)]))
			}
			for _, r := range rows {
				out := tfliteSoftmaxInt8(r, int32(c[0]), int(c[1]), int32(c[2]))
				fmt.Fprintf(&b, "%d %d %d | %s | %s\n", c[0], c[1], c[2], formatInts(r), formatInts(out))
			}
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || text[0] == '#' {
			continue
		}
		parts := strings.Split(text, "|")
		if len(parts) != 3 {
			t.Fatalf("%s:%d: want 3 parts", path, line)
		}
		params := strings.Fields(parts[0])
		ints := func(s string) []int8 {
			var v []int8
			for _, f := range strings.Fields(s) {
				x, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("%s:%d: %v", path, line, err)
				}
				v = append(v, int8(x))
			}
			return v
		}
		mult, _ := strconv.ParseInt(params[0], 10, 32)
		shift, _ := strconv.Atoi(params[1])
		dmin, _ := strconv.ParseInt(params[2], 10, 32)
		in, want := ints(parts[1]), ints(parts[2])
		if got := tfliteSoftmaxInt8(in, int32(mult), shift, int32(dmin)); !slices.Equal(got, want) {
			t.Fatalf("%s:%d: transcription now gives %v, file says %v", path, line, got, want)
		}
		got := make([]int8, len(in))
		SoftmaxReference(got, in, int32(mult), shift, int32(dmin))
		if !slices.Equal(got, want) {
			t.Errorf("%s:%d: SoftmaxReference %v, want %v", path, line, got, want)
		}
		newSoftmaxTable(int32(mult), shift, int32(dmin)).apply(got, in)
		if !slices.Equal(got, want) {
			t.Errorf("%s:%d: engine table %v, want %v", path, line, got, want)
		}
		n++
	}
	if n < 50 {
		t.Fatalf("%s has %d vectors, want at least 50", path, n)
	}
}
