package main

import (
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/compress"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

func TestTailPrinter(t *testing.T) {
	var out strings.Builder
	zstd, err := compress.NewDecoder(shelfv1.MaxBatchBytes)
	if err != nil {
		t.Fatal(err)
	}
	p := &printer{w: &out, agg: map[string]*readingAgg{}, zstd: zstd}
	at := time.Unix(1700000000, 0)
	tel := shelfv1.AppendBatch(nil, "s", "g", gateway.BatchRef{Class: gateway.ClassTelemetry}, at, []gateway.Record{
		{ID: 1, Seq: 1, Stream: "loadcell/shelf-01/bin-01", Time: at, Value: 100, Unit: "g"},
		{ID: 2, Seq: 2, Stream: "loadcell/shelf-01/bin-01", Time: at, Value: 101.25, Unit: "g"},
	})
	ev := shelfv1.AppendBatch(nil, "s", "g", gateway.BatchRef{Class: gateway.ClassEvent}, at, []gateway.Record{
		{ID: 3, Seq: 1, Stream: "events/loadcell/shelf-01/bin-01", Time: at, Body: []byte(`{"kind":"pick","bin":"shelf-01/bin-01","qty":2,"delta_g":-250,"sku":"4006381333931","time":"2023-11-14T22:13:20Z"}`)},
		{ID: 4, Seq: 1, Stream: "events/scanner/picking-1", Time: at, Body: []byte(`{"kind":"scan","stream":"scanner/picking-1","detail":"4006381333931","time":"2023-11-14T22:13:20Z"}`)},
		{ID: 5, Seq: 1, Stream: "events/commands", Time: at, Body: []byte(`{"kind":"command_reply","id":"r-1","name":"ping","ok":true,"result":"pong","time":"2023-11-14T22:13:20Z"}`)},
		{ID: 6, Seq: 2, Stream: "events/commands", Time: at, Body: []byte(`{"kind":"command_reply","id":"r-2","name":"reboot","ok":false,"error":"unknown command","time":"2023-11-14T22:13:20Z"}`)},
	})
	enc, err := compress.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	p.message("shelfgate/v1/s/g/telemetry", enc.Compress(nil, tel)) // compressed batches read the same
	p.message("shelfgate/v1/s/g/events", ev)
	p.message("shelfgate/v1/s/g/telemetry", []byte("garbage"))
	p.message("shelfgate/v1/s/g/status", []byte(`{"state":"online"}`))
	p.flush()
	got := out.String()
	for _, want := range []string{
		"s/g EVENT PICK      bin=shelf-01/bin-01 qty=2 delta=-250.0g sku=4006381333931 id=3 seq=1",
		"s/g EVENT SCAN      scanner/picking-1 code=4006381333931 id=4 seq=1",
		`s/g EVENT COMMAND_REPLY cmd=ping req=r-1 ok result="pong" id=5 seq=1`,
		`s/g EVENT COMMAND_REPLY cmd=reboot req=r-2 error="unknown command" id=6 seq=2`,
		"s/g BAD telemetry: shelfv1: bad batch",
		`s/g STATUS {"state":"online"}`,
		"s/g READINGS n=2 ids=1-2 shelf-01/bin-01=101.2g",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
