package kernel

import "fmt"

// checkArgs panics, as a bounds check would, when an assembly kernel would
// read or write outside its slices.
func checkArgs(dst []int32, w, x []int8, rows, cols int) {
	if rows < 0 || cols < 0 || cols%Align != 0 || len(dst) < rows || len(w) < rows*cols || len(x) < cols {
		panic(fmt.Sprintf("kernel: bad MatVec arguments: rows %d cols %d len(dst) %d len(w) %d len(x) %d", rows, cols, len(dst), len(w), len(x)))
	}
}

// The wrappers below turn assembly bodies into the slice-based kernel
// functions: they check the arguments and hand the part the body handles
// (whole groups of width) to it and the rest to the generic code.

func checkedMatVec(body func(dst *int32, w, x *int8, rows, cols int)) MatVecFunc {
	return func(dst []int32, w, x []int8, rows, cols int) {
		checkArgs(dst, w, x, rows, cols)
		if rows == 0 || cols == 0 {
			clear(dst[:rows])
			return
		}
		body(&dst[0], &w[0], &x[0], rows, cols)
	}
}

func checkedMatVec2(body func(dst0, dst1 *int32, w, x0, x1 *int8, rows, cols int)) MatVec2Func {
	return func(dst0, dst1 []int32, w, x0, x1 []int8, rows, cols int) {
		checkArgs(dst0, w, x0, rows, cols)
		checkArgs(dst1, w, x1, rows, cols)
		if rows == 0 || cols == 0 {
			clear(dst0[:rows])
			clear(dst1[:rows])
			return
		}
		body(&dst0[0], &dst1[0], &w[0], &x0[0], &x1[0], rows, cols)
	}
}

func checkedQuantize(width int, body func(dst *int8, x, mean, k *float32, n int, z int32) bool) QuantizeFunc {
	return func(dst []int8, x, mean, k []float32, z int8) bool {
		n := len(dst)
		if len(x) < n || len(mean) < n || len(k) < n {
			panic("kernel: Quantize: short slices")
		}
		head := n - n%width
		if head > 0 && !body(&dst[0], &x[0], &mean[0], &k[0], head, int32(z)) {
			return false
		}
		return quantizeGeneric(dst[head:], x[head:n], mean[head:n], k[head:n], z)
	}
}

func checkedRequantize(width int, body func(dst *int8, acc *int32, p *Requant, n int)) RequantizeFunc {
	return func(dst []int8, acc []int32, p *Requant) {
		n := len(dst)
		if len(acc) < n || len(p.Bias) < n || len(p.Mult) < n || len(p.LShift) < n || len(p.RShift) < n {
			panic("kernel: Requantize: short slices")
		}
		head := n - n%width
		if head > 0 {
			body(&dst[0], &acc[0], p, head)
		}
		if head < n {
			tail := *p
			tail.Bias, tail.Mult, tail.LShift, tail.RShift = p.Bias[head:], p.Mult[head:], p.LShift[head:], p.RShift[head:]
			requantizeGeneric(dst[head:], acc[head:n], &tail)
		}
	}
}
