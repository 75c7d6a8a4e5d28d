package rfid

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"periph.io/x/devices/v3/mfrc522"

	"github.com/shelfgate/shelfgate/firmware-sim/rfidsim"
	"github.com/shelfgate/shelfgate/gateway"
)

type chanSink struct {
	ch  chan Tag
	err error
}

var _ gateway.Emitter = (*chanSink)(nil)

func (s *chanSink) Emit(context.Context, []gateway.Reading) error {
	return errors.New("a tag reader emitted readings")
}

// EmitEvents hands the tag events it is given to the test as Tags.
func (s *chanSink) EmitEvents(_ context.Context, evs []gateway.Event) error {
	if s.err != nil {
		return s.err
	}
	for _, ev := range evs {
		if ev.Kind != gateway.EventTag {
			return fmt.Errorf("event kind %q", ev.Kind)
		}
		s.ch <- Tag{Stream: ev.Stream, Time: ev.Time, UID: ev.Detail}
	}
	return nil
}

// rig is a Source running periph's real mfrc522 driver over rfidsim.
type rig struct {
	sim  *rfidsim.Sim
	src  *Source
	sink *chanSink
}

func newRig(t *testing.T) *rig { return newRigAbsent(t, 3) }

func newRigAbsent(t *testing.T, absent int) *rig {
	t.Helper()
	sim := rfidsim.New(nil)
	dev, err := mfrc522.NewSPI(sim, sim.Reset(), sim.IRQ())
	if err != nil {
		t.Fatal(err)
	}
	sink := &chanSink{ch: make(chan Tag, 100)}
	src, err := New("dock-1", FromDev(dev), Options{Timeout: 20 * time.Millisecond, Interval: time.Millisecond, AbsentPolls: absent})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &rig{sim: sim, src: src, sink: sink}
}

// wait polls the counters until ok holds; the limit only stops a broken
// test from hanging.
func (r *rig) wait(t *testing.T, what string, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.src.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rig) tag(t *testing.T, uid string) {
	t.Helper()
	select {
	case tg := <-r.sink.ch:
		if tg.UID != uid || tg.Stream != "rfid/dock-1" || tg.Time.IsZero() {
			t.Fatalf("tag %+v; want %s on rfid/dock-1", tg, uid)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no tag %s", uid)
	}
}

func (r *rig) noTag(t *testing.T) {
	t.Helper()
	select {
	case tg := <-r.sink.ch:
		t.Fatalf("unexpected tag %+v", tg)
	default:
	}
}

// hold waits for n more polls that see the presented tag.
func (r *rig) hold(t *testing.T, n int64) Stats {
	t.Helper()
	h := r.src.Stats().Held
	return r.wait(t, "held polls", func(s Stats) bool { return s.Held >= h+n })
}

// gone waits for n more empty polls.
func (r *rig) gone(t *testing.T, n int64) Stats {
	t.Helper()
	e := r.src.Stats().Empty
	return r.wait(t, "empty polls", func(s Stats) bool { return s.Empty >= e+n })
}

var badge = []byte{0x04, 0xA2, 0x2B, 0x9C}

func TestPresentHoldRemovePresent(t *testing.T) {
	tests := []struct {
		name string
		uid  []byte
		hex  string
	}{
		{"single size", badge, "04A22B9C"},
		{"double size", []byte{0x04, 0x52, 0x9A, 0x62, 0x3C, 0x5E, 0x80}, "04529A623C5E80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.gone(t, 1)
			if err := r.sim.Present(tt.uid); err != nil {
				t.Fatal(err)
			}
			r.tag(t, tt.hex)
			r.hold(t, 5) // held on the reader: no second read
			r.noTag(t)
			r.sim.Remove()
			r.gone(t, 3)
			if err := r.sim.Present(tt.uid); err != nil {
				t.Fatal(err)
			}
			r.tag(t, tt.hex)
			st := r.hold(t, 1)
			r.noTag(t)
			if st.Reads != 2 || st.Errors != 0 {
				t.Errorf("stats %+v; want 2 reads, no errors", st)
			}
		})
	}
}

func TestBriefGapIsOnePresentation(t *testing.T) {
	r := newRigAbsent(t, 20) // a gap can last a few polls more than we wait for
	if err := r.sim.Present(badge); err != nil {
		t.Fatal(err)
	}
	r.tag(t, "04A22B9C")
	r.sim.Remove()
	r.gone(t, 1) // far fewer than AbsentPolls empty polls
	if err := r.sim.Present(badge); err != nil {
		t.Fatal(err)
	}
	r.hold(t, 2)
	r.noTag(t)
	if st := r.src.Stats(); st.Reads != 1 {
		t.Errorf("stats %+v; want one read", st)
	}
}

func TestDifferentTagIsNewPresentation(t *testing.T) {
	r := newRig(t)
	if err := r.sim.Present(badge); err != nil {
		t.Fatal(err)
	}
	r.tag(t, "04A22B9C")
	if err := r.sim.Present([]byte{0x11, 0x22, 0x33, 0x44}); err != nil {
		t.Fatal(err)
	}
	r.tag(t, "11223344")
}

