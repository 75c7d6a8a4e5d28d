package loadcell

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/gateway"
)

// rebootOpts is a 10 samples/s chip at 20x (a conversion every 5 ms) that
// powers down after 20 ms of PD_SCK high: not the datasheet's 60 µs, so
// that ordinary reads on a loaded machine never power it down by accident.
func rebootOpts() hx711sim.Opts {
	o := hx711sim.DefaultOpts
	o.SpeedUp = 20
	o.PowerDownAfter = 20 * time.Millisecond
	return o
}

// In A64 the wobble signal reads 125000 + k%13 / 2; with this calibration
// that is 1000 g. A code read in A128 (the mode the chip comes back in
// after a reset) would read 2250 g.
const (
	a64Offset = 25000
	a64CPG    = 100
)

func rebootCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkGrams fails on any reading of stream off want by more than 1 g.
func checkGrams(t *testing.T, rs []gateway.Reading, stream gateway.StreamID, want float64) int {
	t.Helper()
	n := 0
	for _, r := range rs {
		if r.Stream != stream {
			continue
		}
		n++
		if math.Abs(r.Value-want) > 1 {
			t.Fatalf("%s read %v g at %s, want %v: a code in the wrong mode got through", stream, r.Value, r.Time.Format(time.StampMicro), want)
		}
	}
	return n
}

// TestRebootPowerCyclesTheChip: Reboot holds PD_SCK high long enough to
// power the chip down and releases it (the simulator counts one power-down
// and one reset), re-selects A64 before the next read (no A128 code, no
// spike), and readings go on; before Run and after it, Reboot is refused.
func TestRebootPowerCyclesTheChip(t *testing.T) {
	o := rebootOpts()
	sim, err := hx711sim.New(hx711sim.SignalFunc(wobble), &o)
	if err != nil {
		t.Fatal(err)
	}
	adc, err := NewHX711(sim.CLK(), sim.DOUT())
	if err != nil {
		t.Fatal(err)
	}
	const stream = "loadcell/a"
	src, err := New("cell", []Channel{{Stream: stream, ADC: adc, Mode: ModeA64, Offset: a64Offset, CountsPerGram: a64CPG}},
		Options{Timeout: 500 * time.Millisecond, PowerDownHold: 3 * o.PowerDownAfter})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Reboot(rebootCtx(t)); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("reboot before Run: %v, want ErrNotRunning", err)
	}
	r := start(t, src)
	r.more(20)
	if st := sim.Stats(); st.PowerDowns != 0 {
		t.Fatalf("chip powered down before the reboot: %+v", st)
	}
	if err := src.Reboot(rebootCtx(t)); err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	if st.PowerDowns != 1 || st.Resets != 1 {
		t.Fatalf("simulator saw %d power-downs and %d resets, want 1 and 1", st.PowerDowns, st.Resets)
	}
	r.more(20)
	r.stop()
	if err := src.Reboot(rebootCtx(t)); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("reboot after Run: %v, want ErrNotRunning", err)
	}
	rs := r.sink.readings()
	checkGrams(t, rs, stream, 1000)
	after := 0
	for _, rd := range rs {
		if rd.Time.After(st.LastReset) {
			after++
		}
	}
	if after < 20 {
		t.Fatalf("%d readings after the reset, want at least 20", after)
	}
	if s := src.Stats(); s.PowerCycles != 1 || s.Spikes != 0 || s.Faults != 0 {
		t.Fatalf("stats %+v: want 1 power cycle, no spike, no fault", s)
	}
	if h := src.Health()[0]; h.PowerCycles != 1 {
		t.Fatalf("health %+v", h)
	}
}

