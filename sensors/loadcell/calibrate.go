package loadcell

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shelfgate/shelfgate/sensors/calibration"
)

// Collect reads n raw codes from adc for a two-point calibration
// (calibration.FromMeasurements). It selects mode first when mode is not
// ModeA128 (adc must then implement InputModeSetter), skips the spurious -1
// codes, and retries timeouts until ctx is done; any other ADC error ends
// it. Codes are returned as read: the medians of FromMeasurements take care
// of a stray spike.
func Collect(ctx context.Context, adc ADC, mode Mode, n int) ([]int32, error) {
	if n < 1 {
		return nil, ErrBadCount
	}
	if mode > ModeB32 {
		return nil, fmt.Errorf("%w: %v", ErrBadMode, mode)
	}
	if mode != ModeA128 {
		setter, ok := adc.(InputModeSetter)
		if !ok {
			return nil, fmt.Errorf("%w: ADC %T cannot select mode %v", ErrBadMode, adc, mode)
		}
		if err := setter.SetInputMode(mode.inputMode()); err != nil {
			return nil, fmt.Errorf("loadcell: select mode %v: %w", mode, err)
		}
	}
	codes := make([]int32, 0, n)
	for len(codes) < n {
		if err := ctx.Err(); err != nil {
			return codes, fmt.Errorf("loadcell: collected %d of %d codes: %w", len(codes), n, err)
		}
		code, err := adc.ReadTimeout(250 * time.Millisecond)
		switch {
		case err != nil && isTimeout(err):
			continue
		case err != nil:
			return codes, fmt.Errorf("loadcell: collected %d of %d codes: %w", len(codes), n, err)
		case code == -1:
			continue
		}
		codes = append(codes, code)
	}
	return codes, nil
}

// CalibrationKey is the bin id under which Calibrated looks up a channel of
// bin read in mode: bin itself for ModeA128, bin + ":" + mode otherwise
// (e.g. "shelf-01/bin-03:A64"), because the gain of each mode differs from
// its nominal value from chip to chip and must be calibrated on its own.
func CalibrationKey(bin string, mode Mode) string {
	if mode == ModeA128 {
		return bin
	}
	return bin + ":" + mode.String()
}

// Calibrated returns a copy of chans with Offset and CountsPerGram taken
// from f. Each channel is looked up by CalibrationKey(bin, Mode), where bin
// is Channel.Bin or, when that is empty, Stream without its "loadcell/"
// prefix. A channel missing from f is an error wrapping ErrNoCalibration
// that names the bin id.
func Calibrated(f calibration.File, chans []Channel) ([]Channel, error) {
	out := make([]Channel, len(chans))
	var missing []string
	for i, c := range chans {
		bin := c.Bin
		if bin == "" {
			bin = strings.TrimPrefix(string(c.Stream), "loadcell/")
		}
		key := CalibrationKey(bin, c.Mode)
		cal, ok := f.Lookup(key)
		if !ok {
			missing = append(missing, fmt.Sprintf("%q", key))
			continue
		}
		c.Offset, c.CountsPerGram = cal.Offset, cal.CountsPerGram
		out[i] = c
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w for bin %s", ErrNoCalibration, strings.Join(missing, ", "))
	}
	return out, nil
}
