//go:build !amd64 && !arm64

package kernel

func archKernels() []Kernel { return nil }
