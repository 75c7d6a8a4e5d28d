package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestSetMemoryLimit: the default soft limit applies unless GOMEMLIMIT is
// set, whatever its value (the runtime has applied it already).
func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	for _, tc := range []struct {
		env  string
		want int64
	}{
		{"", defaultMemoryLimit},
		{"off", math.MaxInt64},
		{"64MiB", math.MaxInt64},
	} {
		debug.SetMemoryLimit(math.MaxInt64)
		setMemoryLimit(func(k string) string {
			if k == "GOMEMLIMIT" {
				return tc.env
			}
			return ""
		})
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("GOMEMLIMIT=%q: limit %d, want %d", tc.env, got, tc.want)
		}
	}
}
