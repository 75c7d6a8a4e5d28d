package envsim_test

import (
	"fmt"
	"log"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/envsim"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"
)

func Example() {
	// A cold room warming up by 0.1 °C per simulated minute.
	profile := func(t time.Duration) envsim.Env {
		return envsim.Env{TempC: -18 + t.Minutes()/10, PressurePa: 101325, HumidityRH: 85}
	}
	bus, err := envsim.New(profile, nil)
	if err != nil {
		log.Fatal(err)
	}
	dev, err := bmxx80.NewI2C(bus, 0x76, &bmxx80.DefaultOpts)
	if err != nil {
		log.Fatal(err)
	}
	var e physic.Env
	if err := dev.Sense(&e); err != nil {
		log.Fatal(err)
	}
	// The driver reads the profile back within the sensor's resolution
	// (the humidity step is 1/1024 %RH, so 85 % may read a hair below).
	fmt.Printf("%s %s %s %.1f%%RH\n", dev, e.Temperature, e.Pressure, float64(e.Humidity)/float64(physic.PercentRH))
	// Output:
	// BME280{envsim(BME280@0x76)(118)} -18°C 101.325kPa 85.0%RH
}
