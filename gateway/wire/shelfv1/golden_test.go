package shelfv1

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/compress"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	goldenTopics = Topics{Site: "site-1", Gateway: "gw-1"}
	goldenCodec  = Codec{Topics: goldenTopics}
	goldenTime   = time.Date(2026, 12, 5, 20, 0, 0, 123456000, time.UTC)
)

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed:\n got %s\nwant %s\n(if the change is intended, run go test -update and document it in docs/protocol.md)", name, got, want)
	}
}

func telemetryRecords() []gateway.Record {
	at := goldenTime
	return []gateway.Record{
		{ID: 101, Seq: 41, Class: gateway.ClassTelemetry, Stream: "loadcell/shelf-01/bin-01", Time: at, Value: 1234.5, Unit: "g"},
		{ID: 102, Seq: 17, Class: gateway.ClassTelemetry, Stream: "loadcell/shelf-01/bin-02", Time: at.Add(100 * time.Millisecond), Value: -3.25, Unit: "g", Quality: gateway.QualityFiltered},
		{ID: 104, Seq: 42, Class: gateway.ClassTelemetry, Stream: "loadcell/shelf-01/bin-01", Time: at.Add(100 * time.Millisecond), Value: 1234.75, Unit: "g", Quality: gateway.QualitySaturated | gateway.QualityUncalibrated},
	}
}

func eventRecords(t *testing.T) []gateway.Record {
	body, err := json.Marshal(gateway.Event{Kind: gateway.EventPick, Stream: "loadcell/shelf-01/bin-01", Bin: "shelf-01/bin-01", SKU: "SKU-1001", Quantity: 2, DeltaGrams: -250.5, Confidence: 0.97, Time: goldenTime})
	if err != nil {
		t.Fatal(err)
	}
	return []gateway.Record{{ID: 103, Seq: 9, Class: gateway.ClassEvent, Stream: "events/shelf-01/bin-01", Time: goldenTime, Value: 2, Body: body}}
}

