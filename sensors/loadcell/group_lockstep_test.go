package loadcell

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/gateway"
)

// Regression: a channel that asked again before the others took their
// codes used to start the next lockstep read and overwrite them, so a
// Source over a Group (one sampling goroutine per cell) lost about 3 codes
// in 8 of every cell (found by evaluate.RunBus: the plate detector then
// settled on fewer samples, latency ×3). Every read must now reach every
// cell.
func TestGroupChannelsLoseNoRead(t *testing.T) {
	g, src := plateOverGroup(t, fourChips(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Counted when the emitter has its readings, before cancel: once the
	// Source stops, a channel already waiting for its peers' next codes
	// gives up after its timeout and drops them (that is the stopped-peer
	// case below, not a loss while running).
	var reads, dropped int64
	var once sync.Once // Emit calls done again on every later batch
	em := &countEmitter{want: 4 * 150, done: func() {
		once.Do(func() { reads, dropped = g.Reads(), g.Dropped() })
		cancel()
	}}
	if err := src.Run(ctx, em); err != nil {
		t.Fatal(err)
	}
	em.mu.Lock()
	defer em.mu.Unlock()
	if reads < 100 {
		t.Fatalf("%d lockstep reads", reads)
	}
	// The spike filter holds the last codes of each cell back at the end.
	for s, n := range em.n {
		if int64(n) < reads-MaxSpikeWindow {
			t.Errorf("%s: %d readings of %d lockstep reads", s, n, reads)
		}
	}
	if dropped != 0 {
		t.Errorf("%d codes dropped while every channel was reading", dropped)
	}
}

// A channel nobody reads any more (its Source stopped) holds the others
// up for one timeout, then its code is dropped and counted.
func TestGroupChannelGivesUpOnAStoppedPeer(t *testing.T) {
	sim := fourChips(t)
	g, err := NewGroup(sim.CLK(), sim.DOUTs(), ModeA128)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Channel(1).ReadTimeout(time.Second); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, i := range []int{0, 2, 3} { // take their codes of the first read
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := g.Channel(i).ReadTimeout(time.Second); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Channel 1 reads again; channels 0, 2, 3 never take that read's codes.
	if _, err := g.Channel(1).ReadTimeout(time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := g.Channel(1).ReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("read again after %v without waiting for the others", waited)
	}
	if d, r := g.Dropped(), g.Reads(); d != 3 || r != 3 {
		t.Errorf("dropped %d, reads %d; want 3 and 3", d, r)
	}
}

// plateOverGroup is a Source of plate-01's four cells (loadcell/plate-01/c0..3,
// offset 100000, 10 counts per gram) over a Group on sim.
func plateOverGroup(t *testing.T, sim *hx711sim.Group) (*Group, *Source) {
	t.Helper()
	g, err := NewGroup(sim.CLK(), sim.DOUTs(), ModeA128)
	if err != nil {
		t.Fatal(err)
	}
	var chans []Channel
	for i := range 4 {
		chans = append(chans, Channel{Stream: gateway.StreamID("loadcell/plate-01/c" + string(rune('0'+i))), ADC: g.Channel(i), Offset: 100000, CountsPerGram: 10})
	}
	src, err := New("plate-01", chans, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return g, src
}
