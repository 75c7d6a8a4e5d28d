package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// tinyFSEnv carries the mount point of the tmpfs to a child test process
// (onTinyFilesystem).
const tinyFSEnv = "OUTBOX_TINYFS_DIR"

// onTinyFilesystem runs the calling test again in a child process, in a user
// and mount namespace of its own (unshare -rm) holding a tmpfs of size
// bytes, and reports the child's result; it returns "" in the parent, which
// should then return. In the child it returns the tmpfs's mount point. The
// test is skipped where unshare(1) is missing or may not mount a tmpfs.
func onTinyFilesystem(t *testing.T, size int64) string {
	t.Helper()
	if dir := os.Getenv(tinyFSEnv); dir != "" {
		return dir
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1): a small filesystem cannot be mounted here")
	}
	mnt := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	mount := fmt.Sprintf(`mount -t tmpfs -o size=%d tmpfs "$1"`, size)
	if out, err := exec.Command(unshare, "-rm", "sh", "-c", mount, "sh", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs in a user and mount namespace here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	// -test.run matches each level of a subtest's name separately.
	levels := strings.Split(t.Name(), "/")
	for i, l := range levels {
		levels[i] = "^" + regexp.QuoteMeta(l) + "$"
	}
	cmd := exec.Command(unshare, "-rm", "sh", "-c", mount+` && exec "$2" -test.run="$3" -test.v -test.count=1`,
		"sh", mnt, os.Args[0], strings.Join(levels, "/"))
	cmd.Env = append(os.Environ(), tinyFSEnv+"="+mnt)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("child on a %d-byte tmpfs: %v\n%s", size, err, out)
	}
	t.Logf("child on a %d-byte tmpfs:\n%s", size, out)
	return ""
}

// lane delivers the rows of class c with ids up to last as the uplink does:
// it reads batches of up to 500 after its cursor (from SQLite once behind
// the tail) and acks each batch as a range from the cursor. It returns the
// rows delivered.
func lane(ctx context.Context, o *Outbox, c gateway.Class, last int64) ([]gateway.Record, error) {
	var (
		cursor    int64
		buf, sent []gateway.Record
		err       error
	)
	for cursor < last {
		buf, err = o.Read(ctx, c, cursor, 500, buf)
		if err != nil {
			return sent, err
		}
		n := 0
		for n < len(buf) && buf[n].ID <= last {
			n++
		}
		if n == 0 {
			return sent, nil
		}
		hi := buf[n-1].ID
		if err := o.Ack(ctx, c, cursor+1, hi); err != nil {
			return sent, err
		}
		sent = append(sent, buf[:n]...)
		cursor = hi
	}
	return sent, nil
}

// TestFullFilesystemBelowReserveDrains is the outage on a filesystem smaller
// than the default reserve: appends fill the filesystem (the reserve is
// given up, the database capped) and go on, shedding the oldest telemetry;
// then the backlog is delivered and acked as the uplink would, with events
// spread thinly between telemetry rows, so that an ack of events touches
// about one page per event, more than the WAL has room for. Every ack must
// be applied while the filesystem stays full, new rows must be accepted
// again without shedding, shedding must work again on the next fill, and
// the database must be intact and complete afterwards.
func TestFullFilesystemBelowReserveDrains(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int64 // of the filesystem
		perEvent int   // telemetry rows per event
	}{
		{"3MiB", 3 << 20, 100},              // the reserve is an eighth of it
		{"1MiB_denser_events", 1 << 20, 20}, // the reserve is at its floor, a quarter of it
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := onTinyFilesystem(t, tc.size)
			if dir == "" {
				return
			}
			fullFilesystemDrains(t, dir, tc.perEvent)
		})
	}
}

