// Package scannersim simulates a USB-CDC (ACM) barcode scanner on a
// pseudo-terminal, so that code reading /dev/ttyACM0 can be tested without a
// scanner.
//
// # Reference
//
// USB Class Definitions for Communications Devices 1.2, PSTN subclass (ACM):
// https://www.usb.org/document-library/class-definitions-communication-devices-12
// The scanner side follows the "USB CDC" (serial emulation) host mode of
// common handheld scanners: each decoded symbol is sent as plain ASCII
// followed by a configurable suffix.
// GTIN check digits: GS1 General Specifications, section 7.9.1,
// https://www.gs1.org/standards/barcodes-epcrfid-id-keys/gs1-general-specifications
//
// # Use
//
// New opens a pty pair. The reader opens Path() (the slave side, e.g.
// /dev/pts/3) exactly as it would open /dev/ttyACM0; Opts.Link can publish a
// stable symlink to it, as udev does with /dev/serial/by-id. Each Scan writes
// the code followed by the configured suffix (CR, LF or CRLF). Garbage is
// available on demand: codes with a wrong check digit, binary noise,
// over-long lines and partial lines without a suffix. EAN13, UPCA and
// CheckDigit build valid codes for tests.
//
// By default the line is put in raw mode, as a reader configured with
// "stty raw" would see it; with Opts.Cooked the kernel's default terminal
// settings stay, including the CR to LF translation on input (ICRNL).
//
// # Faults
//
// InjectFault switches the scanner into a fault mode until ClearFault:
// FaultDisconnect unplugs it (the reader's reads fail, the path and link
// disappear; ClearFault plugs a new device in, usually at a new path),
// FaultStuck repeats the last code whatever is scanned, FaultNoise precedes
// every scan with a burst of binary noise, FaultSlow sends one byte every
// Opts.ByteDelay.
package scannersim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Scan suffixes.
const (
	CR   = "\r"
	LF   = "\n"
	CRLF = "\r\n"
)

// Fault is a failure mode of the simulated scanner.
type Fault int

