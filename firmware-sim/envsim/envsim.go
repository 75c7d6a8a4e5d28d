// Package envsim simulates a Bosch BME280 temperature, pressure and humidity
// sensor on an I²C bus, so that periph.io's bmxx80 driver can be tested
// without hardware.
//
// # Datasheet
//
// https://www.bosch-sensortec.com/media/boschsensortec/downloads/datasheets/bst-bme280-ds002.pdf
//
// # Model
//
// A Sim is an i2c.Bus with one BME280 at Opts.Addr (0x76 or 0x77). It holds
// the register map of datasheet section 5: chip id 0x60 at 0xD0, soft reset
// at 0xE0, the calibration NVM at 0x88..0xA1 and 0xE1..0xE7 (Opts.NVM, a real
// chip's by default), ctrl_hum, status, ctrl_meas and config at 0xF2..0xF5,
// and the raw ADC results at 0xF7..0xFE. Reads auto-increment; writes are
// register/value pairs, as on the real bus.
//
// The environment comes from a Profile, a function of the simulated time
// since New. When a measurement runs, the simulator searches the raw ADC
// values whose fixed-point compensation (datasheet section 4.2.3, the same
// integer code the driver runs) gives the profile's values, so the driver
// reads them back within the sensor's resolution: 0.01 °C, 1/256 Pa (plus the
// ADC step, well under 1 Pa) and 1/1024 %RH. Values outside the operating
// range are clamped to -40..85 °C, 300..1100 hPa and 0..100 %RH.
//
// Forced mode (ctrl_meas mode 01 or 10) takes the datasheet's typical
// measurement time, divided by Opts.SpeedUp, with status bit 3 (measuring)
// set, then returns to sleep with fresh data. In normal mode each read of the
// data registers sees a measurement taken at that moment; the standby time
// and the IIR filter are not simulated. A skipped measurement (oversampling
// off) reads 0x80000 (0x8000 for humidity), as on the chip.
//
// # Faults
//
// InjectFault switches the sensor into a Fault mode until ClearFault: a
// disconnected sensor NACKs every transfer, a stuck one keeps its last
// results, noise adds random counts to the raw values, a slow one takes
// Opts.SlowFactor times longer to measure.
package envsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Env is the environment around the sensor.
type Env struct {
	TempC      float64 // °C
	PressurePa float64 // Pa
	HumidityRH float64 // %RH
}

// Profile gives the environment at simulated time t since the Sim started.
// It must be safe for concurrent use.
type Profile func(t time.Duration) Env

// Constant returns a Profile that always returns e.
func Constant(e Env) Profile { return func(time.Duration) Env { return e } }

// Fault is a failure mode of the simulated sensor.
type Fault int

// Fault modes.
const (
	FaultNone       Fault = iota
	FaultDisconnect       // every transfer fails: the address is not acknowledged
	FaultStuck            // the data registers keep the last results
	FaultNoise            // ± Opts.NoiseCounts random counts on every raw value
	FaultSlow             // measurements take Opts.SlowFactor times longer
)

// String implements fmt.Stringer.
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultDisconnect:
		return "disconnect"
	case FaultStuck:
		return "stuck"
	case FaultNoise:
		return "noise"
	case FaultSlow:
		return "slow"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// ErrNACK is returned by Tx when no device acknowledges the address.
var ErrNACK = errors.New("envsim: address not acknowledged")

// DefaultNVM is the calibration NVM of a real BME280: 0x88..0xA1 followed by
// 0xE1..0xE7.
var DefaultNVM = [33]byte{
	0xC9, 0x6C, 0x63, 0x65, 0x32, 0x00, 0x77, 0x93, 0x98, 0xD5, 0xD0, 0x0B, 0x67,
	0x23, 0xBA, 0x00, 0xF9, 0xFF, 0xAC, 0x26, 0x0A, 0xD8, 0xBD, 0x10, 0x00, 0x4B,
	0x5C, 0x01, 0x00, 0x15, 0x0F, 0x00, 0x1E,
}

// Opts configures a Sim.
type Opts struct {
	// Addr is the device address: 0x76 (SDO to GND) or 0x77.
	Addr uint16
	// SpeedUp accelerates the profile's time and the measurement time.
	// Must be >= 1; 0 means 1.
	SpeedUp float64
	// NVM is the calibration memory image, see DefaultNVM.
	NVM [33]byte
	// NoiseCounts bounds the noise added to raw values under FaultNoise.
	NoiseCounts int32
	// SlowFactor stretches measurements under FaultSlow.
	SlowFactor int
	// Seed seeds the noise generator.
	Seed uint64
}

