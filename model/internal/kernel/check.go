package kernel

import "fmt"

// checkArgs panics, as a bounds check would, when an assembly kernel would
// read or write outside its slices.
func checkArgs(dst []int32, w, x []int8, rows, cols int) {
	if rows < 0 || cols < 0 || cols%Align != 0 || len(dst) < rows || len(w) < rows*cols || len(x) < cols {
		panic(fmt.Sprintf("kernel: bad MatVec arguments: rows %d cols %d len(dst) %d len(w) %d len(x) %d", rows, cols, len(dst), len(w), len(x)))
	}
}
