package shelfv1

import (
	"errors"
	"testing"

	"github.com/shelfgate/shelfgate/gateway"
)

func goldenSample() Sample {
	return Sample{
		Source: SampleCorrection, Gateway: "gw-1",
		Event: SampleEvent{Stream: "loadcell/plate-01", T: goldenTime.UnixMicro()},
		Plate: "plate-01", SKU: "SKU-2", Quantity: 1, Label: "x05", Classifier: "model", ModelVersion: 3,
		PredictedSKU: "SKU-1", PredictedQty: 1, Rate: 10,
		Features: []float32{0, 0.25, -0.5, 1}, Time: goldenTime,
	}
}

// TestGoldenSamples pins the samples batch the cloud sees, and checks it
// decodes back to the sample.
func TestGoldenSamples(t *testing.T) {
	s := goldenSample()
	rec, err := s.Record()
	if err != nil {
		t.Fatal(err)
	}
	rec.ID, rec.Seq = 107, 1
	ref := gateway.BatchRef{Class: gateway.ClassSamples, Lo: 1, Hi: 107, Tag: "ASNFZ4mrze8BI0VniavN7w"}
	p := goldenCodec.AppendBatch(nil, ref, goldenTime, []gateway.Record{rec})
	golden(t, "samples_batch.json", p)

	b, err := DecodeBatch(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := b.Ref(); !ok || got != ref {
		t.Errorf("ref %+v, %v; want %+v", got, ok, ref)
	}
	if goldenCodec.BatchTopic(gateway.ClassSamples) != "shelfgate/v1/site-1/gw-1/samples" {
		t.Errorf("samples topic %q", goldenCodec.BatchTopic(gateway.ClassSamples))
	}
	if f := SubscriptionFilter("", "", gateway.ClassSamples); f != "shelfgate/v1/+/+/samples" {
		t.Errorf("samples filter %q", f)
	}
	got, err := DecodeSample(b.Records[0].Event)
	if err != nil {
		t.Fatal(err)
	}
	if got.Label != "x05" || got.SKU != "SKU-2" || len(got.Features) != 4 || got.Features[2] != -0.5 || !got.Time.Equal(goldenTime) {
		t.Errorf("decoded %+v", got)
	}
}

func TestDecodeSampleRejects(t *testing.T) {
	for name, p := range map[string]string{
		"not json":      `{`,
		"wrong kind":    `{"kind":"pick","source":"scan","label":"x01"}`,
		"bad source":    `{"kind":"sample","source":"guess","label":"x01"}`,
		"no label":      `{"kind":"sample","source":"scan"}`,
		"negative qty":  `{"kind":"sample","source":"scan","label":"x01","qty":-1}`,
		"no rate":       `{"kind":"sample","source":"scan","label":"x01","features":[1]}`,
		"unknown field": `{"kind":"sample","source":"scan","label":"x01","extra":1}`,
	} {
		if _, err := DecodeSample([]byte(p)); !errors.Is(err, ErrBadSample) {
			t.Errorf("%s: err %v, want ErrBadSample", name, err)
		}
	}
}

func FuzzDecodeSample(f *testing.F) {
	p, err := goldenSample().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p)
	f.Add([]byte(`{"kind":"sample","source":"scan","label":"none"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, p []byte) {
		s, err := DecodeSample(p)
		if err != nil {
			if !errors.Is(err, ErrBadSample) {
				t.Fatalf("error %v does not wrap ErrBadSample", err)
			}
			return
		}
		q, err := s.Encode()
		if err != nil {
			return // a NaN cannot come from JSON; anything else is a bug below
		}
		if _, err := DecodeSample(q); err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", q, err)
		}
	})
}