func TestFaults(t *testing.T) {
	for _, f := range []rfidsim.Fault{rfidsim.FaultDisconnect, rfidsim.FaultBusError} {
		t.Run(f.String(), func(t *testing.T) {
			r := newRig(t)
			if err := r.sim.Present(badge); err != nil {
				t.Fatal(err)
			}
			r.tag(t, "04A22B9C")
			r.sim.InjectFault(f)
			before := r.src.Stats()
			r.wait(t, "errors", func(s Stats) bool { return s.Errors >= before.Errors+3 })
			r.sim.ClearFault()
			// The badge stayed on the reader through the fault: once the
			// reader is back it is still the same presentation.
			r.hold(t, 3)
			r.noTag(t)
			// Recovery: a new presentation is read.
			r.sim.Remove()
			r.gone(t, 3)
			if err := r.sim.Present(badge); err != nil {
				t.Fatal(err)
			}
			r.tag(t, "04A22B9C")
			if st := r.src.Stats(); st.Reads != 2 {
				t.Errorf("stats %+v; want 2 reads", st)
			}
		})
	}
}

func TestDebouncer(t *testing.T) {
	// Each step is a poll: a UID, or "" for an empty field.
	tests := []struct {
		name   string
		absent int
		polls  []string
		want   []bool // new presentation, for UID polls
	}{
		{"held", 3, []string{"A", "A", "A"}, []bool{true, false, false}},
		{"short gap", 3, []string{"A", "", "", "A"}, []bool{true, false}},
		{"long gap", 3, []string{"A", "", "", "", "A"}, []bool{true, true}},
		{"swap", 3, []string{"A", "B", "A"}, []bool{true, true, true}},
		{"zero means one", 0, []string{"A", "", "A"}, []bool{true, true}},
		{"gap reset by a read", 2, []string{"A", "", "A", "", "A"}, []bool{true, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Debouncer{AbsentPolls: tt.absent}
			var got []bool
			for _, p := range tt.polls {
				if p == "" {
					d.Empty()
					continue
				}
				got = append(got, d.Seen(p))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// fakeReader is a hand-written Reader for cases the simulator cannot make.
type fakeReader struct {
	version byte
	uid     []byte
	err     error
}

func (f *fakeReader) ReadUID(time.Duration) ([]byte, error) { return f.uid, f.err }
func (f *fakeReader) Version() (byte, error)                { return f.version, nil }

func TestBadAnswersCounted(t *testing.T) {
	for _, tt := range []struct {
		name string
		r    *fakeReader
	}{
		{"unknown version", &fakeReader{version: 0x00, uid: badge}},
		{"odd uid", &fakeReader{version: 0x92, uid: []byte{1, 2, 3}}},
		{"driver error", &fakeReader{version: 0x92, err: errors.New("mfrc522 lowlevel: card write error")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := &chanSink{ch: make(chan Tag, 1)}
			src, err := New("x", tt.r, Options{Timeout: time.Millisecond, Interval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, sink) }()
			deadline := time.Now().Add(10 * time.Second)
			for src.Stats().Errors < 2 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if st := src.Stats(); st.Errors < 2 || st.Reads != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestSinkErrorStopsRun(t *testing.T) {
	sink := &chanSink{err: errors.New("outbox full")}
	src, err := New("x", &fakeReader{version: 0x92, uid: badge}, Options{Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(context.Background(), sink)
	if !errors.Is(err, sink.err) || !strings.HasPrefix(err.Error(), "rfid: x: ") {
		t.Fatalf("Run = %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	r := &fakeReader{}
	for _, tt := range []struct {
		name string
		f    func() (*Source, error)
	}{
		{"empty name", func() (*Source, error) { return New("", r, Options{}) }},
		{"no reader", func() (*Source, error) { return New("a", nil, Options{}) }},
	} {
		if _, err := tt.f(); err == nil || !strings.HasPrefix(err.Error(), "rfid: ") {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// TestScenario plays testdata/dock-shift.txt against the driver and simulator.
func TestScenario(t *testing.T) {
	data, err := os.ReadFile("testdata/dock-shift.txt")
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	for i, line := range strings.Split(string(data), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) == 2 && (f[0] == "remove" || f[0] == "clear") {
			f = []string{f[0], "", f[1]}
		}
		if len(f) != 3 {
			t.Fatalf("line %d: %q: want action, argument, reads", i+1, line)
		}
		arg, want := f[1], f[2]
		n, _ := strconv.Atoi(arg)
		switch f[0] {
		case "present":
			uid, err := hex.DecodeString(arg)
			if err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			if err := r.sim.Present(uid); err != nil {
				t.Fatalf("line %d: %v", i+1, err)
			}
			r.tag(t, strings.ToUpper(arg))
		case "remove":
			r.sim.Remove()
		case "hold":
			r.hold(t, int64(n))
		case "empty":
			r.gone(t, int64(n))
		case "fault":
			r.sim.InjectFault(map[string]rfidsim.Fault{"disconnect": rfidsim.FaultDisconnect, "bus_error": rfidsim.FaultBusError}[arg])
		case "errors":
			e := r.src.Stats().Errors
			r.wait(t, "errors", func(s Stats) bool { return s.Errors >= e+int64(n) })
		case "clear":
			r.sim.ClearFault()
		default:
			t.Fatalf("line %d: unknown action %q", i+1, f[0])
		}
		if got := strconv.FormatInt(r.src.Stats().Reads, 10); got != want {
			t.Fatalf("line %d (%s): %s reads; want %s", i+1, strings.TrimSpace(line), got, want)
		}
	}
	r.noTag(t)
}