// Fault modes.
const (
	FaultNone       Fault = iota
	FaultDisconnect       // USB unplugged: reads fail, the device path disappears
	FaultStuck            // every scan repeats the last code sent
	FaultNoise            // a burst of binary noise before every scan
	FaultSlow             // one byte every Opts.ByteDelay
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

// ErrDisconnected is returned by writes while the scanner is unplugged.
var ErrDisconnected = errors.New("scannersim: scanner disconnected")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("scannersim: closed")

// Opts configures a Sim.
type Opts struct {
	// Suffix terminates every scan: CR, LF or CRLF.
	Suffix string
	// Cooked keeps the kernel's default line discipline instead of raw mode.
	Cooked bool
	// Link, when set, is a symlink kept pointing at the current device path
	// and removed while the scanner is unplugged.
	Link string
	// WriteTimeout bounds a write the reader does not drain.
	WriteTimeout time.Duration
	// ByteDelay is the time between two bytes under FaultSlow.
	ByteDelay time.Duration
	// NoiseLen is the length of a FaultNoise burst.
	NoiseLen int
	// Seed seeds the garbage generator.
	Seed uint64
}

// DefaultOpts is a scanner sending CR-terminated scans.
var DefaultOpts = Opts{
	Suffix:       CR,
	WriteTimeout: 5 * time.Second,
	ByteDelay:    2 * time.Millisecond,
	NoiseLen:     16,
	Seed:         1,
}

// Sim is a simulated USB-CDC barcode scanner. It is safe for concurrent use.
type Sim struct {
	opts Opts

	mu     sync.Mutex // serialises writes and state changes
	rng    *rand.Rand
	fault  Fault
	last   string
	closed bool
	dev    *device // nil while unplugged

	recvMu   sync.Mutex // not s.mu: a write blocked on the reader must not stall the drain
	received []byte     // bytes the reader wrote to the scanner
}

// device is one plugged-in pty pair.
type device struct {
	master *os.File // pollable: deadlines work
	slave  *os.File // held open so the line survives reader reopen
	path   string
	done   chan struct{} // closed when the drain goroutine exits
}

// New plugs in a simulated scanner. opts may be nil for DefaultOpts.
func New(opts *Opts) (*Sim, error) {
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	switch o.Suffix {
	case CR, LF, CRLF:
	case "":
		o.Suffix = DefaultOpts.Suffix
	default:
		return nil, fmt.Errorf("scannersim: suffix must be CR, LF or CRLF, got %q", o.Suffix)
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultOpts.WriteTimeout
	}
	if o.NoiseLen <= 0 {
		o.NoiseLen = DefaultOpts.NoiseLen
	}
	s := &Sim{opts: o, rng: rand.New(rand.NewPCG(o.Seed, 0x5ca7))}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.plugLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Sim) plugLocked() error {
	m, t, err := pty.Open()
	if err != nil {
		return fmt.Errorf("scannersim: open pty: %w", err)
	}
	path := t.Name()
	// pty.Open leaves the master in blocking mode (it used Fd()); a
	// non-blocking duplicate goes through the poller so that deadlines and
	// Close interrupt pending I/O.
	fd, err := unix.Dup(int(m.Fd()))
	_ = m.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		_ = t.Close()
		return fmt.Errorf("scannersim: pty master: %w", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	if !s.opts.Cooked {
		if err := makeRaw(t); err != nil {
			_ = master.Close()
			_ = t.Close()
			return err
		}
	}
	if s.opts.Link != "" {
		_ = os.Remove(s.opts.Link)
		if err := os.Symlink(path, s.opts.Link); err != nil {
			_ = master.Close()
			_ = t.Close()
			return fmt.Errorf("scannersim: link: %w", err)
		}
	}
	d := &device{master: master, slave: t, path: path, done: make(chan struct{})}
	go s.drain(d)
	s.dev = d
	return nil
}

// makeRaw is cfmakeraw(3) on the slave side.
func makeRaw(t *os.File) error {
	fd := int(t.Fd())
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("scannersim: get termios: %w", err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		return fmt.Errorf("scannersim: set termios: %w", err)
	}
	return nil
}

// drain reads what the reader writes to the scanner (and echoes in cooked
// mode) so that the pty never fills up.
func (s *Sim) drain(d *device) {
	defer close(d.done)
	buf := make([]byte, 512)
	for {
		n, err := d.master.Read(buf)
		if n > 0 {
			s.recvMu.Lock()
			if len(s.received) < 1<<16 {
				s.received = append(s.received, buf[:n]...)
			}
			s.recvMu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func (d *device) close() {
	_ = d.master.Close()
	_ = d.slave.Close()
	<-d.done
}

// Path returns the device path the reader opens, "" while unplugged.
func (s *Sim) Path() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dev == nil {
		return ""
	}
	return s.dev.path
}

// Suffix returns the scan suffix.
func (s *Sim) Suffix() string { return s.opts.Suffix }

// Received returns a copy of the bytes the reader wrote to the scanner (the
// first 64 KiB).
func (s *Sim) Received() []byte {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	return append([]byte(nil), s.received...)
}

// InjectFault switches the scanner into fault mode f, replacing any previous
// fault. Leaving FaultDisconnect plugs a new device in.
func (s *Sim) InjectFault(f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if f == FaultDisconnect && s.dev != nil {
		d := s.dev
		s.dev = nil
		if s.opts.Link != "" {
			_ = os.Remove(s.opts.Link)
		}
		d.close()
	}
	s.fault = f
	if f != FaultDisconnect && s.dev == nil && !s.closed {
		return s.plugLocked()
	}
	return nil
}

// ClearFault returns the scanner to normal operation.
func (s *Sim) ClearFault() error { return s.InjectFault(FaultNone) }

// Fault returns the injected fault.
func (s *Sim) Fault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// Scan sends code followed by the suffix, as if the code was scanned.
func (s *Sim) Scan(code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.fault {
	case FaultStuck:
		if s.last != "" {
			code = s.last
		}
	case FaultNoise:
		if err := s.writeLocked(s.noiseLocked(s.opts.NoiseLen)); err != nil {
			return err
		}
	}
	s.last = code
	return s.writeLocked([]byte(code + s.opts.Suffix))
}

// ScanWrongCheckDigit sends code with its last digit replaced by a wrong
// check digit.
func (s *Sim) ScanWrongCheckDigit(code string) error {
	bad, err := BreakCheckDigit(code, s.lockedRand())
	if err != nil {
		return err
	}
	return s.Scan(bad)
}

func (s *Sim) lockedRand() *rand.Rand {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rand.New(rand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
}

// Noise sends n random bytes, which may contain suffix characters, NUL and
// bytes above 0x7F, without a suffix.
func (s *Sim) Noise(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(s.noiseLocked(n))
}

func (s *Sim) noiseLocked(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(s.rng.UintN(256))
	}
	return b
}

// OverLong sends a line of n digits followed by the suffix.
func (s *Sim) OverLong(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked([]byte(strings.Repeat("7", n) + s.opts.Suffix))
}

// Partial sends code without a suffix, as a scanner reset mid-transmission.
func (s *Sim) Partial(code string) error {
	return s.Write([]byte(code))
}

// Write sends b verbatim.
func (s *Sim) Write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(b)
}

func (s *Sim) writeLocked(b []byte) error {
	if s.closed {
		return ErrClosed
	}
	if s.dev == nil {
		return ErrDisconnected
	}
	m := s.dev.master
	if s.fault == FaultSlow {
		for i := range b {
			if i > 0 {
				time.Sleep(s.opts.ByteDelay)
			}
			if err := s.writeAll(m, b[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	return s.writeAll(m, b)
}

func (s *Sim) writeAll(m *os.File, b []byte) error {
	if err := m.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout)); err != nil {
		return fmt.Errorf("scannersim: %w", err)
	}
	if _, err := m.Write(b); err != nil {
		return fmt.Errorf("scannersim: write: %w", err)
	}
	return nil
}

// Close unplugs the scanner for good.
func (s *Sim) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	d := s.dev
	s.dev = nil
	if d != nil && s.opts.Link != "" {
		_ = os.Remove(s.opts.Link)
	}
	s.mu.Unlock()
	if d != nil {
		d.close()
	}
	return nil
}
