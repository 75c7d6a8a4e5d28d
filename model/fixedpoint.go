package model

import (
	"math"
	"math/bits"

	"github.com/shelfgate/shelfgate/model/internal/kernel"
)

// This file transcribes the integer arithmetic of gemmlowp's fixedpoint.h
// and TFLite's kernels/internal/common.h and quantization_util.cc. Every
// function here must stay bit-exact with its C++ original; the comments name
// the original.

// SaturatingRoundingDoublingHighMul is gemmlowp's function of that name: the
// high 32 bits of 2·a·b, rounded to nearest (ties upwards), with the single
// overflow case a == b == MinInt32 saturating to MaxInt32.
func SaturatingRoundingDoublingHighMul(a, b int32) int32 {
	return kernel.SaturatingRoundingDoublingHighMul(a, b)
}

// RoundingDivideByPOT is gemmlowp's RoundingDivideByPOT: x / 2^exponent
// rounded to nearest, ties away from zero. exponent must be in [0, 31].
func RoundingDivideByPOT(x int32, exponent int) int32 {
	return kernel.RoundingDivideByPOT(x, int32(exponent))
}

// saturatingRoundingMultiplyByPOT is gemmlowp's
// SaturatingRoundingMultiplyByPOT<exponent> for int32.
func saturatingRoundingMultiplyByPOT(x int32, exponent int) int32 {
	if exponent < 0 {
		return RoundingDivideByPOT(x, -exponent)
	}
	if exponent == 0 {
		return x
	}
	threshold := int32(1<<(31-exponent)) - 1
	switch {
	case x > threshold:
		return math.MaxInt32
	case x < -threshold:
		return math.MinInt32
	}
	return x << exponent
}

// Rounding selects how MultiplyByQuantizedMultiplier rounds.
type Rounding uint8

const (
	// DoubleRounding is TFLite's default: SaturatingRoundingDoublingHighMul
	// followed by RoundingDivideByPOT.
	DoubleRounding Rounding = 0
	// SingleRounding is TFLite built with TFLITE_SINGLE_ROUNDING: one 64-bit
	// product rounded once.
	SingleRounding Rounding = 1
)

func (r Rounding) String() string {
	switch r {
	case DoubleRounding:
		return "double"
	case SingleRounding:
		return "single"
	}
	return "unknown"
}

// MultiplyByQuantizedMultiplier is TFLite's function of that name: x times
// the real multiplier m·2^(shift−31).
func MultiplyByQuantizedMultiplier(x, m int32, shift int, r Rounding) int32 {
	if r == SingleRounding {
		totalShift := 31 - shift
		round := int64(1) << (totalShift - 1)
		return int32((int64(x)*int64(m) + round) >> totalShift)
	}
	left, right := 0, 0
	if shift > 0 {
		left = shift
	} else {
		right = -shift
	}
	return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x*(1<<left), m), right)
}

// QuantizeMultiplier is TFLite's QuantizeMultiplier: it splits a real
// multiplier into a Q31 mantissa and a power-of-two exponent. Single rounding
// additionally clamps the shift to 30 as TFLITE_SINGLE_ROUNDING does.
func QuantizeMultiplier(real float64, r Rounding) (m int32, shift int) {
	if real == 0 {
		return 0, 0
	}
	q, shift := math.Frexp(real)
	qFixed := int64(math.Round(q * (1 << 31)))
	if qFixed == 1<<31 {
		qFixed /= 2
		shift++
	}
	if shift < -31 {
		shift, qFixed = 0, 0
	}
	if r == SingleRounding && shift > 30 {
		shift, qFixed = 30, (1<<31)-1
	}
	return int32(qFixed), shift
}

// quantizeMultiplierGreaterThanOne is TFLite's
// QuantizeMultiplierGreaterThanOne.
func quantizeMultiplierGreaterThanOne(real float64) (m int32, leftShift int) {
	m, leftShift = QuantizeMultiplier(real, DoubleRounding)
	return m, leftShift
}

// Softmax fixed-point formats, from TFLite's reference softmax.
const (
	scaledDiffIntegerBits   = 5
	accumulationIntegerBits = 12
)

