package evaluate

import (
	"context"
	"math"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
)

// Cut is the model window of one change a detector reported: what
// Windows turns into a training row and what a gateway's WindowRecorder
// keeps for a labelled sample.
type Cut struct {
	Plate string
	Time  time.Time // the event's time
	Delta float64   // the event's DeltaGrams
	X     []float32 // classify.Features
}

// Cuts runs the analytic chain over o's scenario as Windows does and
// returns the window of every change the detector reported, per plate in
// time order (the training side of a training/serving comparison).
func Cuts(ctx context.Context, o Options) (map[string][]Cut, error) {
	w, plates, err := newScenario(o)
	if err != nil {
		return nil, err
	}
	type key struct {
		plate string
		t     time.Time
	}
	cut := map[key][]float32{}
	rec := &recorder{n: classify.PlateWindow(classify.ModelRate).Len(), got: func(pi int, t time.Time, x []float32) {
		cut[key{plates[pi].ID, t}] = x
	}}
	det, err := detector(Options{Config: o.Config, Mode: classify.ModeAnalytic, Settle: o.Settle}, w, plates, nil, rec)
	if err != nil {
		return nil, err
	}
	out := map[string][]Cut{}
	if err := feed(ctx, o, w, det, nil, nil, func(ev gateway.Event) {
		if inf := ev.Inference; inf != nil {
			if x, ok := cut[key{inf.Plate, ev.Time}]; ok {
				out[inf.Plate] = append(out[inf.Plate], Cut{Plate: inf.Plate, Time: ev.Time, Delta: ev.DeltaGrams, X: x})
			}
		}
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// CutDiff compares the windows two paths cut for the same changes.
type CutDiff struct {
	// Pairs is the number of changes matched (per plate, in order, by Δ
	// within MatchGrams); OnlyA and OnlyB the changes left unmatched.
	Pairs, OnlyA, OnlyB int
	// Max and Mean are the largest and the mean absolute difference of
	// each feature over the pairs (in units of |Δ|, like the features).
	Max, Mean []float64
	// Differing counts the pairs whose windows differ anywhere by more
	// than DifferBy.
	Differing int
}

// Matching and difference thresholds of CompareCuts. Both paths compute
// features from the same codes in float64, so a window cut the same way
// is equal to rounding; DifferBy is far above rounding and far below
// what a window shifted by one sample differs by at a change.
const (
	MatchGrams = 1.0
	DifferBy   = 0.01
)

// CompareCuts matches a's and b's changes per plate in time order (each
// change of a to the next unmatched change of b within the next four
// whose Δ is within MatchGrams) and compares their windows feature by
// feature.
func CompareCuts(a, b map[string][]Cut) CutDiff {
	n := classify.PlateWindow(classify.ModelRate).Len()
	d := CutDiff{Max: make([]float64, n), Mean: make([]float64, n)}
	for plate, ca := range a {
		cb := b[plate]
		j := 0
		for _, x := range ca {
			found := false
			for k := j; k < len(cb) && k < j+4; k++ {
				if math.Abs(cb[k].Delta-x.Delta) > MatchGrams || len(cb[k].X) != n || len(x.X) != n {
					continue
				}
				worst := 0.0
				for f := range n {
					v := math.Abs(float64(x.X[f] - cb[k].X[f]))
					d.Max[f] = max(d.Max[f], v)
					d.Mean[f] += v
					worst = max(worst, v)
				}
				if worst > DifferBy {
					d.Differing++
				}
				d.Pairs++
				d.OnlyB += k - j
				j, found = k+1, true
				break
			}
			if !found {
				d.OnlyA++
			}
		}
		d.OnlyB += len(cb) - j
	}
	for plate, cb := range b {
		if _, ok := a[plate]; !ok {
			d.OnlyB += len(cb)
		}
	}
	for f := range d.Mean {
		d.Mean[f] /= float64(max(d.Pairs, 1))
	}
	return d
}

// Worst is the largest of Max, its feature index, and the mean of Mean.
func (d CutDiff) Worst() (maxDiff float64, feature int, mean float64) {
	for f, v := range d.Max {
		if v > maxDiff {
			maxDiff, feature = v, f
		}
		mean += d.Mean[f]
	}
	return maxDiff, feature, mean / float64(max(len(d.Mean), 1))
}
