package warehouse

import (
	"fmt"
	"time"
)

// ErrTimeout is wrapped by Reader.ReadTimeout when the next sample is not
// due within the timeout. Like net errors it has a Timeout() bool method
// returning true, for callers that accept timeouts from several drivers.
var ErrTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string { return "warehouse: timed out waiting for HX711 sample" }
func (timeoutError) Timeout() bool { return true }

// Clock is the time source of a Reader.
type Clock interface {
	Now() time.Time
	Sleep(d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// Reader paces the samples of one bin in wall-clock time: sample k is
// ready at start + SampleTime(k)/Speed. It has the ReadTimeout contract of
// periph's hx711.Dev. A Reader is not safe for concurrent use; make one per
// goroutine.
//
// A Reader that falls behind returns the overdue samples at once, in
// order; unlike the real chip it never skips samples.
type Reader struct {
	w     *Warehouse
	bin   int
	start time.Time
	k     int64
	clock Clock
}

// NewReader returns a real-time Reader of bin whose sample 0 is due at
// start. It panics if bin is out of range.
func (w *Warehouse) NewReader(bin int, start time.Time) *Reader {
	return w.NewReaderClock(bin, start, realClock{})
}

// NewReaderClock is NewReader with an explicit clock, for tests.
func (w *Warehouse) NewReaderClock(bin int, start time.Time, clock Clock) *Reader {
	w.mustBin(bin)
	return &Reader{w: w, bin: bin, start: start, clock: clock}
}

// Next returns the index k of the sample the next read returns.
func (r *Reader) Next() int64 { return r.k }

// Due returns the wall-clock time at which sample k is ready.
func (r *Reader) Due(k int64) time.Time {
	return r.start.Add(time.Duration(float64(r.w.SampleTime(k)) / r.w.cfg.Speed))
}

// ReadTimeout waits until the next sample is ready and returns its raw
// code. If it would not be ready within timeout, it waits timeout (as the
// chip's driver polls) and returns an error wrapping ErrTimeout; the
// sample is not consumed.
func (r *Reader) ReadTimeout(timeout time.Duration) (int32, error) {
	wait := r.Due(r.k).Sub(r.clock.Now())
	if wait > timeout {
		if timeout > 0 {
			r.clock.Sleep(timeout)
		}
		return 0, fmt.Errorf("%w: bin %d sample %d due in %v, timeout %v", ErrTimeout, r.bin, r.k, wait, timeout)
	}
	if wait > 0 {
		r.clock.Sleep(wait)
	}
	code := r.w.CodeAt(r.bin, r.k)
	r.k++
	return code, nil
}
