//go:build !amd64

package kernel

func archKernels() []Kernel { return nil }
