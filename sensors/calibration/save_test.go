package calibration

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestSaveKeepsOtherBinsAndReplacesItsOwn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cal.txt")
	day := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	a := Calibration{Bin: "A1", Offset: 100, CountsPerGram: 420, Measured: day}
	b := Calibration{Bin: "B2", Offset: -50, CountsPerGram: 410, Measured: day}
	if err := Save(path, a, b); err != nil {
		t.Fatal(err)
	}
	a2 := a
	a2.Offset = 123
	if err := Save(path, a2); err != nil {
		t.Fatal(err)
	}
	f := read(t, path)
	if got, _ := f.Lookup("A1"); got.Offset != 123 {
		t.Errorf("A1 offset %d, want 123", got.Offset)
	}
	if got, ok := f.Lookup("B2"); !ok || got.Offset != -50 {
		t.Errorf("B2 = %+v, %v; want kept", got, ok)
	}
	if len(f.Channels) != 2 {
		t.Errorf("%d channels, want 2", len(f.Channels))
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want the file alone (no temporary left)", len(ents))
	}
}

// TestSaveConcurrentWritersLoseNoBin has many writers (as the status page,
// the tare command and shelfctl can be at once) each save its own bin:
// every bin must be in the file afterwards. Without the lock the
// read-modify-write loses bins.
func TestSaveConcurrentWritersLoseNoBin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cal.txt")
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- Save(path, Calibration{Bin: fmt.Sprintf("bin%02d", i), Offset: int32(i), CountsPerGram: 400 + float64(i), Measured: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f := read(t, path)
	for i := range n {
		if _, ok := f.Lookup(fmt.Sprintf("bin%02d", i)); !ok {
			t.Errorf("bin%02d lost (file holds %d of %d bins)", i, len(f.Channels), n)
		}
	}
}

func TestSaveRefusesAGarbageFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cal.txt")
	if err := os.WriteFile(path, []byte("this is not a calibration file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, Calibration{Bin: "A1", Offset: 1, CountsPerGram: 400, Measured: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Fatal("Save over a garbage file succeeded; it would have thrown the file away")
	}
	if b, _ := os.ReadFile(path); string(b) != "this is not a calibration file\n" {
		t.Errorf("the garbage file was changed: %q", b)
	}
}

func read(t *testing.T, path string) File {
	t.Helper()
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
