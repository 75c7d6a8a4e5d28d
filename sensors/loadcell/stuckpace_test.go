package loadcell

import (
	"sync/atomic"
	"testing"
	"time"
)

// sameCode is an ADC that always returns one code, after wait: a frozen
// chip that still converts (or a Group cell paced by its peers) when wait
// is a conversion period, a floating DOUT when wait is 0.
type sameCode struct {
	wait  time.Duration
	reads atomic.Int64
}

func (a *sameCode) ReadTimeout(time.Duration) (int32, error) {
	time.Sleep(a.wait)
	a.reads.Add(1)
	return 123_456, nil
}

// TestStuckChannelPacing checks that the stuck back-off applies only to
// reads that did not wait: a floating DOUT must not spin the CPU, but a
// stuck cell whose reads are paced by conversions (a Group channel waits
// for its peers' lockstep read) must keep its rate, or it holds up the
// healthy cells of its plate.
func TestStuckChannelPacing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wait     time.Duration
		min, max int64 // reads in the window
	}{
		{name: "paced by conversions", wait: 5 * time.Millisecond, min: 10, max: 1 << 30}, // ~100 unpaused
		{name: "floating DOUT", wait: 0, min: 0, max: 1},                                  // one back-off spans the window
	} {
		t.Run(tc.name, func(t *testing.T) {
			adc := &sameCode{wait: tc.wait}
			src, err := New("cells", []Channel{{Stream: "loadcell/x", ADC: adc, CountsPerGram: 200}},
				Options{Timeout: 50 * time.Millisecond, Backoff: 10 * time.Second, StuckAfter: 3})
			if err != nil {
				t.Fatal(err)
			}
			r := start(t, src)
			time.Sleep(200 * time.Millisecond) // well into the stuck fault
			from := adc.reads.Load()
			time.Sleep(500 * time.Millisecond)
			n := adc.reads.Load() - from
			r.stop()
			if n < tc.min || n > tc.max {
				t.Errorf("%d reads in 500 ms while stuck, want %d..%d", n, tc.min, tc.max)
			}
			if h := src.Health()[0]; h.Faults&FaultStuck == 0 {
				t.Errorf("health %+v: want the stuck fault", h)
			}
		})
	}
}
