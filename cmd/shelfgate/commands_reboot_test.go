package main

import (
	"context"
	"errors"
	"sync/atomic"
)

// fakeRebooter answers Reboot with err and counts the calls.
type fakeRebooter struct {
	err   error
	calls *atomic.Int64
}

var _ rebooter = fakeRebooter{}

func (f fakeRebooter) Reboot(context.Context) error {
	if f.calls != nil {
		f.calls.Add(1)
	}
	return f.err
}

// goldenSensors are the golden replies' sensors: two that reboot, a
// scanner whose device is gone, and a kind that cannot.
var goldenSensors = []sensorRef{
	{Name: "shelf-01", Kind: "hx711", Reboot: fakeRebooter{}},
	{Name: "plate-01", Kind: "plate", Reboot: fakeRebooter{}},
	{Name: "picking-1", Kind: "scanner", Reboot: fakeRebooter{err: errors.New("scanner: picking-1: reopen: open /dev/ttyACM0: no such file or directory")}},
	{Name: "coldroom-1", Kind: "bme280"},
}
