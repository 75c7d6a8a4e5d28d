package uplink

import (
	"context"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
)

// numClasses is the number of record classes, each with its lane.
const numClasses = 3

// lanePoll is how often a lane checks for unconfirmed rows to send again
// (consumer acks).
const lanePoll = time.Second

// Window and batch size of the samples lane.
const (
	samplesWindow   = 2
	samplesPerBatch = 50
)

// lane delivers one class in one session: it keeps up to a window of
// messages in flight and acks rows to the store in order as PUBACKs arrive.
type lane struct {
	u      *Uplink
	c      paho.Client
	class  gateway.Class
	wake   <-chan struct{}
	topic  string
	window int
	limit  int // records per message

	cursor   int64 // highest id read and sent
	resendTo int64 // ids up to this were sent in an earlier session
	inflight []flight
	buf      []gateway.Record
	// sentAt remembers the cursor over time, so a row still unconfirmed
	// ConsumerAckTimeout after it was sent can be found and sent again.
	sentAt       []checkpoint
	pendingSince time.Time // when a part-full batch was first seen
	linger       <-chan time.Time
	throttle     <-chan time.Time
	bucket       *bucket
	flushGen     int64 // the Uplink's flushGen this lane last honoured
	tuning       *tuned
	pollEvery    time.Duration // consumer-ack rewind checks; lanePoll
}

type flight struct {
	lo, hi int64
	n      int
	tok    paho.Token
	sent   time.Time
}

type checkpoint struct {
	at     time.Time
	cursor int64
}

func (u *Uplink) newLane(c paho.Client, class gateway.Class, wake <-chan struct{}) *lane {
	l := &lane{u: u, c: c, class: class, wake: wake, topic: u.codec.BatchTopic(class), pollEvery: lanePoll}
	l.retune() // window, limit and bucket from the current Tuning (tune.go)
	u.ackedMu.Lock()
	l.cursor, l.resendTo = u.acked[class], u.sentMax[class]
	u.ackedMu.Unlock()
	if u.opts.ConsumerAcks {
		l.cursor = 0 // every row still stored is unconfirmed: send it all again
	}
	return l
}

