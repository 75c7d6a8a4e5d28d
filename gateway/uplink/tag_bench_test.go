package uplink

import (
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// BenchmarkBatchTag is the cost the batch tag adds to each message; compare
// with BenchmarkEncodeBatch (the 500-record batch it is added to).
func BenchmarkBatchTag(b *testing.B) {
	tg := newTagger(make([]byte, 32))
	b.ReportAllocs()
	for i := range b.N {
		tg.ref(gateway.ClassTelemetry, int64(i)+1, int64(i)+500)
	}
}

func BenchmarkEncodeBatch(b *testing.B) {
	codec := shelfv1.Codec{Topics: shelfv1.Topics{Site: "site", Gateway: "gw"}}
	recs := make([]gateway.Record, 500)
	now := time.Now()
	for i := range recs {
		recs[i] = gateway.Record{ID: int64(i + 1), Seq: uint64(i + 1), Stream: "loadcell/shelf-01/bin-01", Time: now, Value: 1234.5 + float64(i), Unit: "g"}
	}
	ref := gateway.BatchRef{Class: gateway.ClassTelemetry, Lo: 1, Hi: 500, Tag: "3q2-7wAAAAAAAAAAAAAAAA"}
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for range b.N {
		buf = codec.AppendBatch(buf[:0], ref, now, recs)
	}
}

func TestConfirmRejectsWhatTheGatewayDidNotTag(t *testing.T) {
	tg := newTagger([]byte("0123456789abcdef0123456789abcdef"))
	ref := tg.ref(gateway.ClassTelemetry, 10, 20)
	if !tg.valid(ref) {
		t.Fatal("own tag rejected")
	}
	other := newTagger([]byte("another gateway's secret, 32 b.."))
	for name, r := range map[string]gateway.BatchRef{
		"widened":       {Class: ref.Class, Lo: ref.Lo, Hi: ref.Hi + 1, Tag: ref.Tag},
		"shifted":       {Class: ref.Class, Lo: ref.Lo - 1, Hi: ref.Hi, Tag: ref.Tag},
		"other class":   {Class: gateway.ClassEvent, Lo: ref.Lo, Hi: ref.Hi, Tag: ref.Tag},
		"other gateway": other.ref(gateway.ClassTelemetry, 10, 20),
		"not base64":    {Class: ref.Class, Lo: ref.Lo, Hi: ref.Hi, Tag: "!!!"},
		"truncated":     {Class: ref.Class, Lo: ref.Lo, Hi: ref.Hi, Tag: ref.Tag[:10]},
	} {
		if tg.valid(r) {
			t.Errorf("%s: %+v accepted", name, r)
		}
	}
	seen := newRecent(2)
	if !seen.add("a") || seen.add("a") || !seen.add("b") || !seen.add("c") || !seen.add("a") {
		t.Error("recent set: a repeat must be refused while remembered, and forgotten after n newer tags")
	}
}
