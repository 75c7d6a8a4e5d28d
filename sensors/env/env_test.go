package env

import (
	"context"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"

	"github.com/shelfgate/shelfgate/firmware-sim/envsim"
	"github.com/shelfgate/shelfgate/gateway"
)

type chanEmitter struct {
	ch  chan gateway.Reading
	err error
}

func (c *chanEmitter) EmitEvents(context.Context, []gateway.Event) error { return c.err }

func newEmitter() *chanEmitter { return &chanEmitter{ch: make(chan gateway.Reading, 10000)} }

func (c *chanEmitter) Emit(_ context.Context, rs []gateway.Reading) error {
	if c.err != nil {
		return c.err
	}
	for _, r := range rs {
		c.ch <- r
	}
	return nil
}

// next returns the next reading; the limit only stops a broken test.
func (c *chanEmitter) next(t *testing.T) gateway.Reading {
	t.Helper()
	select {
	case r := <-c.ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no reading")
		return gateway.Reading{}
	}
}

func run(t *testing.T, src *Source, emit gateway.Emitter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, emit) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func waitStats(t *testing.T, src *Source, what string, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := src.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

func newBME(t *testing.T, e envsim.Env) (*envsim.Sim, *bmxx80.Dev) {
	t.Helper()
	opts := envsim.DefaultOpts
	opts.SpeedUp = 100
	sim, err := envsim.New(envsim.Constant(e), &opts)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := bmxx80.NewI2C(sim, 0x76, &bmxx80.DefaultOpts)
	if err != nil {
		t.Fatal(err)
	}
	return sim, dev
}

// humidityStep returns the %RH of one humidity ADC count around e: with a
// real chip's calibration it is a few thousandths of a %RH, coarser than
// the 1/1024 %RH output step.
func humidityStep(t *testing.T, sim *envsim.Sim, e envsim.Env) float64 {
	t.Helper()
	hi := e
	hi.HumidityRH++
	_, _, a := sim.Raw(e)
	_, _, b := sim.Raw(hi)
	if b == a {
		t.Fatalf("humidity ADC does not move: %d", a)
	}
	return 1 / math.Abs(float64(b-a))
}

// checkTriple reads one temperature, pressure, humidity triple and checks
// it against e within the BME280's resolution: 0.01 °C, 1 Pa (the ADC
// step, well above the 1/256 Pa output step) and for humidity one ADC count
// plus the 1/1024 %RH output step.
func checkTriple(t *testing.T, em *chanEmitter, sim *envsim.Sim, name string, e envsim.Env) {
	t.Helper()
	hStep := humidityStep(t, sim, e)
	if hStep > 0.02 {
		t.Fatalf("humidity step %v %%RH: not the BME280's resolution", hStep)
	}
	want := map[gateway.StreamID]struct {
		v, tol float64
		unit   string
	}{
		gateway.StreamID("env/" + name + "/temperature"): {e.TempC, 0.01, "°C"},
		gateway.StreamID("env/" + name + "/pressure"):    {e.PressurePa / 100, 0.01, "hPa"},
		gateway.StreamID("env/" + name + "/humidity"):    {e.HumidityRH, hStep + 1.0/1024, "%RH"},
	}
	for range 3 {
		r := em.next(t)
		w, ok := want[r.Stream]
		if !ok {
			t.Fatalf("unexpected stream %q (or a repeat): %+v", r.Stream, r)
		}
		delete(want, r.Stream)
		if math.Abs(r.Value-w.v) > w.tol+1e-9 || r.Unit != w.unit || r.Quality != 0 || r.Time.IsZero() {
			t.Errorf("%s = %v %s (q %v); want %v ± %v %s", r.Stream, r.Value, r.Unit, r.Quality, w.v, w.tol, w.unit)
		}
	}
}

func TestBME280Values(t *testing.T) {
	tests := []struct {
		name string
		env  envsim.Env
	}{
		{"office", envsim.Env{TempC: 21.5, PressurePa: 101325, HumidityRH: 45}},
		{"cold room", envsim.Env{TempC: -18.25, PressurePa: 99870, HumidityRH: 85.5}},
		{"loading dock summer", envsim.Env{TempC: 34.07, PressurePa: 100512, HumidityRH: 20.3}},
		{"mountain site", envsim.Env{TempC: 4, PressurePa: 78000, HumidityRH: 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, dev := newBME(t, tt.env)
			src, err := New("env-1", []Channel{{Name: "room", Kind: BME280, Sensor: dev}}, Options{Interval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			em := newEmitter()
			run(t, src, em)
			checkTriple(t, em, sim, "room", tt.env)
			checkTriple(t, em, sim, "room", tt.env)
		})
	}
}

func TestBME280Disconnect(t *testing.T) {
	e := envsim.Env{TempC: 3.5, PressurePa: 101000, HumidityRH: 70}
	for _, reopen := range []bool{false, true} {
		name := map[bool]string{false: "driver", true: "reopen"}[reopen]
		t.Run(name, func(t *testing.T) {
			sim, dev := newBME(t, e)
			var s Sensor = dev
			if reopen {
				s = Reopen(func() (Sensor, error) {
					d, err := bmxx80.NewI2C(sim, 0x76, &bmxx80.DefaultOpts)
					if err != nil {
						return nil, err
					}
					return d, nil
				})
			}
			src, err := New("env-1", []Channel{{Name: "room", Kind: BME280, Sensor: s}}, Options{Interval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			em := newEmitter()
			run(t, src, em)
			checkTriple(t, em, sim, "room", e)
			sim.InjectFault(envsim.FaultDisconnect)
			st := waitStats(t, src, "errors", func(s Stats) bool { return s.Errors >= 3 })
			sim.ClearFault()
			waitStats(t, src, "recovery", func(s Stats) bool { return s.Samples >= st.Samples+2 })
			// Drain what was read before the fault, then check fresh values.
			for len(em.ch) > 0 {
				<-em.ch
			}
			checkTriple(t, em, sim, "room", e)
		})
	}
}

// fakeSensor is a hand-written Sensor playing back results; there is no
// 1-wire simulator, so the DS18B20 path is tested with it.
type fakeSensor struct {
	mu      sync.Mutex
	results []fakeResult
	calls   int
}

type fakeResult struct {
	env physic.Env
	err error
}

func (f *fakeSensor) Sense(e *physic.Env) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.results[min(f.calls, len(f.results)-1)]
	f.calls++
	*e = r.env
	return r.err
}

func celsius(c float64) physic.Env {
	return physic.Env{Temperature: physic.ZeroCelsius + physic.Temperature(math.Round(c*1e9))*physic.NanoKelvin}
}

// TestDS18B20 plays testdata/ds18b20-freezer.txt through a fake sensor.
func TestDS18B20(t *testing.T) {
	data, err := os.ReadFile("testdata/ds18b20-freezer.txt")
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeSensor{}
	var emitted []float64
	var want Stats
	for i, line := range strings.Split(string(data), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case f[0] == "error":
			fake.results = append(fake.results, fakeResult{err: errors.New(strings.Join(f[1:], " "))})
			want.Errors++
			continue
		case len(f) != 2:
			t.Fatalf("line %d: %q", i+1, line)
		}
		c, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		fake.results = append(fake.results, fakeResult{env: celsius(c)})
		want.Samples++
		switch f[1] {
		case "emitted":
			emitted = append(emitted, c)
			want.Readings++
		case "glitch":
			want.Glitches++
		case "out_of_range":
			want.OutOfRange++
		default:
			t.Fatalf("line %d: unknown outcome %q", i+1, f[1])
		}
	}
	// After the recording the sensor fails for good, so the counts settle.
	fake.results = append(fake.results, fakeResult{err: errors.New("unplugged")})
	src, err := New("env-1", []Channel{{Name: "freezer-2", Kind: DS18B20, Sensor: fake}}, Options{Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	em := newEmitter()
	run(t, src, em)
	for i, w := range emitted {
		r := em.next(t)
		if r.Stream != "env/freezer-2/temperature" || math.Abs(r.Value-w) > 1e-9 || r.Unit != "°C" {
			t.Fatalf("reading %d = %+v; want %v °C on env/freezer-2/temperature", i, r, w)
		}
	}
	st := waitStats(t, src, "the whole recording", func(s Stats) bool { return s.Errors > want.Errors })
	st.Errors = want.Errors // the final "unplugged" ones
	if st != want {
		t.Errorf("stats %+v; want %+v", st, want)
	}
}

func TestOutOfRangeDropsOnlyThatQuantity(t *testing.T) {
	e := celsius(20)
	e.Pressure = 1013 * 100 * physic.Pascal
	e.Humidity = 120 * physic.PercentRH
	src, err := New("env-1", []Channel{{Name: "r", Kind: BME280, Sensor: &fakeSensor{results: []fakeResult{{env: e}}}}}, Options{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	em := newEmitter()
	run(t, src, em)
	got := map[gateway.StreamID]float64{}
	for range 2 {
		r := em.next(t)
		got[r.Stream] = r.Value
	}
	if got["env/r/temperature"] != 20 || math.Abs(got["env/r/pressure"]-1013) > 1e-9 {
		t.Errorf("readings %v", got)
	}
	waitStats(t, src, "out of range", func(s Stats) bool { return s.OutOfRange == 1 && s.Readings == 2 })
}

func TestBMP280HasNoHumidity(t *testing.T) {
	e := celsius(20)
	e.Pressure = 1000 * 100 * physic.Pascal
	src, err := New("env-1", []Channel{{Name: "r", Kind: BMP280, Sensor: &fakeSensor{results: []fakeResult{{env: e}}}}}, Options{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	em := newEmitter()
	run(t, src, em)
	for _, want := range []gateway.StreamID{"env/r/temperature", "env/r/pressure"} {
		if r := em.next(t); r.Stream != want {
			t.Fatalf("stream %q; want %q", r.Stream, want)
		}
	}
	st := waitStats(t, src, "sample", func(s Stats) bool { return s.Samples == 1 })
	if st.Readings != 2 || st.OutOfRange != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestEmitErrorStopsRun(t *testing.T) {
	em := newEmitter()
	em.err = errors.New("outbox full")
	src, err := New("env-1", []Channel{{Name: "r", Kind: DS18B20, Sensor: &fakeSensor{results: []fakeResult{{env: celsius(5)}}}}}, Options{Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(context.Background(), em)
	if !errors.Is(err, em.err) || !strings.HasPrefix(err.Error(), "env: env-1: ") {
		t.Fatalf("Run = %v", err)
	}
}

func TestReopenOpenError(t *testing.T) {
	bad := errors.New("i2c: NACK")
	calls := 0
	s := Reopen(func() (Sensor, error) {
		calls++
		if calls == 1 {
			return nil, bad
		}
		return &fakeSensor{results: []fakeResult{{env: celsius(1)}}}, nil
	})
	var e physic.Env
	if err := s.Sense(&e); !errors.Is(err, bad) {
		t.Fatalf("first Sense = %v; want the open error", err)
	}
	if err := s.Sense(&e); err != nil || Celsius(e.Temperature) != 1 {
		t.Fatalf("second Sense = %v, %v", err, e)
	}
	if calls != 2 {
		t.Errorf("open called %d times", calls)
	}
}

func TestNewErrors(t *testing.T) {
	f := &fakeSensor{results: []fakeResult{{}}}
	for _, tt := range []struct {
		name  string
		chans []Channel
	}{
		{"none", nil},
		{"empty name", []Channel{{Sensor: f}}},
		{"no sensor", []Channel{{Name: "a"}}},
		{"duplicate", []Channel{{Name: "a", Sensor: f}, {Name: "a", Sensor: f}}},
		{"kind", []Channel{{Name: "a", Sensor: f, Kind: 9}}},
	} {
		if _, err := New("x", tt.chans, Options{}); err == nil || !strings.HasPrefix(err.Error(), "env: ") {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
