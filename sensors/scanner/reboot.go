package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/shelfgate/shelfgate/sensors/handoff"
)

// ErrNotRunning is returned by Reboot when Run is not running.
var ErrNotRunning = errors.New("scanner: not running")

// rebootState is the device Run has open, for Reboot to close, and the
// reboots waiting for the device to open again.
type rebootState struct {
	mu  sync.Mutex
	rc  io.Closer // the open device; nil between opens
	req handoff.Requests
}

// onceCloser closes its ReadCloser once, whoever asks first: the read
// loop, the stop of Run, or Reboot.
type onceCloser struct {
	io.ReadCloser
	once sync.Once
	err  error
}

func (c *onceCloser) Close() error {
	c.once.Do(func() { c.err = c.ReadCloser.Close() })
	return c.err
}

// Reboot closes the scanner's device and opens it again, as unplugging
// and plugging it back would, and returns when it is open again (nil) or
// the open failed (its error; Run then retries as after any failure), or
// ctx ended. Scans already read are delivered; a code the scanner was
// sending at that instant is cut and rejected as partial. A device that is
// not open (unplugged, Run waiting to retry) is tried at once.
func (s *Source) Reboot(ctx context.Context) error {
	err := s.rb.req.Ask(ctx, ErrNotRunning, func() {
		s.rb.mu.Lock()
		rc := s.rb.rc
		if !s.rb.req.Pending() {
			rc = nil // an open since the request answered it already
		}
		s.rb.mu.Unlock()
		if rc != nil {
			rc.Close() // the read fails; the loop opens it again at once
			return
		}
		s.rb.req.Wake() // Run waits to retry: try now
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotRunning):
		return fmt.Errorf("scanner: %s: %w", s.name, err)
	case ctx.Err() != nil:
		return fmt.Errorf("scanner: %s: reboot: %w", s.name, err)
	}
	return fmt.Errorf("scanner: %s: reopen: %w", s.name, err)
}

// attach records the device just opened (wrapped to close once) and
// answers the reboots waiting for it.
func (s *Source) attach(rc io.ReadCloser) io.ReadCloser {
	oc := &onceCloser{ReadCloser: rc}
	s.rb.mu.Lock()
	defer s.rb.mu.Unlock()
	s.rb.rc = oc
	s.rb.req.Answer(nil)
	return oc
}

// detach forgets the device after its read loop ended and reports whether
// a reboot closed it (the loop then reopens at once, counting no error).
func (s *Source) detach() (rebooting bool) {
	s.rb.mu.Lock()
	defer s.rb.mu.Unlock()
	s.rb.rc = nil
	return s.rb.req.Pending()
}

// openFailed answers the reboots waiting for an open with its error.
func (s *Source) openFailed(err error) { s.rb.req.Answer(err) }
