package evaluate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/trace"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
)

// RunTrace scores o's classifier on a recorded trace (docs/trace-format.md)
// instead of a simulated run: o.Config gives the plates (their IDs,
// geometry, facings and, for a trace of raw codes, the cells'
// calibration); the trace's rows are fed to the chain in order and its
// labels are the ground truth. A trace carries no scans, so mis-picks are
// not scored. Rows of plates the scenario does not have are an error.
func RunTrace(ctx context.Context, o Options, r io.Reader) (*Report, error) {
	w, err := warehouse.New(o.Config)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	plates := Plates(w)
	wps := w.Plates()
	byID := map[string]int{}
	for i, p := range plates {
		byID[p.ID] = i
	}
	var stats classify.Stats
	det, err := detector(o, w, plates, &stats, o.primary)
	if err != nil {
		return nil, err
	}
	tr, err := trace.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("evaluate: trace: %w", err)
	}
	labels := make([][]warehouse.PlateLabel, len(plates))
	var evs []gateway.Event
	var first, last time.Time
	var lastCode [][4]int32
	var same [][4]int
	lastCode, same = make([][4]int32, len(plates)), make([][4]int, len(plates))
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		rec, err := tr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("evaluate: trace: %w", err)
		}
		pi, ok := byID[rec.Plate]
		if !ok {
			return nil, fmt.Errorf("evaluate: trace line %d: plate %q is not in the scenario (it has %d plates: %s…)", tr.Rows()+1, rec.Plate, len(plates), plates[0].ID)
		}
		if first.IsZero() {
			first = rec.Time
		}
		last = rec.Time
		rd := gateway.Reading{Stream: plates[pi].Cells[rec.Cell], Time: rec.Time, Unit: "g", Value: rec.Grams}
		if tr.Unit() == trace.Code {
			c := wps[pi].Cells[rec.Cell]
			rd.Value = float64(rec.Code-c.OffsetCounts) / c.CountsPerGram
			rd.Quality = flags(rec.Code, &lastCode[pi][rec.Cell], &same[pi][rec.Cell], n > 0)
		}
		evs = append(evs, det.Observe(rd)...)
		if l := rec.Label; l != nil {
			pl := warehouse.PlateLabel{Plate: pi, Facing: l.Facing, SKU: l.SKU, Kind: l.Action, Units: l.Qty, Settled: rec.Time.Sub(Epoch)}
			if pl.SKU == "" && l.Facing >= 0 && l.Facing < len(plates[pi].Facings) {
				pl.SKU = plates[pi].Facings[l.Facing].SKU
			}
			labels[pi] = append(labels[pi], pl)
		}
	}
	o.Name += " (trace)"
	o.Duration = last.Sub(first)
	rep := score(o, plates, labels, evs, nil, nil)
	st := stats.Snapshot()
	if st.Inferences > 0 {
		rep.InferMeanUs = st.SumSeconds / float64(st.Inferences) * 1e6
	}
	rep.Classifier = string(o.Mode)
	if o.Mode == "" {
		rep.Classifier = string(classify.ModeAnalytic)
	}
	return rep, nil
}

// flags is the Quality the load-cell source gives a code: saturated at the
// ends of the range, stale for a dead cell's 0 and for the 4th repeat of a
// code.
func flags(code int32, last *int32, same *int, hasLast bool) gateway.Quality {
	var q gateway.Quality
	if code >= 0x7FFFFF || code <= -0x800000 {
		q |= gateway.QualitySaturated
	}
	if code == 0 {
		q |= gateway.QualityStale
	}
	if hasLast && code == *last {
		*same++
		if *same >= 3 {
			q |= gateway.QualityStale
		}
	} else {
		*same = 0
	}
	*last = code
	return q
}
