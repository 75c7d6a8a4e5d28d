package loadcell

import (
	"math"
	"sync/atomic"
	"testing"
	"time"
)

// steadyADC returns base plus a little noise, forever, a few hundred per second.
type steadyADC struct{ k atomic.Int64 }

func (a *steadyADC) ReadTimeout(time.Duration) (int32, error) {
	time.Sleep(2 * time.Millisecond)
	k := a.k.Add(1)
	return 250_000 + int32(k%5), nil
}

// A calibration set while Run samples applies from the next code on: the
// readings move from (code-0)/1000 to (code-250000)/1000, and Calibration
// and CollectRecent report what the channel uses and read.
func TestSetCalibrationWhileRunning(t *testing.T) {
	src, err := New("live", []Channel{{Stream: "loadcell/s1/b1", ADC: &steadyADC{}, CountsPerGram: 1000}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, src)
	r.more(10)
	if rs := r.sink.readings(); math.Abs(rs[len(rs)-1].Value-250) > 1 {
		t.Fatalf("before: %v g, want about 250", rs[len(rs)-1].Value)
	}
	codes, err := src.CollectRecent("s1/b1")
	if err != nil || len(codes) < 10 {
		t.Fatalf("CollectRecent: %d codes, %v", len(codes), err)
	}
	for _, c := range codes {
		if c < 250_000 || c > 250_004 {
			t.Fatalf("recent code %d is not one the ADC returned", c)
		}
	}
	if err := src.SetCalibration("s1/b1", 250_000, 1000); err != nil {
		t.Fatal(err)
	}
	if off, cpg, mode, err := src.Calibration("s1/b1"); err != nil || off != 250_000 || cpg != 1000 || mode != ModeA128 {
		t.Fatalf("Calibration = %d %v %v %v", off, cpg, mode, err)
	}
	from := r.sink.nreadings()
	r.more(20)
	rs := r.sink.readings()[from+5:] // the filter may still release a few codes read before
	for _, rd := range rs {
		if math.Abs(rd.Value) > 0.01 {
			t.Fatalf("after tare: %v g, want about 0", rd.Value)
		}
	}
}

func TestSetCalibrationRejects(t *testing.T) {
	src, err := New("live", []Channel{{Stream: "loadcell/s1/b1", ADC: &steadyADC{}, CountsPerGram: 1000}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bin string
		off int32
		cpg float64
	}{{"s1/b2", 0, 1}, {"s1/b1", 0, 0}, {"s1/b1", 0, math.NaN()}, {"s1/b1", 0, math.Inf(1)}, {"s1/b1", MaxCode + 1, 1}} {
		if err := src.SetCalibration(tc.bin, tc.off, tc.cpg); err == nil {
			t.Errorf("SetCalibration(%q, %d, %v) accepted", tc.bin, tc.off, tc.cpg)
		}
	}
	if _, err := src.CollectRecent("nope"); err == nil {
		t.Error("CollectRecent of an unknown bin accepted")
	}
}