// TestRebootGroupResetsTheSharedClockOnce: the four channels of a plate
// ask together; the shared PD_SCK is cycled once (every chip counts one
// reset), the Group re-selects A64 before its next lockstep read, and every
// cell reads on at its own level.
func TestRebootGroupResetsTheSharedClockOnce(t *testing.T) {
	var sigs []hx711sim.Signal
	for i := range 4 {
		sigs = append(sigs, hx711sim.SignalFunc(func(k int64) int32 { return wobble(k) + int32(i)*2000 }))
	}
	opts := hx711sim.GroupOpts{Opts: rebootOpts()}
	sim, err := hx711sim.NewGroup(sigs, &opts)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup(sim.CLK(), sim.DOUTs(), ModeA64)
	if err != nil {
		t.Fatal(err)
	}
	// A Group selects its mode itself with every read; its channels name
	// the same mode (no mode setter) and are converted with the A64
	// calibration.
	var chans []Channel
	for i := range 4 {
		chans = append(chans, Channel{Stream: gateway.StreamID("loadcell/p/c" + string(rune('0'+i))), ADC: g.Channel(i), Mode: ModeA64, Offset: a64Offset, CountsPerGram: a64CPG})
	}
	src, err := New("plate", chans, Options{Timeout: time.Second, PowerDownHold: 3 * opts.PowerDownAfter})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, src)
	r.more(40)
	if err := src.Reboot(rebootCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := g.PowerCycles(); n != 1 {
		t.Fatalf("shared clock cycled %d times for one reboot, want 1", n)
	}
	var lastReset time.Time
	for i := range 4 {
		st := sim.Chip(i).Stats()
		if st.PowerDowns != 1 || st.Resets != 1 {
			t.Fatalf("chip %d: %d power-downs, %d resets, want 1 and 1", i, st.PowerDowns, st.Resets)
		}
		lastReset = st.LastReset
	}
	r.more(40)
	r.stop()
	rs := r.sink.readings()
	for i, c := range chans {
		checkGrams(t, rs, c.Stream, 1000+10*float64(i))
		if !slices.ContainsFunc(rs, func(rd gateway.Reading) bool { return rd.Stream == c.Stream && rd.Time.After(lastReset) }) {
			t.Fatalf("%s: no reading after the reset", c.Stream)
		}
	}
	if s := src.Stats(); s.PowerCycles != 4 || s.Spikes != 0 || s.Glitches != 0 {
		t.Fatalf("stats %+v: want 4 channels power-cycled, no spike, no glitch", s)
	}
}

// TestRebootEndsAFaultEpisode: a chip that stopped signalling data-ready
// is in the timeout fault; once it answers again, a reboot resets it and
// the episode ends with its recovered event, one of each.
func TestRebootEndsAFaultEpisode(t *testing.T) {
	o := rebootOpts()
	sim, err := hx711sim.New(hx711sim.SignalFunc(wobble), &o)
	if err != nil {
		t.Fatal(err)
	}
	adc, err := NewHX711(sim.CLK(), sim.DOUT())
	if err != nil {
		t.Fatal(err)
	}
	src, err := New("cell", []Channel{{Stream: "loadcell/a", ADC: adc, Offset: 50_000, CountsPerGram: 200}},
		Options{Timeout: 100 * time.Millisecond, PowerDownHold: 3 * o.PowerDownAfter})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, src)
	r.more(5)
	sim.InjectFault(hx711sim.FaultNotReady)
	r.waitFor("the timeout fault", func() bool { return slices.Contains(details(r.sink.events()), "timeout") })
	sim.ClearFault()
	if err := src.Reboot(rebootCtx(t)); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the recovery", func() bool { return slices.Contains(details(r.sink.events()), "recovered:timeout") })
	r.more(5)
	r.stop()
	if got := details(r.sink.events()); !slices.Equal(got, []string{"timeout", "recovered:timeout"}) {
		t.Fatalf("events %v", got)
	}
	if s := src.Stats(); s.Faults != 1 || s.Recoveries != 1 || s.PowerCycles != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestRebootNeedsAPowerCycler: an ADC that cannot be power-cycled is
// refused by name, and nothing is asked of the sampler.
func TestRebootNeedsAPowerCycler(t *testing.T) {
	src, err := New("cell", []Channel{{Stream: "loadcell/a", ADC: plain{&recorder{}}, CountsPerGram: 1}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Reboot(rebootCtx(t)); !errors.Is(err, ErrNoPowerCycle) {
		t.Fatalf("got %v, want ErrNoPowerCycle", err)
	}
}
