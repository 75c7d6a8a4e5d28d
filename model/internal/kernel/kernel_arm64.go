package kernel

import "golang.org/x/sys/cpu"

func archKernels() []Kernel {
	return []Kernel{
		// SMULL/SMLAL2/SADALP: every ARMv8 core, tuned for Cortex-A72 (Pi 4).
		{Name: "neon", MatVec: matVecNEONChecked, Quantize: quantizeGeneric, Requantize: requantizeGeneric, Supported: cpu.ARM64.HasASIMD},
		// SDOT: ARMv8.2 dot product, Cortex-A76 (Pi 5).
		{Name: "sdot", MatVec: matVecSDOTChecked, Quantize: quantizeGeneric, Requantize: requantizeGeneric, Supported: cpu.ARM64.HasASIMD && cpu.ARM64.HasASIMDDP},
	}
}

// Implemented in matvec_arm64.s.
//
//go:noescape
func matVecNEON(dst *int32, w, x *int8, rows, cols int)

//go:noescape
func matVecSDOT(dst *int32, w, x *int8, rows, cols int)

func matVecNEONChecked(dst []int32, w, x []int8, rows, cols int) {
	checkArgs(dst, w, x, rows, cols)
	if rows == 0 || cols == 0 {
		clear(dst[:rows])
		return
	}
	matVecNEON(&dst[0], &w[0], &x[0], rows, cols)
}

func matVecSDOTChecked(dst []int32, w, x []int8, rows, cols int) {
	checkArgs(dst, w, x, rows, cols)
	if rows == 0 || cols == 0 {
		clear(dst[:rows])
		return
	}
	matVecSDOT(&dst[0], &w[0], &x[0], rows, cols)
}
