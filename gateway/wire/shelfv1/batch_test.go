package shelfv1

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

func TestAppendBatchRoundTrip(t *testing.T) {
	at := time.UnixMicro(1_700_000_000_123_456)
	recs := []gateway.Record{
		{ID: 1, Seq: 1, Stream: "loadcell/shelf-01/bin-01", Time: at, Value: 1234.5, Unit: "g"},
		{ID: 2, Seq: 7, Stream: "odd \"stream\"\n\x01é", Time: at, Value: math.NaN(), Quality: gateway.QualitySaturated},
		{ID: 9, Seq: 3, Stream: "events/shelf-01/bin-01", Time: at, Body: []byte(`{"kind":"pick","qty":2}`)},
	}
	p := AppendBatch(nil, "site-a", "gw-1", gateway.BatchRef{Class: gateway.ClassTelemetry}, time.UnixMilli(42), recs)
	b, err := DecodeBatch(p)
	if err != nil {
		t.Fatalf("DecodeBatch(%s): %v", p, err)
	}
	if b.Site != "site-a" || b.Gateway != "gw-1" || b.Class != "telemetry" || b.Sent != 42 || len(b.Records) != 3 {
		t.Fatalf("header = %+v", b)
	}
	for i, r := range recs {
		w := b.Records[i]
		if w.ID != r.ID || w.Seq != r.Seq || w.Stream != string(r.Stream) || w.Time != at.UnixMicro() || w.Quality != uint8(r.Quality) || w.Unit != r.Unit {
			t.Errorf("records[%d] = %+v, want %+v", i, w, r)
		}
	}
	if b.Records[0].Value != 1234.5 || b.Records[1].Value != 0 {
		t.Errorf("values = %v, %v", b.Records[0].Value, b.Records[1].Value)
	}
	if string(b.Records[2].Event) != `{"kind":"pick","qty":2}` {
		t.Errorf("event body = %s", b.Records[2].Event)
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ``},
		{"not json", `hello`},
		{"wrong version", `{"v":2,"class":"telemetry","records":[]}`},
		{"bad class", `{"v":1,"class":"x","records":[]}`},
		{"unknown field", `{"v":1,"class":"telemetry","records":[],"zzz":1}`},
		{"zero id", `{"v":1,"class":"telemetry","records":[{"id":0,"s":"a","q":1}]}`},
		{"zero seq", `{"v":1,"class":"telemetry","records":[{"id":1,"s":"a","q":0}]}`},
		{"no stream", `{"v":1,"class":"telemetry","records":[{"id":1,"q":1}]}`},
		{"tag without range", `{"v":1,"class":"telemetry","batch":"x","records":[]}`},
		{"tag with hi below lo", `{"v":1,"class":"telemetry","lo":5,"hi":4,"batch":"x","records":[]}`},
		{"lo and hi without a tag", `{"v":1,"class":"event","hi":1,"records":[]}`},
		{"truncated", `{"v":1,"class":"telemetry","records":[{"id":1,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeBatch([]byte(tc.in)); !errors.Is(err, ErrBadBatch) {
				t.Fatalf("DecodeBatch(%q) error = %v, want ErrBadBatch", tc.in, err)
			}
		})
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"v":1,"site":"s","gw":"g","class":"telemetry","sent":1,"records":[{"id":1,"s":"a","q":1,"t":1,"v":1}]}`))
	f.Add([]byte(`{"v":1,"class":"event","records":[{"id":1,"s":"a","q":1,"e":{"kind":"pick"}}]}`))
	f.Add([]byte(`{"v":1,"class":"event","lo":1,"hi":3,"batch":"abc","records":[{"id":3,"s":"a","q":1}]}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeBatch(p)
		if err != nil {
			if !errors.Is(err, ErrBadBatch) {
				t.Fatalf("error %v does not wrap ErrBadBatch", err)
			}
			return
		}
		// A decoded batch re-encodes and decodes to the same records.
		recs := make([]gateway.Record, len(b.Records))
		for i, w := range b.Records {
			recs[i] = gateway.Record{ID: w.ID, Seq: w.Seq, Stream: gateway.StreamID(w.Stream), Time: time.UnixMicro(w.Time), Value: w.Value, Unit: w.Unit, Quality: gateway.Quality(w.Quality), Body: w.Event}
		}
		class, _ := ParseClass(b.Class)
		ref := gateway.BatchRef{Class: class, Lo: b.Lo, Hi: b.Hi, Tag: b.Tag}
		b2, err := DecodeBatch(AppendBatch(nil, b.Site, b.Gateway, ref, time.UnixMilli(b.Sent), recs))
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if len(b2.Records) != len(b.Records) {
			t.Fatalf("re-encoded %d records, got %d", len(b.Records), len(b2.Records))
		}
		for i := range b.Records {
			if b.Records[i].ID != b2.Records[i].ID || b.Records[i].Seq != b2.Records[i].Seq || b.Lo != b2.Lo || b.Hi != b2.Hi || b.Tag != b2.Tag {
				t.Fatalf("record %d changed: %+v -> %+v", i, b.Records[i], b2.Records[i])
			}
		}
	})
}
