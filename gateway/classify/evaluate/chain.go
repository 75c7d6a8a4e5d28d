package evaluate

import (
	"fmt"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
)

// misPick is the mis-pick link of plates: one picker per plate, whose
// scanner is "scanner/<plate>".
func misPick(plates []classify.Plate) (*classify.MisPick, error) {
	var pickers []classify.Picker
	for _, p := range plates {
		pickers = append(pickers, classify.Picker{Scanner: gateway.StreamID("scanner/" + p.ID), Plates: []string{p.ID}})
	}
	return classify.NewMisPick(classify.MisPickConfig{Pickers: pickers})
}

// newScenario builds o's warehouse and its plates; a scenario without
// plates is an error.
func newScenario(o Options) (*warehouse.Warehouse, []classify.Plate, error) {
	w, err := warehouse.New(o.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("evaluate: %w", err)
	}
	plates := Plates(w)
	if len(plates) == 0 {
		return nil, nil, fmt.Errorf("evaluate: scenario %q has no plates", o.Name)
	}
	return w, plates, nil
}

// scoredLabels are the labels of each plate of w that a run of d scores:
// those settled 2 s before its end, so that their events fall inside it.
func scoredLabels(w *warehouse.Warehouse, n int, d time.Duration) [][]warehouse.PlateLabel {
	labels := make([][]warehouse.PlateLabel, n)
	for pi := range labels {
		labels[pi] = w.PlateLabels(pi, d-2*time.Second)
	}
	return labels
}

// finish fills in what every report of mode m takes from the detector's
// stats.
func finish(rep *Report, m classify.Mode, stats *classify.Stats) *Report {
	st := stats.Snapshot()
	if st.Inferences > 0 {
		rep.InferMeanUs = st.SumSeconds / float64(st.Inferences) * 1e6
	}
	rep.Classifier = string(m)
	if m == "" {
		rep.Classifier = string(classify.ModeAnalytic)
	}
	return rep
}
