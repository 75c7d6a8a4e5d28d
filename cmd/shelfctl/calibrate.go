package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/devices/v3/hx711"
	"periph.io/x/host/v3"

	"github.com/shelfgate/shelfgate/sensors/calibration"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

// adc is what calibrate needs of an HX711: periph's *hx711.Dev (which can
// also select the input and gain: loadcell.InputModeSetter).
type adc interface {
	ReadTimeout(timeout time.Duration) (int32, error)
}

// openHX711 opens an HX711 on two GPIO pins of this host.
func openHX711(clk, data string) (adc, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("periph host init: %w", err)
	}
	c, d := gpioreg.ByName(clk), gpioreg.ByName(data)
	if c == nil {
		return nil, fmt.Errorf("pin %s does not exist on this host", clk)
	}
	if d == nil {
		return nil, fmt.Errorf("pin %s does not exist on this host", data)
	}
	return hx711.New(c, d)
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// cell is one load cell to calibrate.
type cell struct {
	bin, clk, data string
	dev            adc
	empty          []int32
}

// calibrateModes maps --mode to the HX711 input and gain.
var calibrateModes = map[string]loadcell.Mode{"A128": loadcell.ModeA128, "A64": loadcell.ModeA64, "B32": loadcell.ModeB32}

const calibrateUsage = "shelfctl calibrate --bin ID --clk GPIOn --data GPIOn [--bin ID --clk GPIOn --data GPIOn ...] --reference-grams G [--mode A128|A64|B32] [--samples N>=%d] [--out FILE]"

// calibrate walks an engineer through a two-point calibration of one or
// more bins: empty them all, press Enter; then put the reference weight in
// each bin in turn, pressing Enter each time. It prints each bin's config
// snippet and, with --out, adds the bins to a calibration file in one
// atomic write. --bin, --clk and --data may be repeated, matched by
// position (one --clk for several --data: cells sharing a clock). With
// --mode A64 or B32 the bins are stored under "BIN:MODE", the key the
// gateway looks up for a cell read in that mode.
func calibrate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, open func(clk, data string) (adc, error)) error {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var bins, clks, datas listFlag
	fs.Var(&bins, "bin", "bin id, e.g. shelf-01/bin-03 (repeat for several bins)")
	fs.Var(&clks, "clk", "HX711 PD_SCK pin, e.g. GPIO5 (repeat per bin, or once for a shared clock)")
	fs.Var(&datas, "data", "HX711 DOUT pin, e.g. GPIO6 (repeat per bin)")
	ref := fs.Float64("reference-grams", 0, "weight of the reference load in grams")
	modeName := fs.String("mode", "A128", "HX711 input and gain: A128, A64 or B32 (as the sensor's mode: in the config)")
	samples := fs.Int("samples", 20, "samples per step (medians are used)")
	out := fs.String("out", "", "calibration file to add or update the bins in")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: "+calibrateUsage+"\n", calibration.MinSamples)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	usageErr := func(why string) error {
		return fmt.Errorf("%w: %s\n"+calibrateUsage, errUsage, why, calibration.MinSamples)
	}
	mode, ok := calibrateModes[*modeName]
	switch {
	case len(bins) == 0 || len(datas) == 0 || len(clks) == 0:
		return usageErr("--bin, --clk and --data are required")
	case len(datas) != len(bins):
		return usageErr(fmt.Sprintf("%d --bin but %d --data: give one --data per bin", len(bins), len(datas)))
	case len(clks) != len(bins) && len(clks) != 1:
		return usageErr(fmt.Sprintf("%d --bin but %d --clk: give one --clk per bin, or one shared by all", len(bins), len(clks)))
	case *ref <= 0:
		return usageErr("--reference-grams must be above 0")
	case *samples < calibration.MinSamples:
		return usageErr(fmt.Sprintf("--samples %d is below %d", *samples, calibration.MinSamples))
	case !ok:
		return usageErr(fmt.Sprintf("--mode %q is not A128, A64 or B32", *modeName))
	}
	seen := map[string]bool{}
	for _, b := range bins {
		if seen[b] {
			return usageErr(fmt.Sprintf("bin %s given twice", b))
		}
		seen[b] = true
	}
	cells := make([]*cell, len(bins))
	for i, b := range bins {
		c := &cell{bin: b, clk: clks[min(i, len(clks)-1)], data: datas[i]}
		dev, err := open(c.clk, c.data)
		if err != nil {
			return fmt.Errorf("calibrate %s: %w", b, err)
		}
		c.dev, cells[i] = dev, c
	}
	in := bufio.NewReader(stdin)
	prompt := func(p string) error {
		fmt.Fprint(stderr, p)
		if _, err := in.ReadString('\n'); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return ctx.Err()
	}
	read := func(c *cell) ([]int32, error) {
		codes, err := loadcell.Collect(ctx, c.dev, mode, *samples)
		if err != nil {
			return nil, fmt.Errorf("read HX711 of bin %s on %s/%s in mode %s: %w (check wiring and power)", c.bin, c.clk, c.data, *modeName, err)
		}
		return codes, nil
	}
	if err := prompt(fmt.Sprintf("Empty bin %s completely, then press Enter... ", strings.Join(bins, ", "))); err != nil {
		return err
	}
	for _, c := range cells {
		codes, err := read(c)
		if err != nil {
			return err
		}
		c.empty = codes
	}
	now := time.Now().UTC()
	measured := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var cals []calibration.Calibration
	for _, c := range cells {
		if err := prompt(fmt.Sprintf("Put the %.1f g reference weight in bin %s (and only there), then press Enter... ", *ref, c.bin)); err != nil {
			return err
		}
		loaded, err := read(c)
		if err != nil {
			return err
		}
		cal, err := calibration.FromMeasurements(c.empty, loaded, *ref)
		if err != nil {
			return fmt.Errorf("calibrate %s: %w", c.bin, err)
		}
		cal.Bin, cal.Measured = loadcell.CalibrationKey(c.bin, mode), measured
		cals = append(cals, cal)
		fmt.Fprintf(stdout, "bin %s (mode %s): offset=%d counts_per_gram=%.4f\n", c.bin, *modeName, cal.Offset, cal.CountsPerGram)
		fmt.Fprintf(stdout, "config:  calibration: {offset: %d, counts_per_gram: %.4f}\n", cal.Offset, cal.CountsPerGram)
	}
	if *out != "" {
		if err := calibration.Save(*out, cals...); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved %d bins to %s\n", len(cals), *out)
	}
	return nil
}
