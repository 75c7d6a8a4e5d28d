// Package collect is the cloud side of Shelfgate's delivery contract: it
// takes batches as they arrive from the broker, keeps each record once (by
// gateway and id), and audits every stream's sequence numbers for gaps.
//
// Delivery is at-least-once, so duplicates are expected and harmless when
// they repeat an id already seen. A sequence number seen again under a new
// id is a conflict (a gateway bug), and a sequence number never seen is a
// gap (data loss, or rows shed under the disk budget and reported as such).
package collect

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// Collector deduplicates and audits. It is safe for concurrent use.
type Collector struct {
	mu      sync.Mutex
	ids     map[string]*Set // per gateway ("site/gw")
	streams map[streamKey]*streamState
	bad     int64
	dups    int64
	records int64
}

type streamKey struct{ gw, stream string }

type streamState struct {
	ended     uint64 // last sequence number the gateway reported delivered (status with backlog 0)
	seqs      Set
	shed      Set // sequence numbers the gateway reported shed under its disk budget
	received  int64
	dups      int64
	conflicts int64
}

// New returns an empty Collector.
func New() *Collector {
	return &Collector{ids: map[string]*Set{}, streams: map[streamKey]*streamState{}}
}

// Add records one decoded batch and returns the records seen for the first time.
func (c *Collector) Add(b *shelfv1.Batch) []shelfv1.WireRecord {
	gw := b.Site + "/" + b.Gateway
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := c.ids[gw]
	if ids == nil {
		ids = &Set{}
		c.ids[gw] = ids
	}
	fresh := b.Records[:0:0]
	for _, r := range b.Records {
		k := streamKey{gw, r.Stream}
		st := c.streams[k]
		if st == nil {
			st = &streamState{}
			c.streams[k] = st
		}
		if !ids.Add(uint64(r.ID)) {
			st.dups++
			c.dups++
			continue
		}
		if !st.seqs.Add(r.Seq) {
			st.conflicts++
			continue
		}
		st.received++
		c.records++
		fresh = append(fresh, r)
		if b.Class == gateway.ClassEvent.String() && len(r.Event) > 0 {
			c.noteShed(gw, r.Event)
		}
	}
	return fresh
}

// noteShed records a shed notice: the gateway deleted FromSeq..ToSeq of a
// stream undelivered, so those are shed, not missing. Caller holds c.mu.
func (c *Collector) noteShed(gw string, body []byte) {
	var ev gateway.Event
	if json.Unmarshal(body, &ev) != nil || ev.Kind != gateway.EventShed || ev.FromSeq == 0 || ev.ToSeq < ev.FromSeq {
		return
	}
	k := streamKey{gw, string(ev.Stream)}
	st := c.streams[k]
	if st == nil {
		st = &streamState{}
		c.streams[k] = st
	}
	st.shed.AddRange(ev.FromSeq, ev.ToSeq)
}

// Status is the part of a gateway's retained status message the audit uses.
type Status struct {
	Site    string            `json:"site"`
	Gateway string            `json:"gateway"`
	Backlog *int64            `json:"backlog"`
	LastSeq map[string]uint64 `json:"last_seq"`
}

// AddStatus records a gateway status. When its backlog is 0, every stream's
// sequence numbers up to last_seq have left the gateway: any of them never
// received is missing, even past the last one received.
func (c *Collector) AddStatus(st Status) {
	if st.Backlog == nil || *st.Backlog != 0 || st.Gateway == "" {
		return
	}
	gw := st.Site + "/" + st.Gateway
	c.mu.Lock()
	defer c.mu.Unlock()
	for stream, seq := range st.LastSeq {
		k := streamKey{gw, stream}
		s := c.streams[k]
		if s == nil {
			s = &streamState{}
			c.streams[k] = s
		}
		s.ended = max(s.ended, seq)
	}
}

// Reject counts a payload that did not decode.
func (c *Collector) Reject() {
	c.mu.Lock()
	c.bad++
	c.mu.Unlock()
}

// StreamAudit is the audit of one stream.
type StreamAudit struct {
	Gateway    string // site/gateway
	Stream     string
	Received   int64
	Duplicates int64
	Conflicts  int64
	First      uint64
	Last       uint64
	Gaps       []Range // missing sequence ranges (not received, not reported shed)
	Missing    uint64  // sequence numbers in Gaps
	Shed       uint64  // sequence numbers the gateway reported shed
}

// Range is an inclusive range of sequence numbers.
type Range struct{ Lo, Hi uint64 }

