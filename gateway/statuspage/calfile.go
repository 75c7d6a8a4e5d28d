package statuspage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shelfgate/shelfgate/sensors/calibration"
)

// SaveCalibration adds or replaces cal's bin in the calibration file at
// path, as `shelfctl calibrate --out` does: it writes a temporary file in
// the same directory, syncs it, renames it over the old one and syncs the
// directory, so a crash leaves the old file or the new one, never half.
func SaveCalibration(path string, cal calibration.Calibration) error {
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
	w, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := w.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
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
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
