package calibration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Save adds or replaces cals' bins in the calibration file at path and
// keeps every other bin. It is the one writer of calibration files (the
// status page, the tare and calibrate commands and `shelfctl calibrate
// --out` all use it):
//
//   - writers are serialised by an exclusive flock on the file's
//     directory, so two tares at once (page and command, or the daemon and
//     shelfctl) cannot lose each other's bin in the read-modify-write;
//   - the new file is written beside the old one, synced, renamed over it
//     and the directory synced, so a crash leaves the old file or the new
//     one, never half.
func Save(path string, cals ...Calibration) error {
	dir := filepath.Dir(path)
	unlock, err := lockDir(dir)
	if err != nil {
		return fmt.Errorf("calibration file %s: %w", path, err)
	}
	defer unlock()

	var f File
	if r, err := os.Open(path); err == nil {
		f, err = Parse(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, cal := range cals {
		replaced := false
		for i := range f.Channels {
			if f.Channels[i].Bin == cal.Bin {
				f.Channels[i], replaced = cal, true
			}
		}
		if !replaced {
			f.Channels = append(f.Channels, cal)
		}
	}
	w, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := w.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := Write(w, f); err != nil {
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
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// lockDir takes an exclusive flock on dir (blocking) and returns its
// release. flock locks belong to the open file description, so two
// goroutines of one process exclude each other as two processes do.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(d.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { d.Close() }, nil // closing releases the lock
}
