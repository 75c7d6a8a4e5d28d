package loadcell

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/sensors/calibration"
)

// TestModes reads the same 1234.5 g load in every mode, each with the
// calibration of that mode (the simulator derives A/64 as code>>1 and B/32
// as code>>2 from the A/128 code).
func TestModes(t *testing.T) {
	const off, cpg = 80_000, 400.0
	sig := hx711sim.SignalFunc(func(k int64) int32 { return off + int32(cpg*1234.5) + int32(k%16) })
	for _, tc := range []struct {
		mode  Mode
		sim   hx711sim.Mode
		shift uint
	}{
		{ModeA128, hx711sim.ChannelAGain128, 0},
		{ModeA64, hx711sim.ChannelAGain64, 1},
		{ModeB32, hx711sim.ChannelBGain32, 2},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			sim, dev := newCell(t, sig)
			src, err := New("cells", []Channel{{Stream: "s", ADC: dev, Mode: tc.mode, Offset: off >> tc.shift, CountsPerGram: cpg / float64(int(1)<<tc.shift)}}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			r := start(t, src)
			r.more(20)
			r.stop()
			if got := sim.Mode(); got != tc.sim {
				t.Errorf("chip mode %v, want %v", got, tc.sim)
			}
			// k%16 wobble is 0..15 counts at gain 128: 0..0.04 g.
			for _, rd := range r.sink.readings() {
				if rd.Value < 1234.5-0.01 || rd.Value > 1234.5+0.05 {
					t.Fatalf("%v: reading %+v, want 1234.5 g", tc.mode, rd)
				}
			}
			if h := src.Health()[0]; h.Mode != tc.mode || !h.Healthy() {
				t.Errorf("health %+v", h)
			}
		})
	}
}

// TestCollectAndCalibrate runs a two-point calibration end to end: codes
// collected through periph's driver (with DOUT glitches injected, whose -1
// codes must be skipped) give back the simulated cell's offset and scale.
func TestCollectAndCalibrate(t *testing.T) {
	const off, cpg = -81_234, 412.5
	var load atomic.Int64 // grams on the cell
	sim, dev := newCell(t, hx711sim.SignalFunc(func(k int64) int32 {
		return off + int32(cpg*float64(load.Load())) + int32(k%9) - 4
	}))
	sim.InjectFault(hx711sim.FaultGlitch)
	ctx := context.Background()
	empty, err := Collect(ctx, dev, ModeA128, 9)
	if err != nil {
		t.Fatal(err)
	}
	load.Store(500)
	time.Sleep(2 * sim.SamplePeriod()) // let a loaded conversion complete
	loaded, err := Collect(ctx, dev, ModeA128, 9)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(empty, loaded...) {
		if c == -1 {
			t.Fatalf("Collect returned a -1 glitch: %v %v", empty, loaded)
		}
	}
	cal, err := calibration.FromMeasurements(empty, loaded, 500)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(cal.Offset-off)) > 4 || math.Abs(cal.CountsPerGram-cpg) > 0.05 {
		t.Errorf("calibration %+v, want offset %d and %v counts/g", cal, off, cpg)
	}
}

func TestCollectErrors(t *testing.T) {
	sim, dev := newCell(t, hx711sim.SignalFunc(wobble))
	if _, err := Collect(context.Background(), dev, ModeA128, 0); !errors.Is(err, ErrBadCount) {
		t.Errorf("n=0: %v", err)
	}
	if _, err := Collect(context.Background(), plain{dev}, ModeA64, 3); !errors.Is(err, ErrBadMode) {
		t.Errorf("A64 without SetInputMode: %v", err)
	}
	sim.InjectFault(hx711sim.FaultPinError)
	if _, err := Collect(context.Background(), dev, ModeB32, 3); !errors.Is(err, hx711sim.ErrPinError) {
		t.Errorf("pin error: %v, want ErrPinError", err)
	}
	sim.InjectFault(hx711sim.FaultNotReady)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if codes, err := Collect(ctx, dev, ModeA128, 3); !errors.Is(err, context.DeadlineExceeded) || len(codes) != 0 {
		t.Errorf("never ready: %v, %v; want DeadlineExceeded", codes, err)
	}
}

func TestCalibrated(t *testing.T) {
	f, err := calibration.Parse(strings.NewReader(`shelfgate-calibration v1
bin=shelf-01/bin-01 offset=100 counts_per_gram=400 measured=2026-11-29
bin=shelf-01/bin-02 offset=-200 counts_per_gram=-390.5 measured=2026-11-29
bin=shelf-01/bin-02:A64 offset=-100 counts_per_gram=-195.2 measured=2026-11-29
`))
	if err != nil {
		t.Fatal(err)
	}
	_, dev := newCell(t, hx711sim.SignalFunc(wobble))
	chans := []Channel{
		{Stream: "loadcell/shelf-01/bin-01", ADC: dev},
		{Stream: "loadcell/b2", Bin: "shelf-01/bin-02", ADC: dev, Mode: ModeA64},
	}
	got, err := Calibrated(f, chans)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Offset != 100 || got[0].CountsPerGram != 400 || got[1].Offset != -100 || got[1].CountsPerGram != -195.2 || got[1].Stream != "loadcell/b2" || got[1].ADC == nil {
		t.Errorf("Calibrated = %+v", got)
	}
	if chans[0].Offset != 0 {
		t.Error("Calibrated modified its input")
	}
	if _, err := New("x", got, Options{}); err != nil {
		t.Errorf("New on calibrated channels: %v", err)
	}

	chans = append(chans, Channel{Stream: "loadcell/shelf-01/bin-01", ADC: dev, Mode: ModeB32}, Channel{Stream: "loadcell/shelf-09/bin-09", ADC: dev})
	_, err = Calibrated(f, chans)
	if !errors.Is(err, ErrNoCalibration) || !strings.Contains(err.Error(), `"shelf-01/bin-01:B32", "shelf-09/bin-09"`) {
		t.Errorf("missing bins: %v", err)
	}
}
