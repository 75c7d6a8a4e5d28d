package loadcell

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"periph.io/x/devices/v3/hx711"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/gateway"
)

// fourChips is a shared-clock group of four simulated chips, chip i
// reading base+i·1000 plus k.
func fourChips(t *testing.T) *hx711sim.Group {
	t.Helper()
	var sigs []hx711sim.Signal
	for i := range 4 {
		sigs = append(sigs, hx711sim.SignalFunc(func(k int64) int32 { return 100000 + int32(i)*1000 + int32(k%7) }))
	}
	opts := hx711sim.GroupOpts{Opts: hx711sim.DefaultOpts}
	opts.SpeedUp = 50
	g, err := hx711sim.NewGroup(sigs, &opts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGroupReadsChipsInLockstep(t *testing.T) {
	sim := fourChips(t)
	g, err := NewGroup(sim.CLK(), sim.DOUTs(), ModeA128)
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]int32, 4)
	for range 5 {
		if err := g.ReadAll(time.Second, codes); err != nil {
			t.Fatal(err)
		}
		k := codes[0] - 100000 // the sample index mod 7, the same on every chip
		for i, c := range codes {
			if c != 100000+int32(i)*1000+k {
				t.Fatalf("codes %v: chip %d is not from the same conversion as chip 0", codes, i)
			}
		}
	}
	if g.Reads() != 5 {
		t.Errorf("%d reads", g.Reads())
	}
}

func TestGroupChannelsShareOneRead(t *testing.T) {
	sim := fourChips(t)
	g, err := NewGroup(sim.CLK(), sim.DOUTs(), ModeA128)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([][]int32, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := g.Channel(i)
			for range 10 {
				c, err := ch.ReadTimeout(time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = append(got[i], c)
			}
		}()
	}
	wg.Wait()
	// 40 codes from at most 40 and at least 10 lockstep reads; every code
	// is its chip's.
	if r := g.Reads(); r < 10 || r > 40 {
		t.Errorf("%d lockstep reads for 4 × 10 codes", r)
	}
	for i, cs := range got {
		for _, c := range cs {
			if c/1000 != 100+int32(i) {
				t.Errorf("chip %d read %d", i, c)
			}
		}
	}
}

func TestGroupTimeoutIsATimeout(t *testing.T) {
	sim := fourChips(t)
	sim.Chip(2).InjectFault(hx711sim.FaultNotReady)
	g, err := NewGroup(sim.CLK(), sim.DOUTs(), ModeA128)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Channel(0).ReadTimeout(30 * time.Millisecond)
	if !errors.Is(err, hx711.ErrTimeout) || !isTimeout(err) {
		t.Fatalf("err %v: want a timeout", err)
	}
}

// The Source reads a group's channels like single chips: four streams of
// readings, calibrated.
func TestSourceOverGroup(t *testing.T) {
	_, src := plateOverGroup(t, fourChips(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	em := &countEmitter{want: 40, done: cancel}
	src.Run(ctx, em)
	em.mu.Lock()
	defer em.mu.Unlock()
	for s, n := range em.n {
		if n < 5 {
			t.Errorf("%s: %d readings", s, n)
		}
	}
	if len(em.n) != 4 {
		t.Fatalf("streams %v", em.n)
	}
	for s, v := range em.last {
		i := int(s[len(s)-1] - '0')
		if v < float64(i)*100 || v > float64(i)*100+1 {
			t.Errorf("%s reads %v g, want %d..%d", s, v, i*100, i*100+1)
		}
	}
}

type countEmitter struct {
	mu   sync.Mutex
	n    map[gateway.StreamID]int
	last map[gateway.StreamID]float64
	min  map[gateway.StreamID]float64
	max  map[gateway.StreamID]float64
	tot  int
	want int
	done func()
}

func (e *countEmitter) Emit(_ context.Context, rs []gateway.Reading) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n, e.last = map[gateway.StreamID]int{}, map[gateway.StreamID]float64{}
		e.min, e.max = map[gateway.StreamID]float64{}, map[gateway.StreamID]float64{}
	}
	for _, r := range rs {
		if e.n[r.Stream] == 0 || r.Value < e.min[r.Stream] {
			e.min[r.Stream] = r.Value
		}
		if e.n[r.Stream] == 0 || r.Value > e.max[r.Stream] {
			e.max[r.Stream] = r.Value
		}
		e.n[r.Stream]++
		e.last[r.Stream] = r.Value
	}
	e.tot += len(rs)
	if e.tot >= e.want {
		e.done()
	}
	return nil
}

func (e *countEmitter) EmitEvents(context.Context, []gateway.Event) error { return nil }

// A chip whose DOUT glitches low before its data is ready would read all
// ones if the edge were trusted (periph's single-chip driver does, and
// Source then rejects the −1); the group reader re-checks the level after
// every edge, so no glitch reaches a reading and every code is the chip's.
func TestGroupGlitchRejected(t *testing.T) {
	sim := fourChips(t)
	sim.Chip(1).InjectFault(hx711sim.FaultGlitch)
	_, src := plateOverGroup(t, sim)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	em := &countEmitter{want: 40, done: cancel}
	src.Run(ctx, em)
	em.mu.Lock()
	defer em.mu.Unlock()
	if em.n["loadcell/plate-01/c1"] < 5 {
		t.Fatalf("chip 1: %d readings", em.n["loadcell/plate-01/c1"])
	}
	if lo, hi := em.min["loadcell/plate-01/c1"], em.max["loadcell/plate-01/c1"]; lo < 100 || hi > 101 {
		t.Errorf("chip 1 read %v..%v g with glitches, want 100..101", lo, hi)
	}
}

// TestGroupChannelModes: a Group's channels name the Group's mode (the
// Group selects it on the shared clock, they need no mode setter); a
// channel naming another mode is refused. A plate in A64 or B32 could not
// start when every non-A128 channel needed its own setter.
func TestGroupChannelModes(t *testing.T) {
	sim := fourChips(t)
	for _, tc := range []struct {
		group, channel Mode
		ok             bool
	}{
		{ModeA64, ModeA64, true},
		{ModeB32, ModeB32, true},
		{ModeA128, ModeA128, true},
		{ModeA64, ModeA128, false},
		{ModeA128, ModeB32, false},
	} {
		g, err := NewGroup(sim.CLK(), sim.DOUTs(), tc.group)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New("plate", []Channel{{Stream: "loadcell/p/c0", ADC: g.Channel(0), Mode: tc.channel, CountsPerGram: 100}}, Options{})
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadMode)) {
			t.Errorf("group %v, channel %v: err = %v, want ok=%v", tc.group, tc.channel, err, tc.ok)
		}
	}
}
