// Package rfid reads tote and badge tags on NXP MFRC522 13.56 MHz readers
// and offers one read per presentation of a tag to the gateway.
//
// The reader is periph.io/x/devices/v3/mfrc522 on SPI (datasheet:
// https://www.nxp.com/docs/en/data-sheet/MFRC522.pdf); FromDev adapts its
// *mfrc522.Dev to the small Reader interface this package consumes, so in
// simulation the same driver runs over firmware-sim/rfidsim.
//
// # Debouncing
//
// A tag resting on the reader answers every poll. The Source remembers the
// tag in the field and emits a Tag only when a UID appears: the first
// time, after a different tag, or after the field was seen empty for
// Options.AbsentPolls consecutive polls. A failed poll (bus error, reader
// unplugged) says nothing about the tag, so it neither ends nor starts a
// presentation: a badge held on a reader through a glitch is read once.
//
// # Health
//
// An unplugged MFRC522 cannot be told from an empty field by ReadUID alone
// (its IRQ line never fires, so every read times out). Before each poll the
// Source reads VersionReg (datasheet 9.3.4.8); any value other than a known
// chip version counts as an error, with ErrNoReader.
//
// # Tags and the gateway
//
// A UID is a byte string a gateway.Reading's float Value cannot carry, so
// a Source emits each presentation as a gateway.EventTag event (stream
// "rfid/<name>", UID as upper-case hex in Detail) through the Emitter
// given to Run, as package scanner does with scans. The package never logs;
// problems are counted (see Stats).
package rfid

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/devices/v3/mfrc522"
	"periph.io/x/devices/v3/mfrc522/commands"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/sensors/handoff"
)

// Reader is an MFRC522 as the Source uses it. FromDev adapts periph's driver.
type Reader interface {
	// ReadUID waits up to timeout for a tag and returns its 4- or 7-byte
	// UID; with no tag in the field it returns an error that IsTimeout
	// recognises.
	ReadUID(timeout time.Duration) ([]byte, error)
	// Version returns the content of VersionReg.
	Version() (byte, error)
}

// FromDev adapts periph's MFRC522 driver to Reader.
func FromDev(d *mfrc522.Dev) Reader { return devReader{d: d} }

type devReader struct {
	d   *mfrc522.Dev
	rst gpio.PinOut // NRSTPD, for a hard reset (reboot.go); nil: none
}

func (r devReader) ReadUID(timeout time.Duration) ([]byte, error) { return r.d.ReadUID(timeout) }
func (r devReader) Version() (byte, error)                        { return r.d.LowLevel.DevRead(commands.VersionReg) }

// KnownVersion reports whether v is the VersionReg of an MFRC522 (0x91
// version 1.0, 0x92 version 2.0) or of the common FM17522 and clone chips
// (0x88, 0x12, 0xB2).
func KnownVersion(v byte) bool {
	switch v {
	case 0x91, 0x92, 0x88, 0x12, 0xB2:
		return true
	}
	return false
}

// ErrNoReader means VersionReg did not hold a known version: the reader is
// unplugged or its SPI lines are broken.
var ErrNoReader = errors.New("rfid: no MFRC522 answers")

// IsTimeout reports whether err is the driver's "no tag answered in time".
// periph's mfrc522 returns an unexported formatted error, so the text is
// all there is to go by.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "timeout")
}

// Tag is one presentation of a tag.
type Tag struct {
	Stream gateway.StreamID // rfid/<name>
	Time   time.Time
	UID    string // upper-case hex, 8 or 14 digits
}

// Event returns the tag as the gateway event a Source emits: kind tag on
// the reader's stream, the UID as Detail.
func (t Tag) Event() gateway.Event {
	return gateway.Event{Kind: gateway.EventTag, Stream: t.Stream, Detail: t.UID, Time: t.Time}
}

// Options tune a Source. Zero values take defaults.
type Options struct {
	// Timeout bounds one poll; default 50ms. With no tag in the field a
	// poll lasts this long.
	Timeout time.Duration
	// Interval is the pause between polls; default 100ms.
	Interval time.Duration
	// AbsentPolls is how many consecutive empty polls end a presentation;
	// default 3.
	AbsentPolls int
	// Now stamps tags; default time.Now.
	Now func() time.Time
	// Buffer is how many tags may wait for the gateway; default 64.
	Buffer int
}

// Stats count what a Source has seen.
type Stats struct {
	Polls  int64 // ReadUID calls
	Reads  int64 // presentations: tags emitted
	Held   int64 // polls that saw the tag already presented
	Empty  int64 // polls with no tag in the field
	Errors int64 // failed polls: bus errors, bad answers, ErrNoReader
	// Reboots counts re-initialisations done by Reboot.
	Reboots int64
}

