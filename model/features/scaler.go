package features

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Scaler standardizes features as sklearn's StandardScaler: (x − Mean)/Std
// per feature. FitScaler computes it from training rows; the parameters
// travel with the model (train.MLP Mean/Std, the model file's input
// section).
type Scaler struct {
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"` // > 0
}

// FitScaler computes the mean and population standard deviation of every
// feature over rows, in float64, rounded to float32; a feature with zero
// spread gets std 1. Every row must have the same, non-zero length and
// finite values.
func FitScaler(rows [][]float32) (Scaler, error) {
	if len(rows) == 0 || len(rows[0]) == 0 {
		return Scaler{}, fmt.Errorf("features: scaler: %d rows: need at least one row with features: %w", len(rows), ErrData)
	}
	f := len(rows[0])
	for i, x := range rows {
		if len(x) != f {
			return Scaler{}, fmt.Errorf("features: scaler: row %d has %d features, row 0 has %d: %w", i, len(x), f, ErrData)
		}
	}
	s := Scaler{Mean: make([]float32, f), Std: make([]float32, f)}
	n := float64(len(rows))
	for j := 0; j < f; j++ {
		var sum, s2 float64
		for _, x := range rows {
			sum += float64(x[j])
		}
		mean := sum / n
		for _, x := range rows {
			d := float64(x[j]) - mean
			s2 += d * d
		}
		std := math.Sqrt(s2 / n)
		if std == 0 {
			std = 1 // as StandardScaler does for constant features
		}
		if math.IsNaN(mean) || math.IsInf(mean, 0) || math.IsNaN(std) || math.IsInf(std, 0) {
			return Scaler{}, fmt.Errorf("features: scaler: feature %d: mean %v std %v: values must be finite: %w", j, mean, std, ErrData)
		}
		s.Mean[j], s.Std[j] = float32(mean), float32(std)
	}
	return s, nil
}

// Len is the number of features.
func (s Scaler) Len() int { return len(s.Mean) }

// Validate checks that Mean and Std have the same length and that every
// mean is finite and every std positive and finite.
func (s Scaler) Validate() error {
	if len(s.Mean) != len(s.Std) {
		return fmt.Errorf("features: scaler: %d means, %d stds: %w", len(s.Mean), len(s.Std), ErrData)
	}
	for i := range s.Mean {
		m, d := float64(s.Mean[i]), float64(s.Std[i])
		if math.IsNaN(m) || math.IsInf(m, 0) || !(d > 0) || math.IsInf(d, 0) {
			return fmt.Errorf("features: scaler: feature %d: mean %v std %v: %w", i, m, d, ErrData)
		}
	}
	return nil
}

// Transform writes (x − Mean)/Std into dst, in float32; dst and x have
// Len() elements and may be the same slice.
func (s Scaler) Transform(dst, x []float32) {
	for i, v := range x {
		dst[i] = (v - s.Mean[i]) / s.Std[i]
	}
}

const scalerMagic = "SGSC"

// MarshalBinary encodes the scaler as "SGSC", a u32 feature count F and
// F float32 means then F float32 stds, little-endian.
func (s Scaler) MarshalBinary() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 8+8*len(s.Mean))
	b = append(b, scalerMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Mean)))
	for _, v := range append(append([]float32(nil), s.Mean...), s.Std...) {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary writes and validates it.
func (s *Scaler) UnmarshalBinary(b []byte) error {
	if len(b) < 8 || string(b[:4]) != scalerMagic {
		return fmt.Errorf("features: scaler: not a scaler encoding (%d bytes): %w", len(b), ErrFormat)
	}
	f := binary.LittleEndian.Uint32(b[4:])
	if f > MaxFeatures || uint64(len(b)-8) != 8*uint64(f) {
		return fmt.Errorf("features: scaler: %d features in %d bytes: %w", f, len(b), ErrFormat)
	}
	v := make([]float32, 2*f)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	out := Scaler{Mean: v[:f:f], Std: v[f:]}
	if err := out.Validate(); err != nil {
		return err
	}
	*s = out
	return nil
}
