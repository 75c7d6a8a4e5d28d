package env

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/devices/v3/bmxx80"

	"github.com/shelfgate/shelfgate/firmware-sim/envsim"
)

// chipIDReads is an I2C bus that counts reads of the BME280's chip id
// register (0xD0), which periph's driver does only when it initialises
// the chip.
type chipIDReads struct {
	i2c.Bus
	n atomic.Int64
}

func (b *chipIDReads) Tx(addr uint16, w, r []byte) error {
	if len(w) == 1 && w[0] == 0xD0 {
		b.n.Add(1)
	}
	return b.Bus.Tx(addr, w, r)
}

// TestRebootReinitialisesTheBME280: Reboot has the sampling goroutine
// initialise the chip again through periph's driver (its chip id read
// once more on the bus), without waiting for the next interval, and
// sampling goes on with right values; before Run, and for a sensor that
// cannot, it is refused.
func TestRebootReinitialisesTheBME280(t *testing.T) {
	e := envsim.Env{TempC: 3.5, PressurePa: 101000, HumidityRH: 70}
	opts := envsim.DefaultOpts
	opts.SpeedUp = 100
	sim, err := envsim.New(envsim.Constant(e), &opts)
	if err != nil {
		t.Fatal(err)
	}
	bus := &chipIDReads{Bus: sim}
	open := func() (Sensor, error) {
		d, err := bmxx80.NewI2C(bus, 0x76, &bmxx80.DefaultOpts)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	dev, err := open()
	if err != nil {
		t.Fatal(err)
	}
	atStart := bus.n.Load()
	if atStart == 0 {
		t.Fatal("no chip id read at start: the spy does not see the driver")
	}
	// An hour between samples: only a reboot can make one early.
	src, err := New("env-1", []Channel{{Name: "room", Kind: BME280, Sensor: Reinitable(dev, open)}}, Options{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Reboot(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("reboot before Run: %v", err)
	}
	em := newEmitter()
	run(t, src, em)
	checkTriple(t, em, sim, "room", e)
	if err := src.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if n := bus.n.Load() - atStart; n != 1 {
		t.Fatalf("%d initialisations on the bus for one reboot", n)
	}
	checkTriple(t, em, sim, "room", e) // sampled at once after the reboot
	if st := src.Stats(); st.Reboots != 1 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}

	plain, err := New("env-2", []Channel{{Name: "room", Kind: BME280, Sensor: dev}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Reboot(ctx); !errors.Is(err, ErrNoReinit) {
		t.Fatalf("reboot of a plain sensor: %v", err)
	}
}
