package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// memOutbox is a hand-written Outbox fake that assigns ids like the real one.
type memOutbox struct {
	mu       sync.Mutex
	recs     []Record
	fail     error
	fullFor  int // refuse this many appends with ErrDiskFull first
	refusals int
}

func (m *memOutbox) Append(_ context.Context, recs []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.refusals < m.fullFor {
		m.refusals++
		return fmt.Errorf("outbox: %w", ErrDiskFull)
	}
	for _, r := range recs {
		r.ID = int64(len(m.recs) + 1)
		m.recs = append(m.recs, r)
	}
	return nil
}

func (m *memOutbox) Backlog() int64 { return 0 }

// stepClassifier emits a pick whenever a value drops by 10 or more.
// It keeps state across streams, so it guards it (see Classifier).
type stepClassifier struct {
	mu   sync.Mutex
	last map[StreamID]float64
}

func (c *stepClassifier) Observe(r Reading) []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, ok := c.last[r.Stream]
	c.last[r.Stream] = r.Value
	if ok && prev-r.Value >= 10 {
		return []Event{{Kind: EventPick, Stream: r.Stream, Quantity: 1, Time: r.Time}}
	}
	return nil
}

func (c *stepClassifier) ObserveEvent(Event) []Event { return nil }

// listSource emits its readings in one call, then waits for cancellation.
type listSource struct{ rs []Reading }

