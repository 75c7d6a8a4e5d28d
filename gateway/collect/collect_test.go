package collect

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

func TestSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s Set
	ref := map[uint64]bool{}
	for range 20000 {
		v := uint64(rng.IntN(3000))
		if got, want := s.Add(v), !ref[v]; got != want {
			t.Fatalf("Add(%d) = %v, want %v", v, got, want)
		}
		ref[v] = true
	}
	for v := uint64(0); v < 3100; v++ {
		if s.Has(v) != ref[v] {
			t.Fatalf("Has(%d) = %v", v, s.Has(v))
		}
	}
	rs := s.Ranges()
	for i := 1; i < len(rs); i++ {
		if rs[i].Lo <= rs[i-1].Hi+1 {
			t.Fatalf("ranges %v and %v should have merged", rs[i-1], rs[i])
		}
	}
}

func batch(recs ...shelfv1.WireRecord) *shelfv1.Batch {
	return &shelfv1.Batch{Version: 1, Site: "s", Gateway: "g", Class: "telemetry", Records: recs}
}

func TestAuditFindsGapsDuplicatesAndConflicts(t *testing.T) {
	c := New()
	c.Add(batch(shelfv1.WireRecord{ID: 1, Stream: "a", Seq: 1}, shelfv1.WireRecord{ID: 2, Stream: "a", Seq: 2}, shelfv1.WireRecord{ID: 3, Stream: "b", Seq: 1}))
	fresh := c.Add(batch(shelfv1.WireRecord{ID: 2, Stream: "a", Seq: 2}, shelfv1.WireRecord{ID: 6, Stream: "a", Seq: 5}))
	if len(fresh) != 1 || fresh[0].ID != 6 {
		t.Fatalf("fresh = %+v, want only id 6", fresh)
	}
	c.Add(batch(shelfv1.WireRecord{ID: 7, Stream: "b", Seq: 1})) // same seq, new id: conflict
	a := c.Audit(false)
	var out strings.Builder
	a.Write(&out)
	want := `AUDIT gateway=s/g stream=a received=3 duplicates=1 conflicts=0 first=1 last=5 missing=2 gaps=3-4
AUDIT gateway=s/g stream=b received=1 duplicates=0 conflicts=1 first=1 last=1 missing=0
AUDIT total streams=2 received=4 duplicates=1 conflicts=1 missing=2 shed=0 rejected=0 result=FAIL
`
	if out.String() != want {
		t.Fatalf("audit:\n%s\nwant:\n%s", out.String(), want)
	}
	if a.OK() {
		t.Fatal("audit with gaps is OK")
	}
}

func TestAuditFromFirst(t *testing.T) {
	c := New()
	c.Add(batch(shelfv1.WireRecord{ID: 10, Stream: "a", Seq: 10}, shelfv1.WireRecord{ID: 11, Stream: "a", Seq: 11}))
	if a := c.Audit(true); !a.OK() {
		t.Errorf("late start counted as gap: %+v", a)
	}
	if a := c.Audit(false); a.Missing != 9 {
		t.Errorf("missing = %d, want 9", a.Missing)
	}
}

func TestShedNoticesAreNotMissing(t *testing.T) {
	c := New()
	// Seq 2 was in flight when it was shed: it arrived, so it is not shed.
	c.Add(batch(shelfv1.WireRecord{ID: 1, Stream: "a", Seq: 1}, shelfv1.WireRecord{ID: 2, Stream: "a", Seq: 2}, shelfv1.WireRecord{ID: 9, Stream: "a", Seq: 9}))
	c.Add(&shelfv1.Batch{Version: 1, Site: "s", Gateway: "g", Class: "event", Records: []shelfv1.WireRecord{
		{ID: 10, Stream: "events/shed", Seq: 1, Event: []byte(`{"kind":"shed","stream":"a","from_seq":2,"to_seq":6,"qty":5,"time":"2026-01-01T00:00:00Z"}`)},
	}})
	a := c.Audit(false)
	var sa StreamAudit
	for _, s := range a.Streams {
		if s.Stream == "a" {
			sa = s
		}
	}
	if sa.Shed != 4 || sa.Missing != 2 || len(sa.Gaps) != 1 || sa.Gaps[0] != (Range{7, 8}) {
		t.Fatalf("stream a: %+v", sa)
	}
	if a.Shed != 4 || a.Missing != 2 || a.OK() {
		t.Fatalf("audit %+v", a)
	}
}

func TestUnion(t *testing.T) {
	got := union([]Range{{1, 3}, {10, 12}}, []Range{{4, 5}, {8, 9}, {20, 20}})
	want := []Range{{1, 5}, {8, 12}, {20, 20}}
	if len(got) != len(want) {
		t.Fatalf("union = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("union = %v, want %v", got, want)
		}
	}
}

