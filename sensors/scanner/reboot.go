package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrNotRunning is returned by Reboot when Run is not running.
var ErrNotRunning = errors.New("scanner: not running")

// rebootState is the device Run has open, for Reboot to close, and the
// reboots waiting for the device to open again.
type rebootState struct {
	mu      sync.Mutex
	running bool
	rc      io.Closer    // the open device; nil between opens
	waiters []chan error // buffered 1 each
	kick    chan struct{}
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
	done := make(chan error, 1)
	s.rb.mu.Lock()
	if !s.rb.running {
		s.rb.mu.Unlock()
		return fmt.Errorf("scanner: %s: %w", s.name, ErrNotRunning)
	}
	s.rb.waiters = append(s.rb.waiters, done)
	rc := s.rb.rc
	s.rb.mu.Unlock()
	if rc != nil {
		rc.Close() // the read fails; the loop opens it again at once
	} else {
		select {
		case s.rb.kick <- struct{}{}:
		default:
		}
	}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("scanner: %s: reopen: %w", s.name, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("scanner: %s: reboot: %w", s.name, ctx.Err())
	}
}

// setRunning marks Run as running or not; when it stops, reboots still
// waiting get ErrNotRunning.
func (s *Source) setRunning(on bool) {
	s.rb.mu.Lock()
	defer s.rb.mu.Unlock()
	s.rb.running = on
	if !on {
		s.answerLocked(ErrNotRunning)
	}
}

func (s *Source) answerLocked(err error) {
	for _, w := range s.rb.waiters {
		w <- err
	}
	s.rb.waiters = nil
}

// attach records the device just opened (wrapped to close once) and
// answers the reboots waiting for it.
func (s *Source) attach(rc io.ReadCloser) io.ReadCloser {
	oc := &onceCloser{ReadCloser: rc}
	s.rb.mu.Lock()
	defer s.rb.mu.Unlock()
	s.rb.rc = oc
	s.answerLocked(nil)
	select {
	case <-s.rb.kick: // a kick for this open is spent
	default:
	}
	return oc
}

// detach forgets the device after its read loop ended and reports whether
// a reboot closed it (the loop then reopens at once, counting no error).
func (s *Source) detach() (rebooting bool) {
	s.rb.mu.Lock()
	defer s.rb.mu.Unlock()
	s.rb.rc = nil
	return len(s.rb.waiters) > 0
}

// openFailed answers the reboots waiting for an open with its error.
func (s *Source) openFailed(err error) {
	s.rb.mu.Lock()
	defer s.rb.mu.Unlock()
	s.answerLocked(err)
}
