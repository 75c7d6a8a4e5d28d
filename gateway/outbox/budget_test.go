package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
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
}

func newLedger() *ledger {
	return &ledger{appended: map[gateway.StreamID]uint64{}, acked: map[gateway.StreamID]map[uint64]bool{}}
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
		if l.acked[r.Stream] == nil {
			l.acked[r.Stream] = map[uint64]bool{}
		}
		l.acked[r.Stream][r.Seq] = true
	}
	if err := o.Ack(context.Background(), c, rows[0].ID, rows[len(rows)-1].ID); err != nil {
		t.Fatal(err)
	}
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
		c := gateway.ClassTelemetry
		if ev.Stream == ShedStream || ev.Stream[:7] == "events/" {
			c = gateway.ClassEvent
		}
		noticeRows[c] += int64(ev.Quantity)
		for s := ev.FromSeq; s <= ev.ToSeq; s++ {
			if shed[ev.Stream][s] {
				t.Fatalf("seq %d of %s reported shed twice", s, ev.Stream)
			}
			shed[ev.Stream][s] = true
		}
	}
	for stream, hi := range l.appended {
		for s := uint64(1); s <= hi; s++ {
			p, a, x := present[stream][s], l.acked[stream][s], shed[stream][s]
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
		for s := range present[stream] {
			if s < newestShed {
				t.Fatalf("%s: seq %d kept while the newer seq %d was shed", stream, s, newestShed)
			}
		}
	}
	if st.ShedNotices != notices && exact {
		t.Errorf("ShedNotices = %d, notices present = %d", st.ShedNotices, notices)
	}
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
			st, shed := checkLedger(t, o, l, !tc.wantShedEvent)
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
