package loadcell

import (
	"strings"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Fault is a set of channel fault states.
type Fault uint8

// Channel faults. Each is entered and left on its own, so a channel may be in
// several at once (a timeout and a pin error, say).
const (
	// FaultTimeout: Options.FaultAfter consecutive reads saw no data-ready
	// within Options.Timeout (no supply, DOUT stuck high, broken clock).
	FaultTimeout Fault = 1 << iota
	// FaultStuck: Options.StuckAfter consecutive identical in-range codes.
	// The lowest bits of a real HX711 always carry noise, so an exact repeat
	// that long means a frozen chip or a floating DOUT (which reads 0).
	FaultStuck
	// FaultSaturated: Options.FaultAfter consecutive codes at either end of
	// the 24-bit range (overload, or a broken signal or excitation wire).
	FaultSaturated
	// FaultPinError: Options.FaultAfter consecutive ADC errors other than
	// timeouts, i.e. GPIO failures reported by the driver.
	FaultPinError
)

var faultNames = [...]string{"timeout", "stuck", "saturated", "pin_error"}
var recoveredNames = [...]string{"recovered:timeout", "recovered:stuck", "recovered:saturated", "recovered:pin_error"}

// String returns the event detail of a single fault ("timeout", "stuck",
// "saturated", "pin_error"), the names joined by "," for a set, "" for none.
func (f Fault) String() string {
	var parts []string
	for i, n := range faultNames {
		if f&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, ",")
}

// ChannelHealth is a snapshot of one channel, for metrics and diagnostics.
type ChannelHealth struct {
	Stream gateway.StreamID
	Mode   Mode
	Faults Fault     // active faults; 0 when healthy
	Since  time.Time // when the oldest active fault was entered; zero when healthy

	LastReading time.Time // time of the last reading emitted
	LastCode    int32     // last raw code read (before filtering)
	Readings    int64     // readings emitted
	Timeouts    int64
	Errors      int64
	Glitches    int64
	Spikes      int64
	Saturated   int64
	Stale       int64   // readings flagged gateway.QualityStale
	Episodes    int64   // fault episodes entered so far
	PowerCycles int64   // resets of the chip by Reboot
	ZeroGrams   float64 // correction applied by auto-zero tracking so far
}

// Healthy reports whether the channel has no active fault.
func (h ChannelHealth) Healthy() bool { return h.Faults == 0 }

// monitor follows the fault states of one channel. It is owned by the
// channel's sampling goroutine.
type monitor struct {
	faultAfter, recoverAfter, stuckAfter int

	active              Fault
	timeoutRun, errRun  int // consecutive timeouts, errors
	okRun               int // consecutive successful reads
	satRun, inRangeRun  int // consecutive saturated, in-range codes
	sameRun, changedRun int // consecutive identical, changed codes
	last                int32
	haveLast            bool
	enteredAt           [len(faultNames)]time.Time
	episodes            int64
}

// timeout records a read that saw no data-ready.
func (m *monitor) timeout() (enter, leave Fault) {
	m.timeoutRun++
	m.okRun = 0
	if m.timeoutRun >= m.faultAfter {
		enter = FaultTimeout &^ m.active
	}
	return enter, 0
}

// readError records a read that failed otherwise.
func (m *monitor) readError() (enter, leave Fault) {
	m.errRun++
	m.okRun = 0
	if m.errRun >= m.faultAfter {
		enter = FaultPinError &^ m.active
	}
	return enter, 0
}

// code records a successful read of code and reports whether the code is
// stale (part of a stuck run) and saturated.
func (m *monitor) code(code int32) (enter, leave Fault, stale, sat bool) {
	m.timeoutRun, m.errRun = 0, 0
	m.okRun++
	if m.okRun >= m.recoverAfter {
		leave |= m.active & (FaultTimeout | FaultPinError)
	}

	sat = code >= MaxCode || code <= MinCode
	if sat {
		m.satRun++
		m.inRangeRun = 0
		m.sameRun, m.changedRun = 0, 0 // a saturated ADC repeats by nature
		if m.satRun >= m.faultAfter {
			enter |= FaultSaturated &^ m.active
		}
	} else {
		m.satRun = 0
		m.inRangeRun++
		if m.inRangeRun >= m.recoverAfter {
			leave |= m.active & FaultSaturated
		}
		if m.haveLast && code == m.last {
			m.sameRun++
			m.changedRun = 0
		} else {
			m.sameRun = 1
			m.changedRun++
		}
		if m.sameRun >= m.stuckAfter {
			enter |= FaultStuck &^ m.active
		}
		if m.changedRun >= m.recoverAfter {
			leave |= m.active & FaultStuck
		}
	}
	m.last, m.haveLast = code, true
	return enter, leave, m.sameRun >= m.stuckAfter, sat
}

// apply makes enter and leave the new state at now.
func (m *monitor) apply(enter, leave Fault, now time.Time) {
	for i := range faultNames {
		if enter&(1<<i) != 0 {
			m.enteredAt[i] = now
			m.episodes++
		}
	}
	m.active = m.active&^leave | enter
}

// since returns when the oldest active fault was entered.
func (m *monitor) since() time.Time {
	var t time.Time
	for i := range faultNames {
		if m.active&(1<<i) != 0 && (t.IsZero() || m.enteredAt[i].Before(t)) {
			t = m.enteredAt[i]
		}
	}
	return t
}
