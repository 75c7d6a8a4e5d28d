package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"periph.io/x/devices/v3/hx711"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/sensors/calibration"
)

// stepSignal is an empty bin (offset) until loaded is set, then offset plus
// the reference weight; it alternates ±2 counts of noise.
type stepSignal struct {
	offset, perGram, grams float64
	loaded                 chan struct{}
}

func (s *stepSignal) CodeAt(k int64) int32 {
	v := s.offset + float64(k%2*4-2)
	select {
	case <-s.loaded:
		v += s.perGram * s.grams
	default:
	}
	return int32(v)
}

// promptReader answers each prompt (a line) and loads the bin after the first.
type promptReader struct {
	lines  int
	loaded chan struct{}
}

func (p *promptReader) Read(b []byte) (int, error) {
	p.lines++
	if p.lines == 2 {
		close(p.loaded)
	}
	if p.lines > 2 {
		return 0, errors.New("unexpected third prompt")
	}
	return copy(b, "\n"), nil
}

func TestCalibrateThroughPeriphDriver(t *testing.T) {
	loaded := make(chan struct{})
	sig := &stepSignal{offset: 41872, perGram: 212.5, grams: 1000, loaded: loaded}
	open := func(clk, data string) (adc, error) {
		if clk != "GPIO5" || data != "GPIO6" {
			t.Errorf("pins %s/%s", clk, data)
		}
		opts := hx711sim.DefaultOpts
		opts.Rate, opts.SpeedUp = 80, 20
		sim, err := hx711sim.New(sig, &opts)
		if err != nil {
			return nil, err
		}
		return hx711.New(sim.CLK(), sim.DOUT())
	}
	out := filepath.Join(t.TempDir(), "shelf.cal")
	var stdout, stderr bytes.Buffer
	args := []string{"--clk", "GPIO5", "--data", "GPIO6", "--bin", "shelf-01/bin-01", "--reference-grams", "1000", "--samples", "9", "--out", out}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := calibrate(ctx, args, &promptReader{loaded: loaded}, &stdout, &stderr, open); err != nil {
		t.Fatalf("calibrate: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "config:  calibration: {offset: ") {
		t.Errorf("stdout: %s", stdout.String())
	}
	r, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := calibration.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := f.Lookup("shelf-01/bin-01")
	if !ok {
		t.Fatalf("bin missing from %+v", f)
	}
	// Medians of codes alternating offset±2: within 2 counts; scale within 0.01 %.
	if d := c.Offset - 41872; d < -2 || d > 2 {
		t.Errorf("offset %d, want 41872±2", c.Offset)
	}
	if d := c.CountsPerGram/212.5 - 1; d < -1e-4 || d > 1e-4 {
		t.Errorf("counts_per_gram %v, want 212.5", c.CountsPerGram)
	}
}

func TestCalibrateUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	err := calibrate(context.Background(), []string{"--clk", "GPIO5"}, strings.NewReader(""), &out, &errOut, nil)
	if !errors.Is(err, errUsage) {
		t.Fatalf("err = %v, want usage", err)
	}
}

func TestCalibrateMissingPinOnThisHost(t *testing.T) {
	var out, errOut bytes.Buffer
	err := calibrate(context.Background(), []string{"--clk", "GPIO5", "--data", "GPIO6", "--bin", "b", "--reference-grams", "500"}, strings.NewReader("\n\n"), &out, &errOut, func(clk, data string) (adc, error) {
		return nil, errors.New("pin GPIO5 does not exist on this host")
	})
	if err == nil || !strings.Contains(err.Error(), "calibrate b: pin GPIO5 does not exist") {
		t.Fatalf("err = %v", err)
	}
}
