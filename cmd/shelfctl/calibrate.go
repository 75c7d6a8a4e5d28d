package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/devices/v3/hx711"
	"periph.io/x/host/v3"

	"github.com/shelfgate/shelfgate/sensors/calibration"
)

// adc is what calibrate needs of an HX711: periph's *hx711.Dev.
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

// calibrate walks an engineer through a two-point calibration: empty the
// bin, press Enter; put the reference weight on, press Enter. It prints the
// config snippet and, with --out, adds the bin to a calibration file.
func calibrate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, open func(clk, data string) (adc, error)) error {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	clk := fs.String("clk", "", "HX711 PD_SCK pin, e.g. GPIO5")
	data := fs.String("data", "", "HX711 DOUT pin, e.g. GPIO6")
	bin := fs.String("bin", "", "bin id, e.g. shelf-01/bin-03")
	ref := fs.Float64("reference-grams", 0, "weight of the reference load in grams")
	samples := fs.Int("samples", 20, "samples per step (medians are used)")
	out := fs.String("out", "", "calibration file to add or update the bin in")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *clk == "" || *data == "" || *bin == "" || *ref <= 0 || *samples < calibration.MinSamples {
		return fmt.Errorf("%w: shelfctl calibrate --clk GPIOn --data GPIOn --bin ID --reference-grams G [--samples N>=%d] [--out FILE]", errUsage, calibration.MinSamples)
	}
	dev, err := open(*clk, *data)
	if err != nil {
		return fmt.Errorf("calibrate %s: %w", *bin, err)
	}
	in := bufio.NewReader(stdin)
	step := func(prompt string) ([]int32, error) {
		fmt.Fprint(stderr, prompt)
		if _, err := in.ReadString('\n'); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		codes := make([]int32, 0, *samples)
		for len(codes) < *samples {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			v, err := dev.ReadTimeout(2 * time.Second)
			if err != nil {
				return nil, fmt.Errorf("read HX711 on %s/%s: %w (check wiring and power)", *clk, *data, err)
			}
			if v == -1 {
				continue // periph's not-ready glitch
			}
			codes = append(codes, v)
		}
		return codes, nil
	}
	empty, err := step(fmt.Sprintf("Empty bin %s completely, then press Enter... ", *bin))
	if err != nil {
		return err
	}
	loaded, err := step(fmt.Sprintf("Put the %.1f g reference weight in bin %s, then press Enter... ", *ref, *bin))
	if err != nil {
		return err
	}
	cal, err := calibration.FromMeasurements(empty, loaded, *ref)
	if err != nil {
		return fmt.Errorf("calibrate %s: %w", *bin, err)
	}
	cal.Bin = *bin
	now := time.Now().UTC()
	cal.Measured = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	fmt.Fprintf(stdout, "bin %s: offset=%d counts_per_gram=%.4f\n", cal.Bin, cal.Offset, cal.CountsPerGram)
	fmt.Fprintf(stdout, "config:  calibration: {offset: %d, counts_per_gram: %.4f}\n", cal.Offset, cal.CountsPerGram)
	if *out != "" {
		if err := saveCalibration(*out, cal); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "saved to %s\n", *out)
	}
	return nil
}

// saveCalibration adds or replaces cal's bin in the file at path, writing a
// new file and renaming it over the old one so a crash never leaves half a file.
func saveCalibration(path string, cal calibration.Calibration) error {
	var f calibration.File
	if r, err := os.Open(path); err == nil {
		f, err = calibration.Parse(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	replaced := false
	for i := range f.Channels {
		if f.Channels[i].Bin == cal.Bin {
			f.Channels[i], replaced = cal, true
		}
	}
	if !replaced {
		f.Channels = append(f.Channels, cal)
	}
	tmp := path + ".tmp"
	w, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := calibration.Write(w, f); err != nil {
		w.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
