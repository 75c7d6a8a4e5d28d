package env_test

import (
	"context"
	"fmt"

	"periph.io/x/devices/v3/bmxx80"

	"github.com/shelfgate/shelfgate/firmware-sim/envsim"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/sensors/env"
)

// printOnce prints the first sample's readings and stops the source.
type printOnce struct{ cancel context.CancelFunc }

func (p printOnce) Emit(_ context.Context, rs []gateway.Reading) error {
	for _, r := range rs {
		fmt.Printf("%s %.2f %s\n", r.Stream, r.Value, r.Unit)
	}
	p.cancel()
	return nil
}

func (p printOnce) EmitEvents(context.Context, []gateway.Event) error { return nil }

func Example() {
	// On a Raspberry Pi: i2creg.Open("") instead of the simulator.
	bus, err := envsim.New(envsim.Constant(envsim.Env{TempC: 4.5, PressurePa: 101325, HumidityRH: 80}), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	dev, err := bmxx80.NewI2C(bus, 0x76, &bmxx80.DefaultOpts)
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := env.New("env", []env.Channel{{Name: "coldroom-1", Kind: env.BME280, Sensor: dev}}, env.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	fmt.Println(src.Run(ctx, printOnce{cancel}))
	// Output:
	// env/coldroom-1/temperature 4.50 °C
	// env/coldroom-1/pressure 1013.25 hPa
	// env/coldroom-1/humidity 80.00 %RH
	// <nil>
}
