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

// Gateway moves readings from its sources through the classifier into the
// outbox; the uplink delivers the outbox independently.
type Gateway struct {
	Sources    []Source
	Outbox     Outbox
	Uplink     Runner     // may be nil (store only)
	Classifier Classifier // may be nil (no events)
	Logger     *slog.Logger
	// FlushTimeout bounds how long shutdown keeps the uplink delivering the
	// backlog after the sources stopped. Whatever is left stays in the
	// outbox for the next start.
	FlushTimeout time.Duration
	// DiskFullRetry is how long Emit waits before trying again when the
	// outbox refuses rows because the disk is full and nothing more can be
	// shed; default 1s.
	DiskFullRetry time.Duration

	classMu  sync.Mutex
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

// EmitEvents implements EventEmitter: it commits events reported by sources
// (faults, scans, tag reads) to the outbox, each on stream "events/"+ev.Stream.
func (g *Gateway) EmitEvents(ctx context.Context, evs []Event) error {
	recs := make([]Record, 0, len(evs))
	for _, ev := range evs {
		body, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode %s event: %w", ev.Kind, err)
		}
		recs = append(recs, Record{Class: ClassEvent, Stream: "events/" + ev.Stream, Time: ev.Time, Body: body})
	}
	if err := g.appendRetrying(ctx, recs); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	g.events.Add(int64(len(evs)))
	return nil
}

var _ EventEmitter = (*Gateway)(nil)

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

// Emit implements Emitter: it commits rs (and any events the classifier
// derives from them) to the outbox in one Append.
func (g *Gateway) Emit(ctx context.Context, rs []Reading) error {
	g.produced.Add(int64(len(rs)))
	bp, _ := g.pool.Get().(*[]Record)
	if bp == nil {
		bp = new([]Record)
	}
	recs := (*bp)[:0]
	for _, r := range rs {
		recs = append(recs, Record{Class: ClassTelemetry, Stream: r.Stream, Time: r.Time, Value: r.Value, Unit: r.Unit, Quality: r.Quality})
	}
	var nev int64
	if g.Classifier != nil {
		g.classMu.Lock()
		for _, r := range rs {
			for _, ev := range g.Classifier.Observe(r) {
				body, err := json.Marshal(ev)
				if err != nil {
					g.classMu.Unlock()
					return fmt.Errorf("encode %s event: %w", ev.Kind, err)
				}
				recs = append(recs, Record{Class: ClassEvent, Stream: "events/" + ev.Stream, Time: ev.Time, Body: body})
				nev++
			}
		}
		g.classMu.Unlock()
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
	g.accepted.Add(int64(len(rs)))
	g.events.Add(nev)
	return nil
}