func (r Range) String() string {
	if r.Lo == r.Hi {
		return fmt.Sprint(r.Lo)
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// Audit is the audit of everything collected.
type Audit struct {
	Streams    []StreamAudit
	Received   int64
	Duplicates int64
	Conflicts  int64
	Missing    uint64
	Shed       uint64
	Rejected   int64
}

// OK reports whether no stream has gaps or conflicts and nothing was rejected.
func (a Audit) OK() bool { return a.Missing == 0 && a.Conflicts == 0 && a.Rejected == 0 }

// Audit reports every stream. With fromFirst each stream is audited from
// the first sequence number received (a collector started beside a
// running gateway: what was delivered before it subscribed is not its to
// miss); every gap after that one is still reported, as is a tail the
// gateway's status says it sent. Otherwise every stream is expected to
// start at 1.
func (c *Collector) Audit(fromFirst bool) Audit {
	c.mu.Lock()
	defer c.mu.Unlock()
	var a Audit
	for k, st := range c.streams {
		sa := StreamAudit{Gateway: k.gw, Stream: k.stream, Received: st.received, Duplicates: st.dups, Conflicts: st.conflicts}
		start := uint64(1)
		if rs := st.seqs.Ranges(); len(rs) > 0 {
			sa.First, sa.Last = rs[0].Lo, rs[len(rs)-1].Hi
		}
		// Sequence numbers accounted for: received, or reported shed. A row
		// both received and reported shed (in flight when it was shed)
		// counts as received.
		accounted := union(st.seqs.Ranges(), st.shed.Ranges())
		sa.Shed = count(accounted) - count(st.seqs.Ranges())
		if st.ended > 0 {
			// The gateway says the stream went this far: a tail never
			// received is a gap too. A sentinel range past the end closes it.
			accounted = union(accounted, []Range{{st.ended + 1, st.ended + 1}})
		}
		if fromFirst {
			// From the first one received, not the first shed or the end
			// of a status: both may predate the collector. A stream with
			// nothing received has nothing to audit.
			start = sa.First
			if sa.Received == 0 {
				accounted = nil
			}
		}
		next := start
		for _, r := range accounted {
			if r.Hi < next {
				continue
			}
			if r.Lo > next {
				sa.Gaps = append(sa.Gaps, Range{next, r.Lo - 1})
				sa.Missing += r.Lo - next
			}
			next = r.Hi + 1
		}
		a.Streams = append(a.Streams, sa)
		a.Received += sa.Received
		a.Duplicates += sa.Duplicates
		a.Conflicts += sa.Conflicts
		a.Missing += sa.Missing
		a.Shed += sa.Shed
	}
	a.Rejected = c.bad
	sort.Slice(a.Streams, func(i, j int) bool {
		if a.Streams[i].Gateway != a.Streams[j].Gateway {
			return a.Streams[i].Gateway < a.Streams[j].Gateway
		}
		return a.Streams[i].Stream < a.Streams[j].Stream
	})
	return a
}

// Write prints the audit, one line per stream and a total line.
func (a Audit) Write(w io.Writer) error {
	var b strings.Builder
	for _, s := range a.Streams {
		fmt.Fprintf(&b, "AUDIT gateway=%s stream=%s received=%d duplicates=%d conflicts=%d first=%d last=%d missing=%d", s.Gateway, s.Stream, s.Received, s.Duplicates, s.Conflicts, s.First, s.Last, s.Missing)
		if s.Shed > 0 {
			fmt.Fprintf(&b, " shed=%d", s.Shed)
		}
		if len(s.Gaps) > 0 {
			b.WriteString(" gaps=")
			for i, g := range s.Gaps {
				if i == 8 {
					fmt.Fprintf(&b, ",...(%d more)", len(s.Gaps)-8)
					break
				}
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(g.String())
			}
		}
		b.WriteByte('\n')
	}
	verdict := "OK"
	if !a.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "AUDIT total streams=%d received=%d duplicates=%d conflicts=%d missing=%d shed=%d rejected=%d result=%s\n", len(a.Streams), a.Received, a.Duplicates, a.Conflicts, a.Missing, a.Shed, a.Rejected, verdict)
	_, err := io.WriteString(w, b.String())
	return err
}

func count(rs []Range) uint64 {
	var n uint64
	for _, r := range rs {
		n += r.Hi - r.Lo + 1
	}
	return n
}

// union merges two sorted lists of disjoint ranges.
func union(a, b []Range) []Range {
	out := make([]Range, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		var r Range
		if len(b) == 0 || len(a) > 0 && a[0].Lo <= b[0].Lo {
			r, a = a[0], a[1:]
		} else {
			r, b = b[0], b[1:]
		}
		if n := len(out); n > 0 && r.Lo <= out[n-1].Hi+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
		} else {
			out = append(out, r)
		}
	}
	return out
}

// Set is a set of uint64 kept as sorted disjoint ranges: compact when values
// arrive mostly in order, as sequence numbers and ids do.
type Set struct {
	r []Range
}

// Add inserts v and reports whether it was new.
func (s *Set) Add(v uint64) bool {
	n := len(s.r)
	// Fast path: extends or follows the last range.
	if n > 0 {
		last := &s.r[n-1]
		switch {
		case v == last.Hi+1:
			last.Hi = v
			return true
		case v > last.Hi+1:
			s.r = append(s.r, Range{v, v})
			return true
		}
	} else {
		s.r = append(s.r, Range{v, v})
		return true
	}
	i := sort.Search(n, func(i int) bool { return s.r[i].Hi >= v })
	if i < n && s.r[i].Lo <= v {
		return false
	}
	// v lies before s.r[i] (and after s.r[i-1]).
	joinPrev := i > 0 && s.r[i-1].Hi+1 == v
	joinNext := i < n && s.r[i].Lo == v+1
	switch {
	case joinPrev && joinNext:
		s.r[i-1].Hi = s.r[i].Hi
		s.r = append(s.r[:i], s.r[i+1:]...)
	case joinPrev:
		s.r[i-1].Hi = v
	case joinNext:
		s.r[i].Lo = v
	default:
		s.r = append(s.r, Range{})
		copy(s.r[i+1:], s.r[i:])
		s.r[i] = Range{v, v}
	}
	return true
}

// AddRange inserts lo..hi.
func (s *Set) AddRange(lo, hi uint64) {
	s.r = union(s.r, []Range{{lo, hi}})
}

// Has reports whether v is in the set.
func (s *Set) Has(v uint64) bool {
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].Hi >= v })
	return i < len(s.r) && s.r[i].Lo <= v
}

// Ranges returns the set's ranges in order.
func (s *Set) Ranges() []Range { return s.r }
