package hx711sim

import (
	"errors"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// lockstep is the reference host for a Group: it waits until every DOUT it
// watches is low (data ready), then clocks 24 data bits on the shared
// clock, sampling every DOUT while the clock is high, and one gain pulse
// (channel A, gain 128 next). It is written from the datasheet, not from
// the simulator, so the tests check the simulator against it.
type lockstep struct {
	clk  gpio.PinOut
	dout []gpio.PinIn
}

// waitReady polls until every pin not in skip reads low, or the timeout.
func (r *lockstep) waitReady(skip map[int]bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		ready := true
		for i, p := range r.dout {
			if !skip[i] && p.Read() == gpio.High {
				ready = false
			}
		}
		if ready {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// read clocks one lockstep transaction and returns every chip's code.
func (r *lockstep) read() ([]int32, error) {
	raw := make([]uint32, len(r.dout))
	for range 24 {
		if err := r.clk.Out(gpio.High); err != nil {
			return nil, err
		}
		for i, p := range r.dout {
			raw[i] <<= 1
			if p.Read() == gpio.High {
				raw[i] |= 1
			}
		}
		if err := r.clk.Out(gpio.Low); err != nil {
			return nil, err
		}
	}
	if err := r.clk.Out(gpio.High); err != nil {
		return nil, err
	}
	if err := r.clk.Out(gpio.Low); err != nil {
		return nil, err
	}
	out := make([]int32, len(raw))
	for i, v := range raw {
		out[i] = int32(v<<8) >> 8 // sign-extend 24 bits
	}
	return out, nil
}

// fakePlate is a PlateSource whose codes encode plate, cell and k, with
// negative codes on odd cells so the sign bit is exercised.
type fakePlate struct{}

func (fakePlate) PlateCodes(plate int, k int64) [4]int32 {
	var out [4]int32
	for c := range out {
		v := int32(plate*1_000_000+c*100_000) + int32(k%50_000)
		if c%2 == 1 {
			v = -v
		}
		out[c] = v
	}
	return out
}

func fastGroupOpts() *GroupOpts {
	o := DefaultOpts
	o.SpeedUp = 50 // 10 samples/s -> 2 ms per conversion
	return &GroupOpts{Opts: o}
}

// readPlate runs n lockstep reads of plate 3 and checks each chip's code
// against the plate's code for the conversion that chip shifted out.
// check(c, code, st) may accept other codes for faulty chips; it returns
// false to fall back to the exact check.
func readPlate(t *testing.T, g *Group, n int, skip map[int]bool, check func(c int, code int32, st Stats) bool) {
	t.Helper()
	r := &lockstep{clk: g.CLK(), dout: g.DOUTs()}
	prev := make([]int64, g.Len())
	for i := range prev {
		prev[i] = -1
	}
	for range n {
		if !r.waitReady(skip, 2*time.Second) {
			t.Fatal("chips never became ready")
		}
		codes, err := r.read()
		if err != nil {
			t.Fatal(err)
		}
		for c, code := range codes {
			st := g.Chip(c).Stats()
			if check != nil && check(c, code, st) {
				continue
			}
			if st.LastIndex <= prev[c] {
				t.Fatalf("chip %d: index %d after %d", c, st.LastIndex, prev[c])
			}
			prev[c] = st.LastIndex
			want := fakePlate{}.PlateCodes(3, st.LastIndex)[c]
			if code != want {
				t.Fatalf("chip %d sample %d: code %d, want %d", c, st.LastIndex, code, want)
			}
		}
	}
}

func TestPlateLockstepCodes(t *testing.T) {
	tests := []struct {
		name   string
		phases []time.Duration
	}{
		{"in phase", nil},
		{"own oscillators", []time.Duration{0, 300 * time.Microsecond, 900 * time.Microsecond, 1500 * time.Microsecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fastGroupOpts()
			o.Phases = tt.phases
			g, err := NewPlate(fakePlate{}, 3, o)
			if err != nil {
				t.Fatal(err)
			}
			readPlate(t, g, 20, nil, nil)
			for c := range g.Len() {
				if st := g.Chip(c).Stats(); st.Reads != 20 || st.Spurious != 0 {
					t.Errorf("chip %d: %+v, want 20 reads, none spurious", c, st)
				}
			}
		})
	}
}

func TestPlateFaultOnOneChip(t *testing.T) {
	tests := []struct {
		name   string
		inject func(s *Sim)
		skip   bool // the host cannot wait for this chip's data-ready
		want   int32
	}{
		{"stuck saturated", func(s *Sim) { s.StickAt(MaxCode) }, false, MaxCode},
		{"stuck low", func(s *Sim) { s.StickAt(-1234) }, false, -1234},
		{"never ready", func(s *Sim) { s.InjectFault(FaultNotReady) }, true, -1},
		{"pin error", func(s *Sim) { s.InjectFault(FaultPinError) }, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := NewPlate(fakePlate{}, 3, fastGroupOpts())
			if err != nil {
				t.Fatal(err)
			}
			const bad = 2
			tt.inject(g.Chip(bad))
			skip := map[int]bool{bad: tt.skip}
			readPlate(t, g, 10, skip, func(c int, code int32, _ Stats) bool {
				if c != bad {
					return false
				}
				if code != tt.want {
					t.Fatalf("faulty chip %d: code %d, want %d", c, code, tt.want)
				}
				return true
			})
			for c := range g.Len() {
				st := g.Chip(c).Stats()
				if c != bad && (st.Reads != 10 || st.Spurious != 0) {
					t.Errorf("healthy chip %d: %+v, want 10 reads, none spurious", c, st)
				}
			}
			g.Chip(bad).ClearFault()
			readPlate(t, g, 3, nil, nil)
		})
	}
}

func TestPlatePinErrorIsThatChipsOnly(t *testing.T) {
	g, err := NewPlate(fakePlate{}, 3, fastGroupOpts())
	if err != nil {
		t.Fatal(err)
	}
	g.Chip(1).InjectFault(FaultPinError)
	if err := g.DOUT(1).In(gpio.PullDown, gpio.FallingEdge); !errors.Is(err, ErrPinError) {
		t.Fatalf("faulty DOUT In = %v, want ErrPinError", err)
	}
	for _, c := range []int{0, 2, 3} {
		if err := g.DOUT(c).In(gpio.PullDown, gpio.FallingEdge); err != nil {
			t.Fatalf("healthy DOUT %d: %v", c, err)
		}
	}
	if err := g.CLK().Out(gpio.Low); err != nil {
		t.Fatalf("shared clock fails with one chip's pin error: %v", err)
	}
}

// A DOUT glitch on one chip that the host takes for data-ready yields -1
// on that chip only; the others still deliver their conversions.
func TestPlateGlitchOnOneChip(t *testing.T) {
	o := fastGroupOpts()
	// Chip 0 converts half a period after the others, so its glitch can
	// coincide with their data-ready.
	o.Phases = []time.Duration{time.Millisecond, 0, 0, 0}
	g, err := NewPlate(fakePlate{}, 3, o)
	if err != nil {
		t.Fatal(err)
	}
	g.Chip(0).InjectFault(FaultGlitch)
	const n = 20
	readPlate(t, g, n, nil, func(c int, code int32, st Stats) bool {
		return c == 0 && code == -1
	})
	st := g.Chip(0).Stats()
	t.Logf("glitching chip: %+v", st)
	if st.Reads+st.Spurious != n {
		t.Errorf("glitching chip: %+v, want reads+spurious = %d", st, n)
	}
	for c := 1; c < 4; c++ {
		if st := g.Chip(c).Stats(); st.Reads != n || st.Spurious != 0 {
			t.Errorf("healthy chip %d: %+v, want %d reads, none spurious", c, st, n)
		}
	}
}

func TestPlateSharedGain(t *testing.T) {
	g, err := NewPlate(fakePlate{}, 0, fastGroupOpts())
	if err != nil {
		t.Fatal(err)
	}
	r := &lockstep{clk: g.CLK(), dout: g.DOUTs()}
	if !r.waitReady(nil, 2*time.Second) {
		t.Fatal("not ready")
	}
	// 27 pulses: channel A, gain 64 next, on every chip at once.
	for range 27 {
		if err := r.clk.Out(gpio.High); err != nil {
			t.Fatal(err)
		}
		if err := r.clk.Out(gpio.Low); err != nil {
			t.Fatal(err)
		}
	}
	for c := range g.Len() {
		if m := g.Chip(c).Mode(); m != ChannelAGain64 {
			t.Errorf("chip %d mode %v, want A/64", c, m)
		}
	}
}

func TestNewGroupValidation(t *testing.T) {
	sig := SignalFunc(func(int64) int32 { return 0 })
	o := fastGroupOpts()
	tests := []struct {
		name string
		sigs []Signal
		opts func() *GroupOpts
	}{
		{"no chips", nil, func() *GroupOpts { return o }},
		{"phase count", []Signal{sig, sig}, func() *GroupOpts { c := *o; c.Phases = []time.Duration{0}; return &c }},
		{"negative phase", []Signal{sig}, func() *GroupOpts { c := *o; c.Phases = []time.Duration{-1}; return &c }},
		{"phase past period", []Signal{sig}, func() *GroupOpts { c := *o; c.Phases = []time.Duration{time.Hour}; return &c }},
		{"channel B", []Signal{sig}, func() *GroupOpts { c := *o; c.ChannelB = sig; return &c }},
		{"bad rate", []Signal{sig}, func() *GroupOpts { c := *o; c.Rate = 20; return &c }},
		{"nil signal", []Signal{sig, nil}, func() *GroupOpts { return o }},
	}
	for _, tt := range tests {
		if _, err := NewGroup(tt.sigs, tt.opts()); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if _, err := NewPlate(nil, 0, nil); err == nil {
		t.Error("nil PlateSource: no error")
	}
	g, err := NewGroup([]Signal{sig, sig}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Len() != 2 || g.CLK().Name() != "hx711sim.PD_SCK" || g.DOUT(1).Name() != "hx711sim.c1.DOUT" {
		t.Errorf("names: %s %s, len %d", g.CLK().Name(), g.DOUT(1).Name(), g.Len())
	}
}
