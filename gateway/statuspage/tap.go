package statuspage

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Tap defaults.
const (
	DefaultBucket    = 250 * time.Millisecond // plot resolution
	DefaultKeep      = 1200                   // buckets per stream: 5 minutes at DefaultBucket
	DefaultEvents    = 500                    // events kept
	DefaultMaxStream = 1024                   // streams tracked; more are counted, not kept
)

// Tap is the status page's view of the event path: a gateway.Classifier
// placed last in the chain that records readings and events and derives
// nothing. Observe and ObserveEvent take one short lock each (the stream's
// ring, or the event ring) and never block on a client.
type Tap struct {
	bucketMs  int64
	keep      int
	maxEvents int
	maxStream int

	// streams is replaced, never changed, when a stream is added (rare):
	// the hot path reads it with one atomic load and no lock.
	streams atomic.Pointer[map[gateway.StreamID]*series]
	mu      sync.Mutex // serializes adding a stream

	overflow atomic.Int64 // readings of streams beyond maxStream, not kept

	evMu  sync.Mutex
	evs   []EventRecord // ring of maxEvents
	evSeq uint64        // events recorded so far; the last one's Seq
}

var _ gateway.Classifier = (*Tap)(nil)

// NewTap returns a Tap with the default resolution and capacities.
func NewTap() *Tap {
	return newTap(DefaultBucket, DefaultKeep, DefaultEvents, DefaultMaxStream)
}

func newTap(bucket time.Duration, keep, events, maxStream int) *Tap {
	return &Tap{
		bucketMs: max(bucket.Milliseconds(), 1), keep: keep, maxEvents: events, maxStream: maxStream,
		evs: make([]EventRecord, events),
	}
}

// EventRecord is an event seen by the Tap, numbered in the order seen.
type EventRecord struct {
	Seq   uint64        `json:"seq"`
	Event gateway.Event `json:"ev"`
}

// Point is one plot bucket: its start (Unix ms) and the mean, minimum and
// maximum of the readings in it.
type Point struct {
	T              int64
	Mean, Min, Max float64
}

// MarshalJSON encodes a point as [t, mean, min, max], rounded to 0.01.
func (p Point) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 48)
	b = append(b, '[')
	b = appendInt(b, p.T)
	for _, v := range [3]float64{p.Mean, p.Min, p.Max} {
		b = append(b, ',')
		b = appendNum(b, v)
	}
	return append(b, ']'), nil
}

// series is one stream's recent readings in buckets.
type series struct {
	mu      sync.Mutex
	buckets []bucket // ring of keep
	n       int      // buckets started so far; buckets[(n-1)%keep] is the open one
	last    gateway.Reading
	count   int64 // readings observed
}

type bucket struct {
	t        int64
	sum      float64
	cnt      int32
	min, max float64
}

// Observe implements gateway.Classifier: it records r and derives nothing.
func (t *Tap) Observe(r gateway.Reading) []gateway.Event {
	s := t.series(r.Stream)
	if s == nil {
		t.overflow.Add(1)
		return nil
	}
	bt := r.Time.UnixMilli() / t.bucketMs * t.bucketMs
	v := r.Value
	s.mu.Lock()
	s.last = r
	s.count++
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		cur := &s.buckets[(max(s.n, 1)-1)%t.keep]
		if s.n == 0 || bt > cur.t {
			cur = &s.buckets[s.n%t.keep]
			*cur = bucket{t: bt, min: v, max: v}
			s.n++
		}
		cur.sum += v
		cur.cnt++
		cur.min, cur.max = min(cur.min, v), max(cur.max, v)
	}
	s.mu.Unlock()
	return nil
}

// ObserveEvent implements gateway.Classifier: it records ev and derives
// nothing.
func (t *Tap) ObserveEvent(ev gateway.Event) []gateway.Event {
	t.evMu.Lock()
	t.evSeq++
	t.evs[(t.evSeq-1)%uint64(t.maxEvents)] = EventRecord{Seq: t.evSeq, Event: ev}
	t.evMu.Unlock()
	return nil
}

// series returns the series of id, creating it; nil when maxStream
// streams are tracked already.
func (t *Tap) series(id gateway.StreamID) *series {
	if m := t.streams.Load(); m != nil {
		if s := (*m)[id]; s != nil {
			return s
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.streamMap()
	if s := old[id]; s != nil {
		return s
	}
	if len(old) >= t.maxStream {
		return nil
	}
	m := make(map[gateway.StreamID]*series, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	s := &series{buckets: make([]bucket, t.keep)}
	m[id] = s
	t.streams.Store(&m)
	return s
}

// streamMap returns the current streams (read-only).
func (t *Tap) streamMap() map[gateway.StreamID]*series {
	if m := t.streams.Load(); m != nil {
		return *m
	}
	return nil
}

// Readings returns how many readings the Tap has observed. Each stream
// counts its own under its lock, so the hot path shares no counter.
func (t *Tap) Readings() int64 {
	n := t.overflow.Load()
	for _, s := range t.streamMap() {
		s.mu.Lock()
		n += s.count
		s.mu.Unlock()
	}
	return n
}

// StreamUpdate is what a stream gained since a cursor: the buckets closed
// since, and its last reading.
type StreamUpdate struct {
	Points  []Point `json:"p,omitempty"`
	Value   float64 `json:"v"`
	Time    int64   `json:"vt"` // Unix ms of the last reading
	Quality uint8   `json:"q,omitempty"`
}

// streamsSince returns, for every stream, the buckets closed from cursor
// on (cursors[stream], updated in place; nil means from the oldest kept)
// and its last reading.
func (t *Tap) streamsSince(cursors map[gateway.StreamID]int) map[gateway.StreamID]StreamUpdate {
	m := t.streamMap()
	ids := make([]gateway.StreamID, 0, len(m))
	ss := make([]*series, 0, len(m))
	for id, s := range m {
		ids, ss = append(ids, id), append(ss, s)
	}
	out := make(map[gateway.StreamID]StreamUpdate, len(ids))
	for i, s := range ss {
		from := cursors[ids[i]]
		s.mu.Lock()
		closed := max(s.n-1, 0)
		from = max(from, closed-t.keep+1, 0)
		var u StreamUpdate
		if closed > from {
			u.Points = make([]Point, 0, closed-from)
			for k := from; k < closed; k++ {
				b := s.buckets[k%t.keep]
				u.Points = append(u.Points, Point{T: b.t, Mean: b.sum / float64(b.cnt), Min: b.min, Max: b.max})
			}
		}
		last := s.last
		s.mu.Unlock()
		if cursors != nil {
			cursors[ids[i]] = closed
		}
		u.Value, u.Time, u.Quality = finite(last.Value), last.Time.UnixMilli(), uint8(last.Quality)
		out[ids[i]] = u
	}
	return out
}

// eventsSince returns the events recorded after seq (as many as the ring
// still holds) and the last seq.
func (t *Tap) eventsSince(seq uint64) ([]EventRecord, uint64) {
	t.evMu.Lock()
	defer t.evMu.Unlock()
	from := max(seq, t.evSeq-min(t.evSeq, uint64(t.maxEvents)))
	out := make([]EventRecord, 0, t.evSeq-from)
	for k := from; k < t.evSeq; k++ {
		out = append(out, t.evs[k%uint64(t.maxEvents)])
	}
	return out, t.evSeq
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