// SoftmaxParams returns TFLite's prepared softmax parameters for an int8
// input of the given scale: PreprocessSoftmaxScaling and
// CalculateInputRadius with 5 integer bits.
func SoftmaxParams(beta, inputScale float64) (multiplier int32, leftShift int, diffMin int32) {
	realMul := math.Min(beta*inputScale*float64(int64(1)<<(31-scaledDiffIntegerBits)), float64(int64(1)<<31)-1.0)
	multiplier, leftShift = quantizeMultiplierGreaterThanOne(realMul)
	if leftShift < 0 || leftShift > 31 {
		// The input scale is too small for TFLite's int8 softmax; the
		// model validator rejects it.
		return multiplier, leftShift, 0
	}
	maxInputRescaled := 1.0 * float64((1<<scaledDiffIntegerBits)-1) * float64(int64(1)<<(31-scaledDiffIntegerBits)) / float64(int64(1)<<leftShift)
	return multiplier, leftShift, -int32(math.Floor(maxInputRescaled))
}

// expOnIntervalBetweenNegativeOneQuarterAnd0Excl is gemmlowp's function of
// that name for FixedPoint<int32, 0>.
func expOnIntervalBetweenNegativeOneQuarterAnd0Excl(a int32) int32 {
	const constantTerm = 1895147668
	const constant1Over3 = 715827883
	x := a + (1 << 28)
	x2 := SaturatingRoundingDoublingHighMul(x, x)
	x3 := SaturatingRoundingDoublingHighMul(x2, x)
	x4 := SaturatingRoundingDoublingHighMul(x2, x2)
	x4Over4 := RoundingDivideByPOT(x4, 2)
	poly := RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x4Over4+x3, constant1Over3)+x2, 1)
	return constantTerm + SaturatingRoundingDoublingHighMul(constantTerm, x+poly)
}

// expOnNegativeValues is gemmlowp's exp_on_negative_values for an input
// FixedPoint<int32, 5>, returning FixedPoint<int32, 0>.
func expOnNegativeValues(a int32) int32 {
	const fractionalBits = 31 - scaledDiffIntegerBits
	const oneQuarter = int32(1) << (fractionalBits - 2)
	const mask = oneQuarter - 1
	aModQuarterMinusOneQuarter := (a & mask) - oneQuarter
	result := expOnIntervalBetweenNegativeOneQuarterAnd0Excl(saturatingRoundingMultiplyByPOT(aModQuarterMinusOneQuarter, scaledDiffIntegerBits))
	remainder := aModQuarterMinusOneQuarter - a
	barrel := [...]struct {
		exponent   int
		multiplier int32
	}{{-2, 1672461947}, {-1, 1302514674}, {0, 790015084}, {1, 290630308}, {2, 39332535}, {3, 720401}, {4, 242}}
	for _, b := range barrel {
		if scaledDiffIntegerBits > b.exponent {
			if remainder&(int32(1)<<(fractionalBits+b.exponent)) != 0 {
				result = SaturatingRoundingDoublingHighMul(result, b.multiplier)
			}
		}
	}
	if a == 0 {
		return math.MaxInt32
	}
	return result
}

// roundingHalfSum is gemmlowp's RoundingHalfSum for int32.
func roundingHalfSum(a, b int32) int32 {
	sum := int64(a) + int64(b)
	sign := int64(1)
	if sum < 0 {
		sign = -1
	}
	return int32((sum + sign) / 2)
}

// oneOverOnePlusXForXIn01 is gemmlowp's one_over_one_plus_x_for_x_in_0_1 for
// FixedPoint<int32, 0>.
func oneOverOnePlusXForXIn01(a int32) int32 {
	const constant48Over17 = 1515870810
	const constantNeg32Over17 = -1010580540
	const f2One = 1 << 29
	halfDenominator := roundingHalfSum(a, math.MaxInt32)
	x := constant48Over17 + SaturatingRoundingDoublingHighMul(halfDenominator, constantNeg32Over17)
	for i := 0; i < 3; i++ {
		halfDenominatorTimesX := SaturatingRoundingDoublingHighMul(halfDenominator, x)
		oneMinus := f2One - halfDenominatorTimesX
		x = x + saturatingRoundingMultiplyByPOT(SaturatingRoundingDoublingHighMul(x, oneMinus), 2)
	}
	// Rescale<0>(ExactMulByPot<-1>(x)): ExactMulByPot reinterprets the raw
	// value of the F2 x as an F1 (no arithmetic), and Rescale from 1 to 0
	// integer bits is SaturatingRoundingMultiplyByPOT<1>. Halving first
	// (x>>1 then ·4) would drop x's low bit.
	return saturatingRoundingMultiplyByPOT(x, 1)
}