func (s *listSource) Name() string { return "list" }
func (s *listSource) Run(ctx context.Context, e Emitter) error {
	if err := e.Emit(ctx, s.rs); err != nil {
		return err
	}
	if err := e.EmitEvents(ctx, []Event{{Kind: EventSensorFault, Stream: "loadcell/a", Detail: "stuck", Time: time.Unix(5, 0)}}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func TestGatewayCommitsReadingsAndDerivedEvents(t *testing.T) {
	ob := &memOutbox{}
	rs := []Reading{{Stream: "loadcell/a", Value: 100, Unit: "g"}, {Stream: "loadcell/a", Value: 85, Unit: "g"}, {Stream: "loadcell/b", Value: 1}}
	g := &Gateway{Sources: []Source{&listSource{rs}}, Outbox: ob, Classifiers: []Classifier{&stepClassifier{last: map[StreamID]float64{}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for deadline := time.Now().Add(5 * time.Second); g.Counters().Events < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c := g.Counters(); c.Produced != 3 || c.Accepted != 3 || c.Events != 2 {
		t.Fatalf("counters %+v", c)
	}
	var kinds []EventKind
	for _, r := range ob.recs {
		if r.Class == ClassEvent {
			var ev Event
			if err := json.Unmarshal(r.Body, &ev); err != nil {
				t.Fatal(err)
			}
			if r.Stream != "events/loadcell/a" {
				t.Errorf("event stream %q", r.Stream)
			}
			kinds = append(kinds, ev.Kind)
		}
	}
	if len(kinds) != 2 || kinds[0] != EventPick || kinds[1] != EventSensorFault {
		t.Errorf("events %v", kinds)
	}
}

func TestGatewayStopsOnSourceFailure(t *testing.T) {
	ob := &memOutbox{fail: errors.New("disk on fire")}
	g := &Gateway{Sources: []Source{&listSource{[]Reading{{Stream: "a"}}}}, Outbox: ob}
	err := g.Run(context.Background())
	if err == nil || !errors.Is(err, ob.fail) {
		t.Fatalf("Run = %v, want the outbox error", err)
	}
}

func TestEmitWaitsOutFullDisk(t *testing.T) {
	ob := &memOutbox{fullFor: 3}
	g := &Gateway{Outbox: ob, DiskFullRetry: time.Millisecond}
	if err := g.Emit(context.Background(), []Reading{{Stream: "a", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if c := g.Counters(); c.DiskFullWait != 3 || c.Accepted != 1 || len(ob.recs) != 1 {
		t.Fatalf("counters %+v, stored %d", c, len(ob.recs))
	}
	// A cancelled context gives up and says why.
	ob.refusals, ob.fullFor = 0, 1000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.Emit(ctx, []Reading{{Stream: "a"}}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("err = %v, want ErrDiskFull", err)
	}
}

// blockingClassifier blocks on every reading of stream block until release
// is closed, telling blocked when it starts waiting.
type blockingClassifier struct {
	block   StreamID
	blocked chan struct{}
	release chan struct{}
	once    sync.Once
}

func (c *blockingClassifier) Observe(r Reading) []Event {
	if r.Stream == c.block {
		c.once.Do(func() { close(c.blocked) })
		<-c.release
	}
	return nil
}

func (c *blockingClassifier) ObserveEvent(Event) []Event { return nil }

// committedOf counts the telemetry rows of stream s in m.
func (m *memOutbox) committedOf(s StreamID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.recs {
		if r.Stream == s && r.Class == ClassTelemetry {
			n++
		}
	}
	return n
}

// A classifier blocked on one bin delays neither another source's commit
// nor another stream of the same Emit call.
func TestSlowClassifierOnOneBinDoesNotDelayAnother(t *testing.T) {
	for _, tc := range []struct {
		name string
		emit func(g *Gateway) []error // emits bin-a and bin-b readings, returns the errors once done
	}{
		{"two sources", func(g *Gateway) []error {
			errs := make(chan error, 2)
			go func() { errs <- g.Emit(context.Background(), []Reading{{Stream: "loadcell/bin-a", Value: 1}}) }()
			go func() {
				errs <- g.Emit(context.Background(), []Reading{{Stream: "loadcell/bin-b", Value: 2}, {Stream: "loadcell/bin-b", Value: 3}})
			}()
			return []error{<-errs, <-errs}
		}},
		{"one source, one call", func(g *Gateway) []error {
			return []error{g.Emit(context.Background(), []Reading{{Stream: "loadcell/bin-a", Value: 1}, {Stream: "loadcell/bin-b", Value: 2}, {Stream: "loadcell/bin-b", Value: 3}})}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ob := &memOutbox{}
			slow := &blockingClassifier{block: "loadcell/bin-a", blocked: make(chan struct{}), release: make(chan struct{})}
			g := &Gateway{Outbox: ob, Classifiers: []Classifier{slow}}
			done := make(chan []error, 1)
			go func() { done <- tc.emit(g) }()
			<-slow.blocked
			// While bin-a's classifier is blocked, bin-b's readings commit.
			deadline := time.Now().Add(10 * time.Second)
			for ob.committedOf("loadcell/bin-b") < 2 {
				if time.Now().After(deadline) {
					t.Fatal("bin-b not committed while bin-a's classifier was blocked")
				}
				time.Sleep(time.Millisecond)
			}
			if n := ob.committedOf("loadcell/bin-a"); n != 0 {
				t.Fatalf("bin-a committed %d readings before its classifier returned", n)
			}
			close(slow.release)
			for _, err := range <-done {
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := ob.committedOf("loadcell/bin-a"); n != 1 {
				t.Fatalf("bin-a committed %d readings, want 1", n)
			}
		})
	}
}

// recordingClassifier records what it sees, per stream, and derives one
// "pick" from every reading and a "mispick" from every scan event.
type recordingClassifier struct {
	mu   sync.Mutex
	seen map[StreamID][]string
}

func (c *recordingClassifier) note(s StreamID, what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[StreamID][]string{}
	}
	c.seen[s] = append(c.seen[s], what)
}

func (c *recordingClassifier) Observe(r Reading) []Event {
	c.note(r.Stream, fmt.Sprintf("r%g", r.Value))
	return []Event{{Kind: EventPick, Stream: r.Stream, Detail: fmt.Sprint(r.Value)}}
}

func (c *recordingClassifier) ObserveEvent(ev Event) []Event {
	c.note(ev.Stream, string(ev.Kind)+":"+ev.Detail)
	if ev.Kind == EventScan {
		return []Event{{Kind: EventMisPick, Stream: ev.Stream, Detail: "fused " + ev.Detail}}
	}
	return nil
}

// Every reading and every source event passes the chain in order: a later
// link sees the source events and what earlier links derived, and the events
// of one stream are committed in the order they entered the chain.
func TestChainSeesEverythingInStreamOrder(t *testing.T) {
	ob := &memOutbox{}
	first, second := &recordingClassifier{}, &recordingClassifier{}
	g := &Gateway{Outbox: ob, Classifiers: []Classifier{first, second}}
	ctx := context.Background()
	var want []string
	for i := range 50 {
		v := float64(i)
		// Two streams in one call, interleaved.
		if err := g.Emit(ctx, []Reading{{Stream: "s/a", Value: v}, {Stream: "s/b", Value: -v}, {Stream: "s/a", Value: v + 0.5}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("r%g", v), fmt.Sprintf("r%g", v+0.5))
		if err := g.EmitEvents(ctx, []Event{{Kind: EventScan, Stream: "s/a", Detail: fmt.Sprint(i)}, {Kind: EventTag, Stream: "s/a", Detail: "t" + fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, "scan:"+fmt.Sprint(i), "tag:t"+fmt.Sprint(i))
	}
	if got := first.seen["s/a"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("first classifier saw\n%v\nwant\n%v", got, want)
	}
	// The second link also sees what the first derived, each right after
	// its input; what it derives itself is not shown to it.
	var want2 []string
	for _, w := range want {
		want2 = append(want2, w)
		if w[0] == 'r' {
			want2 = append(want2, "pick:"+w[1:])
		}
		if strings.HasPrefix(w, "scan:") {
			want2 = append(want2, "mispick:fused "+w[5:])
		}
	}
	if got := second.seen["s/a"]; fmt.Sprint(got) != fmt.Sprint(want2) {
		t.Fatalf("second classifier saw\n%v\nwant\n%v", got, want2)
	}
	// Committed events of s/a: in chain order.
	var got []string
	for _, r := range ob.recs {
		if r.Stream != "events/s/a" {
			continue
		}
		var ev Event
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, string(ev.Kind)+":"+ev.Detail)
	}
	var wantEv []string
	for i := range 50 {
		v := float64(i)
		wantEv = append(wantEv, "pick:"+fmt.Sprint(v), "pick:"+fmt.Sprint(v), "pick:"+fmt.Sprint(v+0.5), "pick:"+fmt.Sprint(v+0.5),
			"scan:"+fmt.Sprint(i), "mispick:fused "+fmt.Sprint(i), "mispick:fused "+fmt.Sprint(i), "tag:t"+fmt.Sprint(i))
	}
	if fmt.Sprint(got) != fmt.Sprint(wantEv) {
		t.Fatalf("committed events\n%v\nwant\n%v", got, wantEv)
	}
	if c := g.Counters(); c.Accepted != 150 || c.Events != int64(len(wantEv)+100) {
		t.Fatalf("counters %+v", c)
	}
}

// A Gateway without an outbox refuses to start its sources.
func TestRunNeedsOutbox(t *testing.T) {
	g := &Gateway{Sources: []Source{&listSource{}}}
	if err := g.Run(context.Background()); err == nil {
		t.Fatal("Run without an outbox succeeded")
	}
}

// nopOutbox accepts everything and keeps nothing.
type nopOutbox struct{}

func (nopOutbox) Append(context.Context, []Record) error { return nil }
func (nopOutbox) Backlog() int64                         { return 0 }

// nopClassifier derives nothing.
type nopClassifier struct{}

func (nopClassifier) Observe(Reading) []Event    { return nil }
func (nopClassifier) ObserveEvent(Event) []Event { return nil }

// BenchmarkEmit measures the gateway's own cost per Emit of 1024 readings:
// without classifiers (one Append), and with a chain, the readings on one
// stream or spread over 8 (8 groups classified and appended concurrently).
func BenchmarkEmit(b *testing.B) {
	for _, bc := range []struct {
		name    string
		chain   []Classifier
		streams int
	}{{"no-chain", nil, 8}, {"chain-1-stream", []Classifier{nopClassifier{}}, 1}, {"chain-8-streams", []Classifier{nopClassifier{}}, 8}} {
		b.Run(bc.name, func(b *testing.B) {
			rs := make([]Reading, 1024)
			for i := range rs {
				rs[i] = Reading{Stream: StreamID(fmt.Sprintf("loadcell/bin-%d", i%bc.streams)), Value: float64(i)}
			}
			g := &Gateway{Outbox: nopOutbox{}, Classifiers: bc.chain}
			b.ReportAllocs()
			for b.Loop() {
				if err := g.Emit(context.Background(), rs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs)), "ns/reading")
		})
	}
}
