package hx711sim_test

import (
	"fmt"
	"log"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/hx711"
)

func Example() {
	// A 2.5 kg load on a bin reads 0x12345 counts at channel A, gain 128.
	sig := hx711sim.SignalFunc(func(k int64) int32 { return 0x12345 })

	opts := hx711sim.DefaultOpts
	opts.SpeedUp = 100 // 10 samples/s simulated, one every millisecond
	sim, err := hx711sim.New(sig, &opts)
	if err != nil {
		log.Fatal(err)
	}

	// The unmodified periph driver, wired to the simulated pins.
	dev, err := hx711.New(sim.CLK(), sim.DOUT())
	if err != nil {
		log.Fatal(err)
	}
	v, err := dev.ReadTimeout(time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%#x\n", v)

	if err := dev.SetInputMode(hx711.CHANNEL_A_GAIN_64); err != nil {
		log.Fatal(err)
	}
	v, err = dev.ReadTimeout(time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%#x\n", v)

	sim.InjectFault(hx711sim.FaultNotReady)
	_, err = dev.ReadTimeout(10 * time.Millisecond)
	fmt.Println(err)
	// Output:
	// 0x12345
	// 0x91a2
	// timed out waiting for HX711 to become ready
}

// shelf stands in for a multi-bin scenario engine such as
// firmware-sim/warehouse: CodeAt(bin, k) is the gain-128 code of a bin's
// load cell at sample k.
type shelf struct{}

func (shelf) CodeAt(bin int, k int64) int32 { return int32(100000*(bin+1)) + int32(k%2) }

func ExampleBin() {
	opts := hx711sim.DefaultOpts
	opts.SpeedUp = 100
	var devs []*hx711.Dev
	for bin := range 3 {
		sim, err := hx711sim.New(hx711sim.Bin(shelf{}, bin), &opts)
		if err != nil {
			log.Fatal(err)
		}
		dev, err := hx711.New(sim.CLK(), sim.DOUT())
		if err != nil {
			log.Fatal(err)
		}
		devs = append(devs, dev)
	}
	for bin, dev := range devs {
		v, err := dev.ReadTimeout(time.Second)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(bin, v/10*10)
	}
	// Output:
	// 0 100000
	// 1 200000
	// 2 300000
}

// Four HX711s under a shelf plate share one clock line: the host clocks
// all of them at once and samples each DOUT per bit.
func ExampleNewPlate() {
	cfg := warehouse.DefaultConfig()
	cfg.Plates = warehouse.DefaultPlateConfig()
	wh, err := warehouse.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	opts := hx711sim.GroupOpts{Opts: hx711sim.DefaultOpts}
	opts.Rate = int(cfg.SampleRate)
	opts.SpeedUp = 100
	g, err := hx711sim.NewPlate(wh, 0, &opts)
	if err != nil {
		log.Fatal(err)
	}
	clk, douts := g.CLK(), g.DOUTs()
	// Wait until every chip signals data-ready (DOUT low).
	for ready := false; !ready; time.Sleep(100 * time.Microsecond) {
		ready = true
		for _, d := range douts {
			ready = ready && d.Read() == gpio.Low
		}
	}
	var raw [4]uint32
	for range 24 {
		clk.Out(gpio.High)
		for c, d := range douts {
			raw[c] <<= 1
			if d.Read() == gpio.High {
				raw[c] |= 1
			}
		}
		clk.Out(gpio.Low)
	}
	clk.Out(gpio.High) // 25th pulse: channel A, gain 128 next
	clk.Out(gpio.Low)
	for c := range raw {
		code := int32(raw[c]<<8) >> 8
		k := g.Chip(c).Stats().LastIndex
		fmt.Println(c, code == wh.PlateCodes(0, k)[c])
	}
	// Output:
	// 0 true
	// 1 true
	// 2 true
	// 3 true
}
