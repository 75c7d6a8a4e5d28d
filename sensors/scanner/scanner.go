package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"

	"github.com/shelfgate/shelfgate/gateway"
)

// Scan is one accepted code.
type Scan struct {
	Stream    gateway.StreamID // scanner/<name>
	Time      time.Time
	Code      string // printable ASCII, 1..MaxLen bytes, check digit verified for GS1 keys
	Symbology Symbology
}

// Event returns the scan as the gateway event a Source emits: kind scan on
// the scanner's stream, the code as Detail.
func (s Scan) Event() gateway.Event {
	return gateway.Event{Kind: gateway.EventScan, Stream: s.Stream, Detail: s.Code, Time: s.Time}
}

// Opener opens the scanner's byte stream. The Source closes what it opens,
// and closes it from another goroutine to stop a blocked Read, so the
// ReadCloser must allow that (go.bug.st/serial ports and pollable
// *os.File do). Serial and Evdev return Openers for real devices.
type Opener func(ctx context.Context) (io.ReadCloser, error)

// Serial returns an Opener for a USB-CDC scanner at path (e.g.
// /dev/ttyACM0 or a /dev/serial/by-id link) at baud bits/s, 8N1, raw mode.
// USB-CDC ignores the baud rate, but a real UART behind it does not.
func Serial(path string, baud int) Opener {
	return func(context.Context) (io.ReadCloser, error) {
		p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return p, nil
	}
}

// evdevGrab is EVIOCGRAB, _IOW('E', 0x90, int).
const evdevGrab = 0x40044590

// Evdev returns an Opener for a keyboard-wedge scanner's event device
// (e.g. /dev/input/by-id/usb-...-event-kbd) with events of eventSize bytes
// (0 for EventSize64). With grab, the device is grabbed (EVIOCGRAB) so the
// scans are not also typed into the console. The stream it yields is the
// decoded text with '\r' for Enter: use SuffixCR. The scanner types on the
// US layout; EvdevLayout reads others.
func Evdev(path string, eventSize int, grab bool) Opener {
	return EvdevLayout(path, eventSize, grab, LayoutUS)
}

// EvdevLayout is Evdev for a scanner typing on layout.
func EvdevLayout(path string, eventSize int, grab bool, layout Layout) Opener {
	return func(context.Context) (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		if grab {
			rc, err := f.SyscallConn()
			if err == nil {
				cerr := rc.Control(func(fd uintptr) { err = unix.IoctlSetInt(int(fd), evdevGrab, 1) })
				if cerr != nil {
					err = cerr
				}
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("grab %s: %w", path, err)
			}
		}
		kr, err := NewLayoutReader(f, eventSize, layout)
		if err != nil {
			f.Close()
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{kr, f}, nil
	}
}

// Options tune a Source. Zero values take defaults.
type Options struct {
	// Suffix ends every scan; default SuffixCR.
	Suffix Suffix
	// MaxLen is the longest accepted code; default DefaultMaxLen.
	MaxLen int
	// Retry is the wait before reopening after an open or read error;
	// default 1s.
	Retry time.Duration
	// Now stamps scans; default time.Now.
	Now func() time.Time
	// Buffer is how many scans may wait for the gateway; default 256. A full
	// buffer stops reading (the tty buffers, then the scanner beeps) rather
	// than dropping scans.
	Buffer int
	// Retrying, if set, is called before each wait to reopen the device
	// with the error that caused it (a failed open, a failed read, or
	// io.EOF when the device went away) and how many retries in a row this
	// is (1 for the first since the device last worked). The package does
	// not log: this is how a caller logs retries. It runs on the reading
	// goroutine and must not block.
	Retrying func(err error, attempt int64, wait time.Duration)
	// Recovered, if set, is called when the device opens again after
	// retries, with their number.
	Recovered func(retries int64)
}

// Stats count what a Source has seen.
type Stats struct {
	Scans      int64             // accepted codes
	Bytes      int64             // bytes read from the device
	Opens      int64             // successful opens of the device
	OpenErrors int64             // failed opens (scanner unplugged)
	ReadErrors int64             // reads that failed or hit EOF (scanner unplugged while open)
	Retries    int64             // waits before reopening the device (after an open or read error)
	Reboots    int64             // closes and reopens asked by Reboot
	Rejected   [NumReasons]int64 // rejected frames by reason; Rejected[ReasonOK] stays 0
}

// RejectedTotal returns the number of rejected frames.
func (s Stats) RejectedTotal() int64 {
	var n int64
	for _, v := range s.Rejected {
		n += v
	}
	return n
}

// Source reads one barcode scanner.
type Source struct {
	name   string
	stream gateway.StreamID
	open   Opener
	opts   Options

	scans, bytes, opens, openErrs, readErrs, retries atomic.Int64
	rejected                                         [NumReasons]atomic.Int64
	lastErr                                          atomic.Pointer[error]
	reboots                                          atomic.Int64

	rb rebootState // reboot.go
}

var _ gateway.Source = (*Source)(nil)

// New returns a Source named name (its stream is "scanner/<name>") reading
// what open yields; Run emits accepted scans as events.
func New(name string, open Opener, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("scanner: empty name")
	}
	if open == nil {
		return nil, fmt.Errorf("scanner: %s: no opener", name)
	}
	if opts.Suffix > SuffixCRLF {
		return nil, fmt.Errorf("scanner: %s: bad suffix %v", name, opts.Suffix)
	}
	if opts.MaxLen <= 0 {
		opts.MaxLen = DefaultMaxLen
	}
	if opts.Retry <= 0 {
		opts.Retry = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 256
	}
	return &Source{name: name, stream: gateway.StreamID("scanner/" + name), open: open, opts: opts}, nil
}

