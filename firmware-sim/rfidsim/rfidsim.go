// Package rfidsim simulates an NXP MFRC522 13.56 MHz reader on SPI, with
// ISO/IEC 14443 type A MIFARE Classic tags, so that periph.io's mfrc522 driver
// can read tag UIDs (and blocks) without hardware.
//
// # Datasheets
//
// MFRC522: https://www.nxp.com/docs/en/data-sheet/MFRC522.pdf
// ISO/IEC 14443-3 type A (REQA/WUPA, anticollision, select, CRC_A) as
// summarised in NXP AN10833, MIFARE type identification procedure:
// https://www.nxp.com/docs/en/application-note/AN10833.pdf
// MIFARE Classic 1K: https://www.nxp.com/docs/en/data-sheet/MF1S50YYX_V1.pdf
//
// # Model
//
// A Sim is an spi.Port (and spi.Conn) plus the reader's IRQ pin (gpio.PinIn)
// and reset pin NRSTPD (gpio.PinOut). It implements the register map of
// datasheet chapter 9 with the behaviour the driver relies on: SPI address
// bytes ((reg<<1)|0x80 to read), the 64-byte FIFO and FlushBuffer, the
// Set1/Set2 semantics of ComIrqReg and DivIrqReg, the IRQ pin (active low
// with IRqInv), soft reset, the antenna switch in TxControlReg, the CRC
// coprocessor (CalcCRC, CRC preset from ModeReg), Transceive started by
// StartSend with TxLastBits, RxLastBits in ControlReg, the timer interrupt
// when no card answers (TAuto), MFAuthent and MFCrypto1On, and VersionReg
// (0x92, MFRC522 version 2.0).
//
// Tags are put into and taken out of the field with Present, PresentTag and
// Remove. A tag answers REQA/WUPA with its ATQA, the anticollision and select
// commands of cascade levels 1 and 2 (4- and 7-byte UIDs), HLTA, and MIFARE
// READ and WRITE once a sector is authenticated. Crypto1 is not simulated:
// MFAuthent compares the key with the sector trailer and the traffic stays in
// clear. Switching the antenna off resets the tag to IDLE, as losing the
// field does.
//
// # Driver behaviour worth knowing
//
// mfrc522's LowLevel.WaitForEdge waits for the IRQ pin in a goroutine. When
// the reader fails before the edge (Init error, e.g. under FaultBusError or
// FaultDisconnect), ReadUID returns but that goroutine keeps waiting until
// its timeout, and it takes the next falling edge: the following ReadUID then
// times out, since the tag's interrupt stays asserted. The simulator
// reproduces this faithfully; callers should use short timeouts and let one
// elapse after a failed read.
//
// # Faults
//
// InjectFault switches the reader into a Fault mode until ClearFault: a
// disconnected reader (MISO floats high, IRQ never fires), SPI errors, a tag
// stuck in the field after Remove, RF noise (corrupted answers) and slow
// tags (answers arrive after Opts.SlowDelay).
package rfidsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"periph.io/x/conn/v3"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/conn/v3/spi"
)

// Fault is a failure mode of the simulated reader.
type Fault int

// Fault modes.
const (
	FaultNone       Fault = iota
	FaultDisconnect       // MISO floats high (every read is 0xFF), IRQ never fires
	FaultBusError         // every SPI transfer fails with ErrBus
	FaultStuck            // the last tag stays in the field after Remove
	FaultNoise            // RF noise: every tag answer is corrupted
	FaultSlow             // tag answers arrive Opts.SlowDelay late
)

// String implements fmt.Stringer.
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultDisconnect:
		return "disconnect"
	case FaultBusError:
		return "bus-error"
	case FaultStuck:
		return "stuck"
	case FaultNoise:
		return "noise"
	case FaultSlow:
		return "slow"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// ErrBus is returned by SPI transfers while FaultBusError is injected.
var ErrBus = errors.New("rfidsim: SPI transfer failed (injected fault)")

// Version is the content of VersionReg: MFRC522 version 2.0.
const Version = 0x92

// Opts configures a Sim.
type Opts struct {
	// Name prefixes the pin and port names; "rfidsim" if empty.
	Name string
	// SlowDelay is how late tag answers arrive under FaultSlow.
	SlowDelay time.Duration
	// Seed seeds the noise generator.
	Seed uint64
}

