package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// ledger remembers what a test appended and acked, to check the outbox's
// accounting: every sequence number appended is either still there, acked,
// or reported shed by exactly one shed notice.
type ledger struct {
	appended map[gateway.StreamID]uint64 // highest seq appended per stream
	acked    map[gateway.StreamID]map[uint64]bool
	rows     [2]int64 // rows appended per class (by the test)
	// reported holds the sequence numbers reported shed by notices that
	// were acked (delivered, so no longer in the outbox); reportedRows
	// and reportedNotices count them.
	reported        map[gateway.StreamID]map[uint64]bool
	reportedRows    [2]int64
	reportedNotices int64
}

func newLedger() *ledger {
	return &ledger{
		appended: map[gateway.StreamID]uint64{},
		acked:    map[gateway.StreamID]map[uint64]bool{},
		reported: map[gateway.StreamID]map[uint64]bool{},
	}
}

func (l *ledger) add(recs []gateway.Record) {
	for _, r := range recs {
		l.appended[r.Stream] = max(l.appended[r.Stream], r.Seq)
		l.rows[r.Class]++
	}
}

func (l *ledger) ack(t *testing.T, o *Outbox, c gateway.Class, rows []gateway.Record) {
	t.Helper()
	if len(rows) == 0 {
		return
	}
	for _, r := range rows {
		if err := l.markAcked(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Ack(context.Background(), c, rows[0].ID, rows[len(rows)-1].ID); err != nil {
		t.Fatal(err)
	}
}

// markAcked records r as acked; if r is a shed notice, the sequence numbers
// it reports shed are remembered as reported.
func (l *ledger) markAcked(r gateway.Record) error {
	if l.acked[r.Stream] == nil {
		l.acked[r.Stream] = map[uint64]bool{}
	}
	l.acked[r.Stream][r.Seq] = true
	if r.Stream != ShedStream {
		return nil
	}
	var ev gateway.Event
	if err := json.Unmarshal(r.Body, &ev); err != nil {
		return fmt.Errorf("shed notice %d: %w", r.ID, err)
	}
	if l.reported[ev.Stream] == nil {
		l.reported[ev.Stream] = map[uint64]bool{}
	}
	for s := ev.FromSeq; s <= ev.ToSeq; s++ {
		if l.reported[ev.Stream][s] {
			return fmt.Errorf("seq %d of %s reported shed twice", s, ev.Stream)
		}
		l.reported[ev.Stream][s] = true
	}
	l.reportedRows[noticeClass(ev.Stream)] += int64(ev.Quantity)
	l.reportedNotices++
	return nil
}

// noticeClass is the class of the rows of stream, as the tests name them.
func noticeClass(stream gateway.StreamID) gateway.Class {
	if stream == ShedStream || strings.HasPrefix(string(stream), "events/") {
		return gateway.ClassEvent
	}
	return gateway.ClassTelemetry
}

func telemetry(streams []gateway.StreamID, n int) []gateway.Record {
	recs := make([]gateway.Record, n)
	for i := range recs {
		recs[i] = gateway.Record{Stream: streams[i%len(streams)], Class: gateway.ClassTelemetry, Time: time.UnixMicro(int64(i + 1)), Value: float64(i), Unit: "g"}
	}
	return recs
}

func events(streams []gateway.StreamID, n int) []gateway.Record {
	recs := make([]gateway.Record, n)
	for i := range recs {
		recs[i] = gateway.Record{Stream: streams[i%len(streams)], Class: gateway.ClassEvent, Time: time.UnixMicro(int64(i + 1)), Body: []byte(`{"kind":"pick","stream":"loadcell/x","qty":1}`)}
	}
	return recs
}

// sync waits until the writer applied everything queued before it.
func syncWriter(t *testing.T, o *Outbox) {
	t.Helper()
	if err := o.Append(context.Background(), events([]gateway.StreamID{"events/sync"}, 1)); err != nil {
		t.Fatal(err)
	}
}

func stats(t *testing.T, o *Outbox) Stats {
	t.Helper()
	st, err := o.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func integrity(t *testing.T, db *sql.DB) {
	t.Helper()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Fatalf("integrity_check: %s", res)
	}
}

// checkLedger checks that rows left + rows acked + rows shed = rows
// appended, per class and per sequence number: each notice's range holds
// exactly the rows shed, no notice covers a row still there or acked, and
// the rows left of each stream are its newest unacked ones when oldest
// first holds. exact requires every shed range to be reported by a notice
// still present (false when notices may themselves have been shed).
func checkLedger(t *testing.T, o *Outbox, l *ledger, exact bool) (Stats, map[gateway.StreamID]map[uint64]bool) {
	t.Helper()
	tel := readAll(t, o, gateway.ClassTelemetry)
	evs := readAll(t, o, gateway.ClassEvent)
	st := stats(t, o)
	if int64(len(tel)+len(evs)) != st.Backlog {
		t.Errorf("read %d rows, Backlog says %d", len(tel)+len(evs), st.Backlog)
	}
	present := map[gateway.StreamID]map[uint64]bool{}
	shed := map[gateway.StreamID]map[uint64]bool{}
	var notices, leftEvents int64
	var noticeRows [2]int64
	for _, r := range append(tel, evs...) {
		if present[r.Stream] == nil {
			present[r.Stream] = map[uint64]bool{}
		}
		present[r.Stream][r.Seq] = true
		if r.Stream != ShedStream {
			if r.Class == gateway.ClassEvent {
				leftEvents++
			}
			continue
		}
		notices++
		var ev gateway.Event
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatalf("shed notice %d: %v", r.ID, err)
		}
		if ev.Kind != gateway.EventShed || ev.FromSeq == 0 || ev.ToSeq < ev.FromSeq || ev.Quantity != int(ev.ToSeq-ev.FromSeq+1) || ev.Time.IsZero() || int(r.Value) != ev.Quantity {
			t.Fatalf("bad shed notice %d: %s", r.ID, r.Body)
		}
		if shed[ev.Stream] == nil {
			shed[ev.Stream] = map[uint64]bool{}
		}
		noticeRows[noticeClass(ev.Stream)] += int64(ev.Quantity)
		for s := ev.FromSeq; s <= ev.ToSeq; s++ {
			if shed[ev.Stream][s] || l.reported[ev.Stream][s] {
				t.Fatalf("seq %d of %s reported shed twice", s, ev.Stream)
			}
			shed[ev.Stream][s] = true
		}
	}
	for stream, hi := range l.appended {
		for s := uint64(1); s <= hi; s++ {
			p, a, x := present[stream][s], l.acked[stream][s], shed[stream][s] || l.reported[stream][s]
			switch {
			case p && (a || x):
				t.Fatalf("%s seq %d still there but also acked (%v) or reported shed (%v)", stream, s, a, x)
			case a && x:
				t.Fatalf("%s seq %d acked but reported shed", stream, s)
			case exact && !p && !a && !x:
				t.Fatalf("%s seq %d lost: neither there, acked nor reported shed", stream, s)
			}
		}
		// Oldest first: nothing unacked older than a row shed is still there.
		var newestShed uint64
		for s := range shed[stream] {
			newestShed = max(newestShed, s)
		}
		for s := range l.reported[stream] {
			newestShed = max(newestShed, s)
		}
		for s := range present[stream] {
			if s < newestShed {
				t.Fatalf("%s: seq %d kept while the newer seq %d was shed", stream, s, newestShed)
			}
		}
	}
	// Notices are never shed: every one written is still there or acked.
	if st.ShedNotices != notices+l.reportedNotices {
		t.Errorf("ShedNotices = %d, but notices present = %d, acked = %d: a notice was lost", st.ShedNotices, notices, l.reportedNotices)
	}
	noticeRows[0] += l.reportedRows[0]
	noticeRows[1] += l.reportedRows[1]
	if exact && (noticeRows[0] != st.ShedTelemetry || noticeRows[1] != st.ShedEvents) {
		t.Errorf("notices report %v rows shed, stats %d/%d", noticeRows, st.ShedTelemetry, st.ShedEvents)
	}
	var ackedN int64
	for _, m := range l.acked {
		ackedN += int64(len(m))
	}
	// Rows: appended by the test + notices = left + acked + shed.
	if got, want := st.Backlog+ackedN+st.ShedTelemetry+st.ShedEvents, l.rows[0]+l.rows[1]+st.ShedNotices; got != want {
		t.Errorf("left %d + acked %d + shed %d+%d = %d, but appended %d + %d notices = %d",
			st.Backlog, ackedN, st.ShedTelemetry, st.ShedEvents, got, l.rows[0]+l.rows[1], st.ShedNotices, want)
	}
	if got := int64(len(tel)) + st.ShedTelemetry + countAcked(l, false); got != l.rows[0] {
		t.Errorf("telemetry: left %d + shed %d + acked = %d, appended %d", len(tel), st.ShedTelemetry, got, l.rows[0])
	}
	integrity(t, o.rdb)
	return st, shed
}

func countAcked(l *ledger, events bool) int64 {
	var n int64
	for s, m := range l.acked {
		if (len(s) >= 7 && s[:7] == "events/") == events {
			n += int64(len(m))
		}
	}
	return n
}

func TestBudgetSheds(t *testing.T) {
	tel := []gateway.StreamID{"loadcell/a", "loadcell/b", "loadcell/c"}
	evs := []gateway.StreamID{"events/a", "events/b"}
	tests := []struct {
		name          string
		telemetry     int // per batch
		events        int // per batch
		batches       int
		ackMiddle     bool // ack a range in the middle of the backlog before the budget is reached
		wantShedEvent bool
	}{
		{name: "telemetry only", telemetry: 500, batches: 80},
		{name: "mixed keeps events", telemetry: 500, events: 5, batches: 80},
		{name: "acked gap splits ranges", telemetry: 500, events: 2, batches: 80, ackMiddle: true},
		{name: "events only when nothing else", events: 200, batches: 80, wantShedEvent: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const budget = 256 << 10
			path := filepath.Join(t.TempDir(), "outbox.db")
			o, err := Open(path, Options{MaxBytes: budget})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			ctx := context.Background()
			l := newLedger()
			for b := range tc.batches {
				recs := append(telemetry(tel, tc.telemetry), events(evs, tc.events)...)
				if err := o.Append(ctx, recs); err != nil {
					t.Fatal(err)
				}
				l.add(recs)
				if tc.ackMiddle && b == 3 {
					// Ids 700..899 of batch 2 are delivered: the shed ranges
					// of each stream must skip their sequence numbers.
					rows, err := o.Read(ctx, gateway.ClassTelemetry, 700, 200, nil)
					if err != nil {
						t.Fatal(err)
					}
					l.ack(t, o, gateway.ClassTelemetry, rows)
				}
				if st := stats(t, o); st.UsedBytes > budget+budget/16 {
					t.Fatalf("batch %d: %d bytes in use, budget %d", b, st.UsedBytes, budget)
				}
			}
			syncWriter(t, o)
			l.add(nil)
			l.rows[gateway.ClassEvent]++ // the sync event
			l.appended["events/sync"] = 1
			// Exact even when events are shed: notices are never shed, so
			// every row is there, acked or reported.
			st, shed := checkLedger(t, o, l, true)
			if tc.ackMiddle {
				// The acked rows sat amid rows shed on both sides.
				for s, acked := range l.acked {
					lo, hi := uint64(1<<63), uint64(0)
					for q := range acked {
						lo, hi = min(lo, q), max(hi, q)
					}
					if !shed[s][lo-1] || !shed[s][hi+1] {
						t.Errorf("%s: acked seqs %d-%d not between shed ones", s, lo, hi)
					}
				}
			}
			if st.ShedTelemetry == 0 && tc.telemetry > 0 {
				t.Errorf("nothing shed: %+v", st)
			}
			// Nothing was read (handed to an uplink) before the end, so
			// every stream's contiguous sheds extend one notice; a range
			// acked in the middle splits a stream's report in two.
			if most := int64(len(tel) + len(evs)); !tc.ackMiddle && st.ShedNotices > most {
				t.Errorf("%d shed notices for %d streams: contiguous sheds were not folded into one notice", st.ShedNotices, most)
			}
			if got := st.ShedEvents > 0; got != tc.wantShedEvent {
				t.Errorf("events shed: %d, want some: %v", st.ShedEvents, tc.wantShedEvent)
			}
			if tc.wantShedEvent {
				// Every event stream keeps a gap-free newest suffix.
				for _, s := range evs {
					left := 0
					for _, r := range readAll(t, o, gateway.ClassEvent) {
						if r.Stream == s {
							left++
						}
					}
					if left == 0 || left == int(l.appended[s]) {
						t.Errorf("%s: %d of %d events left", s, left, l.appended[s])
					}
				}
			}
			if st.FileBytes > budget+headroom(budget) {
				t.Errorf("file holds %d bytes, over budget %d + headroom", st.FileBytes, budget)
			}
			t.Logf("%+v", st)
		})
	}
}

