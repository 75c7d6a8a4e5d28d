package gateway

import (
	"context"
	"errors"
	"time"
)

// StreamID names one stream of readings or events, e.g. "loadcell/shelf-01/bin-03"
// or "events/shelf-01/bin-03". Sequence numbers are per stream.
type StreamID string

// Quality is a bit set describing how trustworthy a reading is.
type Quality uint8

// Quality flags. Zero means a good reading.
const (
	QualityFiltered     Quality = 1 << iota // value was replaced or smoothed by a filter
	QualitySaturated                        // ADC at the end of its range
	QualityStale                            // sensor repeated a stuck value
	QualityUncalibrated                     // no tare/scale calibration applied
)

// Reading is one sample from one sensor stream.
type Reading struct {
	Stream  StreamID
	Time    time.Time
	Value   float64
	Unit    string
	Quality Quality
}

// EventKind is the kind of a warehouse event.
type EventKind string

// Warehouse event kinds.
const (
	EventPick        EventKind = "pick"
	EventPut         EventKind = "put"
	EventMisPick     EventKind = "mispick"
	EventLowStock    EventKind = "low_stock"
	EventSensorFault EventKind = "sensor_fault"
	EventScan        EventKind = "scan" // a barcode scan: Detail is the code
	EventTag         EventKind = "tag"  // an RFID tag presented: Detail is the UID
	// EventShed reports telemetry deleted undelivered under the disk budget:
	// Stream lost sequence numbers FromSeq..ToSeq (Quantity rows).
	EventShed EventKind = "shed"
)

// Event is a warehouse event derived from readings (or reported by a sensor).
type Event struct {
	Kind       EventKind  `json:"kind"`
	Stream     StreamID   `json:"stream"` // the source stream (e.g. the load cell)
	Bin        string     `json:"bin,omitempty"`
	SKU        string     `json:"sku,omitempty"`
	Quantity   int        `json:"qty,omitempty"`
	DeltaGrams float64    `json:"delta_g,omitempty"`
	Confidence float64    `json:"confidence,omitempty"`
	Detail     string     `json:"detail,omitempty"`
	FromSeq    uint64     `json:"from_seq,omitempty"`  // shed events: first sequence number shed
	ToSeq      uint64     `json:"to_seq,omitempty"`    // shed events: last sequence number shed
	Inference  *Inference `json:"inference,omitempty"` // plate events: see Inference
	Time       time.Time  `json:"time"`
}

// Class is the delivery class of an outbox record. When the disk budget
// runs out, samples are shed first, then telemetry, events last.
type Class uint8

// Record classes.
const (
	ClassTelemetry Class = 0
	ClassEvent     Class = 1
	// ClassSamples are labelled training samples (the feedback loop): the
	// lowest priority, shed first. Body is the sample's JSON.
	ClassSamples Class = 2
)

func (c Class) String() string {
	switch c {
	case ClassTelemetry:
		return "telemetry"
	case ClassEvent:
		return "event"
	case ClassSamples:
		return "samples"
	}
	return "unknown"
}

// Record is one durable outbox row: a reading or an event with its
// gateway-unique id and per-stream sequence number, both assigned by the
// outbox when the row is committed.
type Record struct {
	ID      int64 // gateway-unique, strictly increasing
	Seq     uint64
	Class   Class
	Stream  StreamID
	Time    time.Time
	Value   float64
	Unit    string
	Quality Quality
	Body    []byte // JSON body for ClassEvent and ClassSamples; nil for telemetry
}

// Errors shared across the gateway packages.
var (
	// ErrClosed is returned by a component used after Close.
	ErrClosed = errors.New("gateway: closed")
	// ErrDiskFull is returned when the outbox cannot accept rows because its
	// byte budget or the filesystem is full and nothing more can be shed.
	ErrDiskFull = errors.New("gateway: outbox full")
)

// Emitter is the one path from a source into the gateway: readings and the
// events a source reports itself (a scan, a tag read, a sensor fault) both
// go through it, and both pass the gateway's classifier chain. Each call
// returns once what it was given is accepted (durable); it must not retain
// its argument after it returns. A source calls it from one goroutine per
// stream, in the order its observations happened.
type Emitter interface {
	Emit(ctx context.Context, rs []Reading) error
	EmitEvents(ctx context.Context, evs []Event) error
}

// Source produces readings and events until ctx is cancelled or it fails.
// It is handed the Emitter only when it runs, by a Gateway that is already
// complete (outbox, uplink and classifiers in place).
type Source interface {
	Name() string
	Run(ctx context.Context, emit Emitter) error
}

// Classifier is one link of the gateway's ordered classifier chain. It sees
// every reading (Observe) and every event (ObserveEvent): the events
// sources report and those earlier links derived, so a later link can fuse
// them (a scan with the weight change that follows it). What it returns is
// committed and shown to the links after it.
//
// The gateway calls a classifier concurrently for different streams but
// never concurrently for the same stream, and the calls of one stream come
// in the order the stream's source emitted them. A classifier that keeps
// state across streams (fusion) guards it itself; one that keeps per-stream
// state needs no lock beyond that. What a classifier derives is committed
// in the same transaction as the input that led to it, under that input's
// stream lock; a fusing classifier that emits on another stream than its
// input's orders those events itself (e.g. by their Time).
type Classifier interface {
	Observe(r Reading) []Event
	ObserveEvent(ev Event) []Event
}
