package calibration

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func date(s string) time.Time {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseFixture(t *testing.T) {
	r, err := os.Open("testdata/shelf-01.cal")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	want := File{Channels: []Calibration{
		{Bin: "shelf-01/bin-01", Offset: -81234, CountsPerGram: 412.55, Measured: date("2026-11-29")},
		{Bin: "shelf-01/bin-02", Offset: 10442, CountsPerGram: -398.1, Measured: date("2026-11-28")},
		{Bin: "shelf-01/bin-03", Offset: 0, CountsPerGram: 410, Measured: date("2026-01-05")},
	}}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("Parse = %+v\nwant %+v", f, want)
	}
	var b bytes.Buffer
	if err := Write(&b, f); err != nil {
		t.Fatal(err)
	}
	wantText := Header + "\n" +
		"bin=shelf-01/bin-01 offset=-81234 counts_per_gram=412.55 measured=2026-11-29\n" +
		"bin=shelf-01/bin-02 offset=10442 counts_per_gram=-398.1 measured=2026-11-28\n" +
		"bin=shelf-01/bin-03 offset=0 counts_per_gram=410 measured=2026-01-05\n"
	if b.String() != wantText {
		t.Errorf("Write:\n%s\nwant:\n%s", b.String(), wantText)
	}
	if c, ok := f.Lookup("shelf-01/bin-02"); !ok || c.Grams(10442-3981) != 10 {
		t.Errorf("Lookup/Grams: %+v %v", c, ok)
	}
	if _, ok := f.Lookup("nope"); ok {
		t.Error("Lookup(nope) found something")
	}
}

func TestParseErrors(t *testing.T) {
	const ok = "bin=b1 offset=1 counts_per_gram=2 measured=2026-11-29"
	tests := []struct {
		name  string
		in    string
		line  int
		field string
		is    error
	}{
		{"empty file", "", 1, "", ErrNoHeader},
		{"comments only", "# x\n\n", 3, "", ErrNoHeader},
		{"wrong header", "shelfgate-calibration v2\n", 1, "", ErrNoHeader},
		{"data before header", ok + "\n" + Header + "\n", 1, "", ErrNoHeader},
		{"bad offset", Header + "\nbin=b1 offset=x counts_per_gram=2 measured=2026-11-29\n", 2, "offset", nil},
		{"offset out of range", Header + "\nbin=b1 offset=8388608 counts_per_gram=2 measured=2026-11-29\n", 2, "offset", nil},
		{"offset over int32", Header + "\nbin=b1 offset=99999999999 counts_per_gram=2 measured=2026-11-29\n", 2, "offset", nil},
		{"zero scale", Header + "\n# c\nbin=b1 offset=1 counts_per_gram=0 measured=2026-11-29\n", 3, "counts_per_gram", nil},
		{"nan scale", Header + "\nbin=b1 offset=1 counts_per_gram=NaN measured=2026-11-29\n", 2, "counts_per_gram", nil},
		{"inf scale", Header + "\nbin=b1 offset=1 counts_per_gram=+Inf measured=2026-11-29\n", 2, "counts_per_gram", nil},
		{"huge scale", Header + "\nbin=b1 offset=1 counts_per_gram=1e999 measured=2026-11-29\n", 2, "counts_per_gram", nil},
		{"bad date", Header + "\nbin=b1 offset=1 counts_per_gram=2 measured=2026-13-01\n", 2, "measured", nil},
		{"zero date", Header + "\nbin=b1 offset=1 counts_per_gram=2 measured=0001-01-01\n", 2, "measured", nil},
		{"missing field", Header + "\n" + ok + "\nbin=b2 offset=1 measured=2026-11-29\n", 3, "counts_per_gram", errMissingField},
		{"unknown field", Header + "\n" + ok + " colour=red\n", 2, "colour", errUnknownField},
		{"repeated field", Header + "\n" + ok + " offset=2\n", 2, "offset", errRepeatedField},
		{"not key=value", Header + "\n" + ok + " junk\n", 2, "", errNotKeyValuePair},
		{"empty bin", Header + "\nbin= offset=1 counts_per_gram=2 measured=2026-11-29\n", 2, "bin", nil},
		{"bad bin char", Header + "\nbin=b\"1 offset=1 counts_per_gram=2 measured=2026-11-29\n", 2, "bin", nil},
		{"duplicate bin", Header + "\n" + ok + "\n" + ok + "\n", 3, "bin", ErrDuplicateBin},
		{"line too long", Header + "\n" + strings.Repeat("x", 2000) + "\n", 2, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v; want a *ParseError", err)
			}
			if pe.Line != tt.line || pe.Field != tt.field || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Errorf("Parse = %v (line %d field %q); want line %d field %q (%v)", err, pe.Line, pe.Field, tt.line, tt.field, tt.is)
			}
			if !strings.HasPrefix(err.Error(), "calibration: line ") {
				t.Errorf("message %q lacks the prefix", err)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	good := Calibration{Bin: "b1", Offset: 1, CountsPerGram: 2, Measured: date("2026-11-29")}
	tests := []struct {
		name  string
		c     Calibration
		field string
	}{
		{"empty bin", Calibration{Offset: 1, CountsPerGram: 2, Measured: good.Measured}, "bin"},
		{"bin with space", Calibration{Bin: "a b", CountsPerGram: 2, Measured: good.Measured}, "bin"},
		{"zero scale", Calibration{Bin: "b", Measured: good.Measured}, "counts_per_gram"},
		{"nan scale", Calibration{Bin: "b", CountsPerGram: math.NaN(), Measured: good.Measured}, "counts_per_gram"},
		{"offset range", Calibration{Bin: "b", Offset: MaxCode + 1, CountsPerGram: 2, Measured: good.Measured}, "offset"},
		{"no date", Calibration{Bin: "b", CountsPerGram: 2}, "measured"},
		{"duplicate", good, "bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fe *FieldError
			err := Write(&bytes.Buffer{}, File{Channels: []Calibration{good, tt.c}})
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.HasPrefix(err.Error(), "calibration: bin ") {
				t.Errorf("Write = %v; want a FieldError on %s", err, tt.field)
			}
		})
	}
}

