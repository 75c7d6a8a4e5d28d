package classify

import "testing"

// fixed answers the same result for every change.
type fixed Result

func (f fixed) Identify(*Change) Result { return Result(f) }

func TestGated(t *testing.T) {
	none := fixed{Facing: -1, Confidence: 0.9, Classifier: "model", ModelVersion: 3}
	gate := fixed{Facing: 2, Quantity: 5, Confidence: 0.7, Classifier: "model", ModelVersion: 3}
	namer := fixed{Facing: 1, Quantity: 2, Confidence: 0.95, Classifier: "analytic"}
	for _, tc := range []struct {
		name string
		g    Gated
		want Result
	}{
		{"gate says none", Gated{Gate: none, Namer: namer}, Result(none)},
		{"gate passes, namer names", Gated{Gate: gate, Namer: namer},
			Result{Facing: 1, Quantity: 2, Confidence: 0.95, Classifier: "model+analytic", ModelVersion: 3}},
		{"namer says none", Gated{Gate: gate, Namer: fixed{Facing: -1, Classifier: "analytic"}},
			Result{Facing: -1, Classifier: "model+analytic", ModelVersion: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.g.Identify(&Change{}); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The shipped model as the gate and the analytic baseline as the namer,
// through the detector: a pick is named by the analytic identifier and
// carries the model's version.
func TestGatedWithShippedModel(t *testing.T) {
	l := shippedModel(t)
	g := Gated{Gate: NewModelID(NewHolder(l), 1), Namer: Analytic{}}
	d, p := newTestDetector(t, g, nil, nil)
	s := newScript(p, 5)
	s.add(2000, 300, 200)
	rs := s.samples(20, nil)
	rs = append(rs, s.visit(2, 2)...)
	evs := observeAll(d, rs)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(evs), evs)
	}
	inf := evs[0].Inference
	if inf.Classifier != "model+analytic" || inf.ModelVersion != l.Version || inf.Facing != 2 || inf.Quantity != 2 {
		t.Errorf("inference %+v", inf)
	}
}
