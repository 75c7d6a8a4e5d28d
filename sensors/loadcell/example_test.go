package loadcell_test

import (
	"context"
	"fmt"
	"strings"

	"periph.io/x/devices/v3/hx711"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/sensors/calibration"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

// printer is an Emitter that drops readings and hands events on.
type printer struct{ evs chan gateway.Event }

func (p printer) Emit(context.Context, []gateway.Reading) error { return nil }

func (p printer) EmitEvents(_ context.Context, evs []gateway.Event) error {
	for _, ev := range evs {
		p.evs <- ev
	}
	return nil
}

// A load cell whose DOUT wire comes loose and is plugged back: one fault
// event, one recovery event.
func ExampleSource_Run() {
	opts := hx711sim.DefaultOpts
	opts.Rate, opts.SpeedUp = 80, 10
	// 1000 g at 400 counts/g with a little noise in the lowest bits.
	sim, err := hx711sim.New(hx711sim.SignalFunc(func(k int64) int32 { return -81_234 + 400_000 + int32(k%11) }), &opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	dev, err := hx711.New(sim.CLK(), sim.DOUT())
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := loadcell.New("cells", []loadcell.Channel{
		{Stream: "loadcell/shelf-01/bin-03", ADC: dev, Offset: -81_234, CountsPerGram: 400},
	}, loadcell.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := printer{evs: make(chan gateway.Event, 4)}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, p) }()

	sim.InjectFault(hx711sim.FaultDisconnected) // DOUT floats: every read is 0
	ev := <-p.evs
	fmt.Println(ev.Kind, ev.Stream, ev.Detail, src.Health()[0].Faults)
	sim.ClearFault()
	ev = <-p.evs
	fmt.Println(ev.Kind, ev.Stream, ev.Detail, src.Health()[0].Healthy())

	cancel()
	fmt.Println(<-done)
	// Output:
	// sensor_fault loadcell/shelf-01/bin-03 stuck stuck
	// sensor_fault loadcell/shelf-01/bin-03 recovered:stuck true
	// <nil>
}

func ExampleCalibrated() {
	f, err := calibration.Parse(strings.NewReader(`shelfgate-calibration v1
bin=shelf-01/bin-03 offset=-81234 counts_per_gram=412.544 measured=2026-11-29
bin=shelf-01/bin-04:B32 offset=2611 counts_per_gram=-99.5 measured=2026-11-29
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	var adc loadcell.ADC // periph's *hx711.Dev on the bin's pins
	chans, err := loadcell.Calibrated(f, []loadcell.Channel{
		{Stream: "loadcell/shelf-01/bin-03", ADC: adc},
		{Stream: "loadcell/shelf-01/bin-04", ADC: adc, Mode: loadcell.ModeB32},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range chans {
		fmt.Println(c.Stream, c.Mode, c.Offset, c.CountsPerGram)
	}
	_, err = loadcell.Calibrated(f, []loadcell.Channel{{Stream: "loadcell/shelf-02/bin-01", ADC: adc}})
	fmt.Println(err)
	// Output:
	// loadcell/shelf-01/bin-03 A128 -81234 412.544
	// loadcell/shelf-01/bin-04 B32 2611 -99.5
	// loadcell: no calibration for bin "shelf-02/bin-01"
}
