package main

import (
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
)

// powerDownHold: the simulated HX711s (simulate.go builds them on
// hx711sim.DefaultOpts) power down only after PowerDownAfter, longer than
// the datasheet's 60 µs so that a read descheduled between two pin writes
// does not power them down by accident; reboot-sensors holds PD_SCK high
// a little longer than that.
func (s *simBuses) powerDownHold() time.Duration {
	return hx711sim.DefaultOpts.PowerDownAfter + 20*time.Millisecond
}
