package classify

import (
	"testing"
	"time"
)

// TestWindowRecorder: through the detector, the recorder answers with the
// identifier it wraps and keeps each change's model window under the
// event's plate and time, the last keep of them.
func TestWindowRecorder(t *testing.T) {
	rec := NewWindowRecorder(Analytic{}, 1)
	d, p := newTestDetector(t, rec, nil, nil)
	s := newScript(p, 1)
	s.add(2000, 300, 200)
	rs := s.samples(20, nil)
	rs = append(rs, s.visit(1, 2)...)
	rs = append(rs, s.samples(20, nil)...)
	rs = append(rs, s.visit(3, 1)...)
	evs := observeAll(d, rs)
	if len(evs) != 2 || evs[0].Inference.Classifier != "analytic" {
		t.Fatalf("events %+v, want two analytic picks", evs)
	}
	if _, _, ok := rec.Window(p.ID, evs[0].Time); ok {
		t.Error("the first change's window is still kept with keep 1")
	}
	x, rate, ok := rec.Window(p.ID, evs[1].Time)
	if !ok || rate != ModelRate || len(x) != PlateWindow(ModelRate).Len() {
		t.Fatalf("window of the last change: %d values at %v, %v", len(x), rate, ok)
	}
	var moved bool
	for _, v := range x {
		if v < -FeatureClip || v > FeatureClip {
			t.Fatalf("feature %v outside ±%d", v, FeatureClip)
		}
		moved = moved || v != 0
	}
	if !moved {
		t.Error("the window of a pick is all zeros")
	}
	if _, _, ok := rec.Window(p.ID, evs[1].Time.Add(time.Millisecond)); ok {
		t.Error("a window found at a time no change had")
	}
	if _, _, ok := rec.Window("plate-99", evs[1].Time); ok {
		t.Error("a window found for an unknown plate")
	}
}
