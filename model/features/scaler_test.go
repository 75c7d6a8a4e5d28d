package features

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"
)

func TestFitScalerAndTransform(t *testing.T) {
	rows := [][]float32{{1, 5, -2}, {3, 5, 2}, {5, 5, 0}}
	s, err := FitScaler(rows)
	if err != nil {
		t.Fatal(err)
	}
	// Population std: sqrt(((1−3)²+0+(5−3)²)/3) = sqrt(8/3).
	want := Scaler{Mean: []float32{3, 5, 0}, Std: []float32{float32(math.Sqrt(8.0 / 3)), 1, float32(math.Sqrt(8.0 / 3))}}
	if !slices.Equal(s.Mean, want.Mean) || !slices.Equal(s.Std, want.Std) {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	dst := make([]float32, 3)
	s.Transform(dst, rows[0])
	if dst[0] != float32(-2)/want.Std[0] || dst[1] != 0 || dst[2] != float32(-2)/want.Std[2] {
		t.Fatalf("transform %v", dst)
	}
	for _, bad := range [][][]float32{nil, {{}}, {{1, 2}, {1}}, {{1}, {float32(math.Inf(1))}}} {
		if _, err := FitScaler(bad); !errors.Is(err, ErrData) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestScalerRoundTrip(t *testing.T) {
	s := Scaler{Mean: []float32{-1.5, 0, 3e7, float32(math.SmallestNonzeroFloat32)}, Std: []float32{0.25, 1, 7e-6, 2}}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Scaler
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Mean, s.Mean) || !slices.Equal(got.Std, s.Std) {
		t.Fatalf("binary round trip: %+v", got)
	}
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var gotJ Scaler
	if err := json.Unmarshal(j, &gotJ); err != nil || !slices.Equal(gotJ.Mean, s.Mean) || !slices.Equal(gotJ.Std, s.Std) {
		t.Fatalf("JSON round trip: %+v %v", gotJ, err)
	}
	zeroStd := Scaler{Mean: []float32{1}, Std: []float32{0}}
	if _, err := zeroStd.MarshalBinary(); !errors.Is(err, ErrData) {
		t.Errorf("std 0 encoded: %v", err)
	}
	nanB := append([]byte(nil), b...)
	copy(nanB[8:], []byte{0, 0, 0xc0, 0x7f}) // mean[0] = NaN
	for name, in := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("XXXX"), b[4:]...),
		"truncated": b[:len(b)-1],
		"trailing":  append(append([]byte(nil), b...), 0),
		"huge F":    {'S', 'G', 'S', 'C', 0xff, 0xff, 0xff, 0xff},
	} {
		if err := got.UnmarshalBinary(in); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := got.UnmarshalBinary(nanB); !errors.Is(err, ErrData) {
		t.Errorf("NaN mean: %v", err)
	}
}
