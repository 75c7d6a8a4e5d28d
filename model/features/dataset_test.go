package features

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// sample is a small valid dataset with metadata, extreme but finite values
// and a label used by no row.
func sample() *Dataset {
	return &Dataset{
		X: [][]float32{
			{0, -1.5, 3.25},
			{math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32},
			{1e-3, 7, float32(math.Copysign(0, -1))},
		},
		Y:      []int{1, 0, 1},
		Names:  []string{"s0", "s1", "s2"},
		Labels: []string{"idle", "pick1", "put1"},
		Meta:   map[string]string{"window": "cells=1 samples=3 pre=1 rate=10", "seed": "7", "name": "größe"},
	}
}

func TestDatasetFileRoundTrip(t *testing.T) {
	d := sample()
	var b bytes.Buffer
	if _, err := d.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	enc := slices.Clone(b.Bytes())
	got, err := ReadDataset(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Names, d.Names) || !reflect.DeepEqual(got.Labels, d.Labels) || !reflect.DeepEqual(got.Meta, d.Meta) || !reflect.DeepEqual(got.Y, d.Y) {
		t.Fatalf("round trip: %+v", got)
	}
	for i := range d.X {
		for j := range d.X[i] {
			if math.Float32bits(got.X[i][j]) != math.Float32bits(d.X[i][j]) {
				t.Fatalf("row %d feature %d: %v, wrote %v", i, j, got.X[i][j], d.X[i][j])
			}
		}
	}
	w, err := got.Window()
	if err != nil || w != (Window{1, 3, 1, 10}) {
		t.Fatalf("window metadata: %v %v", w, err)
	}
	again, err := got.MarshalBinary()
	if err != nil || !bytes.Equal(again, enc) {
		t.Fatalf("re-encoding differs (%v)", err)
	}
	// Without names or metadata: names are generated, metadata stays nil.
	d.Names, d.Meta = nil, nil
	enc2, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err = DecodeDataset(enc2)
	if err != nil || !slices.Equal(got.Names, []string{"f0", "f1", "f2"}) || got.Meta != nil {
		t.Fatalf("no names: %+v %v", got, err)
	}
}

// withCRC replaces the checksum of b so that a corrupted body reaches the
// structural checks.
func withCRC(b []byte) []byte {
	b = slices.Clone(b)
	if len(b) >= 4 {
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	}
	return b
}

func TestDecodeDatasetRejects(t *testing.T) {
	good, err := sample().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	at := func(off int, v ...byte) []byte {
		b := slices.Clone(good)
		copy(b[off:], v)
		return withCRC(b)
	}
	rowsAt := len(good) - 4 - 3*(2+12)
	for _, c := range []struct {
		name string
		in   []byte
		err  error
		msg  string
	}{
		{"empty", nil, ErrFormat, "shorter than a header"},
		{"magic", at(0, 'X'), ErrFormat, "magic"},
		{"version", at(8, 2), ErrFormat, "format version 2"},
		{"flags", at(10, 1), ErrFormat, "flags 0x1"},
		{"checksum", append(slices.Clone(good[:len(good)-1]), good[len(good)-1]^1), ErrFormat, "checksum"},
		{"no features", at(12, 0, 0, 0, 0), ErrFormat, "feature count 0"},
		{"too many features", at(12, 0, 0, 0, 1), ErrFormat, "feature count 16777216"},
		{"too many classes", at(16, 0, 0, 1, 0), ErrFormat, "class count 65536"},
		{"too many meta", at(20, 1, 1, 0, 0), ErrFormat, "metadata count 257"},
		{"no rows", at(24, 0, 0, 0, 0), ErrFormat, "row count 0"},
		{"rows beyond the file", at(24, 0, 0, 0, 1), ErrFormat, "need at least"},
		{"fewer rows than bytes", at(24, 2), ErrFormat, "bytes of rows"},
		{"string too long", at(28, 0xff, 0xff), ErrFormat, "at most 4096"},
		{"string past the end", at(28, 0xff, 0x0f), ErrFormat, "need 4095 bytes"},
		{"bad UTF-8", at(30, 0xff), ErrFormat, "UTF-8"},
		{"duplicate name", at(35, '0'), ErrData, "appears twice"},
		{"label index", at(rowsAt, 3), ErrData, "label index 3"},
		{"NaN", at(rowsAt+2, 0, 0, 0xc0, 0x7f), ErrData, "row 0 feature 0 (s0): NaN"},
		{"trailing byte", withCRC(append(slices.Clone(good), 0)), ErrFormat, "bytes of rows"},
		{"truncated", withCRC(good[:len(good)-5]), ErrFormat, "bytes of rows"},
	} {
		_, err := DecodeDataset(c.in)
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v %q", c.name, err, c.err, c.msg)
		}
	}
	// Metadata keys out of order: swap the first two entries by hand.
	d := sample()
	b, _ := d.MarshalBinary()
	i := bytes.Index(b, []byte("name"))
	j := bytes.Index(b, []byte("seed"))
	b[i], b[i+1], b[i+2], b[i+3] = 't', 'a', 'g', 'z'
	copy(b[j:], "aaaa")
	if _, err := DecodeDataset(withCRC(b)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "ascending") {
		t.Errorf("unordered keys: %v", err)
	}
}

