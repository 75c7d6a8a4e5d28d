// Package kernel holds the int8 kernels of the model engine: matrix-vector
// products, input standardization and quantization, and requantization. A
// portable Go reference comes with assembly versions:
//
//   - amd64 "avx2": VPABSB/VPSIGNB/VPMADDUBSW/VPMADDWD products, float32
//     input quantization in eight lanes, requantization with VPMULDQ and
//     per-lane shifts;
//   - arm64 "neon" (Cortex-A72, Pi 4): SMULL/SMLAL2/SADALP products,
//     SQRDMULH/SRSHL requantization, NEON input quantization;
//   - arm64 "sdot" (ARMv8.2 dot product, Cortex-A76, Pi 5): SDOT products,
//     the rest as "neon".
//
// Instructions the Go assembler lacks are encoded with WORD. Every kernel
// computes exactly what the reference does (table tests on edge values,
// fuzz targets, and the arm64 kernels run under qemu-aarch64 by make
// test-arm64). AVX-512 VNNI / AVX-VNNI (VPDPBUSD) kernels are not included:
// no machine or emulator at hand could prove them bit-exact.
//
// The fastest kernel the CPU supports (golang.org/x/sys/cpu) is chosen at
// start-up; SHELFGATE_KERNEL=<name> (e.g. generic) overrides the choice.
package kernel

import (
	"fmt"
	"math"
	"os"
)

// Align is the column count every matrix row is padded to: kernels read
// whole blocks of Align int8 values and callers pad rows and vectors with
// zeros.
const Align = 32

// MatVecFunc computes dst[r] = Σ_k w[r·cols+k]·x[k] for r < rows, with int32
// wrap-around arithmetic. cols must be a multiple of Align, len(w) ≥
// rows·cols, len(x) ≥ cols, len(dst) ≥ rows, and every weight must lie in
// [−127, 127] (the TFLite weight range); inputs may be any int8.
type MatVecFunc func(dst []int32, w, x []int8, rows, cols int)

// MatVec2Func is MatVecFunc for two input vectors at once (the rows are read
// once for both): dst0 from x0 and dst1 from x1.
type MatVec2Func func(dst0, dst1 []int32, w, x0, x1 []int8, rows, cols int)

// Kernel is one implementation of the kernel set.
type Kernel struct {
	Name   string
	MatVec MatVecFunc
	// MatVec2 is nil when the kernel has no two-vector form; use MatVec
	// twice.
	MatVec2  MatVec2Func
	Quantize QuantizeFunc
	// Requantize implements double rounding; single rounding stays in the
	// model package.
	Requantize RequantizeFunc
	// Supported reports whether this CPU can run the kernel.
	Supported bool
}

// Generic is the portable reference kernel.
var Generic = Kernel{Name: "generic", MatVec: matVecGeneric, Quantize: quantizeGeneric, Requantize: requantizeGeneric, Supported: true}

// All lists every kernel compiled into this binary, the generic one first.
func All() []Kernel {
	return append([]Kernel{Generic}, archKernels()...)
}

// Lookup returns the named kernel if it is compiled in and supported.
func Lookup(name string) (Kernel, bool) {
	for _, k := range All() {
		if k.Name == name && k.Supported {
			return k, true
		}
	}
	return Kernel{}, false
}

// EnvVar names the environment variable that overrides the kernel choice.
const EnvVar = "SHELFGATE_KERNEL"

// Best returns the kernel to use: the one named by SHELFGATE_KERNEL when it
// is set, else the fastest supported one. A SHELFGATE_KERNEL that names no
// supported kernel is an error, never a silent fallback.
func Best() (Kernel, error) {
	if name := os.Getenv(EnvVar); name != "" {
		k, ok := Lookup(name)
		if !ok {
			var have []string
			for _, k := range All() {
				if k.Supported {
					have = append(have, k.Name)
				}
			}
			return Kernel{}, fmt.Errorf("%s=%q names no kernel this CPU supports (have %v)", EnvVar, name, have)
		}
		return k, nil
	}
	return Fastest(), nil
}

// Fastest is the fastest kernel this CPU supports.
func Fastest() Kernel {
	best := Generic
	for _, k := range archKernels() {
		if k.Supported {
			best = k
		}
	}
	return best
}

// matVecGeneric is the portable reference: a plain dot product per row.
func matVecGeneric(dst []int32, w, x []int8, rows, cols int) {
	x = x[:cols]
	for r := 0; r < rows; r++ {
		row := w[r*cols : r*cols+cols]
		var acc int32
		for k, wv := range row {
			acc += int32(wv) * int32(x[k])
		}
		dst[r] = acc
	}
}

// QuantizeFunc standardizes and quantizes raw features:
// dst[i] = clamp(round((x[i] − mean[i])·k[i]) + z, −128, 127), with float32
// subtraction and multiplication (each rounded to nearest even, so every
// CPU gets the same value), the product clamped to [−512, 512] and rounded
// half away from zero. It reports false, leaving dst unspecified, when any
// (x − mean)·k is NaN. All slices have len(dst) elements.
type QuantizeFunc func(dst []int8, x, mean, k []float32, z int8) bool

// quantizeGeneric is the portable reference of QuantizeFunc.
func quantizeGeneric(dst []int8, x, mean, k []float32, z int8) bool {
	n := len(dst)
	x, mean, k = x[:n], mean[:n], k[:n]
	for i := range dst {
		v := float32(x[i]-mean[i]) * k[i]
		if v != v {
			return false
		}
		q := roundHalfAway(min(max(v, -512), 512)) + int32(z)
		dst[i] = int8(min(max(q, -128), 127))
	}
	return true
}

// roundHalfAway equals int32(math.Round(float64(v))) for |v| < 2^23,
// without branches: a + 0.5 can round up across an integer only for
// a = 0.5 − 2^−25, which the correction catches (t − 0.5 is exact).
func roundHalfAway(v float32) int32 {
	bits := math.Float32bits(v)
	a := math.Float32frombits(bits &^ (1 << 31))
	t := int32(a + 0.5)
	if float32(t)-0.5 > a {
		t--
	}
	neg := int32(bits >> 31)
	return (t ^ -neg) + neg
}
