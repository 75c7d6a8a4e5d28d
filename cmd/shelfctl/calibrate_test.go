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

// seqPrompts answers each prompt with a line and closes loads[i] after
// prompt i+2: the first prompt empties every bin, then each bin is loaded
// in turn.
type seqPrompts struct {
	n     int
	loads []chan struct{}
}

func (p *seqPrompts) Read(b []byte) (int, error) {
	p.n++
	if p.n >= 2 && p.n-2 < len(p.loads) {
		close(p.loads[p.n-2])
	}
	if p.n > len(p.loads)+1 {
		return 0, errors.New("unexpected prompt")
	}
	return copy(b, "\n"), nil
}

// Several bins in one run, in mode A64: each bin is stored under
// BIN:A64 with the gain-64 offset and scale, both in one file with a bin
// calibrated before, which stays.
func TestCalibrateSeveralBinsInMode(t *testing.T) {
	sigs := []*stepSignal{
		{offset: 41872, perGram: 212.5, grams: 500, loaded: make(chan struct{})},
		{offset: -20000, perGram: -198, grams: 500, loaded: make(chan struct{})},
	}
	byData := map[string]*stepSignal{"GPIO6": sigs[0], "GPIO19": sigs[1]}
	open := func(clk, data string) (adc, error) {
		if clk != "GPIO5" {
			t.Errorf("clock %s, want the shared GPIO5", clk)
		}
		opts := hx711sim.DefaultOpts
		opts.Rate, opts.SpeedUp = 80, 20
		sim, err := hx711sim.New(byData[data], &opts)
		if err != nil {
			return nil, err
		}
		return hx711.New(sim.CLK(), sim.DOUT())
	}
	out := filepath.Join(t.TempDir(), "shelf.cal")
	if err := os.WriteFile(out, []byte("shelfgate-calibration v1\nbin=shelf-09/bin-09 offset=1 counts_per_gram=2 measured=2026-01-01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"--bin", "shelf-01/bin-01", "--data", "GPIO6", "--bin", "shelf-01/bin-02", "--data", "GPIO19", "--clk", "GPIO5",
		"--mode", "A64", "--reference-grams", "500", "--samples", "9", "--out", out}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := calibrate(ctx, args, &seqPrompts{loads: []chan struct{}{sigs[0].loaded, sigs[1].loaded}}, &stdout, &stderr, open); err != nil {
		t.Fatalf("calibrate: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"Empty bin shelf-01/bin-01, shelf-01/bin-02 completely", "weight in bin shelf-01/bin-01", "weight in bin shelf-01/bin-02"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("prompts lack %q:\n%s", want, stderr.String())
		}
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
	if _, ok := f.Lookup("shelf-09/bin-09"); !ok || len(f.Channels) != 3 {
		t.Fatalf("file %+v", f)
	}
	for i, key := range []string{"shelf-01/bin-01:A64", "shelf-01/bin-02:A64"} {
		c, ok := f.Lookup(key)
		if !ok {
			t.Fatalf("%s missing from %+v", key, f)
		}
		// Gain 64 halves the codes (floor): offset/2 within 2, scale/2 within 0.1 %.
		if d := float64(c.Offset) - sigs[i].offset/2; d < -2 || d > 2 {
			t.Errorf("%s offset %d, want %v±2", key, c.Offset, sigs[i].offset/2)
		}
		if d := c.CountsPerGram/(sigs[i].perGram/2) - 1; d < -1e-3 || d > 1e-3 {
			t.Errorf("%s counts_per_gram %v, want %v", key, c.CountsPerGram, sigs[i].perGram/2)
		}
	}
}

func TestCalibrateFlagMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bin", "a", "--bin", "b", "--clk", "GPIO5", "--data", "GPIO6", "--reference-grams", "1"}, "2 --bin but 1 --data"},
		{[]string{"--bin", "a", "--bin", "b", "--clk", "GPIO5", "--clk", "GPIO6", "--clk", "GPIO7", "--data", "GPIO6", "--data", "GPIO8", "--reference-grams", "1"}, "2 --bin but 3 --clk"},
		{[]string{"--bin", "a", "--clk", "GPIO5", "--data", "GPIO6", "--reference-grams", "1", "--mode", "A32"}, `--mode "A32" is not A128, A64 or B32`},
		{[]string{"--bin", "a", "--bin", "a", "--clk", "GPIO5", "--data", "GPIO6", "--data", "GPIO7", "--reference-grams", "1"}, "bin a given twice"},
	} {
		var out, errOut bytes.Buffer
		err := calibrate(context.Background(), tc.args, strings.NewReader(""), &out, &errOut, nil)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want usage with %q", tc.args, err, tc.want)
		}
	}
	var out bytes.Buffer
	if err := calibrate(context.Background(), []string{"--help"}, strings.NewReader(""), &out, &out, nil); err != nil || !strings.Contains(out.String(), "--mode") {
		t.Errorf("--help: %v %s", err, out.String())
	}
}
