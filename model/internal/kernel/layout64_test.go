//go:build amd64 || arm64

package kernel

import (
	"testing"
	"unsafe"
)

func TestRequantLayout(t *testing.T) {
	var p Requant
	// requant_amd64.s and requant_arm64.s read these offsets.
	if unsafe.Offsetof(p.Mult) != 24 || unsafe.Offsetof(p.LShift) != 48 || unsafe.Offsetof(p.RShift) != 72 ||
		unsafe.Offsetof(p.Zero) != 96 || unsafe.Offsetof(p.Lo) != 100 || unsafe.Offsetof(p.Hi) != 104 {
		t.Fatal("Requant layout changed; update requant_amd64.s and requant_arm64.s")
	}
}
