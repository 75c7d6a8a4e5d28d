package shelfv1

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

func goldenModelEvents() map[string]ModelEvent {
	return map[string]ModelEvent{
		"model_promoted_batch.json": {Kind: EventModelPromoted, Detail: "plates v2 promoted (was v1)", Model: "plates", ModelVersion: 2, PreviousVersion: 1,
			Note: "shadow: accuracy 0.991 on 200 labelled windows, active v1 0.547; top-1 agreement 0.560 on 200 windows, 38µs per window", OfferID: "aa84d0c10c74360c", Time: goldenTime},
		"model_rejected_batch.json": {Kind: EventModelRejected, Detail: "plates v3 not promoted; v2 keeps serving", Model: "plates", ModelVersion: 2, CandidateVersion: 3, Code: "not-promoted",
			Reason: "candidate version 3: not promoted: shadow: accuracy 0.410 on 120 labelled windows, active v2 has 0.950 (margin 0.02)", OfferID: "0c1d2e3f40516273", Time: goldenTime},
		"model_rolled_back_batch.json": {Kind: EventModelRolledBack, Detail: "plates v4 rolled back; v2 serves again", Model: "plates", ModelVersion: 2, RolledBackVersion: 4, Code: "health-check",
			Reason: "model v4: top-1 agreement 0.100 with v2 over its first 20 changes, below 0.50: health check failed", Time: goldenTime},
	}
}

// TestGoldenModelEvents pins the events batch of each model event the
// cloud sees and checks that each decodes back, generically (as an event
// body) and strictly.
func TestGoldenModelEvents(t *testing.T) {
	for name, e := range goldenModelEvents() {
		t.Run(name, func(t *testing.T) {
			rec, err := e.Record()
			if err != nil {
				t.Fatal(err)
			}
			if rec.Class != gateway.ClassEvent || rec.Stream != "events/model" {
				t.Fatalf("record class %v stream %q", rec.Class, rec.Stream)
			}
			rec.ID, rec.Seq = 211, 3
			ref := gateway.BatchRef{Class: gateway.ClassEvent, Lo: 211, Hi: 211, Tag: "ASNFZ4mrze8BI0VniavN7w"}
			p := goldenCodec.AppendBatch(nil, ref, goldenTime, []gateway.Record{rec})
			golden(t, name, p)
			b, err := DecodeBatch(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeModelEvent(b.Records[0].Event)
			if err != nil {
				t.Fatal(err)
			}
			e.Stream = StreamModelEvents
			if got != e {
				t.Fatalf("decoded %+v\nwant %+v", got, e)
			}
		})
	}
}

// TestModelEventRejects: a model event missing what its kind needs is
// refused when built and when decoded, naming the field.
func TestModelEventRejects(t *testing.T) {
	cases := []struct {
		name string
		edit func(*ModelEvent)
		want string
	}{
		{"kind", func(e *ModelEvent) { e.Kind = gateway.EventPick }, `kind "pick" is not a model event`},
		{"model", func(e *ModelEvent) { e.Model = "" }, "model is missing"},
		{"version", func(e *ModelEvent) { e.ModelVersion = 0 }, "model_version is missing"},
		{"rolled back version", func(e *ModelEvent) { e.RolledBackVersion = 0 }, "needs rolled_back_version and code"},
		{"code", func(e *ModelEvent) { e.Code = "" }, "needs rolled_back_version and code"},
		{"time", func(e *ModelEvent) { e.Time = time.Time{} }, "time is missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := goldenModelEvents()["model_rolled_back_batch.json"]
			tc.edit(&e)
			if _, err := e.Record(); !errors.Is(err, ErrBadModelEvent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Record: %v, want %q", err, tc.want)
			}
		})
	}
	for _, p := range []string{`{"kind":"model_promoted","stream":"model","detail":"","model":"m","model_version":1,"time":"2026-01-01T00:00:00Z","extra":1}`,
		`{"kind":"model_promoted","stream":"model","detail":"","model":"m","model_version":1,"time":"2026-01-01T00:00:00Z"} {}`,
		`{"kind":"model_promoted","stream":"loadcell/x","detail":"","model":"m","model_version":1,"time":"2026-01-01T00:00:00Z"}`} {
		if _, err := DecodeModelEvent([]byte(p)); !errors.Is(err, ErrBadModelEvent) {
			t.Errorf("DecodeModelEvent(%s): %v, want ErrBadModelEvent", p, err)
		}
	}
}

// FuzzDecodeModelEvent: whatever the bytes, DecodeModelEvent returns an
// event that encodes again to a record, or ErrBadModelEvent.
func FuzzDecodeModelEvent(f *testing.F) {
	for _, e := range goldenModelEvents() {
		rec, err := e.Record()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec.Body)
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := DecodeModelEvent(p)
		if err != nil {
			if !errors.Is(err, ErrBadModelEvent) {
				t.Fatalf("error %v is not ErrBadModelEvent", err)
			}
			return
		}
		if _, err := e.Record(); err != nil {
			t.Fatalf("decoded %+v does not encode: %v", e, err)
		}
	})
}
