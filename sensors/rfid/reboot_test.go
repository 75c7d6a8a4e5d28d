package rfid

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/mfrc522"

	"github.com/shelfgate/shelfgate/firmware-sim/rfidsim"
)

// resetSpy is the reader's NRSTPD pin, counting the hard resets driven
// through it (low, then high: the rising edge resets the chip).
type resetSpy struct {
	gpio.PinOut
	low    bool
	resets atomic.Int64
}

func (p *resetSpy) Out(l gpio.Level) error {
	if l == gpio.High && p.low {
		p.resets.Add(1)
	}
	p.low = l == gpio.Low
	return p.PinOut.Out(l)
}

// TestRebootResetsTheReader: Reboot resets the MFRC522 through its NRSTPD
// pin (one low-high pulse, which resets rfidsim) and initialises it again
// through periph's driver, between two polls; a tag held across it is one
// presentation; a new tag after it is read.
func TestRebootResetsTheReader(t *testing.T) {
	sim := rfidsim.New(nil)
	spy := &resetSpy{PinOut: sim.Reset()}
	dev, err := mfrc522.NewSPI(sim, spy, sim.IRQ())
	if err != nil {
		t.Fatal(err)
	}
	sink := &chanSink{ch: make(chan Tag, 100)}
	src, err := New("dock-1", FromDevReset(dev, spy), Options{Timeout: 20 * time.Millisecond, Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Reboot(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("reboot before Run: %v", err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- src.Run(rctx, sink) }()
	r := &rig{sim: sim, src: src, sink: sink}
	if err := sim.Present(badge); err != nil {
		t.Fatal(err)
	}
	r.tag(t, "04A22B9C")
	if err := src.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if n := spy.resets.Load(); n != 1 {
		t.Fatalf("%d hard resets on NRSTPD for one reboot", n)
	}
	r.hold(t, 3)
	r.noTag(t)
	sim.Remove()
	r.gone(t, 3)
	if err := sim.Present([]byte{0x11, 0x22, 0x33, 0x44}); err != nil {
		t.Fatal(err)
	}
	r.tag(t, "11223344")
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); st.Reboots != 1 || st.Reads != 2 {
		t.Fatalf("stats %+v", st)
	}
	if err := src.Reboot(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("reboot after Run: %v", err)
	}
}

// TestRebootNeedsAnIniter: a Reader without Init is refused.
func TestRebootNeedsAnIniter(t *testing.T) {
	src, err := New("dock-1", &fakeReader{version: 0x92}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Reboot(context.Background()); !errors.Is(err, ErrNoInit) {
		t.Fatalf("got %v, want ErrNoInit", err)
	}
}
