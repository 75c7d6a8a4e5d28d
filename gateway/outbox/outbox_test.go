package outbox

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

func openTemp(t *testing.T) (*Outbox, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := Open(path, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o, path
}

func readings(stream gateway.StreamID, n int, start float64) []gateway.Record {
	recs := make([]gateway.Record, n)
	for i := range recs {
		recs[i] = gateway.Record{Stream: stream, Class: gateway.ClassTelemetry, Time: time.UnixMicro(int64(i + 1)), Value: start + float64(i), Unit: "g"}
	}
	return recs
}

func readAll(t *testing.T, o *Outbox, c gateway.Class) []gateway.Record {
	t.Helper()
	var all, buf []gateway.Record
	after := int64(0)
	for {
		var err error
		buf, err = o.Read(context.Background(), c, after, 1000, buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(buf) == 0 {
			return all
		}
		all = append(all, buf...)
		after = buf[len(buf)-1].ID
	}
}

func TestAppendAssignsIDsAndSequences(t *testing.T) {
	o, _ := openTemp(t)
	ctx := context.Background()
	const writers, per = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := gateway.StreamID(fmt.Sprintf("s%d", w%3))
			for i := 0; i < per; i += 50 {
				if err := o.Append(ctx, readings(stream, 50, float64(i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ev := []gateway.Record{{Stream: "events/x", Class: gateway.ClassEvent, Time: time.UnixMicro(5), Body: []byte(`{"kind":"pick"}`)}}
	if err := o.Append(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if ev[0].ID != writers*per+1 || ev[0].Seq != 1 {
		t.Errorf("event got id %d seq %d, want %d and 1", ev[0].ID, ev[0].Seq, writers*per+1)
	}
	tel := readAll(t, o, gateway.ClassTelemetry)
	if len(tel) != writers*per {
		t.Fatalf("read %d telemetry rows, want %d", len(tel), writers*per)
	}
	lastSeq := map[gateway.StreamID]uint64{}
	for i, r := range tel {
		if r.ID != int64(i+1) {
			t.Fatalf("row %d has id %d", i, r.ID)
		}
		if r.Seq != lastSeq[r.Stream]+1 {
			t.Fatalf("stream %s: seq %d after %d", r.Stream, r.Seq, lastSeq[r.Stream])
		}
		lastSeq[r.Stream] = r.Seq
		if r.Unit != "g" {
			t.Fatalf("unit %q", r.Unit)
		}
	}
	evs := readAll(t, o, gateway.ClassEvent)
	if len(evs) != 1 || string(evs[0].Body) != `{"kind":"pick"}` || evs[0].Stream != "events/x" {
		t.Fatalf("events = %+v", evs)
	}
	st, err := o.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Backlog != writers*per+1 || st.Events != 1 || st.LastID != writers*per+1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestAckDeletesOnlyItsClassAndRange(t *testing.T) {
	o, _ := openTemp(t)
	ctx := context.Background()
	recs := readings("a", 10, 0)
	recs[4].Class, recs[4].Stream, recs[4].Body = gateway.ClassEvent, "events/a", []byte(`{}`)
	if err := o.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := o.Ack(ctx, gateway.ClassTelemetry, 1, 7); err != nil {
		t.Fatal(err)
	}
	// Acks are applied with the next commit; an empty append forces none, so wait via another append.
	if err := o.Append(ctx, readings("b", 1, 0)); err != nil {
		t.Fatal(err)
	}
	tel := readAll(t, o, gateway.ClassTelemetry)
	var ids []int64
	for _, r := range tel {
		ids = append(ids, r.ID)
	}
	if fmt.Sprint(ids) != "[8 9 10 11]" {
		t.Errorf("telemetry ids left = %v, want [8 9 10 11]", ids)
	}
	if ev := readAll(t, o, gateway.ClassEvent); len(ev) != 1 || ev[0].ID != 5 {
		t.Errorf("events left = %+v, want id 5", ev)
	}
}

func TestReopenKeepsBacklogAndNeverReusesIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	ctx := context.Background()
	o, err := Open(path, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Append(ctx, readings("a", 5, 0)); err != nil {
		t.Fatal(err)
	}
	// Deliver everything: the table is empty, but ids must still not restart.
	if err := o.Ack(ctx, gateway.ClassTelemetry, 1, 5); err != nil {
		t.Fatal(err)
	}
	if err := o.Append(ctx, readings("b", 3, 0)); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o, err = Open(path, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got := len(readAll(t, o, gateway.ClassTelemetry)); got != 3 {
		t.Fatalf("backlog after reopen = %d rows, want 3", got)
	}
	if err := o.Ack(ctx, gateway.ClassTelemetry, 6, 8); err != nil {
		t.Fatal(err)
	}
	more := readings("a", 2, 0)
	if err := o.Append(ctx, more); err != nil {
		t.Fatal(err)
	}
	if more[0].ID != 9 || more[0].Seq != 6 || more[1].Seq != 7 {
		t.Errorf("after reopen got id %d seq %d,%d; want id 9 seq 6,7", more[0].ID, more[0].Seq, more[1].Seq)
	}
	st, err := o.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Backlog != 2 {
		t.Errorf("backlog = %d, want 2", st.Backlog)
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	o, _ := openTemp(t)
	o.Close()
	if err := o.Append(context.Background(), readings("a", 1, 0)); err == nil {
		t.Fatal("Append after Close succeeded")
	}
}

// TestKill9LosesNothingAccepted runs a child process that appends and prints
// the last id of every accepted Append, SIGKILLs it mid-stream, and checks
// that every printed id is in the database with gap-free sequences.
func TestKill9LosesNothingAccepted(t *testing.T) {
	if os.Getenv("OUTBOX_CHILD") != "" {
		child(os.Getenv("OUTBOX_CHILD"))
		return
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9LosesNothingAccepted$")
	cmd.Env = append(os.Environ(), "OUTBOX_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var accepted int64
	for sc.Scan() {
		id, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			continue
		}
		accepted = id
		if accepted >= 20000 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if accepted == 0 {
		t.Fatal("child accepted nothing")
	}
	o, err := Open(path, DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	rows := readAll(t, o, gateway.ClassTelemetry)
	if int64(len(rows)) < accepted {
		t.Fatalf("%d rows survived, but %d were accepted", len(rows), accepted)
	}
	for i, r := range rows {
		if r.ID != int64(i+1) || r.Seq != uint64(i+1) {
			t.Fatalf("row %d: id %d seq %d", i, r.ID, r.Seq)
		}
	}
	t.Logf("accepted %d, found %d after SIGKILL", accepted, len(rows))
}

func child(path string) {
	o, err := Open(path, Options{MaxBatchRows: 512, MaxDelay: time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for {
		recs := readings("kill", 100, 0)
		if err := o.Append(context.Background(), recs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintln(w, recs[len(recs)-1].ID)
		w.Flush()
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		maxBytes int64
	}{{"unbudgeted", 0}, {"budget_1GiB", 1 << 30}, {"budget_shedding_1MiB", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			opts := DefaultOptions
			opts.MaxBytes = bc.maxBytes
			o, err := Open(filepath.Join(b.TempDir(), "outbox.db"), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer o.Close()
			recs := readings("bench", 1000, 0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range recs {
					recs[j].ID = 0
				}
				if err := o.Append(context.Background(), recs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestReadAcrossTailAndDatabase appends more rows than the in-memory tail
// holds, so reads start in the database and continue from the tail; the
// result must be every row exactly once, in order, also after acks.
func TestReadAcrossTailAndDatabase(t *testing.T) {
	o, _ := openTemp(t)
	ctx := context.Background()
	const n = 38000 // more than the telemetry tail holds (DefaultTailBytes/2), a multiple of 1000
	for i := 0; i < n; i += 1000 {
		if err := o.Append(ctx, readings("x", 1000, 0)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(from int64) {
		t.Helper()
		rows := readAll(t, o, gateway.ClassTelemetry)
		if int64(len(rows)) != n-from {
			t.Fatalf("read %d rows, want %d", len(rows), n-from)
		}
		for i, r := range rows {
			if r.ID != from+int64(i)+1 || r.Seq != uint64(r.ID) || r.Stream != "x" || r.Unit != "g" {
				t.Fatalf("row %d = %+v", i, r)
			}
		}
	}
	check(0)
	if err := o.Ack(ctx, gateway.ClassTelemetry, 1, n-100); err != nil {
		t.Fatal(err)
	}
	if err := o.Append(ctx, []gateway.Record{{Stream: "y", Class: gateway.ClassEvent, Time: time.Now(), Body: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	check(n - 100)
}
