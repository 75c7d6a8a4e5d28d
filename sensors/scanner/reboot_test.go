package scanner

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/scannersim"
)

// TestRebootReopensTheDevice: Reboot closes the serial device and opens it
// again at once (a second open, no read error, no retry wait), the scan
// read before it was delivered, and scans after it arrive; before Run it
// is refused.
func TestRebootReopensTheDevice(t *testing.T) {
	sim, link := newSim(t, scannersim.CR)
	idle, err := New("idle", Serial(link, 115200), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := idle.Reboot(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("reboot of a source not running: %v", err)
	}
	// A long retry: a reboot that waited it out would take a minute.
	src, sink := running(t, sim, link, Options{Retry: time.Minute})
	waitStats(t, src, "open", func(s Stats) bool { return s.Opens == 1 })
	if err := sim.Scan("96385074"); err != nil {
		t.Fatal(err)
	}
	if sc := sink.next(t); sc.Code != "96385074" {
		t.Fatalf("before the reboot: %+v", sc)
	}
	if err := src.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); st.Opens != 2 || st.Reboots != 1 || st.ReadErrors != 0 || st.Retries != 0 {
		t.Fatalf("stats after the reboot %+v: want a second open, counted as a reboot, no read error, no retry", st)
	}
	if err := sim.Scan("4006381333931"); err != nil {
		t.Fatal(err)
	}
	if sc := sink.next(t); sc.Code != "4006381333931" {
		t.Fatalf("after the reboot: %+v", sc)
	}
	sink.none(t)
}

// TestRebootOfAnUnpluggedScanner: with the device gone, Reboot tries at
// once instead of waiting out the retry, and reports the failed open.
func TestRebootOfAnUnpluggedScanner(t *testing.T) {
	_, link := newSim(t, scannersim.CR)
	src, _ := running(t, nil, link+".gone", Options{Retry: time.Minute})
	waitStats(t, src, "the failed open", func(s Stats) bool { return s.OpenErrors == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := src.Reboot(ctx); err == nil {
		t.Fatal("reboot of a missing device succeeded")
	} else {
		t.Logf("refused: %v", err)
	}
	if st := src.Stats(); st.OpenErrors != 2 {
		t.Fatalf("stats %+v: want the reboot's open tried at once", st)
	}
}
