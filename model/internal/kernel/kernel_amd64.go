package kernel

import "golang.org/x/sys/cpu"

func archKernels() []Kernel {
	return []Kernel{{
		Name:       "avx2",
		MatVec:     checkedMatVec(matVecAVX2),
		MatVec2:    checkedMatVec2(matVec2AVX2),
		Quantize:   checkedQuantize(8, quantizeAVX2),
		Requantize: checkedRequantize(8, requantizeAVX2),
		Supported:  cpu.X86.HasAVX2,
	}}
}

// matVecAVX2 is implemented in matvec_amd64.s. It multiplies |x| (unsigned)
// by sign(x)·w with VPMADDUBSW: with weights in [−127, 127] each pair sum is
// at most 2·128·127 = 32512, so the int16 saturation never triggers and the
// result equals the reference exactly. VPMADDWD against ones widens to int32.
//
//go:noescape
func matVecAVX2(dst *int32, w, x *int8, rows, cols int)

// matVec2AVX2 is implemented in matvec2_amd64.s.
//
//go:noescape
func matVec2AVX2(dst0, dst1 *int32, w, x0, x1 *int8, rows, cols int)

// quantizeAVX2 is implemented in quantize_amd64.s: eight features per step
// in float32 lanes with exactly the operations of quantizeGeneric. n must be
// a multiple of 8. It returns false if any lane was NaN.
//
//go:noescape
func quantizeAVX2(dst *int8, x, mean, k *float32, n int, z int32) bool

// requantizeAVX2 is implemented in requant_amd64.s: eight channels per step,
// 64-bit products with VPMULDQ, per-lane shifts with VPSLLVD/VPSRAVD. n must
// be a multiple of 8.
//
//go:noescape
func requantizeAVX2(dst *int8, acc *int32, p *Requant, n int)
