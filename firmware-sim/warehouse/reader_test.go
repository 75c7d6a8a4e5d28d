package warehouse_test

import (
	"errors"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
)

// fakeClock advances only when slept on.
type fakeClock struct {
	now   time.Time
	slept time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(d time.Duration) {
	c.now = c.now.Add(d)
	c.slept += d
}

func TestReaderPacesCodesInOrder(t *testing.T) {
	cfg := warehouse.DefaultConfig()
	cfg.Speed = 1000
	w := mustNew(t, cfg)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &fakeClock{now: start}
	r := w.NewReaderClock(3, start, clk)
	for k := range int64(500) {
		code, err := r.ReadTimeout(time.Second)
		if err != nil {
			t.Fatalf("read %d: %v", k, err)
		}
		if want := w.CodeAt(3, k); code != want {
			t.Fatalf("read %d = %d, want CodeAt = %d", k, code, want)
		}
		// 10 Hz accelerated 1000× is one sample every 100 µs
		if want := start.Add(time.Duration(k) * 100 * time.Microsecond); !clk.now.Equal(want) {
			t.Fatalf("read %d returned at %v, want %v", k, clk.now.Sub(start), want.Sub(start))
		}
	}
	if r.Next() != 500 {
		t.Errorf("Next = %d, want 500", r.Next())
	}
}

func TestReaderRealClock(t *testing.T) {
	cfg := warehouse.DefaultConfig()
	cfg.Speed = 1000
	w := mustNew(t, cfg)
	var dev interface {
		ReadTimeout(time.Duration) (int32, error)
	} = w.NewReader(0, time.Now())
	for k := range int64(20) {
		code, err := dev.ReadTimeout(time.Second)
		if err != nil {
			t.Fatalf("read %d: %v", k, err)
		}
		if want := w.CodeAt(0, k); code != want {
			t.Fatalf("read %d = %d, want %d", k, code, want)
		}
	}
	late := w.NewReader(0, time.Now().Add(time.Hour))
	if _, err := late.ReadTimeout(time.Millisecond); !errors.Is(err, warehouse.ErrTimeout) {
		t.Fatalf("read an hour early: %v, want ErrTimeout", err)
	}
}

func TestReaderTimeout(t *testing.T) {
	w := mustNew(t, warehouse.DefaultConfig()) // real time, 10 Hz
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &fakeClock{now: start}
	r := w.NewReaderClock(1, start, clk)
	if _, err := r.ReadTimeout(0); err != nil { // sample 0 is due now
		t.Fatalf("read 0: %v", err)
	}
	_, err := r.ReadTimeout(40 * time.Millisecond) // sample 1 is due in 100 ms
	if !errors.Is(err, warehouse.ErrTimeout) {
		t.Fatalf("read 1 with 40 ms timeout: %v, want ErrTimeout", err)
	}
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() {
		t.Fatalf("%v has no Timeout() true", err)
	}
	if clk.slept != 40*time.Millisecond || r.Next() != 1 {
		t.Fatalf("after timeout: slept %v, next %d; want 40ms, 1", clk.slept, r.Next())
	}
	code, err := r.ReadTimeout(80 * time.Millisecond) // 60 ms left
	if err != nil || code != w.CodeAt(1, 1) {
		t.Fatalf("read 1 again = %d, %v; want %d", code, err, w.CodeAt(1, 1))
	}
}