// Source polls one MFRC522.
type Source struct {
	name   string
	stream gateway.StreamID
	r      Reader
	opts   Options

	polls, reads, held, empty, errs atomic.Int64
	reboots                         atomic.Int64

	rb handoff.Requests // reboots for the polling goroutine (reboot.go)
}

var _ gateway.Source = (*Source)(nil)

// New returns a Source named name (stream "rfid/<name>") polling r; Run
// emits each presentation as an event.
func New(name string, r Reader, opts Options) (*Source, error) {
	if name == "" {
		return nil, errors.New("rfid: empty name")
	}
	if r == nil {
		return nil, fmt.Errorf("rfid: %s: no reader", name)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.AbsentPolls <= 0 {
		opts.AbsentPolls = 3
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	return &Source{name: name, stream: gateway.StreamID("rfid/" + name), r: r, opts: opts}, nil
}

// Name implements gateway.Source.
func (s *Source) Name() string { return s.name }

// Stream returns the stream id of this reader's tags.
func (s *Source) Stream() gateway.StreamID { return s.stream }

// Stats returns the counters so far.
func (s *Source) Stats() Stats {
	return Stats{Polls: s.polls.Load(), Reads: s.reads.Load(), Held: s.held.Load(), Empty: s.empty.Load(), Errors: s.errs.Load(), Reboots: s.reboots.Load()}
}

// Run polls the reader until ctx is done or emitting fails. Tags go to emit
// as gateway.EventTag events (see Tag.Event) from a separate goroutine;
// tags read before ctx ends are still emitted (with a fresh context).
func (s *Source) Run(ctx context.Context, emit gateway.Emitter) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.rb.Start()
	defer s.rb.Stop(ErrNotRunning)
	out := make(chan Tag, s.opts.Buffer)
	sinkErr := make(chan error, 1)
	go func() {
		var first error
		for t := range out {
			if first != nil {
				continue
			}
			sctx := ctx
			if ctx.Err() != nil {
				sctx = context.Background()
			}
			if err := emit.EmitEvents(sctx, []gateway.Event{t.Event()}); err != nil {
				first = err
				cancel()
			}
		}
		sinkErr <- first
	}()
	s.poll(pctx, out)
	close(out)
	if err := <-sinkErr; err != nil && ctx.Err() == nil {
		return fmt.Errorf("rfid: %s: %w", s.name, err)
	}
	return nil
}

// Debouncer turns polls into presentations. It is the Source's state
// machine, exported for readers polled some other way. The zero value is
// ready; it is not safe for concurrent use.
type Debouncer struct {
	AbsentPolls int // consecutive empty polls that end a presentation; 0 means 1

	present string // UID in the field, "" if none
	absent  int
}

// Seen records a poll that read uid and reports whether it starts a new
// presentation.
func (d *Debouncer) Seen(uid string) bool {
	d.absent = 0
	if uid == d.present {
		return false
	}
	d.present = uid
	return true
}

// Empty records a poll that found no tag.
func (d *Debouncer) Empty() {
	d.absent++
	if d.absent >= max(d.AbsentPolls, 1) {
		d.present = ""
	}
}

func (s *Source) poll(ctx context.Context, out chan<- Tag) {
	deb := Debouncer{AbsentPolls: s.opts.AbsentPolls}
	for ctx.Err() == nil {
		s.reinitIfAsked()
		uid, err := s.pollOnce()
		switch {
		case err == nil:
			if deb.Seen(uid) {
				s.reads.Add(1)
				t := Tag{Stream: s.stream, Time: s.opts.Now(), UID: uid}
				select {
				case out <- t:
				case <-ctx.Done():
					out <- t
					return
				}
			} else {
				s.held.Add(1)
			}
		case IsTimeout(err):
			s.empty.Add(1)
			deb.Empty()
		default:
			s.errs.Add(1)
			// periph's driver leaves an IRQ waiter behind after a failed
			// read; give it a Timeout to expire before polling again.
			sleep(ctx, s.opts.Timeout)
		}
		sleep(ctx, s.opts.Interval)
	}
}

func (s *Source) pollOnce() (string, error) {
	v, err := s.r.Version()
	if err != nil {
		return "", fmt.Errorf("rfid: read version: %w", err)
	}
	if !KnownVersion(v) {
		return "", fmt.Errorf("%w (VersionReg %#02x)", ErrNoReader, v)
	}
	s.polls.Add(1)
	uid, err := s.r.ReadUID(s.opts.Timeout)
	if err != nil {
		return "", err
	}
	if len(uid) != 4 && len(uid) != 7 && len(uid) != 10 {
		return "", fmt.Errorf("rfid: UID of %d bytes", len(uid))
	}
	return strings.ToUpper(hex.EncodeToString(uid)), nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
