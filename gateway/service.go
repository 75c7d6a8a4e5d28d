package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Outbox is what the Gateway needs of the durable store.
type Outbox interface {
	// Append stores recs durably, assigning ID and Seq in place, and returns
	// after they are committed.
	Append(ctx context.Context, recs []Record) error
	// Backlog is the number of rows not yet acknowledged by the broker.
	Backlog() int64
}

// Runner is a long-running service such as the uplink.
type Runner interface {
	Run(ctx context.Context) error
}

// Gateway moves readings and events from its sources through the
// classifier chain into the outbox; the uplink delivers the outbox
// independently. Set every field before Run: sources get the Gateway as
// their Emitter only when Run starts them.
//
// Classification is sharded by stream: what one Emit carries is split by
// stream, each stream is classified under its own lock and committed in its
// own Append (readings, the events they carried and the events derived from
// them in one transaction), the streams of one call concurrently. A slow
// classifier on one stream delays only that stream; another source's (or
// another stream's) commit never waits for it.
type Gateway struct {
	Sources     []Source
	Outbox      Outbox
	Uplink      Runner       // may be nil (store only)
	Classifiers []Classifier // the chain, in order; may be empty (no derived events)
	Logger      *slog.Logger
	// FlushTimeout bounds how long shutdown keeps the uplink delivering the
	// backlog after the sources stopped. Whatever is left stays in the
	// outbox for the next start.
	FlushTimeout time.Duration
	// DiskFullRetry is how long Emit waits before trying again when the
	// outbox refuses rows because the disk is full and nothing more can be
	// shed; default 1s.
	DiskFullRetry time.Duration

	streams  sync.Map // StreamID -> *sync.Mutex: one classification lock per stream
	pool     sync.Pool
	produced atomic.Int64
	accepted atomic.Int64
	events   atomic.Int64
	diskFull atomic.Int64
}

// Counters are the gateway's own totals since start.
type Counters struct {
	Produced     int64 // readings emitted by sources
	Accepted     int64 // readings committed to the outbox
	Events       int64 // events committed to the outbox
	DiskFullWait int64 // appends retried because the disk was full
}

// Counters returns the totals so far.
func (g *Gateway) Counters() Counters {
	return Counters{Produced: g.produced.Load(), Accepted: g.accepted.Load(), Events: g.events.Load(), DiskFullWait: g.diskFull.Load()}
}

// Run starts the sources and the uplink and blocks until ctx is done or a
// source fails. Shutdown stops the sources first (their last readings are
// committed), gives the uplink up to FlushTimeout to deliver the backlog,
// then stops it. Cancelling the context passed to Run a second time is not
// possible; a caller that must abort the flush cancels flushCtx via
// RunWithFlush.
func (g *Gateway) Run(ctx context.Context) error {
	return g.RunWithFlush(ctx, context.Background())
}

// RunWithFlush is Run with a second context that, when done, cuts the final
// flush short (a second SIGINT).
func (g *Gateway) RunWithFlush(ctx, flushCtx context.Context) error {
	log := g.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if g.Outbox == nil {
		return errors.New("gateway: no outbox")
	}
	srcCtx, stopSources := context.WithCancel(context.Background())
	defer stopSources()
	upCtx, stopUplink := context.WithCancel(context.Background())
	defer stopUplink()

	var srcWG sync.WaitGroup
	failed := make(chan error, len(g.Sources)+1)
	for _, s := range g.Sources {
		srcWG.Add(1)
		go func() {
			defer srcWG.Done()
			if err := s.Run(srcCtx, g); err != nil && srcCtx.Err() == nil {
				failed <- fmt.Errorf("source %s: %w", s.Name(), err)
			}
		}()
	}
	upDone := make(chan error, 1)
	if g.Uplink != nil {
		go func() { upDone <- g.Uplink.Run(upCtx) }()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: stopping sources")
	case runErr = <-failed:
		log.Error("stopping", "err", runErr)
	case err := <-upDone:
		runErr = fmt.Errorf("uplink: %w", err)
		upDone <- nil
		log.Error("stopping", "err", runErr)
	}
	stopSources()
	srcWG.Wait()

	if g.Uplink != nil && g.FlushTimeout > 0 {
		deadline := time.NewTimer(g.FlushTimeout)
		tick := time.NewTicker(50 * time.Millisecond)
	flush:
		for n := g.Outbox.Backlog(); n > 0; n = g.Outbox.Backlog() {
			select {
			case <-deadline.C:
				log.Warn("flush timeout: backlog stays in the outbox for the next start", "backlog", n, "timeout", g.FlushTimeout)
				break flush
			case <-flushCtx.Done():
				log.Warn("flush cut short: backlog stays in the outbox for the next start", "backlog", n)
				break flush
			case <-tick.C:
			}
		}
		deadline.Stop()
		tick.Stop()
	}
	stopUplink()
	if g.Uplink != nil {
		if err := <-upDone; err != nil && runErr == nil {
			runErr = fmt.Errorf("uplink: %w", err)
		}
	}
	return runErr
}

// EmitEvents implements Emitter: it commits events reported by sources
// (faults, scans, tag reads), each on stream "events/"+ev.Stream, together
// with what the classifier chain derives from them.
func (g *Gateway) EmitEvents(ctx context.Context, evs []Event) error {
	return g.emit(ctx, len(evs), func(i int) StreamID { return evs[i].Stream },
		func(i int, recs []Record, out []Event) ([]Record, []Event) {
			return recs, g.classifyEvent(evs[i], out)
		})
}

