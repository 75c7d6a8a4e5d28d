package shelfv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Model lifecycle event kinds (class events, stream StreamModelEvents).
const (
	EventModelPromoted   gateway.EventKind = "model_promoted"    // a new plate model serves
	EventModelRejected   gateway.EventKind = "model_rejected"    // a verified candidate was not promoted
	EventModelRolledBack gateway.EventKind = "model_rolled_back" // a promoted model was rolled back
)

// StreamModelEvents is the source stream of the model events: their
// records are on "events/model", numbered like every event stream.
const StreamModelEvents gateway.StreamID = "model"

// MaxModelEventBytes bounds one model event body.
const MaxModelEventBytes = 16 << 10

// ErrBadModelEvent is returned by DecodeModelEvent for a body that is not
// a valid model event.
var ErrBadModelEvent = errors.New("shelfv1: bad model event")

// ModelEvent is the body ("e") of a model lifecycle record in an events
// batch. It has the fields of every event body (kind, stream, detail,
// time), so a consumer that reads events generically still sees its kind
// and time, plus the model's:
//
//	{"kind":"model_promoted","stream":"model","detail":"plates v2 promoted (was v1)","model":"plates",
//	 "model_version":2,"previous_version":1,"note":"shadow: accuracy 0.991 ...","offer_id":"aa84d0c10c74360c",
//	 "time":"..."}
//
// model_version is the version serving after the step, as on every event
// the gateway sends after it: the promoted one; for a rejection the one
// that keeps serving (candidate_version is the refused one); for a
// rollback the one served again (rolled_back_version is the one removed).
// code and reason are the model status' (docs/model-sync.md): not-promoted
// for a rejection, health-check for a rollback.
type ModelEvent struct {
	Kind              gateway.EventKind `json:"kind"`
	Stream            gateway.StreamID  `json:"stream"`
	Detail            string            `json:"detail"`
	Model             string            `json:"model"`
	ModelVersion      uint64            `json:"model_version"`
	PreviousVersion   uint64            `json:"previous_version,omitempty"`
	CandidateVersion  uint64            `json:"candidate_version,omitempty"`
	RolledBackVersion uint64            `json:"rolled_back_version,omitempty"`
	Code              string            `json:"code,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	Note              string            `json:"note,omitempty"`
	OfferID           string            `json:"offer_id,omitempty"`
	Time              time.Time         `json:"time"`
}

// Record returns the events-class outbox record carrying e (stream
// "events/model"); it is delivered, numbered and acknowledged like every
// event.
func (e ModelEvent) Record() (gateway.Record, error) {
	e.Stream = StreamModelEvents
	if err := e.check(); err != nil {
		return gateway.Record{}, err
	}
	p, err := json.Marshal(e)
	if err != nil {
		return gateway.Record{}, fmt.Errorf("%w: %v", ErrBadModelEvent, err)
	}
	if len(p) > MaxModelEventBytes {
		return gateway.Record{}, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrBadModelEvent, len(p), MaxModelEventBytes)
	}
	return gateway.Record{Class: gateway.ClassEvent, Stream: "events/" + StreamModelEvents, Time: e.Time, Value: float64(e.ModelVersion), Body: p}, nil
}

func (e ModelEvent) check() error {
	switch {
	case e.Kind != EventModelPromoted && e.Kind != EventModelRejected && e.Kind != EventModelRolledBack:
		return fmt.Errorf("%w: kind %q is not a model event", ErrBadModelEvent, e.Kind)
	case e.Stream != StreamModelEvents:
		return fmt.Errorf("%w: stream %q, want %q", ErrBadModelEvent, e.Stream, StreamModelEvents)
	case e.Model == "":
		return fmt.Errorf("%w: model is missing", ErrBadModelEvent)
	case e.ModelVersion == 0:
		return fmt.Errorf("%w: model_version is missing", ErrBadModelEvent)
	case e.Kind == EventModelRejected && (e.CandidateVersion == 0 || e.Code == ""):
		return fmt.Errorf("%w: %s needs candidate_version and code", ErrBadModelEvent, e.Kind)
	case e.Kind == EventModelRolledBack && (e.RolledBackVersion == 0 || e.Code == ""):
		return fmt.Errorf("%w: %s needs rolled_back_version and code", ErrBadModelEvent, e.Kind)
	case e.Time.IsZero():
		return fmt.Errorf("%w: time is missing", ErrBadModelEvent)
	}
	return nil
}

// DecodeModelEvent parses and checks one model event body (strict: no
// unknown fields, nothing after the object).
func DecodeModelEvent(p []byte) (ModelEvent, error) {
	if len(p) > MaxModelEventBytes {
		return ModelEvent{}, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrBadModelEvent, len(p), MaxModelEventBytes)
	}
	var e ModelEvent
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return ModelEvent{}, fmt.Errorf("%w: %v", ErrBadModelEvent, err)
	}
	if dec.More() {
		return ModelEvent{}, fmt.Errorf("%w: data after the object", ErrBadModelEvent)
	}
	if err := e.check(); err != nil {
		return ModelEvent{}, err
	}
	return e, nil
}
