package envsim

import (
	"errors"
	"math"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"
)

func newDev(t *testing.T, p Profile, o *Opts) (*Sim, *bmxx80.Dev) {
	t.Helper()
	s, err := New(p, o)
	if err != nil {
		t.Fatal(err)
	}
	d, err := bmxx80.NewI2C(s, 0x76, &bmxx80.DefaultOpts)
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

func fast() *Opts {
	o := DefaultOpts
	o.SpeedUp = 10
	return &o
}

func toEnv(e physic.Env) Env {
	return Env{
		TempC:      float64(e.Temperature-physic.ZeroCelsius) / float64(physic.Celsius),
		PressurePa: float64(e.Pressure) / float64(physic.Pascal),
		HumidityRH: float64(e.Humidity) / float64(physic.PercentRH),
	}
}

func sense(t *testing.T, d *bmxx80.Dev) Env {
	t.Helper()
	var e physic.Env
	if err := d.Sense(&e); err != nil {
		t.Fatal(err)
	}
	return toEnv(e)
}

// Resolution of the driver's output plus the ADC step.
const (
	tolC  = 0.011
	tolPa = 0.5
	tolRH = 0.01
)

func near(got, want Env) bool {
	return math.Abs(got.TempC-want.TempC) <= tolC &&
		math.Abs(got.PressurePa-want.PressurePa) <= tolPa &&
		math.Abs(got.HumidityRH-want.HumidityRH) <= tolRH
}

func TestSenseMatchesProfile(t *testing.T) {
	tests := []struct {
		name string
		in   Env
		want Env // after clamping to the operating range
	}{
		{"office", Env{21.5, 101325, 45}, Env{21.5, 101325, 45}},
		{"cold room", Env{-18.25, 100200.5, 85.3}, Env{-18.25, 100200.5, 85.3}},
		{"loading dock in summer", Env{38.07, 96012.25, 22.1}, Env{38.07, 96012.25, 22.1}},
		{"range limits", Env{-40, 30000, 0}, Env{-40, 30000, 0}},
		{"upper limits", Env{85, 110000, 100}, Env{85, 110000, 100}},
		{"clamped", Env{120, 200000, 140}, Env{85, 110000, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, d := newDev(t, Constant(tt.in), fast())
			got := sense(t, d)
			if !near(got, tt.want) {
				t.Fatalf("sensed %+v, want %+v", got, tt.want)
			}
			if s.Measurements() != 1 {
				t.Fatalf("%d measurements, want 1", s.Measurements())
			}
		})
	}
}

// TestInversionSweep checks the raw value search over the whole operating
// range without the driver.
func TestInversionSweep(t *testing.T) {
	s, err := New(Constant(Env{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &s.cal
	for tc := -40.0; tc <= 85; tc += 1.37 {
		for _, pa := range []float64{30000, 70123.4, 101325, 109999.9} {
			for _, rh := range []float64{0, 12.3, 50, 99.9} {
				adcT, adcP, adcH := s.Raw(Env{tc, pa, rh})
				tFine, centi := c.tempFine(adcT)
				got := Env{
					TempC:      float64(centi) / 100,
					PressurePa: float64(c.pressure(adcP, tFine)) / 256,
					HumidityRH: float64(c.humidity(adcH, tFine)) / 1024,
				}
				if want := (Env{tc, pa, rh}); !near(got, want) {
					t.Fatalf("raw %d %d %d compensates to %+v, want %+v", adcT, adcP, adcH, got, want)
				}
			}
		}
	}
}

func TestProfileTime(t *testing.T) {
	o := DefaultOpts
	o.SpeedUp = 1000 // one real millisecond is one simulated second
	ramp := func(d time.Duration) Env { return Env{TempC: 10 + d.Seconds()/100, PressurePa: 101325, HumidityRH: 50} }
	_, d := newDev(t, ramp, &o)
	a := sense(t, d)
	b := sense(t, d) // the driver waits > 20 ms per measurement: > 0.2 °C later
	if b.TempC <= a.TempC {
		t.Fatalf("temperature did not follow the profile: %.2f then %.2f", a.TempC, b.TempC)
	}
}

func TestRegisters(t *testing.T) {
	s, err := New(Constant(Env{20, 101325, 50}), &Opts{Addr: 0x77})
	if err != nil {
		t.Fatal(err)
	}
	read := func(reg byte, n int) []byte {
		t.Helper()
		b := make([]byte, n)
		if err := s.Tx(0x77, []byte{reg}, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	write := func(w ...byte) {
		t.Helper()
		if err := s.Tx(0x77, w, nil); err != nil {
			t.Fatal(err)
		}
	}
	if id := read(0xD0, 1)[0]; id != 0x60 {
		t.Fatalf("chip id %#x", id)
	}
	if nvm := read(0x88, 26); [26]byte(nvm) != [26]byte(DefaultNVM[:26]) {
		t.Fatalf("NVM %x", nvm)
	}
	if err := s.Tx(0x76, []byte{0xD0}, make([]byte, 1)); !errors.Is(err, ErrNACK) {
		t.Fatalf("wrong address: %v", err)
	}
	if err := s.Tx(0x77, []byte{0xF4, 1, 2}, nil); err == nil {
		t.Fatal("odd write accepted")
	}
	// Humidity on, temperature x1, pressure skipped, forced mode.
	write(0xF2, 0x01, 0xF4, 0x20|0x01)
	for deadline := time.Now().Add(5 * time.Second); read(0xF3, 1)[0]&0x08 != 0; {
		if time.Now().After(deadline) {
			t.Fatal("measurement never finished")
		}
		time.Sleep(time.Millisecond)
	}
	if m := read(0xF4, 1)[0]; m != 0x20 {
		t.Fatalf("ctrl_meas after forced measurement %#x, want back to sleep 0x20", m)
	}
	data := read(0xF7, 8)
	if data[0] != 0x80 || data[1] != 0 || data[2] != 0 {
		t.Fatalf("skipped pressure reads %x, want 800000", data[:3])
	}
	adcT, _, adcH := s.Raw(Env{20, 101325, 50})
	if got := int32(data[3])<<12 | int32(data[4])<<4 | int32(data[5])>>4; got != adcT {
		t.Fatalf("adc_T %d, want %d", got, adcT)
	}
	if got := int32(data[6])<<8 | int32(data[7]); got != adcH {
		t.Fatalf("adc_H %d, want %d", got, adcH)
	}
	// A burst past the last register wraps around instead of failing.
	if b := read(0xFE, 3); b[1] != 0 || b[2] != 0 {
		t.Fatalf("read past 0xFF: %x", b)
	}
	write(0xE0, 0xB6)
	if m := read(0xF2, 4); m[0] != 0 || m[2] != 0 || m[3] != 0 {
		t.Fatalf("registers after soft reset %x", m)
	}
	if err := s.SetSpeed(400 * physic.KiloHertz); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSpeed(10 * physic.MegaHertz); err == nil {
		t.Fatal("10 MHz accepted")
	}
}

func TestOptsValidation(t *testing.T) {
	if _, err := New(nil, nil); err == nil {
		t.Error("nil profile accepted")
	}
	if _, err := New(Constant(Env{}), &Opts{Addr: 0x50}); err == nil {
		t.Error("address 0x50 accepted")
	}
	if _, err := New(Constant(Env{}), &Opts{SpeedUp: 0.1}); err == nil {
		t.Error("speed-up 0.1 accepted")
	}
}

func TestFaultDisconnect(t *testing.T) {
	s, err := New(Constant(Env{20, 101325, 50}), fast())
	if err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultDisconnect)
	if _, err := bmxx80.NewI2C(s, 0x76, &bmxx80.DefaultOpts); err == nil {
		t.Fatal("NewI2C on a disconnected sensor succeeded")
	}
	s.ClearFault()
	d, err := bmxx80.NewI2C(s, 0x76, &bmxx80.DefaultOpts)
	if err != nil {
		t.Fatal(err)
	}
	s.InjectFault(FaultDisconnect)
	var e physic.Env
	if err := d.Sense(&e); err == nil {
		t.Fatal("Sense on a disconnected sensor succeeded")
	}
	s.ClearFault()
	if got := sense(t, d); !near(got, Env{20, 101325, 50}) {
		t.Fatalf("after reconnect %+v", got)
	}
}

func TestFaultStuck(t *testing.T) {
	o := fast()
	o.SpeedUp = 1000
	ramp := func(d time.Duration) Env { return Env{TempC: d.Seconds() / 100, PressurePa: 101325, HumidityRH: 50} }
	s, d := newDev(t, ramp, o)
	first := sense(t, d)
	s.InjectFault(FaultStuck)
	for range 3 {
		if got := sense(t, d); got != first {
			t.Fatalf("stuck sensor read %+v, want %+v", got, first)
		}
	}
	s.ClearFault()
	if got := sense(t, d); got.TempC <= first.TempC {
		t.Fatalf("after recovery %.2f °C, not above %.2f", got.TempC, first.TempC)
	}
}

func TestFaultNoise(t *testing.T) {
	want := Env{22, 101000, 40}
	s, d := newDev(t, Constant(want), fast())
	s.InjectFault(FaultNoise)
	off := 0
	for range 6 {
		got := sense(t, d)
		if math.Abs(got.TempC-want.TempC) > 5 || math.Abs(got.PressurePa-want.PressurePa) > 500 {
			t.Fatalf("noise far beyond NoiseCounts: %+v", got)
		}
		if !near(got, want) {
			off++
		}
	}
	if off < 3 {
		t.Fatalf("only %d of 6 noisy reads differ", off)
	}
	s.ClearFault()
	if got := sense(t, d); !near(got, want) {
		t.Fatalf("after noise %+v", got)
	}
}

func TestFaultSlow(t *testing.T) {
	o := fast()
	o.SlowFactor = 20 // 30 ms typical / 10 * 20 = 60 ms: beyond the driver's 26 ms wait
	want := Env{5, 99000, 70}
	s, d := newDev(t, Constant(want), o)
	s.InjectFault(FaultSlow)
	if err := s.Tx(0x76, []byte{0xF4, 0x20 | 0x04 | 0x01}, nil); err != nil {
		t.Fatal(err)
	}
	st := make([]byte, 1)
	if err := s.Tx(0x76, []byte{0xF3}, st); err != nil || st[0]&0x08 == 0 {
		t.Fatalf("status %#x, %v: want measuring", st[0], err)
	}
	// The driver polls the status until the slow measurement is done.
	if got := sense(t, d); !near(got, want) {
		t.Fatalf("slow sense %+v", got)
	}
	if s.Fault() != FaultSlow || FaultSlow.String() != "slow" {
		t.Fatal("fault bookkeeping")
	}
}

func TestSenseContinuous(t *testing.T) {
	want := Env{12.5, 100000, 60}
	_, d := newDev(t, Constant(want), fast())
	ch, err := d.SenseContinuous(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := toEnv(<-ch); !near(got, want) {
			t.Fatalf("continuous %+v", got)
		}
	}
	if err := d.Halt(); err != nil {
		t.Fatal(err)
	}
}

// FuzzTx checks that arbitrary bus traffic never panics and that the chip
// id stays readable afterwards.
func FuzzTx(f *testing.F) {
	f.Add([]byte{0xF4, 0x25}, uint8(8))
	f.Add([]byte{0xE0, 0xB6, 0xF2}, uint8(0))
	f.Add([]byte{0xFF}, uint8(40))
	f.Fuzz(func(t *testing.T, w []byte, n uint8) {
		s, err := New(Constant(Env{20, 101325, 50}), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Tx(0x76, w, make([]byte, n))
		id := make([]byte, 1)
		if err := s.Tx(0x76, []byte{0xD0}, id); err != nil || id[0] != 0x60 {
			t.Fatalf("chip id %#x, %v", id[0], err)
		}
	})
}