// DefaultOpts is a real-time sensor at 0x76 with a real chip's calibration.
var DefaultOpts = Opts{
	Addr:        0x76,
	SpeedUp:     1,
	NVM:         DefaultNVM,
	NoiseCounts: 200,
	SlowFactor:  10,
	Seed:        1,
}

// Register addresses, datasheet table 18.
const (
	regCalib00  = 0x88
	regChipID   = 0xD0
	regReset    = 0xE0
	regCalib26  = 0xE1
	regCtrlHum  = 0xF2
	regStatus   = 0xF3
	regCtrlMeas = 0xF4
	regConfig   = 0xF5
	regData     = 0xF7

	chipID    = 0x60
	resetWord = 0xB6
)

// Sim is a simulated BME280 on its own I²C bus. It is safe for concurrent
// use.
type Sim struct {
	// Immutable.
	profile Profile
	addr    uint16
	speedUp float64
	cal     calibration
	nvm     [33]byte
	noise   int32
	slow    int
	start   time.Time
	rng     *rand.Rand

	mu        sync.Mutex
	fault     Fault
	ptr       byte // register pointer
	ctrlHum   byte // as written
	ctrlHumOn byte // latched by the last ctrl_meas write
	ctrlMeas  byte
	config    byte
	busyUntil time.Time
	data      [8]byte
	pending   *[8]byte // forced measurement published at busyUntil
	measured  int64
}

// New returns a simulated BME280 fed by profile. opts may be nil for
// DefaultOpts.
func New(profile Profile, opts *Opts) (*Sim, error) {
	if profile == nil {
		return nil, errors.New("envsim: nil Profile")
	}
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	if o.Addr == 0 {
		o.Addr = DefaultOpts.Addr
	}
	if o.Addr != 0x76 && o.Addr != 0x77 {
		return nil, fmt.Errorf("envsim: address must be 0x76 or 0x77, got %#x", o.Addr)
	}
	if o.SpeedUp == 0 {
		o.SpeedUp = 1
	}
	if o.SpeedUp < 1 {
		return nil, fmt.Errorf("envsim: speed-up must be >= 1, got %g", o.SpeedUp)
	}
	if o.NVM == ([33]byte{}) {
		o.NVM = DefaultNVM
	}
	if o.SlowFactor < 1 {
		o.SlowFactor = 1
	}
	var tp [26]byte
	var h [7]byte
	copy(tp[:], o.NVM[:26])
	copy(h[:], o.NVM[26:])
	s := &Sim{
		profile: profile,
		addr:    o.Addr,
		speedUp: o.SpeedUp,
		cal:     parseCalibration(tp, h),
		nvm:     o.NVM,
		noise:   o.NoiseCounts,
		slow:    o.SlowFactor,
		start:   time.Now(),
		rng:     rand.New(rand.NewPCG(o.Seed, 0xb3e280)),
	}
	s.resetLocked()
	return s, nil
}

// String implements i2c.Bus.
func (s *Sim) String() string { return fmt.Sprintf("envsim(BME280@%#x)", s.addr) }

// SetSpeed implements i2c.Bus. The simulated bus accepts any speed up to
// the BME280's 3.4 MHz.
func (s *Sim) SetSpeed(f physic.Frequency) error {
	if f <= 0 || f > 3400*physic.KiloHertz {
		return fmt.Errorf("envsim: unsupported bus speed %s", f)
	}
	return nil
}

// InjectFault switches the sensor into fault mode f.
func (s *Sim) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// ClearFault returns the sensor to normal operation.
func (s *Sim) ClearFault() { s.InjectFault(FaultNone) }

// Fault returns the injected fault.
func (s *Sim) Fault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// Measurements returns how many measurements the sensor has made.
func (s *Sim) Measurements() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.measured
}

// Raw returns the ADC values the sensor reports for e: temperature and
// pressure (20 bits) and humidity (16 bits).
func (s *Sim) Raw(e Env) (adcT, adcP, adcH int32) { return s.cal.rawFor(e) }

// Tx implements i2c.Bus.
func (s *Sim) Tx(addr uint16, w, r []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr != s.addr || s.fault == FaultDisconnect {
		return ErrNACK
	}
	now := time.Now()
	if len(w) > 0 {
		s.ptr = w[0]
		if len(w) > 1 {
			if len(w)%2 != 0 {
				return fmt.Errorf("envsim: write of %d bytes is not register/value pairs", len(w))
			}
			for i := 0; i < len(w); i += 2 {
				s.writeLocked(now, w[i], w[i+1])
			}
		}
	}
	for i := range r {
		r[i] = s.readLocked(now, s.ptr)
		s.ptr++
	}
	return nil
}