func fullFilesystemDrains(t *testing.T, dir string, perEvent int) {
	ctx := context.Background()
	path := filepath.Join(dir, "outbox.db")
	o, err := Open(path, Options{MaxBytes: 1 << 30}) // the filesystem is the limit
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if o != nil {
			o.Close()
		}
	}()
	if o.reserveBytes >= defaultReserveBytes || !stats(t, o).Reserved {
		t.Fatalf("reserve %d bytes, in place %v: want one scaled to the filesystem", o.reserveBytes, stats(t, o).Reserved)
	}
	l := newLedger()
	streams := []gateway.StreamID{"loadcell/a", "loadcell/b", "loadcell/c", "loadcell/d"}
	// About 1000 rows per Append, one event after every perEvent
	// telemetry rows.
	batch := func() []gateway.Record {
		var recs []gateway.Record
		for range max(1000/(perEvent+1), 1) {
			recs = append(recs, telemetry(streams, perEvent)...)
			recs = append(recs, events([]gateway.StreamID{"events/pick"}, 1)...)
		}
		return recs
	}
	// fill appends until the filesystem has been full for `after` more
	// shedding commits. Appends are accepted after shedding or refused
	// with ErrDiskFull (the caller keeps them); anything else fails.
	fill := func(phase string, after int64) (refused int) {
		t.Helper()
		shed0 := stats(t, o).ShedTelemetry
		for i := 0; ; i++ {
			if i == 2000 {
				t.Fatalf("%s: the filesystem never filled: %+v", phase, stats(t, o))
			}
			recs := batch()
			switch err := o.Append(ctx, recs); {
			case err == nil:
				l.add(recs)
			case errors.Is(err, gateway.ErrDiskFull):
				refused++
			default:
				t.Fatalf("%s: append %d: %v", phase, i, err)
			}
			if stats(t, o).ShedTelemetry-shed0 >= after*shedMinRows {
				return refused
			}
		}
	}
	refused := fill("outage", 4)
	st, _ := checkLedger(t, o, l, true)
	t.Logf("filled (%d appends refused): %+v", refused, st)
	if st.ReserveReleases == 0 {
		t.Fatalf("the reserve was not given up to the full filesystem: %+v", st)
	}

	// The link is back: both lanes deliver everything held, while another
	// reader polls the stats as /metrics does. The filesystem stays full.
	last := o.LastID()
	var (
		wg        sync.WaitGroup
		delivered [2][]gateway.Record
		errs      [2]error
		stop      = make(chan struct{})
	)
	for c := range delivered {
		wg.Add(1)
		go func() {
			defer wg.Done()
			delivered[c], errs[c] = lane(ctx, o, gateway.Class(c), last)
		}()
	}
	pollDone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				pollDone <- nil
				return
			case <-tick.C:
			}
			if _, err := o.Stats(ctx); err != nil {
				pollDone <- err
				return
			}
		}
	}()
	wg.Wait()
	for c, err := range errs {
		if err != nil {
			t.Fatalf("lane %s: %v", gateway.Class(c), err)
		}
	}
	// Acks are applied by the writer in its next commits.
	deadline := time.Now().Add(15 * time.Second)
	for o.Backlog() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	if err := <-pollDone; err != nil {
		t.Fatalf("stats while draining: %v", err)
	}
	for c := range delivered {
		for _, r := range delivered[c] {
			l.markAcked(r)
		}
	}
	st2 := stats(t, o)
	t.Logf("drained: %d telemetry and %d events delivered, %+v", len(delivered[0]), len(delivered[1]), st2)
	if st2.Backlog != 0 {
		t.Fatalf("%d rows still held after every row was acked: the deletes do not commit on the full filesystem (%+v)", st2.Backlog, st2)
	}

	// Readings are accepted again, into the pages the deletes freed,
	// without shedding.
	for i := range 5 {
		recs := batch()
		if err := o.Append(ctx, recs); err != nil {
			t.Fatalf("append %d after the drain: %v (%+v)", i, err, stats(t, o))
		}
		l.add(recs)
	}
	st3, _ := checkLedger(t, o, l, true)
	if st3.ShedTelemetry != st2.ShedTelemetry || st3.ShedEvents != 0 {
		t.Fatalf("rows shed after the drain: %+v, before %+v", st3, st2)
	}

	// The next outage on the still full filesystem: shedding works again.
	refused = fill("second outage", 2)
	st4, _ := checkLedger(t, o, l, true)
	t.Logf("filled again (%d appends refused): %+v", refused, st4)

	// Nothing committed is lost across a restart on the full filesystem,
	// and the database is intact.
	type summary struct{ rows, ids, seqs int64 }
	held := func() (s summary) {
		t.Helper()
		if err := o.rdb.QueryRow(`SELECT count(*), coalesce(sum(id), 0), coalesce(sum(seq), 0) FROM outbox`).Scan(&s.rows, &s.ids, &s.seqs); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := held()
	if err := o.Close(); err != nil {
		t.Fatalf("close on the full filesystem: %v", err)
	}
	o, err = Open(path, Options{MaxBytes: 1 << 30})
	if err != nil {
		t.Fatalf("reopen on the full filesystem: %v", err)
	}
	if after := held(); after != before || o.Backlog() != st4.Backlog {
		t.Errorf("after reopening: rows, sum of ids and of seqs %v (backlog %d), before %v", after, o.Backlog(), before)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	o = nil
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	integrity(t, db)
}
