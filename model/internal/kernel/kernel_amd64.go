package kernel

import "golang.org/x/sys/cpu"

func archKernels() []Kernel {
	return []Kernel{{Name: "avx2", MatVec: matVecAVX2Checked, Supported: cpu.X86.HasAVX2}}
}

// matVecAVX2 is implemented in matvec_amd64.s. It multiplies |x| (unsigned)
// by sign(x)·w with VPMADDUBSW: with weights in [−127, 127] each pair sum is
// at most 2·128·127 = 32512, so the int16 saturation never triggers and the
// result equals the reference exactly. VPMADDWD against ones widens to int32.
//
//go:noescape
func matVecAVX2(dst *int32, w, x *int8, rows, cols int)

func matVecAVX2Checked(dst []int32, w, x []int8, rows, cols int) {
	checkArgs(dst, w, x, rows, cols)
	if rows == 0 || cols == 0 {
		clear(dst[:rows])
		return
	}
	matVecAVX2(&dst[0], &w[0], &x[0], rows, cols)
}
