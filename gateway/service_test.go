package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
type stepClassifier struct{ last map[StreamID]float64 }

func (c *stepClassifier) Observe(r Reading) []Event {
	prev, ok := c.last[r.Stream]
	c.last[r.Stream] = r.Value
	if ok && prev-r.Value >= 10 {
		return []Event{{Kind: EventPick, Stream: r.Stream, Quantity: 1, Time: r.Time}}
	}
	return nil
}

// listSource emits its readings in one call, then waits for cancellation.
type listSource struct{ rs []Reading }

func (s *listSource) Name() string { return "list" }
func (s *listSource) Run(ctx context.Context, e Emitter) error {
	if err := e.Emit(ctx, s.rs); err != nil {
		return err
	}
	if ee, ok := e.(EventEmitter); ok {
		if err := ee.EmitEvents(ctx, []Event{{Kind: EventSensorFault, Stream: "loadcell/a", Detail: "stuck", Time: time.Unix(5, 0)}}); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

func TestGatewayCommitsReadingsAndDerivedEvents(t *testing.T) {
	ob := &memOutbox{}
	rs := []Reading{{Stream: "loadcell/a", Value: 100, Unit: "g"}, {Stream: "loadcell/a", Value: 85, Unit: "g"}, {Stream: "loadcell/b", Value: 1}}
	g := &Gateway{Sources: []Source{&listSource{rs}}, Outbox: ob, Classifier: &stepClassifier{last: map[StreamID]float64{}}}
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