// DefaultOpts is the default configuration.
var DefaultOpts = Opts{Name: "rfidsim", SlowDelay: 200 * time.Millisecond, Seed: 1}

// Registers, datasheet table 20.
const (
	regCommand    = 0x01
	regComIEn     = 0x02
	regDivIEn     = 0x03
	regComIrq     = 0x04
	regDivIrq     = 0x05
	regError      = 0x06
	regStatus1    = 0x07
	regStatus2    = 0x08
	regFIFOData   = 0x09
	regFIFOLevel  = 0x0A
	regControl    = 0x0C
	regBitFraming = 0x0D
	regColl       = 0x0E
	regMode       = 0x11
	regTxControl  = 0x14
	regCRCResultH = 0x21
	regCRCResultL = 0x22
	regTMode      = 0x2A
	regVersion    = 0x37

	cmdIdle       = 0x00
	cmdCalcCRC    = 0x03
	cmdTransceive = 0x0C
	cmdMFAuthent  = 0x0E
	cmdSoftReset  = 0x0F

	irqTx    = 0x40
	irqRx    = 0x20
	irqIdle  = 0x10
	irqErr   = 0x02
	irqTimer = 0x01
	irqCRC   = 0x04 // DivIrqReg

	errColl   = 0x08
	errParity = 0x02
)

// resetRegs returns the register values after reset, datasheet chapter 9.
func resetRegs() [64]byte {
	return [64]byte{
		regCommand: 0x20, regComIEn: 0x80, regComIrq: 0x14, regStatus1: 0x21,
		0x0B: 0x08, regControl: 0x10, regColl: 0x80, regMode: 0x3F,
		regTxControl: 0x80, 0x16: 0x10, 0x17: 0x84, 0x18: 0x84, 0x19: 0x4D,
		0x1C: 0x62, 0x1F: 0xEB, regCRCResultH: 0xFF, regCRCResultL: 0xFF,
		0x24: 0x26, 0x26: 0x48, 0x27: 0x88, 0x28: 0x20, 0x29: 0x20,
		0x32: 0x80, regVersion: Version,
	}
}

// Sim is a simulated MFRC522 with its antenna field. It is safe for
// concurrent use.
type Sim struct {
	name      string
	slowDelay time.Duration

	mu    sync.Mutex
	rng   *rand.Rand
	wake  chan struct{}
	fault Fault
	regs  [64]byte
	fifo  []byte
	tag   *picc
	stuck *picc // the tag kept by FaultStuck
	power bool  // NRSTPD high

	pendingAt time.Time // a slow answer lands at pendingAt
	pending   func()

	irqPull  gpio.Pull
	irqEdge  gpio.Edge
	irqLevel gpio.Level
	edge     bool // a falling edge not consumed by WaitForEdge
	halts    int64

	transfers int64
}

// New returns a simulated reader with no tag in the field. opts may be nil
// for DefaultOpts.
func New(opts *Opts) *Sim {
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = DefaultOpts.Name
	}
	s := &Sim{
		name:      o.Name,
		slowDelay: o.SlowDelay,
		rng:       rand.New(rand.NewPCG(o.Seed, 0x522)),
		wake:      make(chan struct{}),
		power:     true,
	}
	s.mu.Lock()
	s.resetLocked()
	s.mu.Unlock()
	return s
}

// String implements spi.Port and conn.Conn.
func (s *Sim) String() string { return s.name }

// Connect implements spi.Port. The MFRC522 takes SPI mode 0 (datasheet
// 8.1.2), 8-bit words, up to 10 Mbit/s.
func (s *Sim) Connect(f physic.Frequency, mode spi.Mode, bits int) (spi.Conn, error) {
	if f > 10*physic.MegaHertz {
		return nil, fmt.Errorf("rfidsim: %s is above the MFRC522's 10 Mbit/s", f)
	}
	if mode&^spi.NoCS != spi.Mode0 {
		return nil, fmt.Errorf("rfidsim: SPI %s not supported, the MFRC522 needs mode 0", mode)
	}
	if bits != 8 {
		return nil, fmt.Errorf("rfidsim: %d bits per word not supported", bits)
	}
	return s, nil
}

// Duplex implements conn.Conn.
func (s *Sim) Duplex() conn.Duplex { return conn.Full }

// IRQ returns the IRQ pin.
func (s *Sim) IRQ() gpio.PinIn { return &irqPin{s: s} }

