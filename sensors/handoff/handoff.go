// Package handoff hands a request (a sensor reboot) from any goroutine to
// the one goroutine that owns a device, and gives every asker the answer
// of the attempt that served it. Sources use it so that only their own
// sampling goroutine ever touches their hardware.
package handoff

import (
	"context"
	"sync"
	"sync/atomic"
)

// Requests is the requests waiting for an owner goroutine. The zero value
// is ready to use, with the owner not running.
type Requests struct {
	mu      sync.Mutex
	running bool
	pending atomic.Bool
	waiters []chan error // buffered 1 each
	kick    chan struct{}
}

// Start marks the owner running: Ask waits for it from now on.
func (r *Requests) Start() {
	r.mu.Lock()
	r.running = true
	r.mu.Unlock()
}

// Stop marks the owner stopped and answers every waiting request with
// stopped.
func (r *Requests) Stop(stopped error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = false
	r.answerLocked(stopped)
}

// Ask registers a request, calls wake (when not nil; otherwise Wake) and waits for its answer or ctx. It returns
// notRunning at once when the owner is not running, and ctx.Err() when
// ctx ends first.
func (r *Requests) Ask(ctx context.Context, notRunning error, wake func()) error {
	done := make(chan error, 1)
	r.mu.Lock()
	if !r.running {
		r.mu.Unlock()
		return notRunning
	}
	r.waiters = append(r.waiters, done)
	r.pending.Store(true)
	r.mu.Unlock()
	if wake != nil {
		wake()
	} else {
		r.Wake()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kick is readable when a request may be waiting: the owner selects on it
// beside its timers so that it serves a request at once.
func (r *Requests) Kick() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kickLocked()
}

func (r *Requests) kickLocked() chan struct{} {
	if r.kick == nil {
		r.kick = make(chan struct{}, 1)
	}
	return r.kick
}

// Wake makes Kick readable (once, until the owner reads it).
func (r *Requests) Wake() {
	r.mu.Lock()
	kick := r.kickLocked()
	r.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// Pending reports whether a request is waiting; it does not lock.
func (r *Requests) Pending() bool { return r.pending.Load() }

// Serve runs do for the requests waiting now, on the owner goroutine, and
// answers them with its error. A request made while do runs waits for the
// next Serve.
func (r *Requests) Serve(do func() error) {
	if !r.pending.Load() {
		return
	}
	r.mu.Lock()
	ws := r.waiters
	r.waiters = nil
	r.pending.Store(false)
	r.mu.Unlock()
	err := do()
	for _, w := range ws {
		w <- err
	}
}

// Answer answers every waiting request with err (for an owner that
// serves requests by its own events, such as a device opened again) and
// spends a kick left for them.
func (r *Requests) Answer(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answerLocked(err)
	select {
	case <-r.kickLocked():
	default:
	}
}

func (r *Requests) answerLocked(err error) {
	for _, w := range r.waiters {
		w <- err
	}
	r.waiters = nil
	r.pending.Store(false)
}
