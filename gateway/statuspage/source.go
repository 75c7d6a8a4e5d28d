package statuspage

import (
	"context"
	"time"
)

// Bin is a bin the page shows on the Shelves view.
type Bin struct {
	ID        string  `json:"id"`     // e.g. shelf-01/bin-03
	Stream    string  `json:"stream"` // its load-cell stream
	SKU       string  `json:"sku,omitempty"`
	UnitGrams float64 `json:"unit_g,omitempty"`
}

// PipelineStats is one snapshot of the delivery path.
type PipelineStats struct {
	Backlog       int64         // rows waiting for delivery
	OldestUnsent  time.Duration // age of the oldest of them
	ShedTelemetry int64         // rows shed under the disk budget, by class
	ShedEvents    int64
	Committed     int64 // readings committed to the outbox
	Connected     bool
	Brokers       []string
	Connects      int64 // successful broker connections
	Delivered     int64 // records acknowledged by the broker
	InFlight      int64
}

// Pipeline reports the delivery path: the outbox's and the uplink's Stats.
type Pipeline interface {
	PipelineStats(ctx context.Context) (PipelineStats, error)
}

// SensorHealth is one sensor's state for the Sensors view.
type SensorHealth struct {
	Name        string           `json:"name"`
	Kind        string           `json:"kind"`
	Bin         string           `json:"bin,omitempty"`
	Healthy     bool             `json:"healthy"`
	Faults      string           `json:"faults,omitempty"` // active faults, e.g. "timeout,stuck"
	LastReading time.Time        `json:"last_reading,omitzero"`
	Counters    map[string]int64 `json:"counters,omitempty"` // timeouts, glitches, scans, ...
}

// Sensors reports every sensor's health.
type Sensors interface {
	SensorHealth() []SensorHealth
}

// ModelStatus is the model classifier's state for the Model view.
type ModelStatus struct {
	Version    string  `json:"version"`
	Shadow     string  `json:"shadow,omitempty"`    // candidate running in shadow, if any
	Agreement  float64 `json:"agreement,omitempty"` // shadow's top-1 agreement with the active model, 0..1
	Compared   int64   `json:"compared,omitempty"`  // windows the agreement is measured on
	LatencyP50 float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99 float64 `json:"latency_p99_ms,omitempty"`
	Inferences int64   `json:"inferences,omitempty"`
}

// Model reports the model classifier. ok is false when there is none (the
// page then shows the analytic detector, or nothing).
type Model interface {
	ModelStatus() (st ModelStatus, ok bool)
}

// Stock reports the stock estimate of a bin, in units.
type Stock interface {
	Stock(bin string) (units int, ok bool)
}

// CellCalibration is the calibration a load-cell channel converts with.
type CellCalibration struct {
	Key           string // the bin's key in the calibration file (bin, or bin:mode)
	Offset        int32
	CountsPerGram float64
}

// Calibrator is what the actions need of the load cells: the calibration
// in use, the recent raw codes and a way to apply a new calibration live.
type Calibrator interface {
	Calibration(bin string) (CellCalibration, error)
	RecentCodes(bin string) ([]int32, error)
	SetCalibration(bin string, offset int32, countsPerGram float64) error
}
