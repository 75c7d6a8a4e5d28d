package loadcell

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"periph.io/x/devices/v3/hx711"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/gateway"
)

// collector is a hand-written gateway.Emitter that keeps what it is given.
type collector struct {
	mu sync.Mutex
	rs []gateway.Reading
}

func (c *collector) Emit(_ context.Context, rs []gateway.Reading) error {
	c.mu.Lock()
	c.rs = append(c.rs, rs...)
	c.mu.Unlock()
	return nil
}

func (c *collector) EmitEvents(context.Context, []gateway.Event) error { return nil }

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rs)
}

// newCell wires periph's real hx711 driver to a simulated chip.
func newCell(t *testing.T, sig hx711sim.Signal) (*hx711sim.Sim, *hx711.Dev) {
	t.Helper()
	return newCellAt(t, sig, 20)
}

// newCellAt is newCell with an 80 samples/s chip sped up speedUp times.
func newCellAt(t *testing.T, sig hx711sim.Signal, speedUp float64) (*hx711sim.Sim, *hx711.Dev) {
	t.Helper()
	opts := hx711sim.DefaultOpts
	opts.Rate, opts.SpeedUp = 80, speedUp
	sim, err := hx711sim.New(sig, &opts)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := hx711.New(sim.CLK(), sim.DOUT())
	if err != nil {
		t.Fatal(err)
	}
	return sim, dev
}

func run(t *testing.T, src *Source, until func() bool) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, c) }()
	deadline := time.Now().Add(20 * time.Second)
	for !until() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReadsGramsThroughPeriphDriver(t *testing.T) {
	const offset, cpg = 50_000, 200.0
	// 1234.5 g plus a sample-dependent wobble, so the values are checkable.
	sig := hx711sim.SignalFunc(func(k int64) int32 { return offset + int32(cpg*1234.5) + int32(k%7) })
	_, dev := newCell(t, sig)
	src, err := New("cells", []Channel{{Stream: "loadcell/a", ADC: dev, Offset: offset, CountsPerGram: cpg}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := run(t, src, func() bool { return src.Stats().Readings >= 20 })
	if c.len() < 20 {
		t.Fatalf("got %d readings, want >= 20 (stats %+v)", c.len(), src.Stats())
	}
	for _, r := range c.rs {
		wob := r.Value*cpg - cpg*1234.5
		if r.Unit != "g" || r.Stream != "loadcell/a" || r.Quality != 0 || wob < -1e-6 || wob > 6+1e-6 || math.Abs(wob-math.Round(wob)) > 1e-6 {
			t.Fatalf("reading %+v is not 1234.5 g + k%%7 counts", r)
		}
	}
}

func TestSaturationIsFlagged(t *testing.T) {
	_, dev := newCell(t, hx711sim.SignalFunc(func(int64) int32 { return 1 << 26 }))
	src, _ := New("cells", []Channel{{Stream: "s", ADC: dev, CountsPerGram: 1}}, Options{})
	c := run(t, src, func() bool { return src.Stats().Readings >= 3 })
	for _, r := range c.rs {
		if r.Quality&gateway.QualitySaturated == 0 || r.Value != float64(MaxCode) {
			t.Fatalf("reading %+v not flagged saturated at %d", r, MaxCode)
		}
	}
}

func TestFaultsAreCountedAndRecovered(t *testing.T) {
	for _, tc := range []struct {
		fault hx711sim.Fault
		stat  func(Stats) int64
	}{
		{hx711sim.FaultNotReady, func(s Stats) int64 { return s.Timeouts }},
		{hx711sim.FaultGlitch, func(s Stats) int64 { return s.Glitches }},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			sim, dev := newCell(t, hx711sim.SignalFunc(func(int64) int32 { return 4000 }))
			sim.InjectFault(tc.fault)
			src, _ := New("cells", []Channel{{Stream: "s", ADC: dev, Offset: 0, CountsPerGram: 2}}, Options{Timeout: 50 * time.Millisecond})
			var recovered bool
			c := run(t, src, func() bool {
				if !recovered && tc.stat(src.Stats()) >= 2 {
					sim.ClearFault()
					recovered = true
				}
				return recovered && src.Stats().Readings >= 5
			})
			if tc.stat(src.Stats()) < 2 {
				t.Fatalf("fault %v not counted: %+v", tc.fault, src.Stats())
			}
			for _, r := range c.rs {
				if r.Value != 2000 {
					t.Fatalf("after %v got reading %v, want 2000 g (glitches must not pass)", tc.fault, r.Value)
				}
			}
			if c.len() < 5 {
				t.Fatalf("no recovery: %d readings, stats %+v", c.len(), src.Stats())
			}
		})
	}
}

func TestNewRejectsBadChannels(t *testing.T) {
	_, dev := newCell(t, hx711sim.SignalFunc(func(int64) int32 { return 0 }))
	for _, chans := range [][]Channel{nil, {{Stream: "s", CountsPerGram: 1}}, {{Stream: "s", ADC: dev}}, {{ADC: dev, CountsPerGram: 1}}} {
		if _, err := New("x", chans, Options{}); err == nil {
			t.Errorf("New(%+v) succeeded", chans)
		}
	}
}
