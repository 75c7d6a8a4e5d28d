package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/compress"
)

// Tuning is the part of the Options that may change while the uplink
// runs (a reloaded or desired configuration): each lane reads it again
// before every round of sending, so a change applies to the next batch;
// batches in flight finish as they were sent. Nothing is re-read or lost:
// a batch covers the ids from the lane's cursor to its last record
// whatever its size.
type Tuning struct {
	BatchRecords int           // records per telemetry message (events: at most 100, samples 50)
	Window       int           // telemetry messages in flight
	AckTimeout   time.Duration // PUBACK deadline of each message
	ReplayRate   int           // telemetry and samples records/s; 0 = no cap
	Compress     bool          // zstd batches (consumers accept both)
}

// tuned is one Tuning as lanes use it, with its encoder.
type tuned struct {
	Tuning
	enc *compress.Encoder // kept once made, so switching back is cheap
}

// encoder returns the encoder when batches are compressed, else nil.
func (t *tuned) encoder() *compress.Encoder {
	if !t.Compress {
		return nil
	}
	return t.enc
}

// Limits of a Tuning.
const (
	maxTuneBatch  = 100_000
	maxTuneWindow = 4096
)

// ErrBadTuning is wrapped by Tune for a value out of range.
var ErrBadTuning = errors.New("uplink: bad tuning")

// current returns the Tuning in effect, the Options' on first use.
func (u *Uplink) current() *tuned {
	if t := u.tuned.Load(); t != nil {
		return t
	}
	o := u.opts
	u.tuned.CompareAndSwap(nil, &tuned{Tuning: Tuning{BatchRecords: o.BatchRecords, Window: o.Window, AckTimeout: o.AckTimeout, ReplayRate: o.ReplayRate, Compress: o.Compress}, enc: u.zstd})
	return u.tuned.Load()
}

// Tuning returns the values in effect.
func (u *Uplink) Tuning() Tuning { return u.current().Tuning }

// Tune changes the values while the uplink runs. It is safe to call from
// any goroutine; each lane takes the new values before its next batch
// (within a second when it is idle). A value out of range changes nothing.
func (u *Uplink) Tune(t Tuning) error {
	switch {
	case t.BatchRecords < 1 || t.BatchRecords > maxTuneBatch:
		return fmt.Errorf("%w: batch records %d must be between 1 and %d", ErrBadTuning, t.BatchRecords, maxTuneBatch)
	case t.Window < 1 || t.Window > maxTuneWindow:
		return fmt.Errorf("%w: window %d must be between 1 and %d", ErrBadTuning, t.Window, maxTuneWindow)
	case t.AckTimeout <= 0:
		return fmt.Errorf("%w: ack timeout %s must be above 0", ErrBadTuning, t.AckTimeout)
	case t.ReplayRate < 0:
		return fmt.Errorf("%w: replay rate %d must be >= 0", ErrBadTuning, t.ReplayRate)
	}
	u.tuneMu.Lock()
	defer u.tuneMu.Unlock()
	next := &tuned{Tuning: t, enc: u.current().enc}
	if t.Compress && next.enc == nil {
		enc, err := compress.NewEncoder()
		if err != nil {
			return fmt.Errorf("uplink: tune: %w", err)
		}
		next.enc = enc
	}
	u.tuned.Store(next)
	return nil
}

// retune takes the current Tuning when it changed since the lane last
// looked: window, records per message and the replay bucket of its class.
func (l *lane) retune() {
	t := l.u.current()
	if t == l.tuning {
		return
	}
	prev := l.tuning
	l.tuning = t
	l.window, l.limit = t.Window, t.BatchRecords
	switch l.class {
	case gateway.ClassEvent: // its own window, small batches, no bucket
		l.window, l.limit = l.u.opts.EventWindow, min(l.limit, 100)
		return
	case gateway.ClassSamples:
		// The lowest priority: a small window, small batches (a sample
		// carries a feature window) and the replay rate's bucket, so a
		// backlog of samples never crowds events or telemetry.
		l.window, l.limit = samplesWindow, min(l.limit, samplesPerBatch)
	}
	if prev == nil || prev.ReplayRate != t.ReplayRate || prev.BatchRecords != t.BatchRecords {
		l.bucket, l.throttle = newBucket(t.ReplayRate, l.limit), nil
	}
}

// debugOn reports whether the logger takes debug records now (the level
// may change while running): per-batch logs are built only then.
func (u *Uplink) debugOn() bool { return u.log.Enabled(context.Background(), slog.LevelDebug) }
