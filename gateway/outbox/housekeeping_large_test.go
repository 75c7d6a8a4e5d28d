//go:build faults

package outbox

import "testing"

// TestSpaceReturnsAfterDrainLarge is TestSpaceReturnsAfterDrain on a
// 32 MiB filesystem: a few hundred thousand rows per outage, two minutes
// under -race, so it runs in `make test-faults` (CI runs it) rather than
// in `make test`.
func TestSpaceReturnsAfterDrainLarge(t *testing.T) {
	const size = 32 << 20
	dir := onTinyFilesystem(t, size)
	if dir == "" {
		return
	}
	spaceReturns(t, dir, size)
}
