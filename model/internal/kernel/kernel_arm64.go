package kernel

import "golang.org/x/sys/cpu"

func archKernels() []Kernel {
	quantize := checkedQuantize(8, quantizeNEON)
	requantize := checkedRequantize(8, requantizeNEON)
	return []Kernel{
		// SMULL/SMLAL2/SADALP: every ARMv8 core, tuned for Cortex-A72 (Pi 4).
		{Name: "neon", MatVec: checkedMatVec(matVecNEON), MatVec2: checkedMatVec2(matVec2NEON), Quantize: quantize, Requantize: requantize, Supported: cpu.ARM64.HasASIMD},
		// SDOT: ARMv8.2 dot product, Cortex-A76 (Pi 5).
		{Name: "sdot", MatVec: checkedMatVec(matVecSDOT), MatVec2: checkedMatVec2(matVec2SDOT), Quantize: quantize, Requantize: requantize, Supported: cpu.ARM64.HasASIMD && cpu.ARM64.HasASIMDDP},
	}
}

// Implemented in matvec_arm64.s; rows > 0, cols > 0, cols % 16 == 0.
//
//go:noescape
func matVecNEON(dst *int32, w, x *int8, rows, cols int)

//go:noescape
func matVecSDOT(dst *int32, w, x *int8, rows, cols int)

// quantizeNEON is implemented in quantize_arm64.s; n must be a positive
// multiple of 8.
//
//go:noescape
func quantizeNEON(dst *int8, x, mean, k *float32, n int, z int32) bool

// requantizeNEON is implemented in requant_arm64.s; n must be a positive
// multiple of 8.
//
//go:noescape
func requantizeNEON(dst *int8, acc *int32, p *Requant, n int)

// Implemented in matvec2_arm64.s.
//
//go:noescape
func matVec2NEON(dst0, dst1 *int32, w, x0, x1 *int8, rows, cols int)

//go:noescape
func matVec2SDOT(dst0, dst1 *int32, w, x0, x1 *int8, rows, cols int)
