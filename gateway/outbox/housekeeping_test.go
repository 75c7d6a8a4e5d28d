package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// TestSpaceReturnsAfterDrain fills small filesystems until they are full
// and shedding, delivers everything, and measures the database, WAL and
// reserve at the end of the drain and 10 s later: the space must come
// back (the files shrink to what they hold, the WAL is truncated, the
// reserve is re-created), a second outage must shed and drain the same
// way with every row accounted for, and each episode must be logged once.
func TestSpaceReturnsAfterDrain(t *testing.T) {
	// 32 MiB runs in `make test-faults` (housekeeping_large_test.go): under
	// -race it alone took two minutes of `make test`.
	for _, size := range []int64{3 << 20, 5 << 20, 8 << 20} {
		t.Run(fmt.Sprintf("%dMiB", size>>20), func(t *testing.T) {
			// Each size runs in its own child process on its own tmpfs,
			// and most of a run is waiting for housekeeping: run them
			// side by side.
			t.Parallel()
			dir := onTinyFilesystem(t, size)
			if dir == "" {
				return
			}
			spaceReturns(t, dir, size)
		})
	}
}

type fsSizes struct{ file, wal, reserve, avail int64 }

func (s fsSizes) String() string {
	return fmt.Sprintf("file %d B, WAL %d B, reserve %d B, available %d B", s.file, s.wal, s.reserve, s.avail)
}

func measure(path string) fsSizes {
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	return fsSizes{size(path), size(path + "-wal"), size(reservePath(path)), availBytes(path)}
}

func spaceReturns(t *testing.T, dir string, size int64) {
	ctx := context.Background()
	path := filepath.Join(dir, "outbox.db")
	var logs logCapture
	o, err := Open(path, Options{MaxBytes: 1 << 30, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	l := newLedger()
	streams := []gateway.StreamID{"loadcell/a", "loadcell/b", "loadcell/c", "loadcell/d"}
	fill := func(phase string) {
		t.Helper()
		shed0 := stats(t, o).ShedTelemetry
		for i := 0; stats(t, o).ShedTelemetry-shed0 < 2*shedMinRows; i++ {
			if i == 20000 {
				t.Fatalf("%s: the filesystem never filled: %+v", phase, stats(t, o))
			}
			recs := append(telemetry(streams, 250), events([]gateway.StreamID{"events/pick"}, 1)...)
			switch err := o.Append(ctx, recs); {
			case err == nil:
				l.add(recs)
			case errors.Is(err, gateway.ErrDiskFull):
			default:
				t.Fatalf("%s: append %d: %v", phase, i, err)
			}
		}
	}
	drain := func(phase string) {
		t.Helper()
		last := o.LastID()
		for c := range 2 {
			sent, err := lane(ctx, o, gateway.Class(c), last)
			if err != nil {
				t.Fatalf("%s: lane %s: %v", phase, gateway.Class(c), err)
			}
			for _, r := range sent {
				l.markAcked(r)
			}
		}
		deadline := time.Now().Add(15 * time.Second)
		for o.Backlog() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if o.Backlog() != 0 {
			t.Fatalf("%s: backlog %d after every row was acked", phase, o.Backlog())
		}
	}
	for round := 1; round <= 2; round++ {
		phase := fmt.Sprintf("outage %d", round)
		fill(phase)
		full := measure(path)
		drain(phase)
		end := measure(path)
		time.Sleep(10 * time.Second)
		later := measure(path)
		st := stats(t, o)
		t.Logf("%d MiB, %s: full: %v; end of drain: %v; 10 s later: %v; reserve wanted %d B, in place %v",
			size>>20, phase, full, end, later, o.reserveBytes, st.Reserved)
		if !st.Reserved || later.reserve < o.reserveBytes {
			t.Errorf("%s: the reserve was not re-created within 10 s of the drain (%v)", phase, later)
		}
		// The files hold almost nothing now: a few pages of schema and
		// notices, and a WAL no larger than one checkpoint's worth.
		if later.file > size/8 || later.wal > max(o.walUsual, o.walTruncate()) {
			t.Errorf("%s: files not shrunk 10 s after the drain: %v (WAL bound %d)", phase, later, max(o.walUsual, o.walTruncate()))
		}
		if later.avail < size/2 {
			t.Errorf("%s: only %d of %d bytes available 10 s after the drain", phase, later.avail, size)
		}
		checkLedger(t, o, l, true)
		for _, msg := range []string{"outbox shedding started", "outbox shedding ended", "outbox filesystem full",
			"outbox reserve given up", "outbox reserve re-created", "outbox space returned"} {
			if n := logs.count(msg); n != round {
				t.Errorf("%s: %q logged %d times, want %d", phase, msg, n, round)
			}
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.String())
	}
}