func TestStatusRevealsTailLoss(t *testing.T) {
	zero, three := int64(0), int64(3)
	c := New()
	c.Add(batch(shelfv1.WireRecord{ID: 1, Stream: "a", Seq: 1}, shelfv1.WireRecord{ID: 2, Stream: "a", Seq: 2}))
	// A status taken while rows were still waiting says nothing about the tail.
	c.AddStatus(Status{Site: "s", Gateway: "g", Backlog: &three, LastSeq: map[string]uint64{"a": 9, "b": 4}})
	if a := c.Audit(false); !a.OK() || len(a.Streams) != 1 {
		t.Fatalf("audit after a busy status: %+v", a)
	}
	// With backlog 0, a's seqs 3-5 and all of stream b were lost.
	c.AddStatus(Status{Site: "s", Gateway: "g", Backlog: &zero, LastSeq: map[string]uint64{"a": 5, "b": 4}})
	a := c.Audit(false)
	if a.Missing != 3+4 || a.OK() {
		t.Fatalf("audit %+v", a)
	}
	for _, s := range a.Streams {
		if s.Stream == "a" && (len(s.Gaps) != 1 || s.Gaps[0] != (Range{3, 5}) || s.Last != 2) {
			t.Errorf("stream a: %+v", s)
		}
		if s.Stream == "b" && (s.Missing != 4 || s.Received != 0) {
			t.Errorf("stream b: %+v", s)
		}
	}
}

// TestAuditFromFirst: a collector started late audits each stream from the
// first sequence number it received, still reporting every gap after it
// and a tail the gateway's status says was sent; sequence numbers before
// it (delivered, shed or reported ended before the collector subscribed)
// are not missing. From the start, they are.
func TestAuditFromFirstSeen(t *testing.T) {
	backlog0 := int64(0)
	recs := func(stream string, id0 int64, seqs ...[2]uint64) *shelfv1.Batch {
		b := batch()
		id := id0
		for _, r := range seqs {
			for q := r[0]; q <= r[1]; q++ {
				id++
				b.Records = append(b.Records, shelfv1.WireRecord{ID: id, Stream: stream, Seq: q})
			}
		}
		return b
	}
	shed := func(stream string, id int64, from, to uint64) *shelfv1.Batch {
		return &shelfv1.Batch{Version: 1, Site: "s", Gateway: "g", Class: "event", Records: []shelfv1.WireRecord{{ID: id, Stream: "events/shed", Seq: 1,
			Event: []byte(fmt.Sprintf(`{"kind":"shed","stream":%q,"qty":%d,"from_seq":%d,"to_seq":%d}`, stream, to-from+1, from, to))}}}
	}
	for _, tc := range []struct {
		name      string
		feed      func(c *Collector)
		fromFirst bool
		missing   uint64
		gaps      string
	}{
		{"late start, from first", func(c *Collector) { c.Add(recs("a", 1000, [2]uint64{50, 60}, [2]uint64{62, 70})) }, true, 1, "61"},
		{"late start, from the start", func(c *Collector) { c.Add(recs("a", 1000, [2]uint64{50, 60}, [2]uint64{62, 70})) }, false, 50, "1-49,61"},
		{"status from before the first record", func(c *Collector) {
			c.AddStatus(Status{Site: "s", Gateway: "g", Backlog: &backlog0, LastSeq: map[string]uint64{"a": 40}})
			c.Add(recs("a", 1000, [2]uint64{50, 70}))
		}, true, 0, ""},
		{"status past the last record", func(c *Collector) {
			c.Add(recs("a", 1000, [2]uint64{50, 70}))
			c.AddStatus(Status{Site: "s", Gateway: "g", Backlog: &backlog0, LastSeq: map[string]uint64{"a": 75}})
		}, true, 5, "71-75"},
		{"old shed notice before the first record", func(c *Collector) {
			c.Add(shed("a", 999, 1, 40))
			c.Add(recs("a", 1000, [2]uint64{5000, 5010}))
		}, true, 0, ""},
		{"shed notice after the first record covers its gap", func(c *Collector) {
			c.Add(recs("a", 1000, [2]uint64{50, 60}, [2]uint64{71, 80}))
			c.Add(shed("a", 2000, 61, 70))
		}, true, 0, ""},
		{"only a status, from first", func(c *Collector) {
			c.AddStatus(Status{Site: "s", Gateway: "g", Backlog: &backlog0, LastSeq: map[string]uint64{"a": 40}})
		}, true, 0, ""},
		{"only a status, from the start", func(c *Collector) {
			c.AddStatus(Status{Site: "s", Gateway: "g", Backlog: &backlog0, LastSeq: map[string]uint64{"a": 40}})
		}, false, 40, "1-40"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New()
			tc.feed(c)
			a := c.Audit(tc.fromFirst)
			var gaps []string
			for _, s := range a.Streams {
				if s.Stream != "a" {
					continue
				}
				for _, g := range s.Gaps {
					gaps = append(gaps, g.String())
				}
			}
			if a.Missing != tc.missing || strings.Join(gaps, ",") != tc.gaps {
				t.Fatalf("missing %d gaps %v; want %d gaps %s", a.Missing, gaps, tc.missing, tc.gaps)
			}
		})
	}
}
