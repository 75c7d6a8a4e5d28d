package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// windowSource finds the feature window a plate event was decided on
// (classify.WindowRecorder).
type windowSource interface {
	Window(plate string, at time.Time) (x []float32, rate float64, ok bool)
}

// appender commits records (outbox.Outbox.Append).
type appender interface {
	Append(ctx context.Context, recs []gateway.Record) error
}

var _ windowSource = (*classify.WindowRecorder)(nil)

// Sample book bounds.
const (
	sampleEvents = 4096 // plate events kept for correct
	sampleQueue  = 256  // confirmed samples waiting to be committed
	labelledKept = 1024 // labelled windows kept for judging plate models
	scansKept    = 64   // recent scans a pick may be confirmed by
	// scanWeightTolerance is how far (as a share of the scanned units'
	// nominal weight, at least scanWeightFloor) a pick's weight change may
	// be from the scanned SKU × quantity and still be confirmed by it.
	scanWeightTolerance = 0.25
	scanWeightFloor     = 5.0              // grams
	scanConfirm         = 30 * time.Second // a pick this soon after a scan of a SKU on its plate is labelled by it
)

// sampleBook turns ground truth into labelled samples (class samples):
//
//   - a scan followed within scanConfirm by a pick on a plate that holds
//     the scanned SKU: the pick is labelled with the scanned SKU's
//     position and the scanned quantity (source "scan");
//   - an operator's correct command naming a recent plate event by stream
//     and time: labelled with the true SKU (qty 0: nothing moved, "none"),
//     committed with the command's reply (source "correction").
//
// It is a link of the classifier chain, after the plate detector: it sees
// the plate events (and the scans) as they are derived. Scan-confirmed
// samples are committed by Run, off the ingest path; the queue is bounded
// and a sample that does not fit is counted and dropped, never a reading.
type sampleBook struct {
	gw      string
	plates  map[string]*classify.Plate // by plate id
	windows windowSource               // nil: samples without features
	now     func() time.Time

	mu     sync.Mutex
	events map[eventKey]gateway.Event
	order  []eventKey
	scans  []scanLine // the last scansKept scans, oldest first

	queue   chan gateway.Record
	dropped atomic.Int64
	made    atomic.Int64

	lmu      sync.Mutex
	labelled []labelledWindow // the last labelledKept, oldest first
}

// labelledWindow is a change window with its true class label: the
// window and label of a scan-confirmed or corrected sample.
type labelledWindow struct {
	plate string
	at    time.Time // the event's time
	x     []float32
	label string
}

var _ labelledSource = (*sampleBook)(nil)

// Labelled implements labelledSource: up to n of the latest labelled
// windows, or with after set the first n of events after it; oldest first.
func (b *sampleBook) Labelled(after time.Time, n int) []labelledWindow {
	b.lmu.Lock()
	defer b.lmu.Unlock()
	if after.IsZero() {
		return append([]labelledWindow(nil), b.labelled[max(0, len(b.labelled)-n):]...)
	}
	var out []labelledWindow
	for _, w := range b.labelled {
		if w.at.After(after) && len(out) < n {
			out = append(out, w)
		}
	}
	return out
}

// keepLabelled remembers the window and label of sample s of event ev;
// a later label of the same event (a correction) replaces the earlier.
func (b *sampleBook) keepLabelled(ev gateway.Event, s shelfv1.Sample) {
	if len(s.Features) == 0 || s.Rate != classify.ModelRate {
		return
	}
	b.lmu.Lock()
	defer b.lmu.Unlock()
	for i := range b.labelled {
		if w := &b.labelled[i]; w.plate == s.Plate && w.at.Equal(ev.Time) {
			w.label = s.Label
			return
		}
	}
	if len(b.labelled) == labelledKept {
		b.labelled = append(b.labelled[:0], b.labelled[1:]...)
	}
	b.labelled = append(b.labelled, labelledWindow{plate: s.Plate, at: ev.Time, x: s.Features, label: s.Label})
}

type eventKey struct {
	stream gateway.StreamID
	t      int64 // Unix µs, as the record carries it
}

type scanLine struct {
	scanner gateway.StreamID
	sku     string
	qty     int
	at      time.Time
}

var _ gateway.Classifier = (*sampleBook)(nil)

