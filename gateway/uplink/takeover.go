package uplink

import (
	"errors"
	"io"
	"sync"
	"time"
)

// Two gateways with the same gateway.id connect with the same client id,
// and an MQTT broker lets only one session per client id live: each new
// CONNECT takes the session over and closes the other connection. Both
// gateways then reconnect and kick each other in turn. Seen from one of
// them: the broker is reachable (connecting works) but closes the session
// within seconds, again and again. A session lost that way is counted as a
// takeover; takeoverCount of them within takeoverPeriod is an episode,
// logged at ERROR once. A session that lasts takeoverPeriod ends it.
const (
	takeoverSession = 10 * time.Second // a session the broker closed sooner is a takeover
	takeoverPeriod  = time.Minute
	takeoverCount   = 3
	// lossGrace is how long a short session that ended on a failed
	// publish waits for paho to report the connection loss behind it
	// (paho fails the in-flight tokens before it calls the lost handler).
	lossGrace = 250 * time.Millisecond
)

// errLinkDead ends a session whose broker fell silent (see watch).
var errLinkDead = errors.New("link dead")

// lostError ends a session that paho reported lost: the broker closed the
// connection, or the network failed under it.
type lostError struct{ err error }

func (e *lostError) Error() string {
	if e.err == nil {
		return "connection lost"
	}
	return "connection lost: " + e.err.Error()
}

func (e *lostError) Unwrap() error { return e.err }

// loss is paho's report that a session's connection was lost.
type loss struct {
	once sync.Once
	done chan struct{}
	err  error // set before done is closed
}

func (l *loss) report(err error) {
	l.once.Do(func() { l.err = err; close(l.done) })
}

// byBroker reports whether a session that ended with cause after lasting
// d was closed cleanly by the broker (a takeover candidate), rather than
// ended by this gateway (its watchdog, an ack timeout, a failing store) or
// by a network failure (a reset or timeout, not a clean close).
func (l *loss) byBroker(cause error, d time.Duration) bool {
	var le *lostError
	switch {
	case errors.As(cause, &le):
		return errors.Is(le.err, io.EOF)
	case errors.Is(cause, errLinkDead), d >= takeoverSession:
		return false
	}
	t := time.NewTimer(lossGrace)
	defer t.Stop()
	select {
	case <-l.done:
		return errors.Is(l.err, io.EOF)
	case <-t.C:
		return false
	}
}

// takeoverWatch tells takeover episodes apart (see the constants).
type takeoverWatch struct {
	recent  []time.Time // takeovers within the last takeoverPeriod
	episode bool
}

// note records a session that ended at now after lasting d; byBroker says
// the other side ended it. It reports whether that was a takeover and
// whether it starts an episode (log it).
func (w *takeoverWatch) note(now time.Time, d time.Duration, byBroker bool) (takeover, alarm bool) {
	if !byBroker || d >= takeoverSession {
		if d >= takeoverPeriod {
			w.episode, w.recent = false, w.recent[:0]
		}
		return false, false
	}
	keep := w.recent[:0]
	for _, t := range w.recent {
		if now.Sub(t) < takeoverPeriod {
			keep = append(keep, t)
		}
	}
	w.recent = append(keep, now)
	if len(w.recent) >= takeoverCount && !w.episode {
		w.episode = true
		return true, true
	}
	return true, false
}

// count is the number of takeovers within the last takeoverPeriod.
func (w *takeoverWatch) count() int { return len(w.recent) }