// Name implements gateway.Source.
func (s *Source) Name() string { return s.name }

// Stream returns the stream id of this scanner's scans.
func (s *Source) Stream() gateway.StreamID { return s.stream }

// Stats returns the counters so far.
func (s *Source) Stats() Stats {
	st := Stats{Scans: s.scans.Load(), Bytes: s.bytes.Load(), Opens: s.opens.Load(), OpenErrors: s.openErrs.Load(), ReadErrors: s.readErrs.Load(), Retries: s.retries.Load(),
		Reboots: s.reboots.Load()}
	for i := range st.Rejected {
		st.Rejected[i] = s.rejected[i].Load()
	}
	return st
}

// LastError returns the error of the last failed open or read (io.EOF
// when the device went away), nil if there was none.
func (s *Source) LastError() error {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Run reads scans until ctx is done or emitting fails, reopening the device
// after errors (an unplugged scanner is waited for, not fatal). Scans go to
// emit as gateway.EventScan events (see Scan.Event), from a separate
// goroutine so a slow gateway does not stall the reader. Scans read before
// ctx ends are still emitted (with a fresh context).
func (s *Source) Run(ctx context.Context, emit gateway.Emitter) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.rb.req.Start()
	defer s.rb.req.Stop(ErrNotRunning)
	out := make(chan Scan, s.opts.Buffer)
	sinkErr := make(chan error, 1)
	go func() {
		var first error
		for sc := range out {
			if first != nil {
				continue // keep draining so the reader can stop
			}
			sctx := ctx
			if ctx.Err() != nil {
				sctx = context.Background()
			}
			if err := emit.EmitEvents(sctx, []gateway.Event{sc.Event()}); err != nil {
				first = err
				cancel()
			}
		}
		sinkErr <- first
	}()
	s.read(rctx, out)
	close(out)
	if err := <-sinkErr; err != nil && ctx.Err() == nil {
		return fmt.Errorf("scanner: %s: %w", s.name, err)
	}
	return nil
}

func (s *Source) read(ctx context.Context, out chan<- Scan) {
	framer := NewFramer(s.opts.Suffix, s.opts.MaxLen)
	handle := func(f Frame) {
		if f.Reject != ReasonOK {
			s.rejected[f.Reject].Add(1)
			return
		}
		s.scans.Add(1)
		sc := Scan{Stream: s.stream, Time: s.opts.Now(), Code: f.Code, Symbology: f.Symbology}
		select {
		case out <- sc:
		case <-ctx.Done():
			out <- sc // read before the stop: still delivered
		}
	}
	buf := make([]byte, 4096)
	var attempt int64 // retries since the device last opened
	for ctx.Err() == nil {
		rc, err := s.open(ctx)
		if err != nil {
			s.openErrs.Add(1)
			s.openFailed(err)
			attempt++
			s.retry(ctx, err, attempt)
			continue
		}
		s.opens.Add(1)
		rc = s.attach(rc)
		if attempt > 0 && s.opts.Recovered != nil {
			s.opts.Recovered(attempt)
		}
		attempt = 0
		stop := context.AfterFunc(ctx, func() { rc.Close() })
		var rerr error
		for {
			n, err := rc.Read(buf)
			s.bytes.Add(int64(n))
			framer.Feed(buf[:n], handle)
			if err != nil {
				rerr = err
				break
			}
		}
		framer.Flush(handle)
		if stop() {
			rc.Close()
		}
		if s.detach() && ctx.Err() == nil {
			s.reboots.Add(1)
			continue // closed by Reboot: open again at once
		}
		if ctx.Err() == nil {
			s.readErrs.Add(1)
			attempt++
			s.retry(ctx, rerr, attempt)
		}
	}
}

// retry records err, reports the retry and waits before the next open.
func (s *Source) retry(ctx context.Context, err error, attempt int64) {
	s.lastErr.Store(&err)
	s.retries.Add(1)
	if s.opts.Retrying != nil {
		s.opts.Retrying(err, attempt, s.opts.Retry)
	}
	s.wait(ctx)
}

func (s *Source) wait(ctx context.Context) {
	t := time.NewTimer(s.opts.Retry)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-s.rb.req.Kick(): // Reboot: try now
	}
}