// Emit implements Emitter: it commits rs and the events the classifier
// chain derives from them.
func (g *Gateway) Emit(ctx context.Context, rs []Reading) error {
	g.produced.Add(int64(len(rs)))
	return g.emit(ctx, len(rs), func(i int) StreamID { return rs[i].Stream },
		func(i int, recs []Record, out []Event) ([]Record, []Event) {
			r := rs[i]
			recs = append(recs, Record{Class: ClassTelemetry, Stream: r.Stream, Time: r.Time, Value: r.Value, Unit: r.Unit, Quality: r.Quality})
			return recs, g.classifyReading(r, out)
		})
}

var _ Emitter = (*Gateway)(nil)

// item turns the i-th input of an Emit or EmitEvents call into the records
// it stores itself (a reading) and the events it leads to.
type item func(i int, recs []Record, out []Event) ([]Record, []Event)

// emit commits n inputs. Without classifiers they go in one Append.
// Otherwise they are grouped by stream (keeping each stream's order) and
// every group is classified and committed under its stream's lock, the
// groups concurrently.
func (g *Gateway) emit(ctx context.Context, n int, stream func(int) StreamID, each item) error {
	if n == 0 {
		return nil
	}
	if len(g.Classifiers) == 0 {
		return g.commit(ctx, seq(n), each)
	}
	first := stream(0)
	one := true
	for i := 1; i < n && one; i++ {
		one = stream(i) == first
	}
	if one { // the common case: one source, one stream
		return g.commitLocked(ctx, first, seq(n), each)
	}
	// Group the indexes by stream, in order, in one backing array.
	count := map[StreamID]int{}
	var order []StreamID
	for i := range n {
		s := stream(i)
		if count[s] == 0 {
			order = append(order, s)
		}
		count[s]++
	}
	backing := make([]int, 0, n)
	groups := make([][]int, len(order))
	at := map[StreamID]int{}
	for j, s := range order {
		at[s] = j
		groups[j] = backing[len(backing) : len(backing) : len(backing)+count[s]]
		backing = backing[:len(backing)+count[s]]
	}
	for i := range n {
		j := at[stream(i)]
		groups[j] = append(groups[j], i)
	}
	errs := make(chan error, len(groups))
	for j, idx := range groups[1:] {
		go func() { errs <- g.commitLocked(ctx, order[j+1], idx, each) }()
	}
	err := g.commitLocked(ctx, order[0], groups[0], each) // this goroutine takes the first
	for range groups[1:] {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	return err
}

// seq returns 0..n-1.
func seq(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// commitLocked classifies and commits one stream's inputs under the
// stream's lock, so the stream's classifier calls and commits keep their
// order.
func (g *Gateway) commitLocked(ctx context.Context, s StreamID, idx []int, each item) error {
	mu, ok := g.streams.Load(s)
	if !ok {
		mu, _ = g.streams.LoadOrStore(s, new(sync.Mutex))
	}
	m := mu.(*sync.Mutex)
	m.Lock()
	defer m.Unlock()
	return g.commit(ctx, idx, each)
}

// commit stores the inputs idx and their events in one Append.
func (g *Gateway) commit(ctx context.Context, idx []int, each item) error {
	bp, _ := g.pool.Get().(*[]Record)
	if bp == nil {
		bp = new([]Record)
	}
	recs := (*bp)[:0]
	var evs []Event
	for _, i := range idx {
		recs, evs = each(i, recs, evs)
	}
	readings := int64(len(recs))
	for _, ev := range evs {
		body, err := json.Marshal(ev)
		if err != nil {
			clear(recs)
			return fmt.Errorf("encode %s event: %w", ev.Kind, err)
		}
		recs = append(recs, Record{Class: ClassEvent, Stream: "events/" + ev.Stream, Time: ev.Time, Body: body})
	}
	err := g.appendRetrying(ctx, recs)
	clear(recs) // drop references to event bodies before pooling
	*bp = recs[:0]
	g.pool.Put(bp)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("outbox: %w", err)
	}
	g.accepted.Add(readings)
	g.events.Add(int64(len(evs)))
	return nil
}

// classifyReading passes r through the chain and returns the events the
// links derive, in chain order.
func (g *Gateway) classifyReading(r Reading, out []Event) []Event {
	return append(out, g.classify(&r, nil)...)
}

// classifyEvent passes a source event through the chain from link 0 and
// returns it followed by what the links derive.
func (g *Gateway) classifyEvent(ev Event, out []Event) []Event {
	return append(out, g.classify(nil, []Event{ev})...)
}

// classify runs the chain as a pipeline. Each link sees, in order, the
// reading r (if any) and then the events the link before it passed on;
// it passes on what it derives from r, then each event followed by what it
// derives from that event. So a link sees every source event and every
// event the earlier links derived, in the order they entered the chain, and
// never its own output.
func (g *Gateway) classify(r *Reading, evs []Event) []Event {
	for _, c := range g.Classifiers {
		var next []Event
		if r != nil {
			next = c.Observe(*r)
		}
		if len(evs) > 0 {
			next = next[:len(next):len(next)] // never append into the classifier's array
			for _, ev := range evs {
				next = append(next, ev)
				next = append(next, c.ObserveEvent(ev)...)
			}
		}
		evs = next
	}
	return evs
}

// appendRetrying appends recs, waiting out a full disk: the source is held
// (its readings buffer, then it blocks) rather than dropping what it read,
// and everything resumes when space returns.
func (g *Gateway) appendRetrying(ctx context.Context, recs []Record) error {
	for {
		err := g.Outbox.Append(ctx, recs)
		if !errors.Is(err, ErrDiskFull) {
			return err
		}
		if n := g.diskFull.Add(1); g.Logger != nil && (n == 1 || n%60 == 0) {
			g.Logger.Warn("outbox full and nothing left to shed; holding readings until space returns", "err", err, "retries", n)
		}
		wait := g.DiskFullRetry
		if wait <= 0 {
			wait = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
