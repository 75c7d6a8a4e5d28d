package shelfv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// StreamSamples is the stream of labelled samples (class samples).
const StreamSamples gateway.StreamID = "samples"

// MaxSampleBytes bounds one sample body (a feature window of a few hundred
// values fits many times over).
const MaxSampleBytes = 64 << 10

// LabelNone is the label of a window in which no item moved (a plate
// model's "none" class).
const LabelNone = "none"

// Sources of a labelled sample.
const (
	SampleScan       = "scan"       // a pick confirmed by the picker's scan
	SampleCorrection = "correction" // an operator's correct command
)

// ErrBadSample is returned by DecodeSample for a body that is not a valid
// sample.
var ErrBadSample = errors.New("shelfv1: bad sample")

// Sample is the body ("e") of one record in a batch on the samples topic
// (shelfgate/v1/<site>/<gateway>/samples, class "samples"): an event's
// feature window with the label the ground truth gave it.
//
//	{"kind":"sample","source":"correction","gw":"gw-1","event":{"stream":"loadcell/plate-01","t":1700000000000000},
//	 "plate":"plate-01","sku":"SKU-2","qty":1,"label":"x05","classifier":"model","model_version":3,
//	 "predicted_sku":"SKU-1","predicted_qty":1,"rate":10,"features":[0,0.01,...],"time":"..."}
//
// event names the labelled event by its body's stream (its record is on
// "events/" + that stream) and its time (Unix microseconds, the record's t). label is the model class the
// truth maps to (a position bin "x00".."x15", or "none"); features are the
// window the classifier saw (the model's input, PlateWindow at rate),
// absent when the gateway did not keep it (the sample then still counts as
// a labelled outcome, but cannot train).
type Sample struct {
	Kind         string      `json:"kind"` // always "sample"
	Source       string      `json:"source"`
	Gateway      string      `json:"gw"`
	Event        SampleEvent `json:"event"`
	Plate        string      `json:"plate"`
	SKU          string      `json:"sku"`
	Quantity     int         `json:"qty"`
	Label        string      `json:"label"`
	Classifier   string      `json:"classifier"` // what decided the event: "model" or "analytic"
	ModelVersion uint64      `json:"model_version"`
	PredictedSKU string      `json:"predicted_sku,omitempty"`
	PredictedQty int         `json:"predicted_qty,omitempty"`
	Rate         float64     `json:"rate,omitempty"`
	Features     []float32   `json:"features,omitempty"`
	Time         time.Time   `json:"time"`
}

// SampleEvent names the event a sample labels.
type SampleEvent struct {
	Stream gateway.StreamID `json:"stream"`
	T      int64            `json:"t"` // Unix microseconds
}

// Encode returns the JSON body of s.
func (s Sample) Encode() ([]byte, error) {
	s.Kind = "sample"
	for i, v := range s.Features {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: features[%d] is %v", ErrBadSample, i, v)
		}
	}
	return json.Marshal(s)
}

// Record returns the outbox record carrying s.
func (s Sample) Record() (gateway.Record, error) {
	p, err := s.Encode()
	if err != nil {
		return gateway.Record{}, err
	}
	return gateway.Record{Class: gateway.ClassSamples, Stream: StreamSamples, Time: s.Time, Value: float64(s.Quantity), Body: p}, nil
}

// DecodeSample parses and checks one sample body.
func DecodeSample(p []byte) (Sample, error) {
	if len(p) > MaxSampleBytes {
		return Sample{}, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrBadSample, len(p), MaxSampleBytes)
	}
	var s Sample
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Sample{}, fmt.Errorf("%w: %v", ErrBadSample, err)
	}
	switch {
	case s.Kind != "sample":
		return Sample{}, fmt.Errorf("%w: kind %q, want \"sample\"", ErrBadSample, s.Kind)
	case s.Source != SampleScan && s.Source != SampleCorrection:
		return Sample{}, fmt.Errorf("%w: source %q, want %q or %q", ErrBadSample, s.Source, SampleScan, SampleCorrection)
	case s.Label == "":
		return Sample{}, fmt.Errorf("%w: label is missing", ErrBadSample)
	case s.Quantity < 0:
		return Sample{}, fmt.Errorf("%w: qty %d is negative", ErrBadSample, s.Quantity)
	case len(s.Features) > 0 && s.Rate <= 0:
		return Sample{}, fmt.Errorf("%w: rate %v with %d features", ErrBadSample, s.Rate, len(s.Features))
	}
	return s, nil
}