// getReciprocal is TFLite's GetReciprocal.
func getReciprocal(x int32, xIntegerDigits int) (recip int32, numBitsOverUnit int) {
	headroomPlusOne := bits.LeadingZeros32(uint32(x))
	numBitsOverUnit = xIntegerDigits - headroomPlusOne
	shiftedSumMinusOne := int32((uint32(x) << headroomPlusOne) - (uint32(1) << 31))
	return oneOverOnePlusXForXIn01(shiftedSumMinusOne), numBitsOverUnit
}

// SoftmaxReference is TFLite's reference int8 softmax
// (reference_ops::Softmax<int8_t, int8_t>) over one row, computed directly
// without tables. dst and src have the same length.
func SoftmaxReference(dst, src []int8, multiplier int32, leftShift int, diffMin int32) {
	maxIn := int8(math.MinInt8)
	for _, v := range src {
		maxIn = max(maxIn, v)
	}
	sum := int32(0)
	for _, v := range src {
		diff := int32(v) - int32(maxIn)
		if diff >= diffMin {
			rescaled := SaturatingRoundingDoublingHighMul(diff*(1<<leftShift), multiplier)
			sum += saturatingRoundingMultiplyByPOT(expOnNegativeValues(rescaled), -accumulationIntegerBits)
		}
	}
	scale, over := getReciprocal(sum, accumulationIntegerBits)
	for i, v := range src {
		diff := int32(v) - int32(maxIn)
		if diff < diffMin {
			dst[i] = math.MinInt8
			continue
		}
		rescaled := SaturatingRoundingDoublingHighMul(diff*(1<<leftShift), multiplier)
		e := expOnNegativeValues(rescaled)
		out := RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(scale, e), over+31-8) + math.MinInt8
		dst[i] = int8(min(max(out, math.MinInt8), math.MaxInt8))
	}
}

// softmaxTable holds, for every possible input difference d = max − x in
// [0, 255], the value exp_on_negative_values would produce and its rescaled
// contribution to the sum; entries outside diff_min are marked skipped. It
// makes the per-inference softmax two table lookups per class while staying
// bit-exact with SoftmaxReference.
type softmaxTable struct {
	exp     [256]int32
	contrib [256]int32
	skip    [256]bool
}

func newSoftmaxTable(multiplier int32, leftShift int, diffMin int32) *softmaxTable {
	t := &softmaxTable{}
	for d := 0; d < 256; d++ {
		diff := -int32(d)
		if diff < diffMin {
			t.skip[d] = true
			continue
		}
		rescaled := SaturatingRoundingDoublingHighMul(diff*(1<<leftShift), multiplier)
		t.exp[d] = expOnNegativeValues(rescaled)
		t.contrib[d] = saturatingRoundingMultiplyByPOT(t.exp[d], -accumulationIntegerBits)
	}
	return t
}

func (t *softmaxTable) apply(dst, src []int8) {
	maxIn := int8(math.MinInt8)
	for _, v := range src {
		maxIn = max(maxIn, v)
	}
	sum := int32(0)
	for _, v := range src {
		d := uint8(int32(maxIn) - int32(v))
		sum += t.contrib[d]
	}
	scale, over := getReciprocal(sum, accumulationIntegerBits)
	shift := over + 31 - 8
	dst = dst[:len(src)]
	for i, v := range src {
		d := uint8(int32(maxIn) - int32(v))
		if t.skip[d] {
			dst[i] = math.MinInt8
			continue
		}
		out := RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(scale, t.exp[d]), shift) + math.MinInt8
		dst[i] = int8(min(max(out, math.MinInt8), math.MaxInt8))
	}
}