// TestGoldenPayloads pins every payload the cloud sees, and checks each
// decodes back to what was encoded.
func TestGoldenPayloads(t *testing.T) {
	telRef := gateway.BatchRef{Class: gateway.ClassTelemetry, Lo: 100, Hi: 104, Tag: "3q2-7wAAAAAAAAAAAAAAAA"}
	evRef := gateway.BatchRef{Class: gateway.ClassEvent, Lo: 1, Hi: 103, Tag: "q83vASNFZ4mrze8BI0VniQ"}
	tel := goldenCodec.AppendBatch(nil, telRef, goldenTime, telemetryRecords())
	ev := goldenCodec.AppendBatch(nil, evRef, goldenTime, eventRecords(t))

	shedBody, err := json.Marshal(gateway.Event{Kind: gateway.EventShed, Stream: "loadcell/shelf-01/bin-01", FromSeq: 1, ToSeq: 40, Quantity: 40, Detail: "max_bytes", Time: goldenTime})
	if err != nil {
		t.Fatal(err)
	}
	shed := goldenCodec.AppendBatch(nil, gateway.BatchRef{Class: gateway.ClassEvent, Lo: 104, Hi: 105, Tag: "ASNFZ4mrze8BI0VniavN7w"}, goldenTime,
		[]gateway.Record{{ID: 105, Seq: 3, Class: gateway.ClassEvent, Stream: "events/shed", Time: goldenTime, Value: 40, Body: shedBody}})

	enc, err := compress.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	frame := enc.Compress(nil, tel)

	birthFields := map[string]any{"version": "v1.2.3", "model": "none", "backlog": 0, "ack_mode": "consumer", StatusLastSeq: map[string]uint64{"loadcell/shelf-01/bin-01": 42, "events/shelf-01/bin-01": 9}}
	okReply, err := NewReply("req-0001", "ping", "pong", nil, goldenTime)
	if err != nil {
		t.Fatal(err)
	}
	errReply, err := NewReply("req-0002", "reboot", nil, errors.New(`unknown command "reboot"`), goldenTime)
	if err != nil {
		t.Fatal(err)
	}
	replyBatch := goldenCodec.AppendBatch(nil, gateway.BatchRef{Class: gateway.ClassEvent, Lo: 106, Hi: 106, Tag: "7wEjRWeJq83vASNFZ4mrzQ"}, goldenTime,
		[]gateway.Record{func() gateway.Record { r := ReplyRecord(okReply.Encode(), goldenTime); r.ID, r.Seq = 106, 1; return r }()})

	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"telemetry_batch.json", tel},
		{"event_batch.json", ev},
		{"shed_notice_batch.json", shed},
		{"telemetry_batch.zst", frame},
		{"birth.json", goldenCodec.Status(StateOnline, "", birthFields, goldenTime)},
		{"lwt.json", goldenCodec.Status(StateOffline, "", nil, time.Time{})},
		{"offline_shutdown.json", goldenCodec.Status(StateOffline, "shutdown", birthFields, goldenTime)},
		{"reply_ok.json", okReply.Encode()},
		{"reply_error.json", errReply.Encode()},
		{"reply_event_batch.json", replyBatch},
		{"ack.json", AppendAck(nil, telRef)},
	} {
		t.Run(tc.name, func(t *testing.T) { golden(t, tc.name, tc.p) })
	}

	// Each batch decodes back to its records and reference.
	dec, err := compress.NewDecoder(MaxBatchBytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    []byte
		ref  gateway.BatchRef
		n    int
	}{{"telemetry", tel, telRef, 3}, {"event", ev, evRef, 1}, {"zstd", frame, telRef, 3}} {
		b, err := DecodePayload(dec, tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ref, ok := b.Ref()
		if !ok || ref != tc.ref || len(b.Records) != tc.n {
			t.Errorf("%s: ref %+v %v, %d records; want %+v, %d", tc.name, ref, ok, len(b.Records), tc.ref, tc.n)
		}
	}
	if ref, err := DecodeAck(AppendAck(nil, telRef)); err != nil || ref != telRef {
		t.Errorf("ack round trip: %+v, %v", ref, err)
	}
	for _, r := range []Reply{okReply, errReply} {
		got, err := DecodeReply(r.Encode())
		if err != nil || got.ID != r.ID || got.OK != r.OK || got.Error != r.Error || string(got.Result) != string(r.Result) || !got.Time.Equal(r.Time) {
			t.Errorf("reply round trip: %+v, %v; want %+v", got, err, r)
		}
	}
}

// TestAppendBatchAllocatesNothing keeps the delivery path's encoder
// allocation-free once the buffer is large enough.
func TestAppendBatchAllocatesNothing(t *testing.T) {
	recs := telemetryRecords()
	ref := gateway.BatchRef{Class: gateway.ClassTelemetry, Lo: 100, Hi: 104, Tag: "3q2-7wAAAAAAAAAAAAAAAA"}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = goldenCodec.AppendBatch(buf[:0], ref, goldenTime, recs) }); n != 0 {
		t.Fatalf("AppendBatch allocates %v times per batch", n)
	}
}

func TestDecodeAckRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ``},
		{"null", `null`},
		{"empty object", `{}`},
		{"not json", `ack!`},
		{"unknown field", `{"class":"telemetry","lo":1,"hi":2,"batch":"x","zzz":1}`},
		{"bad class", `{"class":"bogus","lo":1,"hi":2,"batch":"x"}`},
		{"zero lo", `{"class":"telemetry","lo":0,"hi":2,"batch":"x"}`},
		{"hi below lo", `{"class":"telemetry","lo":3,"hi":2,"batch":"x"}`},
		{"no batch tag (the old format)", `{"class":"telemetry","lo":1,"hi":9007199254740991}`},
		{"long tag", `{"class":"event","lo":1,"hi":2,"batch":"` + string(bytes.Repeat([]byte("a"), MaxTagLen+1)) + `"}`},
		{"two objects", `{"class":"event","lo":1,"hi":2,"batch":"x"}{}`},
		{"oversize", `{"class":"event","lo":1,"hi":2,"batch":"x"}` + string(bytes.Repeat([]byte(" "), MaxAckBytes))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ref, err := DecodeAck([]byte(tc.in)); !errors.Is(err, ErrBadAck) {
				t.Fatalf("DecodeAck(%q) = %+v, %v; want ErrBadAck", tc.in, ref, err)
			}
		})
	}
}

func TestDecodeCommand(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"id only", `{"id":"r1"}`, true},
		{"with args", `{"id":"r1","args":{"x":1}}`, true},
		{"null", `null`, false},
		{"empty object", `{}`, false},
		{"empty id", `{"id":""}`, false},
		{"id with space", `{"id":"a b"}`, false},
		{"id not a string", `{"id":7}`, false},
		{"array", `[]`, false},
		{"unknown field", `{"id":"r1","zzz":1}`, false},
		{"long id", `{"id":"` + string(bytes.Repeat([]byte("a"), MaxCommandID+1)) + `"}`, false},
		{"trailing data", `{"id":"r1"} {"id":"r2"}`, false},
		{"oversize", `{"id":"r1","args":"` + string(bytes.Repeat([]byte("a"), MaxCommandBytes)) + `"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeCommand([]byte(tc.in))
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrBadCommand) {
				t.Fatalf("DecodeCommand(%.60q) = %+v, %v; want ok=%v", tc.in, c, err, tc.ok)
			}
		})
	}
}

func TestTopics(t *testing.T) {
	tp := goldenTopics
	for topic, want := range map[string]string{
		"shelfgate/v1/site-1/gw-1/cmd/ping":       "ping",
		"shelfgate/v1/site-1/gw-1/cmd/ping/reply": "",
		"shelfgate/v1/site-1/gw-2/cmd/ping":       "",
		"shelfgate/v1/site-1/gw-1/cmd/":           "",
	} {
		if got, ok := tp.CommandName(topic); got != want || ok != (want != "") {
			t.Errorf("CommandName(%q) = %q, %v; want %q", topic, got, ok, want)
		}
	}
	if err := (Topics{Site: "a/b", Gateway: "g"}).Validate(); err == nil {
		t.Error("site with a slash accepted")
	}
}

func FuzzDecodeAck(f *testing.F) {
	f.Add([]byte(`{"class":"telemetry","lo":1,"hi":2,"batch":"3q2-7wAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"class":"telemetry","lo":1,"hi":9007199254740991}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, p []byte) {
		ref, err := DecodeAck(p)
		if err != nil {
			if !errors.Is(err, ErrBadAck) {
				t.Fatalf("error %v does not wrap ErrBadAck", err)
			}
			return
		}
		if ref.Lo <= 0 || ref.Hi < ref.Lo || ref.Tag == "" {
			t.Fatalf("accepted %+v", ref)
		}
		again, err := DecodeAck(AppendAck(nil, ref))
		if err != nil || again != ref {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", ref, again, err)
		}
	})
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add([]byte(`{"id":"r1"}`))
	f.Add([]byte(`{"id":"r1","args":{"n":1}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := DecodeCommand(p)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		if c.ID == "" || len(c.ID) > MaxCommandID {
			t.Fatalf("accepted id %q", c.ID)
		}
		r, err := NewReply(c.ID, "x", c.Args, nil, goldenTime)
		if err != nil {
			t.Fatalf("reply to %+v: %v", c, err)
		}
		if got, err := DecodeReply(r.Encode()); err != nil || got.ID != c.ID {
			t.Fatalf("reply round trip: %+v, %v", got, err)
		}
	})
}