func TestShedCountsSurviveReopen(t *testing.T) {
	const budget = 128 << 10
	path := filepath.Join(t.TempDir(), "outbox.db")
	ctx := context.Background()
	streams := []gateway.StreamID{"loadcell/a"}
	o, err := Open(path, Options{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		if err := o.Append(ctx, telemetry(streams, 500)); err != nil {
			t.Fatal(err)
		}
	}
	before := stats(t, o)
	if before.ShedTelemetry == 0 {
		t.Fatalf("nothing shed: %+v", before)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o, err = Open(path, Options{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	after := stats(t, o)
	if after.ShedTelemetry != before.ShedTelemetry || after.ShedEvents != before.ShedEvents || after.Backlog != before.Backlog {
		t.Fatalf("after reopen shed %d/%d backlog %d, before %d/%d backlog %d",
			after.ShedTelemetry, after.ShedEvents, after.Backlog, before.ShedTelemetry, before.ShedEvents, before.Backlog)
	}
	for range 10 {
		if err := o.Append(ctx, telemetry(streams, 500)); err != nil {
			t.Fatal(err)
		}
	}
	if more := stats(t, o); more.ShedTelemetry <= before.ShedTelemetry {
		t.Errorf("shed count did not grow after reopen: %d", more.ShedTelemetry)
	}
}

// setMaxPages caps the database file at n pages (0: the current size), as a
// full filesystem would.
func setMaxPages(t *testing.T, o *Outbox, n int64) int64 {
	t.Helper()
	if n == 0 {
		if err := o.wdb.QueryRow(`PRAGMA page_count`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	var got int64
	if err := o.wdb.QueryRow(fmt.Sprintf(`PRAGMA max_page_count = %d`, n)).Scan(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFullDatabaseShedsRetriesAndRecovers(t *testing.T) {
	o, _ := openTemp(t)
	ctx := context.Background()
	l := newLedger()
	streams := []gateway.StreamID{"loadcell/a", "loadcell/b"}
	evs := []gateway.StreamID{"events/a"}
	for range 8 {
		recs := append(telemetry(streams, 1000), events(evs, 5)...)
		if err := o.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		l.add(recs)
	}
	// Deliver the first 500 rows, then cap the file where it is now, with no
	// free pages: the next appends hit SQLITE_FULL.
	first, err := o.Read(ctx, gateway.ClassTelemetry, 0, 500, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.ack(t, o, gateway.ClassTelemetry, first)
	syncWriter(t, o)
	l.add(nil)
	l.rows[gateway.ClassEvent]++
	l.appended["events/sync"]++
	var free int64
	if err := o.wdb.QueryRow(`PRAGMA freelist_count`).Scan(&free); err != nil {
		t.Fatal(err)
	}
	setMaxPages(t, o, 0)

	// Appends that need more pages than are free: shed by policy (oldest
	// telemetry), retried once, accepted.
	for range 6 {
		recs := telemetry(streams, 500)
		if err := o.Append(ctx, recs); err != nil {
			t.Fatalf("append with room to shed: %v", err)
		}
		l.add(recs)
	}
	st, _ := checkLedger(t, o, l, true)
	if st.FullCommits == 0 || st.ShedTelemetry == 0 || st.ShedEvents != 0 || st.FullRefused != 0 {
		t.Fatalf("after full commits: %+v", st)
	}
	for _, r := range readAll(t, o, gateway.ClassEvent) {
		if r.Stream == ShedStream {
			var ev gateway.Event
			if err := json.Unmarshal(r.Body, &ev); err != nil || ev.Detail != reasonFull {
				t.Errorf("shed notice %s: detail want %q", r.Body, reasonFull)
			}
		}
	}

	// More than shedding can make room for: refused with ErrDiskFull,
	// nothing committed changes, the caller keeps its rows. An ack queued
	// with it (likely the same commit) still applies.
	rest, err := o.Read(ctx, gateway.ClassTelemetry, 0, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.ack(t, o, gateway.ClassTelemetry, rest)
	big := telemetry(streams, 20000)
	err = o.Append(ctx, big)
	if !errors.Is(err, gateway.ErrDiskFull) {
		t.Fatalf("append beyond the cap: %v, want ErrDiskFull", err)
	}
	syncWriter(t, o)
	l.rows[gateway.ClassEvent]++
	l.appended["events/sync"]++
	st2, _ := checkLedger(t, o, l, true)
	if st2.FullRefused != int64(len(big)) || st2.Backlog != st.Backlog-int64(len(rest))+1 || st2.ShedTelemetry != st.ShedTelemetry {
		t.Fatalf("after refusal: %+v, before %+v", st2, st)
	}

	// Space returns: the refused rows are accepted as they are.
	setMaxPages(t, o, 1<<30)
	if err := o.Append(ctx, big); err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	l.add(big)
	st3, _ := checkLedger(t, o, l, true)
	if st3.FullRefused != st2.FullRefused {
		t.Errorf("refused count moved: %d -> %d", st2.FullRefused, st3.FullRefused)
	}
	t.Logf("%+v", st3)
}

func TestFullWithNothingToShed(t *testing.T) {
	o, _ := openTemp(t)
	ctx := context.Background()
	syncWriter(t, o) // creates the stream so the cap is tight
	setMaxPages(t, o, 0)
	recs := telemetry([]gateway.StreamID{"loadcell/a"}, 2000)
	if err := o.Append(ctx, recs); !errors.Is(err, gateway.ErrDiskFull) {
		t.Fatalf("append to a full empty outbox: %v, want ErrDiskFull", err)
	}
	st := stats(t, o)
	if st.Backlog != 1 || st.FullRefused != 2000 || st.FullCommits != 2 {
		t.Fatalf("stats = %+v", st)
	}
	setMaxPages(t, o, 1<<30)
	if err := o.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if recs[0].Seq != 1 || recs[1999].Seq != 2000 {
		t.Errorf("sequences after refusal start at %d, end at %d", recs[0].Seq, recs[1999].Seq)
	}
	integrity(t, o.rdb)
}

// TestDrainShrinksFile fills the outbox, delivers everything, and waits for
// the writer's housekeeping to vacuum the freed pages and truncate the WAL.
func TestDrainShrinksFile(t *testing.T) {
	o, path := openTemp(t)
	ctx := context.Background()
	const n = 200_000
	for i := 0; i < n; i += 4000 {
		if err := o.Append(ctx, telemetry([]gateway.StreamID{"loadcell/a", "loadcell/b"}, 4000)); err != nil {
			t.Fatal(err)
		}
	}
	size := func() int64 {
		var total int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(path + suffix); err == nil {
				total += fi.Size()
			}
		}
		return total
	}
	full := size()
	if err := o.Ack(ctx, gateway.ClassTelemetry, 1, o.LastID()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for size() > full/4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	st := stats(t, o)
	if got := size(); got > full/4 {
		t.Fatalf("database + WAL %d bytes after draining, %d when full; want at most a quarter (%+v)", got, full, st)
	}
	if st.Backlog != 0 || st.Acked != n || st.VacuumedPages == 0 {
		t.Errorf("stats = %+v", st)
	}
	integrity(t, o.rdb)
	t.Logf("full %d bytes, drained %d bytes, %+v", full, size(), st)
}

// TestOpensDatabaseWithoutAutoVacuum opens a database made before budgets
// (no shed table, auto_vacuum off): it works, sheds, and never vacuums.
func TestOpensDatabaseWithoutAutoVacuum(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	old := schema[:strings.Index(schema, "CREATE TABLE IF NOT EXISTS shed")]
	if _, err := db.Exec(old); err != nil {
		t.Fatal(err)
	}
	db.Close()
	o, err := Open(path, Options{MaxBytes: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.incremental {
		t.Fatal("an existing database became incremental")
	}
	ctx := context.Background()
	l := newLedger()
	for range 20 {
		recs := telemetry([]gateway.StreamID{"loadcell/a"}, 500)
		if err := o.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		l.add(recs)
	}
	st, _ := checkLedger(t, o, l, true)
	if st.ShedTelemetry == 0 {
		t.Errorf("nothing shed: %+v", st)
	}
}

// TestRealFullFilesystem fills a small tmpfs (mounted in a user and mount
// namespace of a child process) until the filesystem itself is full: appends
// then shed and retry, or fail with ErrDiskFull; nothing accepted is lost;
// once space returns, appends are accepted again.
func TestRealFullFilesystem(t *testing.T) {
	dir := onTinyFilesystem(t, 4<<20)
	if dir == "" {
		return
	}
	fullFilesystemChild(t, dir)
}

func fullFilesystemChild(t *testing.T, dir string) {
	ctx := context.Background()
	// The filler stands for whoever else uses the disk; deleting it is
	// space coming back.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "outbox.db")
	o, err := Open(path, Options{ReserveBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if !stats(t, o).Reserved {
		t.Fatal("no reserve file")
	}
	l := newLedger()
	streams := []gateway.StreamID{"loadcell/a", "loadcell/b"}
	// About 10 MB of rows into 4 MB: appends shed the oldest rows to make
	// room, or are refused; any other error fails.
	var refusals int
	for i := range 500 {
		recs := telemetry(streams, 500)
		err := o.Append(ctx, recs)
		switch {
		case err == nil:
			l.add(recs)
		case errors.Is(err, gateway.ErrDiskFull):
			refusals++
		default:
			t.Fatalf("append %d on a filling disk: %v", i, err)
		}
	}
	// More than shedding everything could make room for.
	refused := telemetry(streams, 100_000)
	if err := o.Append(ctx, refused); !errors.Is(err, gateway.ErrDiskFull) {
		t.Fatalf("append of 100k rows on a full disk: %v, want ErrDiskFull", err)
	}
	st, _ := checkLedger(t, o, l, true)
	t.Logf("filled (%d refusals): %+v", refusals, st)
	if st.FullCommits == 0 || st.ShedTelemetry == 0 || st.ReserveReleases == 0 {
		t.Fatalf("the filesystem never filled: %+v", st)
	}
	// Space returns: the other user's file goes, the backlog is delivered.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	tel := readAll(t, o, gateway.ClassTelemetry)
	l.ack(t, o, gateway.ClassTelemetry, tel)
	refused = refused[:20_000]
	if err := o.Append(ctx, refused); err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	l.add(refused)
	for range 4 {
		recs := telemetry(streams, 500)
		if err := o.Append(ctx, recs); err != nil {
			t.Fatalf("append after drain: %v", err)
		}
		l.add(recs)
	}
	before := st
	st, _ = checkLedger(t, o, l, true)
	if st.ShedTelemetry != before.ShedTelemetry {
		t.Errorf("shed after space returned: %d -> %d", before.ShedTelemetry, st.ShedTelemetry)
	}
	// The writer takes its reserve back.
	for deadline := time.Now().Add(20 * time.Second); !stats(t, o).Reserved && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	st = stats(t, o)
	if !st.Reserved {
		t.Errorf("reserve not restored: %+v", st)
	}
	t.Logf("recovered: %+v", st)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	integrity(t, db)
}

// TestTailAfterShed checks the in-memory tail against the database after
// shedding: every read position, whether answered by the tail or by a
// query, returns the next rows still there.
func TestTailAfterShed(t *testing.T) {
	o, err := Open(filepath.Join(t.TempDir(), "outbox.db"), Options{MaxBytes: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	for range 30 {
		if err := o.Append(ctx, telemetry([]gateway.StreamID{"loadcell/a", "loadcell/b"}, 500)); err != nil {
			t.Fatal(err)
		}
	}
	if st := stats(t, o); st.ShedTelemetry == 0 {
		t.Fatalf("nothing shed: %+v", st)
	}
	var want []gateway.Record
	rows, err := o.rdb.Query(`SELECT id FROM outbox WHERE class = 0 ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r gateway.Record
		if err := rows.Scan(&r.ID); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	rows.Close()
	tl := o.tails[gateway.ClassTelemetry]
	tl.mu.Lock()
	floor, n := tl.floor, tl.n
	tl.mu.Unlock()
	if floor < want[0].ID-1 || n == 0 {
		t.Fatalf("tail floor %d, %d rows; oldest row left %d", floor, n, want[0].ID)
	}
	for i := 0; i < len(want); i += 37 {
		for _, after := range []int64{want[i].ID - 1, want[i].ID - 2, 0} {
			got, err := o.Read(ctx, gateway.ClassTelemetry, after, 3, nil)
			if err != nil {
				t.Fatal(err)
			}
			j := sort.Search(len(want), func(j int) bool { return want[j].ID > after })
			for k, r := range got {
				if r.ID != want[j+k].ID {
					t.Fatalf("Read(after %d)[%d] = id %d, want %d", after, k, r.ID, want[j+k].ID)
				}
			}
			if len(got) != min(3, len(want)-j) {
				t.Fatalf("Read(after %d) returned %d rows", after, len(got))
			}
		}
	}
}

// TestBudgetHardCap: one commit larger than the budget's headroom hits
// max_page_count and is refused; one within it is accepted and trimmed back
// under the budget by shedding its own oldest rows.
func TestBudgetHardCap(t *testing.T) {
	const budget = 256 << 10
	o, err := Open(filepath.Join(t.TempDir(), "outbox.db"), Options{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	streams := []gateway.StreamID{"loadcell/a"}
	huge := telemetry(streams, 80_000) // ~3 MB: more than budget + headroom
	if err := o.Append(ctx, huge); !errors.Is(err, gateway.ErrDiskFull) {
		t.Fatalf("append beyond max_page_count: %v, want ErrDiskFull", err)
	}
	l := newLedger()
	fits := telemetry(streams, 15_000) // ~600 KB: over the budget, under the cap
	if err := o.Append(ctx, fits); err != nil {
		t.Fatal(err)
	}
	l.add(fits)
	st, _ := checkLedger(t, o, l, true)
	if st.FullRefused != int64(len(huge)) || st.ShedTelemetry == 0 || st.UsedBytes > budget+budget/16 || st.FileBytes > budget+headroom(budget) {
		t.Fatalf("stats = %+v", st)
	}
	if st.ReserveReleases != 0 {
		t.Errorf("the budget's own cap gave up the reserve: %+v", st)
	}
}

// TestShedNoticeHandedOutIsNeverRewritten: a notice the uplink has read may
// be in flight, so a later contiguous shed must get a notice of its own
// instead of extending it (a PUBACK of the old version would delete the
// only report of the new range).
func TestShedNoticeHandedOutIsNeverRewritten(t *testing.T) {
	const budget = 128 << 10
	o, err := Open(filepath.Join(t.TempDir(), "outbox.db"), Options{MaxBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	tel := []gateway.StreamID{"loadcell/a"}
	fill := func(until func(Stats) bool) {
		t.Helper()
		for range 1000 {
			if err := o.Append(ctx, telemetry(tel, 500)); err != nil {
				t.Fatal(err)
			}
			if until(stats(t, o)) {
				return
			}
		}
		t.Fatalf("condition not reached: %+v", stats(t, o))
	}
	fill(func(st Stats) bool { return st.ShedNotices == 1 && st.ShedTelemetry > 2000 })
	// Shed more: still one notice, extended.
	shed := stats(t, o).ShedTelemetry
	fill(func(st Stats) bool { return st.ShedTelemetry > shed+2000 })
	if n := stats(t, o).ShedNotices; n != 1 {
		t.Fatalf("%d notices after two contiguous sheds, want the first extended", n)
	}
	handed, err := o.Read(ctx, gateway.ClassEvent, 0, 10, nil)
	if err != nil || len(handed) != 1 {
		t.Fatalf("read notices: %v, %d", err, len(handed))
	}
	shed = stats(t, o).ShedTelemetry
	fill(func(st Stats) bool { return st.ShedTelemetry > shed+2000 })
	after, err := o.Read(ctx, gateway.ClassEvent, 0, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) < 2 || after[0].ID != handed[0].ID || string(after[0].Body) != string(handed[0].Body) {
		t.Fatalf("the notice handed out changed or no new one was written:\nhanded %s\nnow    %v", handed[0].Body, after)
	}
	var first, second gateway.Event
	if json.Unmarshal(after[0].Body, &first) != nil || json.Unmarshal(after[1].Body, &second) != nil {
		t.Fatal("bad notice bodies")
	}
	if second.FromSeq != first.ToSeq+1 {
		t.Errorf("second notice starts at seq %d, first ended at %d: want it to continue", second.FromSeq, first.ToSeq)
	}
	if got := stats(t, o).ShedTelemetry; uint64(got) != second.ToSeq {
		t.Errorf("shed %d rows, notices cover seqs 1-%d", got, second.ToSeq)
	}
}