// Reset returns the NRSTPD pin.
func (s *Sim) Reset() gpio.PinOut { return &resetPin{s: s} }

// Present puts a MIFARE Classic 1K tag with this UID (4 or 7 bytes) in the
// field, replacing any other.
func (s *Sim) Present(uid []byte) error {
	t, err := NewTag(uid)
	if err != nil {
		return err
	}
	s.PresentTag(t)
	return nil
}

// PresentTag puts t in the field, replacing any other tag. The Sim uses t
// from then on: WRITE commands change t.Blocks.
func (s *Sim) PresentTag(t *Tag) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tag = &picc{tag: t, authSector: -1, writeBlock: -1}
	s.stuck = s.tag
}

// Remove takes the tag out of the field (unless FaultStuck keeps it there).
func (s *Sim) Remove() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == FaultStuck {
		return
	}
	s.tag = nil
}

// InjectFault switches the reader into fault mode f, replacing any previous
// fault. Clearing FaultStuck does not bring back a removed tag.
func (s *Sim) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == FaultStuck && s.tag == nil {
		s.tag = s.stuck
	}
	s.fault = f
	s.updateIRQLocked()
	s.notifyLocked()
}

// ClearFault returns the reader to normal operation.
func (s *Sim) ClearFault() { s.InjectFault(FaultNone) }

// Fault returns the injected fault.
func (s *Sim) Fault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// Transfers returns the number of SPI transfers so far.
func (s *Sim) Transfers() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transfers
}

// Tx implements conn.Conn. w[0] is the address byte: (reg<<1)|0x80 reads,
// every following byte of w then addresses the next read (datasheet
// 8.1.2.1); (reg<<1) writes all following bytes to reg.
func (s *Sim) Tx(w, r []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transfers++
	if s.fault == FaultBusError {
		return ErrBus
	}
	if len(r) != 0 && len(r) != len(w) {
		return fmt.Errorf("rfidsim: full duplex transfer with len(w)=%d, len(r)=%d", len(w), len(r))
	}
	if len(w) == 0 {
		return nil
	}
	if s.fault == FaultDisconnect || !s.power {
		fill := byte(0xFF)
		if !s.power {
			fill = 0
		}
		for i := range r {
			r[i] = fill
		}
		return nil
	}
	s.settleLocked(time.Now())
	if w[0]&0x80 != 0 {
		if len(r) > 0 {
			r[0] = 0
		}
		for i := 0; i < len(w)-1; i++ {
			v := s.readLocked(w[i] >> 1 & 0x3F)
			if len(r) > 0 {
				r[i+1] = v
			}
		}
	} else {
		reg := w[0] >> 1 & 0x3F
		for _, v := range w[1:] {
			s.writeLocked(reg, v)
		}
	}
	s.updateIRQLocked()
	return nil
}

// TxPackets implements spi.Conn.
func (s *Sim) TxPackets(p []spi.Packet) error {
	for _, pk := range p {
		if err := s.Tx(pk.W, pk.R); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) notifyLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *Sim) resetLocked() {
	s.regs = resetRegs()
	s.fifo = s.fifo[:0]
	s.pending = nil
	s.fieldOffLocked()
	s.updateIRQLocked()
}

// fieldOffLocked resets the tag: no field, no power.
func (s *Sim) fieldOffLocked() {
	if s.tag != nil {
		s.tag.state = stIdle
		s.tag.authSector = -1
		s.tag.writeBlock = -1
	}
}

func (s *Sim) antennaOn() bool { return s.regs[regTxControl]&0x03 != 0 }

// settleLocked delivers a slow answer whose time has come.
func (s *Sim) settleLocked(now time.Time) {
	if s.pending != nil && !now.Before(s.pendingAt) {
		f := s.pending
		s.pending = nil
		f()
		s.updateIRQLocked()
	}
}

func (s *Sim) readLocked(reg byte) byte {
	switch reg {
	case regFIFOData:
		if len(s.fifo) == 0 {
			return 0
		}
		v := s.fifo[0]
		s.fifo = s.fifo[1:]
		return v
	case regFIFOLevel:
		return byte(len(s.fifo))
	}
	return s.regs[reg]
}

