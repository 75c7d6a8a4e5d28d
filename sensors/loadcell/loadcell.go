// Package loadcell reads shelf-bin load cells through HX711 24-bit ADCs and
// offers them to the gateway as a gateway.Source of readings in grams.
//
// Each channel reads through an ADC, the ReadTimeout contract of
// periph.io/x/devices/v3/hx711.Dev (datasheet:
// https://cdn.sparkfun.com/datasheets/Sensors/ForceFlex/hx711_english.pdf),
// so on a Raspberry Pi the ADC is periph's driver on two GPIO pins and in
// simulation the same driver runs over firmware-sim/hx711sim. Raw codes are
// converted with the channel's calibration: grams = (code − Offset) / CountsPerGram.
//
// Readings are not emitted from the sampling goroutine: an outbox commit
// (an fsync on an SD card) must not make the loop miss conversions, so each
// channel hands its readings to one emitter goroutine that batches them.
// The package never logs; problems are counted (see Stats).
package loadcell

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/devices/v3/hx711"

	"github.com/shelfgate/shelfgate/gateway"
)

// ADC is one HX711 channel: periph's *hx711.Dev satisfies it.
type ADC interface {
	ReadTimeout(timeout time.Duration) (int32, error)
}

// 24-bit two's-complement limits of the HX711 output.
const (
	MaxCode int32 = 0x7FFFFF
	MinCode int32 = -0x800000
)

// Channel is one load cell.
type Channel struct {
	Stream        gateway.StreamID // e.g. loadcell/shelf-01/bin-03
	ADC           ADC
	Offset        int32   // raw code of the empty cell (tare)
	CountsPerGram float64 // scale; must not be 0
}

// Options tune a Source. Zero values take defaults.
type Options struct {
	// Timeout is how long to wait for a conversion before counting a
	// timeout; default 1s (an HX711 at 10 samples/s converts every 100 ms).
	Timeout time.Duration
	// Now stamps readings; default time.Now.
	Now func() time.Time
	// Buffer is how many readings may wait for the emitter; default 4096.
	// A full buffer blocks sampling rather than dropping readings.
	Buffer int
}

// Stats count what each Source has seen.
type Stats struct {
	Readings  int64
	Timeouts  int64 // no conversion within Timeout
	Errors    int64 // other ADC errors
	Glitches  int64 // spurious all-ones (-1) codes rejected
	Saturated int64 // codes at the end of the 24-bit range (emitted, flagged)
}

// Source reads a set of load cells.
type Source struct {
	name  string
	chans []Channel
	opts  Options

	readings, timeouts, errs, glitches, saturated atomic.Int64
}

var _ gateway.Source = (*Source)(nil)

// New returns a Source named name over chans.
func New(name string, chans []Channel, opts Options) (*Source, error) {
	if len(chans) == 0 {
		return nil, errors.New("loadcell: no channels")
	}
	for i, c := range chans {
		if c.ADC == nil {
			return nil, fmt.Errorf("loadcell: channel %d (%s): no ADC", i, c.Stream)
		}
		if c.CountsPerGram == 0 {
			return nil, fmt.Errorf("loadcell: channel %d (%s): counts_per_gram is 0", i, c.Stream)
		}
		if c.Stream == "" {
			return nil, fmt.Errorf("loadcell: channel %d: empty stream id", i)
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	return &Source{name: name, chans: chans, opts: opts}, nil
}

// Name implements gateway.Source.
func (s *Source) Name() string { return s.name }

// Stats returns the counters so far.
func (s *Source) Stats() Stats {
	return Stats{Readings: s.readings.Load(), Timeouts: s.timeouts.Load(), Errors: s.errs.Load(), Glitches: s.glitches.Load(), Saturated: s.saturated.Load()}
}

// Run samples every channel until ctx is done. Readings already taken when
// ctx ends are still emitted (with a fresh context) so nothing sampled is
// dropped on a clean shutdown.
func (s *Source) Run(ctx context.Context, emit gateway.Emitter) error {
	out := make(chan gateway.Reading, s.opts.Buffer)
	var wg sync.WaitGroup
	for i := range s.chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.sample(ctx, &s.chans[i], out)
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	batch := make([]gateway.Reading, 0, 1024)
	var emitErr error
	for r := range out {
		batch = append(batch[:0], r)
	drain:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-out:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if emitErr != nil {
			continue // keep draining so samplers can stop
		}
		ectx := ctx
		if ctx.Err() != nil {
			ectx = context.Background()
		}
		if err := emit.Emit(ectx, batch); err != nil {
			emitErr = err
		}
	}
	if emitErr != nil && ctx.Err() == nil {
		return fmt.Errorf("loadcell: %w", emitErr)
	}
	return nil
}

func (s *Source) sample(ctx context.Context, c *Channel, out chan<- gateway.Reading) {
	for ctx.Err() == nil {
		code, err := c.ADC.ReadTimeout(s.opts.Timeout)
		if err != nil {
			if isTimeout(err) {
				s.timeouts.Add(1)
			} else {
				s.errs.Add(1)
				// Back off a little so a broken pin does not spin the CPU.
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
			continue
		}
		if code == -1 {
			// periph's driver clocks out all ones when data was not ready
			// yet; a real cell essentially never sits at exactly -1.
			s.glitches.Add(1)
			continue
		}
		r := gateway.Reading{
			Stream: c.Stream,
			Time:   s.opts.Now(),
			Value:  float64(code-c.Offset) / c.CountsPerGram,
			Unit:   "g",
		}
		if code >= MaxCode || code <= MinCode {
			r.Quality |= gateway.QualitySaturated
			s.saturated.Add(1)
		}
		s.readings.Add(1)
		select {
		case out <- r:
		case <-ctx.Done():
			out <- r // sampled before the stop: still emitted
			return
		}
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, hx711.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout() || strings.Contains(err.Error(), "timed out")
}