func TestDatasetValidateAndMarshalRejects(t *testing.T) {
	for name, mut := range map[string]func(*Dataset){
		"rows vs labels":  func(d *Dataset) { d.Y = d.Y[:2] },
		"ragged row":      func(d *Dataset) { d.X[2] = d.X[2][:2] },
		"names":           func(d *Dataset) { d.Names = d.Names[:2] },
		"empty name":      func(d *Dataset) { d.Names[1] = "" },
		"duplicate label": func(d *Dataset) { d.Labels[2] = "idle" },
		"label range":     func(d *Dataset) { d.Y[0] = 3 },
		"negative label":  func(d *Dataset) { d.Y[0] = -1 },
		"infinite value":  func(d *Dataset) { d.X[0][1] = float32(math.Inf(-1)) },
		"no rows":         func(d *Dataset) { d.X, d.Y = nil, nil },
		"empty meta key":  func(d *Dataset) { d.Meta[""] = "x" },
		"meta not UTF-8":  func(d *Dataset) { d.Meta["k"] = "\xff" },
		"meta value long": func(d *Dataset) { d.Meta["k"] = strings.Repeat("x", MaxString+1) },
	} {
		d := sample()
		mut(d)
		if _, err := d.MarshalBinary(); !errors.Is(err, ErrData) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCSVRoundTripAndErrors(t *testing.T) {
	d := sample()
	var b bytes.Buffer
	if err := d.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "s0,s1,s2,label\n") {
		t.Fatalf("header: %q", b.String())
	}
	got, err := ReadCSV(&b, d.Labels)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Names, d.Names) || !slices.Equal(got.Y, d.Y) || !slices.Equal(got.X[1], d.X[1]) {
		t.Fatalf("round trip differs: %+v", got)
	}
	for _, c := range []struct{ in, msg string }{
		{"1,2,a\nb\n", "line 2: 1 fields"},
		{"1,2,a\n1,b\n", "line 2: 1 features"},
		{"1,2,a\n1,2,3,b\n", "line 2: 3 features"},
		{"1,x,a\n", "line 1 field 2"},
		{"1,NaN,a\n", "finite"},
		{"", "no rows"},
	} {
		_, err := ReadCSV(strings.NewReader(c.in), nil)
		if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v, want %q", c.in, err, c.msg)
		}
	}
	if _, err := ReadCSV(strings.NewReader("1,2,zzz\n"), []string{"a"}); !errors.Is(err, ErrData) {
		t.Errorf("unknown fixed label: %v", err)
	}
}

func TestMergeAndSplit(t *testing.T) {
	a := sample()
	b := &Dataset{
		X: [][]float32{{9, 9, 9}}, Y: []int{0}, Names: a.Names, Labels: []string{"pick2"},
		Meta: map[string]string{"window": a.Meta["window"], "seed": "8"},
	}
	m, err := Merge(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Labels, []string{"idle", "pick1", "pick2", "put1"}) || len(m.X) != 4 {
		t.Fatalf("merged labels %v, %d rows", m.Labels, len(m.X))
	}
	for i, want := range []string{"pick1", "idle", "pick1", "pick2"} {
		if m.Labels[m.Y[i]] != want {
			t.Errorf("row %d: %s, want %s", i, m.Labels[m.Y[i]], want)
		}
	}
	if !reflect.DeepEqual(m.Meta, map[string]string{"window": a.Meta["window"]}) {
		t.Errorf("merged metadata %v", m.Meta)
	}
	c := sample()
	c.Names = []string{"x", "y", "z"}
	if _, err := Merge(a, c); !errors.Is(err, ErrData) {
		t.Errorf("merge of other features: %v", err)
	}
	tr, te := m.Split(0.25, 3)
	if len(tr.X) != 3 || len(te.X) != 1 || te.Meta["window"] == "" {
		t.Fatalf("split %d/%d", len(tr.X), len(te.X))
	}
	tr2, _ := m.Split(0.25, 3)
	if !reflect.DeepEqual(tr.X, tr2.X) {
		t.Fatal("same seed, different split")
	}
	if got := m.Counts(); got["pick1"] != 2 || got["idle"] != 1 || got["put1"] != 0 {
		t.Fatalf("counts %v", got)
	}
}

// FuzzDecodeDataset feeds outside bytes to the dataset file parser: it must
// never panic or over-allocate, and whatever it accepts must re-encode to
// the same bytes (the format has one encoding per dataset). Every input is
// tried as is and with its checksum fixed, so mutations reach the
// structural checks.
func FuzzDecodeDataset(f *testing.F) {
	good, err := sample().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	d := sample()
	d.Meta = nil
	small, _ := d.MarshalBinary()
	f.Add(small)
	f.Add([]byte(DatasetMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, withCRC(b)} {
			d, err := DecodeDataset(in)
			if err != nil {
				if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrData) {
					t.Fatalf("error matches no sentinel: %v", err)
				}
				continue
			}
			out, err := d.MarshalBinary()
			if err != nil {
				t.Fatalf("accepted dataset does not re-encode: %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("re-encoding differs: %d bytes in, %d out", len(in), len(out))
			}
		}
	})
}