// newSampleBook returns a book for the plates of a gateway.
func newSampleBook(gw string, plates []classify.Plate, windows windowSource) *sampleBook {
	b := &sampleBook{gw: gw, plates: map[string]*classify.Plate{}, windows: windows, now: time.Now,
		events: map[eventKey]gateway.Event{}, queue: make(chan gateway.Record, sampleQueue)}
	for i := range plates {
		b.plates[plates[i].ID] = &plates[i]
	}
	return b
}

// Observe implements gateway.Classifier: readings are not labelled.
func (b *sampleBook) Observe(gateway.Reading) []gateway.Event { return nil }

// ObserveEvent implements gateway.Classifier. It derives no events.
func (b *sampleBook) ObserveEvent(ev gateway.Event) []gateway.Event {
	switch {
	case ev.Kind == gateway.EventScan:
		sku, qty, err := classify.ParseLine(ev.Detail)
		if err != nil {
			return nil
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.scans) == scansKept {
			b.scans = append(b.scans[:0], b.scans[1:]...)
		}
		b.scans = append(b.scans, scanLine{ev.Stream, sku, qty, ev.Time})
	case ev.Inference != nil && (ev.Kind == gateway.EventPick || ev.Kind == gateway.EventPut):
		b.remember(ev)
		if ev.Kind == gateway.EventPick {
			b.confirm(ev)
		}
	}
	return nil
}

func (b *sampleBook) remember(ev gateway.Event) {
	k := eventKey{ev.Stream, ev.Time.UnixMicro()}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.events[k]; ok {
		return
	}
	if len(b.order) == sampleEvents {
		delete(b.events, b.order[0])
		b.order = append(b.order[:0], b.order[1:]...)
	}
	b.events[k] = ev
	b.order = append(b.order, k)
}

// confirm queues a scan-labelled sample for a pick that follows a scan of
// a SKU on its plate whose units explain the pick's weight change (each
// scan labels one pick). Among such scans the oldest is used: a picker
// may scan the next line before the gateway has reported the pick of the
// previous one (the pick is reported after it settles), so the latest
// scan is not always this pick's; the weight check keeps a scan that was
// never followed by its pick (or a wrong line) from labelling another.
func (b *sampleBook) confirm(ev gateway.Event) {
	p := b.plates[ev.Inference.Plate]
	if p == nil {
		return
	}
	b.mu.Lock()
	var line *scanLine
	var qty int
	for i := range b.scans {
		s := &b.scans[i]
		if s.sku == "" || ev.Time.Before(s.at) || ev.Time.Sub(s.at) > scanConfirm {
			continue
		}
		fi := facingOf(p, s.sku)
		if fi < 0 {
			continue
		}
		unit := p.Facings[fi].UnitGrams
		units := s.qty
		if units == 0 { // a line without a quantity: the whole units the weight says
			units = max(1, int(math.Round(math.Abs(ev.DeltaGrams)/unit)))
		}
		if !weighs(unit*float64(units), ev.DeltaGrams) {
			continue
		}
		line, qty = s, units // the oldest: scans are in arrival order
		break
	}
	var sku string
	if line != nil {
		sku = line.sku
		line.sku = "" // one pick per scan
	}
	b.mu.Unlock()
	if line == nil {
		return
	}
	rec, s, err := b.sample(shelfv1.SampleScan, ev, sku, qty)
	if err != nil {
		return
	}
	select {
	case b.queue <- rec:
		b.made.Add(1)
		b.keepLabelled(ev, s)
	default:
		b.dropped.Add(1)
	}
}

// weighs reports whether a weight change of delta grams (either sign; 0:
// not known) is the nominal weight want within the scan tolerance.
func weighs(want, delta float64) bool {
	if delta == 0 {
		return true
	}
	return math.Abs(math.Abs(delta)-want) <= max(scanWeightTolerance*want, scanWeightFloor)
}

// facingOf is the index of the facing holding sku on p, or −1.
func facingOf(p *classify.Plate, sku string) int {
	for i, f := range p.Facings {
		if f.SKU == sku {
			return i
		}
	}
	return -1
}

