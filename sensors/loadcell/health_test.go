package loadcell

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/gateway"
)

// sink is a hand-written gateway.Emitter.
type sink struct {
	mu  sync.Mutex
	rs  []gateway.Reading
	evs []gateway.Event
}

var (
	_ gateway.Emitter = (*sink)(nil)
)

func (s *sink) Emit(_ context.Context, rs []gateway.Reading) error {
	s.mu.Lock()
	s.rs = append(s.rs, rs...)
	s.mu.Unlock()
	return nil
}

func (s *sink) EmitEvents(_ context.Context, evs []gateway.Event) error {
	s.mu.Lock()
	s.evs = append(s.evs, evs...)
	s.mu.Unlock()
	return nil
}

func (s *sink) events() []gateway.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.evs)
}

func (s *sink) readings() []gateway.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rs)
}

func (s *sink) nreadings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rs)
}

// running is a Source running into a sink until stop.
type running struct {
	t      *testing.T
	src    *Source
	sink   *sink
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, src *Source) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, src: src, sink: &sink{}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- src.Run(ctx, r.sink) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// waitFor polls cond; it fails the test if cond does not hold within 20 s
// (a generous bound for a loaded machine, not a timing assertion).
func (r *running) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("gave up waiting for %s: stats %+v, health %+v, events %v", what, r.src.Stats(), r.src.Health(), details(r.sink.events()))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// more waits for n more readings.
func (r *running) more(n int) {
	r.t.Helper()
	from := r.sink.nreadings()
	r.waitFor(fmt.Sprintf("%d more readings", n), func() bool { return r.sink.nreadings() >= from+n })
}

func (r *running) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		r.t.Error(err)
	}
}

func details(evs []gateway.Event) []string {
	var ds []string
	for _, ev := range evs {
		ds = append(ds, ev.Detail)
	}
	return ds
}

// wobble is a live load-cell signal: 1000 g at 200 counts/g plus a few
// counts of sample-dependent noise, so no code repeats for long.
func wobble(k int64) int32 { return 50_000 + 200*1000 + int32(k%13) }

func TestFaultEpisodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   Mode
		inject func(*hx711sim.Sim)
		detail string
		// episodes is how many fault episodes to drive, default 2.
		episodes int64
		// check inspects the readings emitted while the fault was active.
		check func(t *testing.T, during []gateway.Reading)
	}{
		{name: "not ready", inject: func(s *hx711sim.Sim) { s.InjectFault(hx711sim.FaultNotReady) }, detail: "timeout",
			check: func(t *testing.T, during []gateway.Reading) {
				if len(during) > 2 { // at most what was sampled before the fault took hold
					t.Errorf("%d readings from a chip that is never ready", len(during))
				}
			}},
		{name: "frozen output", inject: func(s *hx711sim.Sim) { s.InjectFault(hx711sim.FaultStuck) }, detail: "stuck",
			check: func(t *testing.T, during []gateway.Reading) {
				if len(during) == 0 {
					t.Fatal("no readings while stuck")
				}
				for _, r := range during {
					if r.Quality != gateway.QualityStale {
						t.Fatalf("reading %+v during a stuck episode is not flagged stale", r)
					}
				}
			}},
		{name: "floating DOUT", inject: func(s *hx711sim.Sim) { s.InjectFault(hx711sim.FaultDisconnected) }, detail: "stuck",
			check: func(t *testing.T, during []gateway.Reading) {
				for _, r := range during {
					if r.Quality != gateway.QualityStale || r.Value != -250 { // code 0
						t.Fatalf("reading %+v from a floating DOUT: want stale -250 g", r)
					}
				}
			}},
		{name: "broken signal wire", inject: func(s *hx711sim.Sim) { s.StickAt(hx711sim.MaxCode) }, detail: "saturated",
			check: func(t *testing.T, during []gateway.Reading) {
				if len(during) == 0 {
					t.Fatal("no readings while saturated")
				}
				for _, r := range during {
					if r.Quality != gateway.QualitySaturated {
						t.Fatalf("reading %+v during saturation: want only QualitySaturated (never stale)", r)
					}
				}
			}},
		// periph's ReadTimeout cannot see a pin error (IsReady and
		// WaitForEdge return no error: a dead GPIO looks like a chip that
		// is never ready); its SetInputMode does, when Run selects A/64.
		{name: "pin error", mode: ModeA64, episodes: 1, inject: func(s *hx711sim.Sim) { s.InjectFault(hx711sim.FaultPinError) }, detail: "pin_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, dev := newCell(t, hx711sim.SignalFunc(wobble))
			cpg, off := 200.0, int32(50_000)
			if tc.mode == ModeA64 {
				cpg, off = 100, 25_000
			}
			src, err := New("cells", []Channel{{Stream: "loadcell/x", ADC: dev, Offset: off, CountsPerGram: cpg, Mode: tc.mode}},
				Options{Timeout: 30 * time.Millisecond, Backoff: 2 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if tc.mode != ModeA128 {
				// The mode is selected when Run starts: fail it from the
				// start so the error comes from the driver's pin writes.
				tc.inject(sim)
			}
			r := start(t, src)
			var during []gateway.Reading
			episodes := int64(cmp.Or(tc.episodes, 2))
			for ep := 1; ep <= int(episodes); ep++ {
				if ep > 1 || tc.mode == ModeA128 {
					r.more(10)
					tc.inject(sim)
				}
				r.waitFor("fault event", func() bool { return len(r.sink.events()) == 2*ep-1 })
				h := src.Health()[0]
				if h.Faults.String() != tc.detail || h.Healthy() || h.Since.IsZero() {
					t.Errorf("health during fault: %+v, want faults %q", h, tc.detail)
				}
				n := r.sink.nreadings()
				if tc.detail != "timeout" && tc.detail != "pin_error" {
					r.more(15) // the faulty readings keep flowing
				} else {
					time.Sleep(20 * time.Millisecond)
				}
				during = append(during, r.sink.readings()[n:]...)
				sim.ClearFault()
				r.waitFor("recovery event", func() bool { return len(r.sink.events()) == 2*ep })
				r.more(30) // healthy readings: no further events may follow
			}
			r.stop()

			var want []string
			for range episodes {
				want = append(want, tc.detail, "recovered:"+tc.detail)
			}
			evs := r.sink.events()
			if got := details(evs); !slices.Equal(got, want) {
				t.Fatalf("events %q, want %q", got, want)
			}
			for _, ev := range evs {
				if ev.Kind != gateway.EventSensorFault || ev.Stream != "loadcell/x" || ev.Time.IsZero() {
					t.Errorf("event %+v: want kind sensor_fault on loadcell/x with a time", ev)
				}
			}
			if h := src.Health()[0]; !h.Healthy() || h.Episodes != episodes || !h.Since.IsZero() {
				t.Errorf("health after recovery: %+v", h)
			}
			if st := src.Stats(); st.Faults != episodes || st.Recoveries != episodes {
				t.Errorf("stats %+v: want %d faults and recoveries", st, episodes)
			}
			if tc.check != nil {
				tc.check(t, during)
			}
			// Whatever came after the last recovery is good again.
			rs := r.sink.readings()
			for _, rd := range rs[len(rs)-10:] {
				if rd.Quality != 0 || rd.Value < 999 || rd.Value > 1001 {
					t.Fatalf("reading %+v after recovery: want a clean 1000 g", rd)
				}
			}
		})
	}
}

