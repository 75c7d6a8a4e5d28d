package kernel

// Requant holds the per-channel requantization parameters of one fully
// connected layer in the form the kernels use. Every slice has one entry
// per output channel.
type Requant struct {
	Bias   []int32 // bias with the input zero point folded in
	Mult   []int32 // multiplier, ≥ 0
	LShift []int32 // max(shift, 0)
	RShift []int32 // max(−shift, 0)
	Zero   int32   // output zero point
	Lo, Hi int32   // clamp, within [−128, 127]
}

// RequantizeFunc computes, per channel c,
// dst[c] = clamp(RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
// (acc[c]+Bias[c])·2^LShift[c], Mult[c]), RShift[c]) + Zero, Lo, Hi):
// TFLite's MultiplyByQuantizedMultiplier with double rounding.
type RequantizeFunc func(dst []int8, acc []int32, p *Requant)

// SaturatingRoundingDoublingHighMul is gemmlowp's function of that name:
// the high 32 bits of 2·a·b rounded to nearest, the one overflow case
// a == b == MinInt32 saturating to MaxInt32.
func SaturatingRoundingDoublingHighMul(a, b int32) int32 {
	if a == b && a == -1<<31 {
		return 1<<31 - 1
	}
	ab := int64(a) * int64(b)
	// gemmlowp adds 2^30 for ab ≥ 0 and 1 − 2^30 for ab < 0 and divides
	// by 2^31 truncating towards zero; both cases equal the floor below.
	return int32((ab + 1<<30) >> 31)
}

// RoundingDivideByPOT is gemmlowp's RoundingDivideByPOT: x / 2^exponent
// rounded to nearest, ties away from zero; exponent in [0, 31].
func RoundingDivideByPOT(x int32, exponent int32) int32 {
	mask := int32((int64(1) << exponent) - 1)
	remainder := x & mask
	threshold := mask>>1 + int32(uint32(x)>>31) // +1 when x < 0
	// remainder and threshold are in [0, 2^31): the sign bit of their
	// difference is remainder > threshold.
	return x>>exponent + int32(uint32(threshold-remainder)>>31)
}

func requantizeGeneric(dst []int8, acc []int32, p *Requant) {
	n := len(dst)
	acc, bias, mult, ls, rs := acc[:n], p.Bias[:n], p.Mult[:n], p.LShift[:n], p.RShift[:n]
	for c := range dst {
		v := SaturatingRoundingDoublingHighMul((acc[c]+bias[c])<<ls[c], mult[c])
		v = RoundingDivideByPOT(v, rs[c]) + p.Zero
		dst[c] = int8(min(max(v, p.Lo), p.Hi))
	}
}