// sample builds the sample record labelling ev with sku and qty.
func (b *sampleBook) sample(source string, ev gateway.Event, sku string, qty int) (gateway.Record, shelfv1.Sample, error) {
	inf := ev.Inference
	p := b.plates[inf.Plate]
	label := shelfv1.LabelNone
	if qty > 0 {
		if p == nil {
			return gateway.Record{}, shelfv1.Sample{}, fmt.Errorf("plate %q is not configured on this gateway", inf.Plate)
		}
		fi := facingOf(p, sku)
		if fi < 0 {
			return gateway.Record{}, shelfv1.Sample{}, argError("sku", "%q is not on plate %s", sku, inf.Plate)
		}
		label = classify.BinLabel(classify.BinOf(p.Facings[fi].XMM, p.WidthMM))
	}
	s := shelfv1.Sample{Source: source, Gateway: b.gw, Event: shelfv1.SampleEvent{Stream: ev.Stream, T: ev.Time.UnixMicro()},
		Plate: inf.Plate, SKU: sku, Quantity: qty, Label: label, Classifier: inf.Classifier, ModelVersion: inf.ModelVersion,
		PredictedSKU: inf.SKU, PredictedQty: inf.Quantity, Time: b.now().UTC()}
	if b.windows != nil {
		if x, rate, ok := b.windows.Window(inf.Plate, ev.Time); ok {
			s.Features, s.Rate = x, rate
		}
	}
	rec, err := s.Record()
	return rec, s, err
}

// Run commits the scan-confirmed samples until ctx is done.
func (b *sampleBook) Run(ctx context.Context, ob appender, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-b.queue:
			if err := ob.Append(ctx, []gateway.Record{r}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				b.dropped.Add(1)
				log.Warn("labelled sample not committed", "err", err)
			}
		}
	}
}

type correctArgs struct {
	Event *struct {
		Stream gateway.StreamID `json:"stream"`
		T      int64            `json:"t"`
	} `json:"event"`
	SKU      string `json:"sku"`
	Quantity *int   `json:"qty"`
}

// correct labels a recent plate event with the operator's truth; the
// sample is committed with the command's reply, so a replayed correct
// makes no second sample.
func (b *sampleBook) correct(_ context.Context, args json.RawMessage) (any, []gateway.Record, error) {
	var a correctArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, nil, err
	}
	switch {
	case a.Event == nil:
		return nil, nil, argError("event", "missing (the event's stream and t, as its record carries them)")
	case a.Event.Stream == "":
		return nil, nil, argError("event.stream", "missing")
	case a.Event.T <= 0:
		return nil, nil, argError("event.t", "%d must be the event's time in Unix microseconds", a.Event.T)
	case a.Quantity == nil:
		return nil, nil, argError("qty", "missing (0: nothing moved)")
	case *a.Quantity < 0 || *a.Quantity > maxCorrectQty:
		return nil, nil, argError("qty", "%d must be between 0 and %d", *a.Quantity, maxCorrectQty)
	case *a.Quantity > 0 && a.SKU == "":
		return nil, nil, argError("sku", "missing (the SKU that really moved)")
	}
	// The event's record is on stream "events/" + the event's own stream.
	stream := gateway.StreamID(strings.TrimPrefix(string(a.Event.Stream), "events/"))
	b.mu.Lock()
	ev, ok := b.events[eventKey{stream, a.Event.T}]
	b.mu.Unlock()
	if !ok {
		return nil, nil, argError("event", "no plate event on %s at t=%d among the last %d this gateway keeps", a.Event.Stream, a.Event.T, sampleEvents)
	}
	rec, s, err := b.sample(shelfv1.SampleCorrection, ev, a.SKU, *a.Quantity)
	if err != nil {
		return nil, nil, err
	}
	// Kept for judging models before the reply commits: a correction that
	// fails to commit is answered with an error and may be sent again.
	b.keepLabelled(ev, s)
	return map[string]any{"label": s.Label, "plate": s.Plate, "predicted_sku": s.PredictedSKU, "features": len(s.Features) > 0}, []gateway.Record{rec}, nil
}

// correct is the command; without plates on the gateway it says so.
func (d commandDeps) correct(ctx context.Context, args json.RawMessage) (any, []gateway.Record, error) {
	if d.Samples == nil {
		if err := decodeArgs(args, &correctArgs{}); err != nil {
			return nil, nil, err
		}
		return nil, nil, errors.New("correct: this gateway has no shelf plates whose events could be labelled")
	}
	return d.Samples.correct(ctx, args)
}
