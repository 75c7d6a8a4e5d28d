package classify

import (
	"slices"
	"testing"
)

// TestShadowOnRecordedWindows: through the detector, the recorder's Recent
// and Since answer with the windows of the changes the detector reported
// (the last n; those after a time), and Shadow compares two plate models
// on them by label: the shipped model agrees with itself on every window
// and with a copy whose labels are rotated on none.
func TestShadowOnRecordedWindows(t *testing.T) {
	l := shippedModel(t)
	rec := NewWindowRecorder(NewModelID(NewHolder(l), 1), 8)
	d, p := newTestDetector(t, rec, nil, nil)
	s := newScript(p, 5)
	s.add(2000, 300, 200)
	rs := s.samples(20, nil)
	for _, f := range []int{0, 1, 2} {
		rs = append(rs, s.visit(f, 1)...)
		rs = append(rs, s.samples(20, nil)...)
	}
	evs := observeAll(d, rs)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	var want [][]float32
	for _, ev := range evs {
		x, _, ok := rec.Window(p.ID, ev.Time)
		if !ok {
			t.Fatalf("no window for the change at %v", ev.Time)
		}
		want = append(want, x)
	}
	eq := func(a, b [][]float32) bool { return slices.EqualFunc(a, b, slices.Equal) }
	if got := rec.Recent(2); !eq(got, want[1:]) {
		t.Errorf("Recent(2) = %d windows, not the last two changes'", len(got))
	}
	if got := rec.Recent(10); !eq(got, want) {
		t.Errorf("Recent(10) = %d windows, want all 3", len(got))
	}
	if got := rec.Since(evs[0].Time, 1); !eq(got, want[1:2]) {
		t.Errorf("Since(first, 1) = %d windows, want the second change's", len(got))
	}

	same, err := Shadow(l, l, want)
	if err != nil {
		t.Fatal(err)
	}
	if same.Windows != 3 || same.Agreeing != 3 || same.Agreement != 1 || same.Failed != 0 {
		t.Errorf("model against itself: %+v, want 3 of 3 agreeing", same)
	}
	m := *l.M
	m.Output.Labels = append(slices.Clone(l.M.Output.Labels[1:]), l.M.Output.Labels[0])
	rot, err := NewLoaded(&m)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Shadow(rot, l, want)
	if err != nil {
		t.Fatal(err)
	}
	if other.Agreeing != 0 || other.Agreement != 0 {
		t.Errorf("rotated labels against the model: %+v, want no agreement", other)
	}
	none, err := Shadow(l, l, nil)
	if err != nil || none.Windows != 0 || none.Agreement != 1 {
		t.Errorf("no windows: %+v, %v, want agreement 1 with no windows", none, err)
	}
}