func (s *Sim) writeLocked(reg, v byte) {
	switch reg {
	case regCommand:
		s.commandLocked(v)
	case regComIrq:
		if v&0x80 != 0 {
			s.regs[regComIrq] |= v & 0x7F
		} else {
			s.regs[regComIrq] &^= v & 0x7F
		}
	case regDivIrq:
		if v&0x80 != 0 {
			s.regs[regDivIrq] |= v & 0x14
		} else {
			s.regs[regDivIrq] &^= v & 0x14
		}
	case regFIFOData:
		if len(s.fifo) < 64 {
			s.fifo = append(s.fifo, v)
		}
	case regFIFOLevel:
		if v&0x80 != 0 {
			s.fifo = s.fifo[:0]
		}
	case regBitFraming:
		s.regs[regBitFraming] = v
		if v&0x80 != 0 && s.regs[regCommand]&0x0F == cmdTransceive {
			s.transceiveLocked()
		}
	case regTxControl:
		was := s.antennaOn()
		s.regs[regTxControl] = v
		if was && !s.antennaOn() {
			s.fieldOffLocked()
		}
	case regStatus2:
		s.regs[regStatus2] = s.regs[regStatus2]&0x07 | v&0xC8
	case regError, regStatus1, regVersion, regCRCResultH, regCRCResultL:
		// Read-only.
	default:
		s.regs[reg] = v
	}
}

func (s *Sim) commandLocked(v byte) {
	cmd := v & 0x0F
	s.regs[regCommand] = v & 0x3F
	switch cmd {
	case cmdSoftReset:
		s.resetLocked()
	case cmdCalcCRC:
		var preset uint16
		switch s.regs[regMode] & 0x03 {
		case 1:
			preset = 0x6363
		case 2:
			preset = 0xA671
		case 3:
			preset = 0xFFFF
		}
		c := crc16(preset, s.fifo)
		s.fifo = s.fifo[:0]
		s.regs[regCRCResultL], s.regs[regCRCResultH] = c[0], c[1]
		s.regs[regDivIrq] |= irqCRC
	case cmdMFAuthent:
		args := append([]byte(nil), s.fifo...)
		s.fifo = s.fifo[:0]
		p := s.tag
		if s.antennaOn() && p != nil && s.fault != FaultNoise && p.authenticate(args) {
			s.regs[regStatus2] |= 0x08
			s.regs[regCommand] &^= 0x0F
			s.regs[regComIrq] |= irqIdle
			return
		}
		s.regs[regComIrq] |= irqTimer
	}
}

// transceiveLocked sends the FIFO to the tag and puts its answer in the
// FIFO, or raises the timer interrupt when nothing answers.
func (s *Sim) transceiveLocked() {
	frame := append([]byte(nil), s.fifo...)
	bits := s.regs[regBitFraming] & 0x07
	s.fifo = s.fifo[:0]
	s.regs[regBitFraming] &^= 0x80
	s.regs[regComIrq] |= irqTx
	s.regs[regError] = 0

	var resp *response
	if s.antennaOn() && s.tag != nil {
		resp = s.tag.receive(frame, bits)
	}
	deliver := func() {
		if resp == nil {
			if s.regs[regTMode]&0x80 != 0 { // TAuto: the timer ends the wait
				s.regs[regComIrq] |= irqTimer
			}
			return
		}
		data := resp.data
		if s.fault == FaultNoise {
			data = s.corruptLocked(data)
		}
		s.fifo = append(s.fifo[:0], data...)
		s.regs[regControl] = s.regs[regControl]&^0x07 | resp.lastBits
		s.regs[regComIrq] |= irqRx
	}
	if s.fault == FaultSlow && resp != nil {
		s.pendingAt = time.Now().Add(s.slowDelay)
		s.pending = deliver
		return
	}
	deliver()
}

// corruptLocked models RF noise: a parity error or a bit collision flagged
// by the receiver, or a flipped bit it did not catch.
func (s *Sim) corruptLocked(data []byte) []byte {
	data = append([]byte(nil), data...)
	switch s.rng.IntN(3) {
	case 0:
		s.regs[regError] |= errParity
		s.regs[regComIrq] |= irqErr
	case 1:
		s.regs[regError] |= errColl
		s.regs[regComIrq] |= irqErr
	default:
		data[s.rng.IntN(len(data))] ^= 1 << s.rng.IntN(8)
	}
	return data
}

