package kernel

import "golang.org/x/sys/cpu"

func archKernels() []Kernel {
	return []Kernel{
		// SMULL/SMLAL2/SADALP: every ARMv8 core, tuned for Cortex-A72 (Pi 4).
		{Name: "neon", MatVec: matVecNEONChecked, Quantize: quantizeNEONChecked, Requantize: requantizeNEONChecked, Supported: cpu.ARM64.HasASIMD},
		// SDOT: ARMv8.2 dot product, Cortex-A76 (Pi 5).
		{Name: "sdot", MatVec: matVecSDOTChecked, Quantize: quantizeNEONChecked, Requantize: requantizeNEONChecked, Supported: cpu.ARM64.HasASIMD && cpu.ARM64.HasASIMDDP},
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

// requantizeNEON is implemented in requant_arm64.s; n must be a positive
// multiple of 8.
//
//go:noescape
func requantizeNEON(dst *int8, acc *int32, p *Requant, n int)

func requantizeNEONChecked(dst []int8, acc []int32, p *Requant) {
	n := len(dst)
	if len(acc) < n || len(p.Bias) < n || len(p.Mult) < n || len(p.LShift) < n || len(p.RShift) < n {
		panic("kernel: Requantize: short slices")
	}
	head := n &^ 7
	if head > 0 {
		requantizeNEON(&dst[0], &acc[0], p, head)
	}
	if head < n {
		tail := *p
		tail.Bias, tail.Mult, tail.LShift, tail.RShift = p.Bias[head:], p.Mult[head:], p.LShift[head:], p.RShift[head:]
		requantizeGeneric(dst[head:], acc[head:n], &tail)
	}
}

// quantizeNEON is implemented in quantize_arm64.s; n must be a positive
// multiple of 8.
//
//go:noescape
func quantizeNEON(dst *int8, x, mean, k *float32, n int, z int32) bool

func quantizeNEONChecked(dst []int8, x, mean, k []float32, z int8) bool {
	n := len(dst)
	if len(x) < n || len(mean) < n || len(k) < n {
		panic("kernel: Quantize: short slices")
	}
	head := n &^ 7
	if head > 0 && !quantizeNEON(&dst[0], &x[0], &mean[0], &k[0], head, int32(z)) {
		return false
	}
	return quantizeGeneric(dst[head:], x[head:n], mean[head:n], k[head:n], z)
}