func TestFromMeasurements(t *testing.T) {
	// An HX711 cell: tare near -81234, 412.5 counts per gram, ±40 counts noise.
	rng := rand.New(rand.NewPCG(1, 2))
	noisy := func(center int32, n int, amp int32) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = center + rng.Int32N(2*amp+1) - amp
		}
		return out
	}
	empty := noisy(-81234, 21, 40)
	loaded := noisy(-81234+412500, 21, 40)
	c, err := FromMeasurements(empty, loaded, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(c.Offset)+81234) > 20 || math.Abs(c.CountsPerGram-412.5) > 0.05 {
		t.Errorf("calibration %+v; want offset ≈ -81234, 412.5 counts/g", c)
	}
	// One wild glitch in each set changes nothing: medians.
	g1 := append(clone(empty), 8000000)
	g2 := append(clone(loaded), -8000000)
	if c2, err := FromMeasurements(g1, g2, 1000); err != nil || math.Abs(c2.CountsPerGram-c.CountsPerGram) > 0.05 {
		t.Errorf("with glitches: %+v, %v", c2, err)
	}
	exact, err := FromMeasurements([]int32{100, 100, 100, 101}, []int32{-900, -900, -900}, 500)
	if err != nil || exact.Offset != 100 || exact.CountsPerGram != -2 {
		t.Errorf("exact reversed cell: %+v, %v", exact, err)
	}

	tests := []struct {
		name          string
		empty, loaded []int32
		ref           float64
		is            error
	}{
		{"zero span", []int32{5, 5, 5}, []int32{5, 5, 5}, 1000, ErrZeroSpan},
		{"too few", []int32{5, 5}, []int32{9000, 9000, 9000}, 1000, ErrTooFewSamples},
		{"too noisy", noisy(0, 21, 20000), noisy(400000, 21, 20000), 1000, ErrTooNoisy},
		{"saturated", []int32{0, 0, 0}, []int32{MaxCode, MaxCode, MaxCode}, 1000, ErrSaturated},
		{"zero reference", []int32{0, 0, 0}, []int32{9, 9, 9}, 0, ErrBadReference},
		{"nan reference", []int32{0, 0, 0}, []int32{9, 9, 9}, math.NaN(), ErrBadReference},
		{"inf reference", []int32{0, 0, 0}, []int32{9, 9, 9}, math.Inf(1), ErrBadReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromMeasurements(tt.empty, tt.loaded, tt.ref)
			if !errors.Is(err, tt.is) {
				t.Errorf("err %v; want %v", err, tt.is)
			}
		})
	}
}

func clone(s []int32) []int32 { return append([]int32(nil), s...) }

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives a round trip: Parse(Write(f)) == f, and Write is canonical.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile("testdata/shelf-01.cal")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(Header + "\nbin=a offset=-8388608 counts_per_gram=-1e-300 measured=0001-01-01\n"))
	f.Add([]byte(Header + "\r\nbin=a:b offset=+7 counts_per_gram=0x1p-2 measured=2024-02-29 # leap\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		var b1 bytes.Buffer
		if err := Write(&b1, file); err != nil {
			t.Fatalf("Write of a parsed file: %v", err)
		}
		again, err := Parse(bytes.NewReader(b1.Bytes()))
		if err != nil {
			t.Fatalf("Parse(Write(f)): %v\n%s", err, b1.Bytes())
		}
		if !reflect.DeepEqual(again, file) {
			t.Fatalf("round trip:\n%+v\n%+v", file, again)
		}
		var b2 bytes.Buffer
		if err := Write(&b2, again); err != nil || !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Fatalf("Write not canonical: %v\n%s\n%s", err, b1.Bytes(), b2.Bytes())
		}
	})
}