// updateIRQLocked recomputes the IRQ pin and records falling edges.
func (s *Sim) updateIRQLocked() {
	active := s.regs[regComIrq]&s.regs[regComIEn]&0x7F != 0 ||
		s.regs[regDivIrq]&s.regs[regDivIEn]&0x14 != 0
	inv := s.regs[regComIEn]&0x80 != 0
	level := gpio.Level(active != inv)
	if s.fault == FaultDisconnect || !s.power {
		level = s.irqPull != gpio.PullDown
	}
	if s.irqLevel == gpio.High && level == gpio.Low {
		s.edge = true
		s.notifyLocked()
	}
	s.irqLevel = level
}

func (s *Sim) waitForEdge(timeout time.Duration) bool {
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	s.mu.Lock()
	halts := s.halts
	s.mu.Unlock()
	for first := true; ; first = false {
		s.mu.Lock()
		now := time.Now()
		s.settleLocked(now)
		// An edge pending at the call counts even with a zero timeout; one
		// after the deadline does not, even if this goroutine wakes late.
		if s.halts != halts || !first && !deadline.IsZero() && !now.Before(deadline) {
			s.mu.Unlock()
			return false
		}
		if s.edge && s.irqEdge != gpio.NoEdge && s.irqEdge != gpio.RisingEdge {
			s.edge = false
			s.mu.Unlock()
			return true
		}
		wake := s.wake
		var wakeAt time.Time
		if s.pending != nil {
			wakeAt = s.pendingAt
		}
		s.mu.Unlock()
		if !deadline.IsZero() && (wakeAt.IsZero() || wakeAt.After(deadline)) {
			wakeAt = deadline
		}
		var t *time.Timer
		var tc <-chan time.Time
		if !wakeAt.IsZero() {
			t = time.NewTimer(time.Until(wakeAt))
			tc = t.C
		}
		select {
		case <-wake:
		case <-tc:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// --- pins ---

type irqPin struct{ s *Sim }

func (p *irqPin) String() string   { return p.s.name + ".IRQ" }
func (p *irqPin) Name() string     { return p.String() }
func (p *irqPin) Number() int      { return -1 }
func (p *irqPin) Function() string { return "In" }

// Halt implements conn.Resource: it aborts a pending WaitForEdge.
func (p *irqPin) Halt() error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.halts++
	p.s.notifyLocked()
	return nil
}

// In implements gpio.PinIn. It discards edges seen so far.
func (p *irqPin) In(pull gpio.Pull, edge gpio.Edge) error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if pull != gpio.PullNoChange {
		p.s.irqPull = pull
	}
	p.s.irqEdge = edge
	p.s.edge = false
	p.s.halts++
	p.s.updateIRQLocked()
	p.s.notifyLocked()
	return nil
}

// Read implements gpio.PinIn.
func (p *irqPin) Read() gpio.Level {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.settleLocked(time.Now())
	return p.s.irqLevel
}

// WaitForEdge implements gpio.PinIn.
func (p *irqPin) WaitForEdge(timeout time.Duration) bool { return p.s.waitForEdge(timeout) }

// Pull implements gpio.PinIn.
func (p *irqPin) Pull() gpio.Pull {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.s.irqPull
}

// DefaultPull implements gpio.PinIn.
func (p *irqPin) DefaultPull() gpio.Pull { return gpio.Float }

type resetPin struct{ s *Sim }

func (p *resetPin) String() string   { return p.s.name + ".NRSTPD" }
func (p *resetPin) Name() string     { return p.String() }
func (p *resetPin) Number() int      { return -1 }
func (p *resetPin) Function() string { return "Out" }
func (p *resetPin) Halt() error      { return nil }

// Out implements gpio.PinOut: low is hard power-down, a rising edge resets
// the chip (datasheet 8.8.1).
func (p *resetPin) Out(l gpio.Level) error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	was := p.s.power
	p.s.power = bool(l)
	switch {
	case !was && p.s.power:
		p.s.resetLocked()
	case was && !p.s.power:
		p.s.fieldOffLocked()
		p.s.updateIRQLocked()
	}
	return nil
}

// PWM implements gpio.PinOut.
func (p *resetPin) PWM(gpio.Duty, physic.Frequency) error {
	return errors.New("rfidsim: PWM not supported on NRSTPD")
}

var (
	_ spi.Port    = (*Sim)(nil)
	_ spi.Conn    = (*Sim)(nil)
	_ gpio.PinIn  = (*irqPin)(nil)
	_ gpio.PinOut = (*resetPin)(nil)
)
