package trace

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
)

func readAll(t testing.TB, data []byte) (*Reader, []Record, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, nil, err
	}
	var out []Record
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return r, out, nil
		}
		if err != nil {
			return r, out, err
		}
		if rec.Label != nil {
			l := *rec.Label
			rec.Label = &l
		}
		out = append(out, rec)
	}
}

func TestReadExamples(t *testing.T) {
	data, err := os.ReadFile("testdata/example.csv")
	if err != nil {
		t.Fatal(err)
	}
	r, recs, err := readAll(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Unit() != Grams || !r.Labels() || len(recs) != 8 || r.Rows() != 8 {
		t.Fatalf("unit %v labels %v, %d records", r.Unit(), r.Labels(), len(recs))
	}
	want := Record{Time: time.Date(2026, 12, 5, 9, 0, 0, 100_000_000, time.UTC), Plate: "plate-01", Cell: 0, Grams: 440.1,
		Label: &Label{Action: ActionPick, Facing: 2, SKU: "4006381333931", Qty: 2}}
	if !reflect.DeepEqual(recs[4], want) {
		t.Errorf("record 5: %+v %+v, want %+v %+v", recs[4], recs[4].Label, want, want.Label)
	}
	for i, rec := range recs {
		if i != 4 && rec.Label != nil {
			t.Errorf("record %d has a label %+v", i, rec.Label)
		}
	}

	data, err = os.ReadFile("testdata/unix-codes.csv")
	if err != nil {
		t.Fatal(err)
	}
	r, recs, err = readAll(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Unit() != Code || r.Labels() || len(recs) != 4 {
		t.Fatalf("unit %v labels %v, %d records", r.Unit(), r.Labels(), len(recs))
	}
	if got, want := recs[2].Time, time.Unix(1764925200, 200_000_001).UTC(); !got.Equal(want) {
		t.Errorf("unix time %s, want %s", got, want)
	}
	if recs[2].Code != MaxCode || recs[3].Code != MinCode || recs[0].Code != -41230 || recs[0].Plate != "bin-07" {
		t.Errorf("records %+v", recs)
	}
}

func TestReaderAcceptsVariants(t *testing.T) {
	for _, in := range []string{
		"\ufefftime,plate,cell,code\n2026-12-05T09:00:00Z,p,0,1\n",
		"time,plate,cell,code\r\n2026-12-05T09:00:00+01:00,p,3,1\r\n",
		"# comment\ntime,plate,cell,code\n\n# another\n1.5,p,0,1\n",
		"time,plate,cell,code\n",
		`time,plate,cell,code` + "\n" + `"1.5","p","0","-1"` + "\n",
	} {
		if _, _, err := readAll(t, []byte(in)); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	const hdr = "time,plate,cell,code\n"
	const lhdr = "time,plate,cell,code,label_action,label_facing,label_sku,label_qty\n"
	const ok = "2026-12-05T09:00:00Z,p,0,1"
	tests := []struct {
		in     string
		line   int
		column string
		target error
		msg    string
	}{
		{"", 1, "", ErrHeader, "header line is required"},
		{"# only a comment\n", 1, "", ErrHeader, "required"},
		{"time,plate,cell\n", 1, "code", ErrHeader, "neither code nor grams"},
		{"time,plate,cell,code,grams\n", 1, "grams", ErrHeader, "both"},
		{"time,plate,code\n", 1, "cell", ErrHeader, `"cell" missing`},
		{"time,plate,cell,code,weight\n", 1, "weight", ErrHeader, `unknown column "weight"`},
		{"time,plate,cell,code,cell\n", 1, "cell", ErrHeader, "twice"},
		{"time,plate,cell,code,label_action\n", 1, "", ErrHeader, "all four"},
		{"# c\n" + hdr + ok + "\n" + "yesterday,p,0,1\n", 4, "time", ErrValue, `"yesterday"`},
		{hdr + "2026-12-05T09:00:00,p,0,1\n", 2, "time", ErrValue, "RFC 3339"},
		{hdr + "1.,p,0,1\n", 2, "time", ErrValue, "unix seconds"},
		{hdr + "1.1234567891,p,0,1\n", 2, "time", ErrValue, "unix seconds"},
		{hdr + "-5,p,0,1\n", 2, "time", ErrValue, ""},
		{hdr + "1e9,p,0,1\n", 2, "time", ErrValue, ""},
		{hdr + "0900-01-01T00:00:00Z,p,0,1\n", 2, "time", ErrValue, "out of range"},
		{hdr + "2,p,0,1\n1,p,0,1\n", 3, "time", ErrTimeBackward, "backwards"},
		{hdr + "1,,0,1\n", 2, "plate", ErrValue, "plate"},
		{hdr + "1,plate 1,0,1\n", 2, "plate", ErrValue, "plate"},
		{hdr + "1,p,4,1\n", 2, "cell", ErrValue, `cell "4"`},
		{hdr + "1,p,+1,1\n", 2, "cell", ErrValue, "cell"},
		{hdr + "1,p, 1,1\n", 2, "cell", ErrValue, "cell"},
		{hdr + "1,p,0,8388608\n", 2, "code", ErrValue, "8388608"},
		{hdr + "1,p,0,-8388609\n", 2, "code", ErrValue, ""},
		{hdr + "1,p,0,1.5\n", 2, "code", ErrValue, ""},
		{hdr + "1,p,0,0x10\n", 2, "code", ErrValue, ""},
		{"time,plate,cell,grams\n1,p,0,NaN\n", 2, "grams", ErrValue, "finite"},
		{"time,plate,cell,grams\n1,p,0,inf\n", 2, "grams", ErrValue, ""},
		{"time,plate,cell,grams\n1,p,0,0x1p3\n", 2, "grams", ErrValue, ""},
		{"time,plate,cell,grams\n1,p,0,1e8\n", 2, "grams", ErrValue, ""},
		{"time,plate,cell,grams\n1,p,0,\n", 2, "grams", ErrValue, ""},
		{hdr + "1,p,0\n", 2, "", ErrValue, "wrong number of fields"},
		{hdr + "1,p,0,1,2\n", 2, "", ErrValue, "wrong number of fields"},
		{hdr + "1,\"p,0,1\n", 2, "", ErrValue, ""},
		{lhdr + "1,p,0,1,take,0,,1\n", 2, "label_action", ErrValue, `"take"`},
		{lhdr + "1,p,0,1,pick,0,,\n", 2, "label_qty", ErrValue, "required"},
		{lhdr + "1,p,0,1,pick,0,,0\n", 2, "label_qty", ErrValue, ""},
		{lhdr + "1,p,0,1,pick,-1,,1\n", 2, "label_facing", ErrValue, ""},
		{lhdr + "1,p,0,1,pick,0,sku 1,1\n", 2, "label_sku", ErrValue, ""},
		{lhdr + "1,p,0,1,,,4006381333931,\n", 2, "label_sku", ErrValue, "without label_action"},
		{hdr + "1,p,0,1\n" + strings.Repeat("9", MaxLineBytes+10) + "\n", 3, "", ErrLineTooLong, "longer"},
	}
	for _, tt := range tests {
		_, _, err := readAll(t, []byte(tt.in))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: error %v, want a ParseError", tt.in, err)
			continue
		}
		if pe.Line != tt.line || pe.Column != tt.column || !errors.Is(err, tt.target) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%q: %v (line %d column %q), want line %d column %q, %v, containing %q", tt.in, err, pe.Line, pe.Column, tt.line, tt.column, tt.target, tt.msg)
		}
	}
}

func TestWriterRejects(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	good := Record{Time: t0, Plate: "p", Cell: 0, Code: 1}
	tests := []struct {
		name   string
		unit   Unit
		labels bool
		mod    func(*Record)
		column string
	}{
		{"zero time", Code, false, func(r *Record) { r.Time = time.Time{} }, ColTime},
		{"empty plate", Code, false, func(r *Record) { r.Plate = "" }, ColPlate},
		{"plate with comma", Code, false, func(r *Record) { r.Plate = "a,b" }, ColPlate},
		{"cell 4", Code, false, func(r *Record) { r.Cell = 4 }, ColCell},
		{"code range", Code, false, func(r *Record) { r.Code = MaxCode + 1 }, ColCode},
		{"NaN grams", Grams, false, func(r *Record) { r.Grams = math.NaN() }, ColGrams},
		{"label without columns", Code, false, func(r *Record) { r.Label = &Label{Action: ActionPick, Qty: 1} }, ColLabelAction},
		{"bad action", Code, true, func(r *Record) { r.Label = &Label{Action: "drop", Qty: 1} }, ColLabelAction},
		{"zero qty", Code, true, func(r *Record) { r.Label = &Label{Action: ActionPut, Facing: -1} }, ColLabelQty},
		{"backwards", Code, false, func(r *Record) { r.Time = t0.Add(-time.Nanosecond) }, ColTime},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		w, err := NewWriter(&b, tt.unit, tt.labels)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(good); err != nil {
			t.Fatal(err)
		}
		rec := good
		tt.mod(&rec)
		err = w.Write(rec)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Column != tt.column || pe.Line != 3 {
			t.Errorf("%s: %v, want a ParseError on line 3, column %s", tt.name, err, tt.column)
		}
	}
	if _, err := NewWriter(io.Discard, Unit(0), false); err == nil {
		t.Error("unit 0: no error")
	}
}

// TestRecordPlatesRoundTrip records a shipped evaluation scenario for a
// simulated minute, as codes and as grams, reads the trace back and checks
// every sample and every label against the warehouse.
func TestRecordPlatesRoundTrip(t *testing.T) {
	cfg, err := warehouse.LoadScenario(filepath.Join("..", "..", "configs", "scenarios", "eval", "peak-shift.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := warehouse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	const until = time.Minute
	for _, unit := range []Unit{Code, Grams} {
		t.Run(unit.String(), func(t *testing.T) {
			var b bytes.Buffer
			tw, err := NewWriter(&b, unit, true)
			if err != nil {
				t.Fatal(err)
			}
			n, err := RecordPlates(tw, w, start, until)
			if err != nil {
				t.Fatal(err)
			}
			if err := tw.Flush(); err != nil {
				t.Fatal(err)
			}
			plates := w.Plates()
			samples := int(until.Seconds() * cfg.SampleRate)
			if n != samples*len(plates)*4 {
				t.Fatalf("%d records, want %d", n, samples*len(plates)*4)
			}
			r, recs, err := readAll(t, b.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if r.Unit() != unit || len(recs) != n {
				t.Fatalf("read %d records of %v", len(recs), r.Unit())
			}
			ids := map[string]int{}
			for p, pl := range plates {
				ids[pl.ID] = p
			}
			got := map[int][]Label{}
			for i, rec := range recs {
				k := int64(i / (len(plates) * 4))
				p, ok := ids[rec.Plate]
				if !ok || !rec.Time.Equal(start.Add(w.SampleTime(k))) {
					t.Fatalf("record %d: %+v", i, rec)
				}
				code := w.PlateCodeAt(p, rec.Cell, k)
				cell := plates[p].Cells[rec.Cell]
				if unit == Code && rec.Code != code {
					t.Fatalf("record %d: code %d, want %d", i, rec.Code, code)
				}
				if g := float64(code-cell.OffsetCounts) / cell.CountsPerGram; unit == Grams && rec.Grams != g {
					t.Fatalf("record %d: grams %v, want %v", i, rec.Grams, g)
				}
				if rec.Label != nil {
					got[p] = append(got[p], *rec.Label)
				}
			}
			total := 0
			for p := range plates {
				var want []Label
				for _, l := range w.PlateLabels(p, until) {
					if l.Settled <= until-w.SampleTime(1) {
						want = append(want, Label{Action: l.Kind, Facing: l.Facing, SKU: l.SKU, Qty: l.Units})
					}
				}
				total += len(want)
				if !reflect.DeepEqual(got[p], want) {
					t.Errorf("plate %d labels %+v, want %+v", p, got[p], want)
				}
			}
			if total == 0 {
				t.Error("no labels in a minute of peak shift")
			}
		})
	}
	if _, err := RecordPlates(&Writer{}, mustWarehouse(t, warehouse.DefaultConfig()), start, until); err == nil {
		t.Error("a scenario without plates: no error")
	}
}

func mustWarehouse(t *testing.T, cfg warehouse.Config) *warehouse.Warehouse {
	t.Helper()
	w, err := warehouse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// FuzzReader: the reader never panics, every error is a ParseError with a
// line, and whatever it accepts writes back through a Writer and reads
// again as the same records.
func FuzzReader(f *testing.F) {
	for _, p := range []string{"testdata/example.csv", "testdata/unix-codes.csv"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("time,plate,cell,grams\n1.5,p,0,-0.25\n"))
	f.Add([]byte("time,plate,cell,code,label_action,label_facing,label_sku,label_qty\n1,p,0,1,put,,,3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, recs, err := readAll(t, data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("error %v is not a ParseError with a line", err)
			}
			return
		}
		var b bytes.Buffer
		w, err := NewWriter(&b, r.Unit(), r.Labels())
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if err := w.Write(rec); err != nil {
				t.Fatalf("writer rejects %+v the reader accepted: %v", rec, err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		_, again, err := readAll(t, b.Bytes())
		if err != nil {
			t.Fatalf("reading back: %v\n%s", err, b.Bytes())
		}
		if len(again) != len(recs) {
			t.Fatalf("%d records back, want %d", len(again), len(recs))
		}
		for i := range recs {
			a, b := recs[i], again[i]
			if !a.Time.Equal(b.Time) || a.Plate != b.Plate || a.Cell != b.Cell || a.Code != b.Code || a.Grams != b.Grams || !reflect.DeepEqual(a.Label, b.Label) {
				t.Fatalf("record %d: %+v, back %+v", i, a, b)
			}
		}
	})
}