func (s *Sim) resetLocked() {
	s.ctrlHum, s.ctrlHumOn, s.ctrlMeas, s.config = 0, 0, 0, 0
	s.busyUntil = time.Time{}
	s.pending = nil
	s.data = [8]byte{0x80, 0, 0, 0x80, 0, 0, 0x80, 0}
}

func (s *Sim) writeLocked(now time.Time, reg, v byte) {
	switch reg {
	case regReset:
		if v == resetWord {
			s.resetLocked()
		}
	case regCtrlHum:
		s.ctrlHum = v & 0x07
	case regConfig:
		s.config = v &^ 0x02
	case regCtrlMeas:
		s.ctrlMeas = v
		s.ctrlHumOn = s.ctrlHum // datasheet 5.4.3: ctrl_hum applies after ctrl_meas
		if m := v & 0x03; m == 1 || m == 2 {
			d := typicalMeasure(v>>5, v>>2&7, s.ctrlHumOn)
			if s.fault == FaultSlow {
				d *= time.Duration(s.slow)
			}
			s.busyUntil = now.Add(time.Duration(float64(d) / s.speedUp))
			if d, ok := s.measureLocked(now); ok {
				s.pending = &d
			}
		}
	}
}

// typicalMeasure is t_measure,typ of datasheet section 9.1.
func typicalMeasure(osT, osP, osH byte) time.Duration {
	n := func(o byte) float64 {
		if o == 0 {
			return 0
		}
		return float64(int(1) << min(o-1, 4))
	}
	us := 1250.0
	if osT != 0 {
		us += 2300 * n(osT)
	}
	if osP != 0 {
		us += 2300*n(osP) + 575
	}
	if osH != 0 {
		us += 2300*n(osH) + 575
	}
	return time.Duration(us) * time.Microsecond
}

// measureLocked returns the data registers of a measurement made now; false
// when the sensor is stuck on its last results.
func (s *Sim) measureLocked(now time.Time) ([8]byte, bool) {
	if s.fault == FaultStuck {
		return s.data, false
	}
	e := s.profile(time.Duration(float64(now.Sub(s.start)) * s.speedUp))
	t, p, h := s.cal.rawFor(e)
	if s.fault == FaultNoise && s.noise > 0 {
		t = min(max(t+s.noiseLocked(), 0), maxADC20)
		p = min(max(p+s.noiseLocked(), 0), maxADC20)
		h = min(max(h+s.noiseLocked(), 0), maxADC16)
	}
	osT, osP := s.ctrlMeas>>5&7, s.ctrlMeas>>2&7
	if osT == 0 {
		t = 0x80000
	}
	if osP == 0 {
		p = 0x80000
	}
	if s.ctrlHumOn&7 == 0 {
		h = 0x8000
	}
	s.measured++
	return [8]byte{
		byte(p >> 12), byte(p >> 4), byte(p << 4),
		byte(t >> 12), byte(t >> 4), byte(t << 4),
		byte(h >> 8), byte(h),
	}, true
}

func (s *Sim) noiseLocked() int32 {
	return s.rng.Int32N(2*s.noise+1) - s.noise
}

func (s *Sim) readLocked(now time.Time, reg byte) byte {
	busy := now.Before(s.busyUntil)
	if !busy && s.pending != nil {
		s.data = *s.pending
		s.pending = nil
	}
	switch {
	case reg == regChipID:
		return chipID
	case reg >= regCalib00 && reg < regCalib00+26:
		return s.nvm[reg-regCalib00]
	case reg >= regCalib26 && reg < regCalib26+7:
		return s.nvm[26+reg-regCalib26]
	case reg == regCtrlHum:
		return s.ctrlHum
	case reg == regStatus:
		if busy {
			return 0x08
		}
		return 0
	case reg == regCtrlMeas:
		if !busy && s.ctrlMeas&3 != 3 {
			return s.ctrlMeas &^ 3 // forced measurement done: back to sleep
		}
		return s.ctrlMeas
	case reg == regConfig:
		return s.config
	case reg >= regData && reg < regData+8:
		if reg == regData && s.ctrlMeas&3 == 3 {
			// Normal mode: a burst read starting at press_msb sees a
			// measurement taken now.
			s.data, _ = s.measureLocked(now)
		}
		return s.data[reg-regData]
	}
	return 0
}

var _ i2c.Bus = (*Sim)(nil)
