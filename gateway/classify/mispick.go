package classify

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"periph.io/x/conn/v3/gpio"

	"github.com/shelfgate/shelfgate/gateway"
)

// Picker is one picker's scanner (and optionally the RFID reader their
// tote is presented at) and the plates they pick from.
type Picker struct {
	Scanner gateway.StreamID // scan events of this stream are this picker's
	Reader  gateway.StreamID // tag events of this stream name the picker's tote; may be empty
	Plates  []string         // plate IDs; empty means every plate
}

// MisPickConfig configures MisPick.
type MisPickConfig struct {
	Pickers []Picker
	// Horizon is how long a scanned line stays open for a pick (default 2 min).
	Horizon time.Duration
	// Light, if set, is driven high on a mis-pick and low on the next
	// correct pick (pick-to-light or buzzer); a periph gpio.PinOut is one.
	Light Light
}

// Light is the output MisPick drives.
type Light interface {
	Out(l gpio.Level) error
}

// line is a picker's open pick-list line.
type line struct {
	sku  string
	qty  int // 0: the scan gave no quantity
	tote string
	at   time.Time
	open bool
}

// MisPick is the chain link that fuses scans with plate picks. Scan
// details are a pick-list line: "<sku>" or "<sku>*<qty>". A pick (from the
// plate detector earlier in the chain) on a plate of a picker with an open
// line raises a mispick event when its SKU or quantity differs from the
// line; the line is then closed. Picks with no open line are not judged.
// Its cross-stream state is guarded by its own mutex.
type MisPick struct {
	cfg       MisPickConfig
	mu        sync.Mutex
	lines     []line
	totes     []string
	judged    atomic.Int64
	raised    atomic.Int64
	lightOn   atomic.Bool
	lightErrs atomic.Int64
}

var _ gateway.Classifier = (*MisPick)(nil)

// NewMisPick validates cfg and returns the link.
func NewMisPick(cfg MisPickConfig) (*MisPick, error) {
	if cfg.Horizon == 0 {
		cfg.Horizon = 2 * time.Minute
	}
	var errs []error
	if cfg.Horizon < 0 {
		errs = append(errs, fmt.Errorf("classify: mispick horizon %v must be positive", cfg.Horizon))
	}
	for i, p := range cfg.Pickers {
		if p.Scanner == "" {
			errs = append(errs, fmt.Errorf("classify: pickers[%d].scanner: empty", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &MisPick{cfg: cfg, lines: make([]line, len(cfg.Pickers)), totes: make([]string, len(cfg.Pickers))}, nil
}

// ParseLine parses a scanned pick-list line: "<sku>" or "<sku>*<qty>".
func ParseLine(s string) (sku string, qty int, err error) {
	sku, q, has := strings.Cut(strings.TrimSpace(s), "*")
	if sku == "" {
		return "", 0, fmt.Errorf("pick-list line %q: empty SKU", s)
	}
	if has {
		qty, err = strconv.Atoi(q)
		if err != nil || qty < 1 || qty > 10000 {
			return "", 0, fmt.Errorf("pick-list line %q: quantity %q is not a number of units 1-10000", s, q)
		}
	}
	return sku, qty, nil
}

// Observe implements gateway.Classifier: readings are not fused.
func (m *MisPick) Observe(gateway.Reading) []gateway.Event { return nil }

// ObserveEvent implements gateway.Classifier.
func (m *MisPick) ObserveEvent(ev gateway.Event) []gateway.Event {
	switch ev.Kind {
	case gateway.EventScan:
		sku, qty, err := ParseLine(ev.Detail)
		if err != nil {
			return nil
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for i, p := range m.cfg.Pickers {
			if p.Scanner == ev.Stream {
				m.lines[i] = line{sku: sku, qty: qty, tote: m.totes[i], at: ev.Time, open: true}
			}
		}
	case gateway.EventTag:
		m.mu.Lock()
		defer m.mu.Unlock()
		for i, p := range m.cfg.Pickers {
			if p.Reader != "" && p.Reader == ev.Stream {
				m.totes[i] = ev.Detail
			}
		}
	case gateway.EventPick:
		if ev.Inference == nil {
			return nil
		}
		return m.pick(ev)
	}
	return nil
}

func (m *MisPick) pick(ev gateway.Event) []gateway.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	best := -1
	for i, p := range m.cfg.Pickers {
		l := m.lines[i]
		if !l.open || ev.Time.Sub(l.at) > m.cfg.Horizon || ev.Time.Before(l.at.Add(-time.Second)) {
			continue
		}
		if len(p.Plates) > 0 && !slices.Contains(p.Plates, ev.Inference.Plate) {
			continue
		}
		if best < 0 || l.at.After(m.lines[best].at) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	l := &m.lines[best]
	l.open = false
	m.judged.Add(1)
	var why []string
	if ev.SKU != l.sku {
		why = append(why, fmt.Sprintf("picked SKU %s, scanned %s", ev.SKU, l.sku))
	}
	if l.qty > 0 && ev.Quantity != l.qty {
		why = append(why, fmt.Sprintf("picked %d, pick-list line says %d", ev.Quantity, l.qty))
	}
	if len(why) == 0 {
		m.light(false)
		return nil
	}
	m.raised.Add(1)
	m.light(true)
	detail := strings.Join(why, "; ") + " (scanner " + string(m.cfg.Pickers[best].Scanner)
	if l.tote != "" {
		detail += ", tote " + l.tote
	}
	detail += ")"
	return []gateway.Event{{
		Kind: gateway.EventMisPick, Stream: ev.Stream, Bin: ev.Bin, SKU: ev.SKU, Quantity: ev.Quantity,
		DeltaGrams: ev.DeltaGrams, Confidence: ev.Confidence, Detail: detail, Time: ev.Time, Inference: ev.Inference,
	}}
}

// light drives the pick-to-light output, if any; errors are counted.
func (m *MisPick) light(on bool) {
	if m.cfg.Light == nil || m.lightOn.Load() == on {
		return
	}
	lvl := gpio.Low
	if on {
		lvl = gpio.High
	}
	if err := m.cfg.Light.Out(lvl); err != nil {
		m.lightErrs.Add(1)
		return
	}
	m.lightOn.Store(on)
}

// MisPickStats are MisPick's counts.
type MisPickStats struct {
	Judged      int64 // picks compared with an open line
	MisPicks    int64
	LightOn     bool
	LightErrors int64
}

// Stats returns the counts.
func (m *MisPick) Stats() MisPickStats {
	return MisPickStats{Judged: m.judged.Load(), MisPicks: m.raised.Load(), LightOn: m.lightOn.Load(), LightErrors: m.lightErrs.Load()}
}
