package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/hx711"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/firmware-sim/scannersim"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

// simsResult is what the simulators-only child reports: its anonymous
// memory before the simulators exist and at the end of the window, its
// max RSS, how many cell readings the bare drivers took, the live heap and
// goroutine stacks after a collection at the end (what the simulators hold,
// without the garbage a process of their own lets pile up to its first
// collection), and its CPU seconds.
type simsResult struct {
	AnonStartKB, AnonEndKB, HWMKB, Reads, LiveKB int64
	CPU                                          float64
}

// simsOnly builds the hardware simulators of the footprint shape as the
// daemon's simulation does (the warehouse engine, an hx711sim per bin, a
// shared-clock group of four per plate, a scanner pty for picking and one
// per plate picker) and reads every simulated HX711 with the bare driver
// (periph's hx711 for a bin, loadcell.Group for a plate) at the shape's
// rate for warm+window, with a reader draining each scanner pty. Nothing
// goes through loadcell.Source, the gateway, the outbox or the uplink. It
// prints a simsResult: "anon_start_kb anon_end_kb hwm_kb reads live_kb cpu_s".
func simsOnly(sh footprintShape, warm, window time.Duration, w io.Writer) error {
	self := os.Getpid()
	anon0, err := statusKB(self, "RssAnon")
	if err != nil {
		return err
	}
	wc := sh.warehouse()
	wh, err := warehouse.New(wc)
	if err != nil {
		return fmt.Errorf("warehouse: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), warm+window)
	defer cancel()
	var reads atomic.Int64
	var wg sync.WaitGroup
	readLoop := func(cells int64, read func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := read(); err == nil {
					reads.Add(cells)
				}
			}
		}()
	}
	for _, bin := range wh.Bins() {
		opts := hx711sim.DefaultOpts
		opts.Name, opts.Rate, opts.SpeedUp = "hx711sim-"+bin.ID, int(wc.SampleRate), wc.Speed
		sim, err := hx711sim.New(hx711sim.Bin(wh, bin.Index), &opts)
		if err != nil {
			return fmt.Errorf("simulated cell %s: %w", bin.ID, err)
		}
		dev, err := hx711.New(sim.CLK(), sim.DOUT())
		if err != nil {
			return fmt.Errorf("hx711 on %s: %w", opts.Name, err)
		}
		readLoop(1, func() error { _, err := dev.ReadTimeout(time.Second); return err })
	}
	for _, p := range wh.Plates() {
		opts := hx711sim.GroupOpts{Opts: hx711sim.DefaultOpts}
		opts.Name = "hx711sim-" + p.ID
		opts.Rate, opts.SpeedUp, opts.Seed = int(wc.SampleRate), wc.Speed, uint64(1000+4*p.Index)
		g, err := hx711sim.NewPlate(wh, p.Index, &opts)
		if err != nil {
			return fmt.Errorf("simulated plate %s: %w", p.ID, err)
		}
		lg, err := loadcell.NewGroup(g.CLK(), []gpio.PinIn{g.DOUT(0), g.DOUT(1), g.DOUT(2), g.DOUT(3)}, loadcell.ModeA128)
		if err != nil {
			return fmt.Errorf("plate %s: %w", p.ID, err)
		}
		var codes [4]int32
		readLoop(4, func() error { return lg.ReadAll(time.Second, codes[:]) })
	}
	for range sh.scanners() {
		opts := scannersim.DefaultOpts
		opts.Suffix = scannersim.CR
		sim, err := scannersim.New(&opts)
		if err != nil {
			return fmt.Errorf("simulated scanner: %w", err)
		}
		defer sim.Close()
		f, err := os.Open(sim.Path())
		if err != nil {
			return fmt.Errorf("scanner pty: %w", err)
		}
		defer f.Close()
		go io.Copy(io.Discard, f)
	}
	wg.Wait()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	anon1, err := statusKB(self, "RssAnon")
	if err != nil {
		return err
	}
	hwm, err := statusKB(self, "VmHWM")
	if err != nil {
		return err
	}
	live := int64(ms.HeapAlloc+ms.StackInuse) / 1024
	fmt.Fprintln(w, anon0, anon1, hwm, reads.Load(), live, tv(ru.Utime)+tv(ru.Stime))
	return nil
}