// run delivers until ctx is done (nil) or the session fails (the error).
func (l *lane) run(ctx context.Context) error {
	poll := time.NewTicker(l.pollEvery)
	defer poll.Stop()
	defer func() { l.u.inflight.Add(-int64(len(l.inflight))) }()
	for {
		l.retune()
		// Retire before filling: when every message in flight was acked
		// while the lane waited, the freed window is refilled now. Filled
		// first, a full window would not take the next batch, the lane
		// would wait for new rows with nothing in flight, and a stored
		// backlog (nothing new arriving) moved one window per poll tick.
		if err := l.retire(ctx); err != nil {
			return quiet(ctx, err)
		}
		if err := l.fill(ctx); err != nil {
			return quiet(ctx, err)
		}
		if err := l.wait(ctx, poll.C); err != nil {
			return quiet(ctx, err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// quiet drops an error caused by the session ending.
func quiet(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// fill publishes batches until the window is full or nothing is ready.
func (l *lane) fill(ctx context.Context) error {
	for len(l.inflight) < l.window {
		recs, err := l.next(ctx)
		if err != nil || recs == nil {
			return err
		}
		l.publish(ctx, recs)
	}
	return nil
}

// next returns the next batch to send, or nil when none is ready yet (none
// exists, a part-full telemetry batch is lingering, or the replay budget
// is spent).
func (l *lane) next(ctx context.Context) ([]gateway.Record, error) {
	last := l.u.store.LastID()
	if l.cursor >= last {
		l.pendingSince = time.Time{}
		return nil, nil // nothing new: skip the query
	}
	forced := false // a Flush since the last batch: no lingering, no bucket
	if g := l.u.flushGen.Load(); g != l.flushGen {
		forced, l.flushGen = true, g
		l.linger, l.throttle = nil, nil
	}
	if l.linger != nil && last-l.cursor < int64(l.limit) {
		return nil, nil // still lingering and a full batch cannot exist yet
	}
	var err error
	l.buf, err = l.u.store.Read(ctx, l.class, l.cursor, l.limit, l.buf)
	if err != nil {
		return nil, err
	}
	if len(l.buf) == 0 {
		l.pendingSince = time.Time{}
		return nil, nil
	}
	if l.class == gateway.ClassTelemetry && len(l.buf) < l.limit && l.u.opts.BatchLinger > 0 && !forced {
		now := time.Now()
		if l.pendingSince.IsZero() {
			l.pendingSince = now
		}
		if wait := l.pendingSince.Add(l.u.opts.BatchLinger).Sub(now); wait > 0 {
			l.linger = time.After(wait)
			return nil, nil
		}
	}
	l.pendingSince, l.linger = time.Time{}, nil
	if l.bucket != nil && !forced {
		if wait := l.bucket.take(len(l.buf), time.Now()); wait > 0 {
			l.throttle = time.After(wait)
			return nil, nil
		}
	}
	return l.buf, nil
}

// publish encodes recs (halving them until the message fits BatchBytes),
// publishes them and puts them in flight. The batch confirms ids from the
// cursor + 1 to its last record: the rows of this class in that range are
// exactly the ones it carries.
func (l *lane) publish(ctx context.Context, recs []gateway.Record) {
	u := l.u
	now := time.Now()
	ref := u.tags.ref(l.class, l.cursor+1, recs[len(recs)-1].ID)
	payload := u.codec.AppendBatch(make([]byte, 0, len(recs)*96+128), ref, now, recs)
	for len(payload) > u.opts.BatchBytes && len(recs) > 1 {
		recs = recs[:len(recs)/2]
		ref = u.tags.ref(l.class, l.cursor+1, recs[len(recs)-1].ID)
		payload = u.codec.AppendBatch(payload[:0], ref, now, recs)
	}
	if enc := l.tuning.encoder(); enc != nil {
		payload = enc.Compress(make([]byte, 0, len(payload)/4), payload)
	}
	if recs[0].ID <= l.resendTo {
		u.resent.Add(int64(len(recs)))
	}
	// payload is a fresh buffer per message: paho may still be writing
	// it after Publish returns, so it is never reused.
	tok := u.publish(ctx, l.c, l.topic, false, payload)
	l.inflight = append(l.inflight, flight{lo: ref.Lo, hi: ref.Hi, n: len(recs), tok: tok, sent: now})
	if u.debugOn() {
		u.log.Debug("batch sent", "class", l.class.String(), "lo", ref.Lo, "hi", ref.Hi, "records", len(recs), "bytes", len(payload), "inflight", len(l.inflight), "resend", recs[0].ID <= l.resendTo)
	}
	u.inflight.Add(1)
	l.cursor = ref.Hi
	u.ackedMu.Lock()
	u.sentMax[l.class] = max(u.sentMax[l.class], ref.Hi)
	u.ackedMu.Unlock()
}

// retire completes the messages at the front of the window whose PUBACK
// arrived, in order; without consumer acks their rows leave the store.
func (l *lane) retire(ctx context.Context) error {
	u := l.u
	for len(l.inflight) > 0 && isDone(l.inflight[0].tok) {
		f := l.inflight[0]
		if err := f.tok.Error(); err != nil {
			return fmt.Errorf("publish %s ids %d-%d: %w", l.class, f.lo, f.hi, err)
		}
		if !u.opts.ConsumerAcks {
			if err := u.store.Ack(ctx, l.class, f.lo, f.hi); err != nil {
				return fmt.Errorf("ack %s ids %d-%d: %w", l.class, f.lo, f.hi, err)
			}
		}
		u.ackedMu.Lock()
		u.acked[l.class] = f.hi
		u.ackedMu.Unlock()
		if u.debugOn() {
			u.log.Debug("batch acked", "class", l.class.String(), "lo", f.lo, "hi", f.hi, "records", f.n, "rtt", time.Since(f.sent).Round(time.Microsecond), "store_deleted", !u.opts.ConsumerAcks)
		}
		u.messages.Add(1)
		u.delivered.Add(int64(f.n))
		u.inflight.Add(-1)
		l.inflight = l.inflight[1:]
	}
	return nil
}

// wait blocks until something can progress: a PUBACK, new rows, the end
// of a linger or throttle, or the poll tick (consumer-ack rewinds).
func (l *lane) wait(ctx context.Context, poll <-chan time.Time) error {
	var front <-chan struct{}
	var timeout <-chan time.Time
	if len(l.inflight) > 0 {
		f := l.inflight[0]
		front = f.tok.Done()
		d := time.Until(f.sent.Add(l.tuning.AckTimeout))
		if d <= 0 {
			return fmt.Errorf("no PUBACK for %s ids %d-%d within %s", l.class, f.lo, f.hi, l.tuning.AckTimeout)
		}
		timeout = time.After(d)
	}
	var more <-chan struct{}
	if len(l.inflight) < l.window && l.throttle == nil {
		more = l.wake
	}
	select {
	case <-ctx.Done():
	case <-front:
	case <-timeout:
	case <-more:
	case <-l.linger:
		l.linger = nil
	case <-l.throttle:
		l.throttle = nil
	case now := <-poll:
		if l.u.opts.ConsumerAcks {
			return l.rewind(ctx, now)
		}
	}
	return nil
}

// rewind moves the cursor back to the oldest stored row when it was sent
// more than ConsumerAckTimeout ago and is still unconfirmed.
func (l *lane) rewind(ctx context.Context, now time.Time) error {
	l.sentAt = append(l.sentAt, checkpoint{now, l.cursor})
	// The cursor as it was ConsumerAckTimeout ago: rows at or below
	// it were sent long enough ago to have been confirmed.
	old := int64(0)
	for len(l.sentAt) > 0 && now.Sub(l.sentAt[0].at) >= l.u.opts.ConsumerAckTimeout {
		old = l.sentAt[0].cursor
		l.sentAt = l.sentAt[1:]
	}
	if old == 0 {
		return nil
	}
	oldest, err := l.u.store.Read(ctx, l.class, 0, 1, nil)
	if err != nil {
		return err
	}
	if len(oldest) > 0 && oldest[0].ID <= old && oldest[0].ID <= l.cursor {
		l.u.log.Debug("resending unconfirmed rows", "class", l.class.String(), "from", oldest[0].ID, "cursor", l.cursor, "timeout", l.u.opts.ConsumerAckTimeout)
		l.cursor = oldest[0].ID - 1
		l.u.rewinds.Add(1)
		l.sentAt = l.sentAt[:0]
	}
	return nil
}
