package warehouse

import (
	"errors"
	"fmt"
	"math"
)

// SKU is one catalogue item.
type SKU struct {
	Code      string  `yaml:"code"` // EAN-13 with a valid check digit
	Name      string  `yaml:"name"`
	UnitGrams float64 `yaml:"unit_grams"`
}

// Config describes a scenario. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	Seed               int64   `yaml:"seed"`                   // same seed => same samples and labels
	Shelves            int     `yaml:"shelves"`                // 1..64
	BinsPerShelf       int     `yaml:"bins_per_shelf"`         // 1..64
	SampleRate         float64 `yaml:"sample_rate"`            // HX711 rate per channel: 10 or 80 samples/s
	Speed              float64 `yaml:"speed"`                  // time acceleration of Readers; 1 = real time
	NoiseGrams         float64 `yaml:"noise_grams"`            // per-sample gaussian noise (std dev)
	DriftGramsPerHour  float64 `yaml:"drift_grams_per_hour"`   // slow zero drift
	PicksPerBinPerHour float64 `yaml:"picks_per_bin_per_hour"` // rate of picker visits per bin (0 = none)
	MaxUnitsPerPick    int     `yaml:"max_units_per_pick"`     // units moved per visit: 1..MaxUnitsPerPick
	PutProbability     float64 `yaml:"put_probability"`        // share of visits that restock
	ScanProbability    float64 `yaml:"scan_probability"`       // chance a visit comes with a barcode scan
	SKUs               []SKU   `yaml:"skus"`                   // optional; default catalogue generated from Seed

	// Plates adds shelf plates on four load cells (none by default); bins
	// are the same with or without them.
	Plates PlateConfig `yaml:"plates"`
}

// DefaultConfig returns demo defaults: 2 shelves × 4 bins at 10 Hz in real
// time, 0.5 g noise, and 90 visits per bin per hour, so that across the 8
// bins a visit starts every ~5 s on average.
func DefaultConfig() Config {
	return Config{
		Seed:               1,
		Shelves:            2,
		BinsPerShelf:       4,
		SampleRate:         10,
		Speed:              1,
		NoiseGrams:         0.5,
		DriftGramsPerHour:  2,
		PicksPerBinPerHour: 90,
		MaxUnitsPerPick:    4,
		PutProbability:     0.3,
		ScanProbability:    0.5,
	}
}

// Limits checked by Validate.
const (
	maxShelves      = 64
	maxBinsPerShelf = 64
	maxSpeed        = 1e6
	maxNoiseGrams   = 1000
	maxDriftPerHour = 1000
	maxVisitsPerHr  = 3600
	maxUnitsPerPick = 100
	minUnitGrams    = 1
	maxUnitGrams    = 5000
)

// Validate reports every invalid field, each error naming the field and
// its value.
func (c Config) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("warehouse: %s: %v %s", field, v, want))
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if c.Shelves < 1 || c.Shelves > maxShelves {
		bad("shelves", c.Shelves, fmt.Sprintf("must be between 1 and %d", maxShelves))
	}
	if c.BinsPerShelf < 1 || c.BinsPerShelf > maxBinsPerShelf {
		bad("bins_per_shelf", c.BinsPerShelf, fmt.Sprintf("must be between 1 and %d", maxBinsPerShelf))
	}
	if c.SampleRate != 10 && c.SampleRate != 80 {
		bad("sample_rate", c.SampleRate, "must be 10 or 80 (the HX711 rates)")
	}
	if !finite(c.Speed) || c.Speed <= 0 || c.Speed > maxSpeed {
		bad("speed", c.Speed, fmt.Sprintf("must be > 0 and at most %g", float64(maxSpeed)))
	}
	if !finite(c.NoiseGrams) || c.NoiseGrams < 0 || c.NoiseGrams > maxNoiseGrams {
		bad("noise_grams", c.NoiseGrams, fmt.Sprintf("must be between 0 and %d", maxNoiseGrams))
	}
	if !finite(c.DriftGramsPerHour) || c.DriftGramsPerHour < 0 || c.DriftGramsPerHour > maxDriftPerHour {
		bad("drift_grams_per_hour", c.DriftGramsPerHour, fmt.Sprintf("must be between 0 and %d", maxDriftPerHour))
	}
	if !finite(c.PicksPerBinPerHour) || c.PicksPerBinPerHour < 0 || c.PicksPerBinPerHour > maxVisitsPerHr {
		bad("picks_per_bin_per_hour", c.PicksPerBinPerHour, fmt.Sprintf("must be between 0 and %d", maxVisitsPerHr))
	}
	if c.MaxUnitsPerPick < 1 || c.MaxUnitsPerPick > maxUnitsPerPick {
		bad("max_units_per_pick", c.MaxUnitsPerPick, fmt.Sprintf("must be between 1 and %d", maxUnitsPerPick))
	}
	if !finite(c.PutProbability) || c.PutProbability < 0 || c.PutProbability > 1 {
		bad("put_probability", c.PutProbability, "must be between 0 and 1")
	}
	if !finite(c.ScanProbability) || c.ScanProbability < 0 || c.ScanProbability > 1 {
		bad("scan_probability", c.ScanProbability, "must be between 0 and 1")
	}
	for i, s := range c.SKUs {
		if err := ValidEAN13(s.Code); err != nil {
			bad(fmt.Sprintf("skus[%d].code", i), fmt.Sprintf("%q", s.Code), err.Error())
		}
		if s.Name == "" {
			bad(fmt.Sprintf("skus[%d].name", i), `""`, "must not be empty")
		}
		if !finite(s.UnitGrams) || s.UnitGrams < minUnitGrams || s.UnitGrams > maxUnitGrams {
			bad(fmt.Sprintf("skus[%d].unit_grams", i), s.UnitGrams, fmt.Sprintf("must be between %d and %d", minUnitGrams, maxUnitGrams))
		}
	}
	c.Plates.validate(bad)
	return errors.Join(errs...)
}