// plain is an ADC without input mode selection.
type plain struct{ ADC }

func TestModeNeedsSetter(t *testing.T) {
	_, dev := newCell(t, hx711sim.SignalFunc(wobble))
	_, err := New("x", []Channel{{Stream: "s", ADC: plain{dev}, CountsPerGram: 1, Mode: ModeB32}}, Options{})
	if !errors.Is(err, ErrBadMode) {
		t.Errorf("New with ModeB32 on an ADC without SetInputMode: %v, want ErrBadMode", err)
	}
	_, err = New("x", []Channel{{Stream: "s", ADC: dev, CountsPerGram: 1, Mode: 7}}, Options{})
	if !errors.Is(err, ErrBadMode) {
		t.Errorf("New with mode 7: %v, want ErrBadMode", err)
	}
}

func TestFaultString(t *testing.T) {
	for f, want := range map[Fault]string{0: "", FaultTimeout: "timeout", FaultStuck | FaultPinError: "stuck,pin_error", FaultSaturated: "saturated"} {
		if got := f.String(); got != want {
			t.Errorf("Fault(%d).String() = %q, want %q", f, got, want)
		}
	}
}

// failing is an Emitter whose Emit fails after ok calls.
type failing struct {
	sink
	ok    int
	calls int
}

var errOutboxFull = errors.New("outbox full")

func (f *failing) Emit(ctx context.Context, rs []gateway.Reading) error {
	f.mu.Lock()
	f.calls++
	fail := f.calls > f.ok
	f.mu.Unlock()
	if fail {
		return errOutboxFull
	}
	return f.sink.Emit(ctx, rs)
}

func TestRunStopsOnEmitError(t *testing.T) {
	_, dev := newCell(t, hx711sim.SignalFunc(wobble))
	src, err := New("cells", []Channel{{Stream: "s", ADC: dev, Offset: 50_000, CountsPerGram: 200}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- src.Run(context.Background(), &failing{ok: 3}) }()
	select {
	case err := <-done:
		if !errors.Is(err, errOutboxFull) || !strings.HasPrefix(err.Error(), "loadcell: ") {
			t.Errorf("Run = %v, want loadcell: ... outbox full", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop after Emit failed")
	}
}

// TestNoFalseFaults: noise bursts, slow conversions and DOUT glitches are
// not faults: no event, readings keep flowing unflagged.
func TestNoFalseFaults(t *testing.T) {
	for _, f := range []hx711sim.Fault{hx711sim.FaultNoise, hx711sim.FaultSlow, hx711sim.FaultGlitch} {
		t.Run(f.String(), func(t *testing.T) {
			sim, dev := newCell(t, hx711sim.SignalFunc(wobble))
			src, err := New("cells", []Channel{{Stream: "s", ADC: dev, Offset: 50_000, CountsPerGram: 200}}, Options{Timeout: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			r := start(t, src)
			r.more(5)
			sim.InjectFault(f)
			r.more(40)
			sim.ClearFault()
			r.more(5)
			r.stop()
			if evs := r.sink.events(); len(evs) != 0 {
				t.Errorf("events %v", details(evs))
			}
			for _, rd := range r.sink.readings() {
				if rd.Quality != 0 {
					t.Fatalf("reading %+v flagged", rd)
				}
			}
			if h := src.Health()[0]; !h.Healthy() || h.Episodes != 0 {
				t.Errorf("health %+v", h)
			}
		})
	}
}
