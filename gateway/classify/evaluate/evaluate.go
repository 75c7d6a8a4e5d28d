// Package evaluate scores the plate classifiers against ground truth: it
// runs a simulated scenario's plates (firmware-sim/warehouse codes,
// calibrated to grams and flagged as the load-cell source flags them)
// through the classifier chain — classify.PlateDetector, then
// classify.MisPick fed with synthetic scans — and compares the events with
// the scenario's labels. Windows cuts the training windows of plate models
// with the same detector, so a model is trained on exactly what serving
// hands it.
package evaluate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/model/features"
	"github.com/shelfgate/shelfgate/model/train"
)

// Options configures Run.
type Options struct {
	Name     string
	Config   warehouse.Config
	Duration time.Duration
	Mode     classify.Mode    // analytic, model, shadow or gated
	Holder   *classify.Holder // the model, for model and shadow
	Float    *train.MLP       // the float model, for ModeFloat
	// MisPickRate is the share of picks whose scanned line is wrong (a
	// neighbouring facing's SKU, or one unit more or less); default 0.1.
	MisPickRate float64
	Seed        uint64        // scans
	Settle      time.Duration // classify.Config.Settle
	// primary, when set, replaces the mode's identifier (tests).
	primary classify.Identifier
}

// Report is the score of one run. Ratios are 0..1.
type Report struct {
	Scenario      string  `json:"scenario"`
	Classifier    string  `json:"classifier"`
	Seconds       float64 `json:"seconds"`
	Labels        int     `json:"labels"`
	Events        int     `json:"events"`
	Matched       int     `json:"matched"`
	Precision     float64 `json:"precision"`
	Recall        float64 `json:"recall"`
	F1            float64 `json:"f1"`
	SKUAccuracy   float64 `json:"sku_accuracy"`
	ExactQuantity float64 `json:"exact_quantity"`
	MisPickTruth  int     `json:"mispick_truth"`
	MisPickEvents int     `json:"mispick_events"`
	MisPickPrec   float64 `json:"mispick_precision"`
	MisPickRecall float64 `json:"mispick_recall"`
	LatencyP50Ms  float64 `json:"latency_p50_ms"` // event time − settled time (virtual)
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	InferMeanUs   float64 `json:"inference_mean_us"` // features + identifiers per change, wall clock
	Shadow        *Shadow `json:"shadow,omitempty"`
}

// Shadow scores the shadow identifier's facing on the matched events.
type Shadow struct {
	Classifier  string  `json:"classifier"`
	SKUAccuracy float64 `json:"sku_accuracy"`
}

// Plates returns the classify plates of w: cell streams
// "loadcell/<id>/c<i>", event stream "loadcell/<id>".
func Plates(w *warehouse.Warehouse) []classify.Plate {
	var out []classify.Plate
	for _, p := range w.Plates() {
		cp := classify.Plate{ID: p.ID, Stream: gateway.StreamID("loadcell/" + p.ID), WidthMM: p.WidthMM, DepthMM: p.DepthMM}
		for c := range cp.Cells {
			cp.Cells[c] = gateway.StreamID(fmt.Sprintf("loadcell/%s/c%d", p.ID, c))
		}
		for _, f := range p.Facings {
			cp.Facings = append(cp.Facings, classify.Facing{SKU: f.SKU, UnitGrams: f.UnitGrams, XMM: f.XMM, YMM: f.YMM})
		}
		out = append(out, cp)
	}
	return out
}

// scan is a synthetic pick-list scan before a pick.
type scan struct {
	at    time.Duration
	plate int
	label int // index into the plate's labels
	code  string
	wrong bool
}

// detector builds the chain for o on w.
func detector(o Options, w *warehouse.Warehouse, plates []classify.Plate, stats *classify.Stats, rec classify.Identifier) (*classify.PlateDetector, error) {
	cfg := classify.Config{Plates: plates, Rate: o.Config.SampleRate, RingRate: classify.ModelRate, Stats: stats, Settle: o.Settle}
	an := classify.Analytic{}
	var mid classify.Identifier
	if o.Holder != nil {
		mid = classify.NewModelID(o.Holder, len(plates))
	}
	switch o.Mode {
	case classify.ModeAnalytic, "":
		cfg.Primary = an
	case classify.ModeModel:
		cfg.Primary, cfg.Shadow = mid, an
	case classify.ModeShadow:
		cfg.Primary, cfg.Shadow = an, mid
	case ModeGated:
		cfg.Primary = classify.Gated{Gate: mid, Namer: an}
	case ModeFloat:
		if o.Float == nil {
			return nil, fmt.Errorf("evaluate: mode float needs the float model")
		}
		fid, err := NewFloatID(o.Float)
		if err != nil {
			return nil, err
		}
		cfg.Primary = fid
	default:
		return nil, fmt.Errorf("evaluate: mode %q", o.Mode)
	}
	if (o.Mode == classify.ModeModel || o.Mode == classify.ModeShadow || o.Mode == ModeGated) && o.Holder == nil {
		return nil, fmt.Errorf("evaluate: mode %s needs a model", o.Mode)
	}
	if rec != nil {
		cfg.Primary = rec
	}
	return classify.NewPlateDetector(cfg)
}

// ModeGated runs the int8 model as a gate and the analytic identifier as
// the namer (classify.Gated): the model says whether anything moved, the
// catalogue match what. The gateway's classifier mode of the same name.
const ModeGated = classify.ModeGated

// Epoch is the wall-clock time of sample 0.
var Epoch = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// feed runs every plate sample of w up to o.Duration through det (and
// mp, with scans), calling got for each event the chain commits.
func feed(ctx context.Context, o Options, w *warehouse.Warehouse, det *classify.PlateDetector, mp *classify.MisPick, scans []scan, got func(gateway.Event)) error {
	plates := w.Plates()
	rate := o.Config.SampleRate
	n := int64(o.Duration.Seconds() * rate)
	var r gateway.Reading
	last := make([][4]int32, len(plates))
	same := make([][4]int, len(plates))
	si := 0
	for k := int64(0); k < n; k++ {
		if k%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		vt := w.SampleTime(k)
		t := Epoch.Add(vt)
		for mp != nil && si < len(scans) && scans[si].at <= vt {
			s := scans[si]
			mp.ObserveEvent(gateway.Event{Kind: gateway.EventScan, Stream: gateway.StreamID(fmt.Sprintf("scanner/%s", plates[s.plate].ID)), Detail: s.code, Time: Epoch.Add(s.at)})
			si++
		}
		for pi, p := range plates {
			codes := w.PlateCodes(pi, k)
			for c, code := range codes {
				r = gateway.Reading{Stream: gateway.StreamID(fmt.Sprintf("loadcell/%s/c%d", p.ID, c)), Time: t, Unit: "g",
					Value: float64(code-p.Cells[c].OffsetCounts) / p.Cells[c].CountsPerGram}
				// As sensors/loadcell flags them.
				r.Quality = flags(code, &last[pi][c], &same[pi][c], k > 0)
				for _, ev := range det.Observe(r) {
					got(ev)
					if mp != nil {
						for _, mev := range mp.ObserveEvent(ev) {
							got(mev)
						}
					}
				}
			}
		}
	}
	return nil
}

// makeScans draws one scan per pick label, before it starts; a share
// MisPickRate of them are wrong.
func makeScans(o Options, w *warehouse.Warehouse, labels [][]warehouse.PlateLabel) []scan {
	rate := o.MisPickRate
	if rate == 0 {
		rate = 0.1
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5ca9))
	plates := w.Plates()
	var out []scan
	for pi, ls := range labels {
		for li, l := range ls {
			if l.Kind != "pick" {
				continue
			}
			// A picker scans the next line only after finishing the last
			// visit: 3 s before the hand enters, but not before 1 s after
			// the plate's previous visit settled.
			at := max(0, l.Start-3*time.Second)
			if li > 0 {
				at = min(l.Start, max(at, ls[li-1].Settled+time.Second))
			}
			s := scan{at: at, plate: pi, label: li}
			sku, qty := l.SKU, l.Units
			if rng.Float64() < rate {
				s.wrong = true
				fs := plates[pi].Facings
				if rng.IntN(2) == 0 && len(fs) > 1 {
					sku = fs[(l.Facing+1+rng.IntN(len(fs)-1))%len(fs)].SKU
				} else if qty > 1 && rng.IntN(2) == 0 {
					qty--
				} else {
					qty++
				}
			}
			s.code = fmt.Sprintf("%s*%d", sku, qty)
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

// Run runs o and scores it.
func Run(ctx context.Context, o Options) (*Report, error) {
	w, plates, err := newScenario(o)
	if err != nil {
		return nil, err
	}
	var stats classify.Stats
	det, err := detector(o, w, plates, &stats, o.primary)
	if err != nil {
		return nil, err
	}
	mp, err := misPick(plates)
	if err != nil {
		return nil, err
	}
	labels := scoredLabels(w, len(plates), o.Duration)
	scans := makeScans(o, w, labels)
	var evs, mis []gateway.Event
	if err := feed(ctx, o, w, det, mp, scans, func(ev gateway.Event) {
		if ev.Kind == gateway.EventMisPick {
			mis = append(mis, ev)
		} else {
			evs = append(evs, ev)
		}
	}); err != nil {
		return nil, err
	}
	return finish(score(o, plates, labels, evs, mis, scans), o.Mode, &stats), nil
}

// score matches events to labels per plate: each label to the earliest
// unmatched event of its plate within ±1 s of its settling.
func score(o Options, plates []classify.Plate, labels [][]warehouse.PlateLabel, evs, mis []gateway.Event, scans []scan) *Report {
	rep := &Report{Scenario: o.Name, Seconds: o.Duration.Seconds(), Events: len(evs)}
	byPlate := map[string]int{}
	for i, p := range plates {
		byPlate[p.ID] = i
	}
	perPlate := make([][]int, len(plates))
	for i, ev := range evs {
		pi := byPlate[ev.Inference.Plate]
		perPlate[pi] = append(perPlate[pi], i)
	}
	used := make([]bool, len(evs))
	type key struct{ plate, label int }
	matchOf := map[key]int{}
	var lat []float64
	skuOK, qtyOK, shadowOK := 0, 0, 0
	for pi, ls := range labels {
		rep.Labels += len(ls)
		for li, l := range ls {
			settled := Epoch.Add(l.Settled)
			for _, ei := range perPlate[pi] {
				d := evs[ei].Time.Sub(settled)
				if used[ei] || d < -time.Second || d > time.Second {
					continue
				}
				used[ei] = true
				matchOf[key{pi, li}] = ei
				rep.Matched++
				lat = append(lat, float64(d)/1e6)
				ev := evs[ei]
				if ev.SKU == l.SKU {
					skuOK++
				}
				if ev.Quantity == l.Units && string(ev.Kind) == l.Kind {
					qtyOK++
				}
				if sh := ev.Inference.Shadow; sh != nil && sh.SKU == l.SKU {
					shadowOK++
				}
				break
			}
		}
	}
	ratio := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	rep.Precision, rep.Recall = ratio(rep.Matched, rep.Events), ratio(rep.Matched, rep.Labels)
	if rep.Precision+rep.Recall > 0 {
		rep.F1 = 2 * rep.Precision * rep.Recall / (rep.Precision + rep.Recall)
	}
	rep.SKUAccuracy, rep.ExactQuantity = ratio(skuOK, rep.Matched), ratio(qtyOK, rep.Matched)
	if len(evs) > 0 && evs[0].Inference.Shadow != nil {
		rep.Shadow = &Shadow{Classifier: evs[0].Inference.Shadow.Classifier, SKUAccuracy: ratio(shadowOK, rep.Matched)}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		rep.LatencyP50Ms = lat[len(lat)/2]
		rep.LatencyP99Ms = lat[min(len(lat)-1, int(math.Ceil(0.99*float64(len(lat))))-1)]
	}
	// Mis-picks: a wrong scan is caught when the mispick event is the one
	// raised for its label's matched pick event.
	misAt := map[time.Time]map[string]bool{}
	for _, m := range mis {
		if misAt[m.Time] == nil {
			misAt[m.Time] = map[string]bool{}
		}
		misAt[m.Time][m.Inference.Plate] = true
	}
	rep.MisPickEvents = len(mis)
	tp := 0
	for _, s := range scans {
		if !s.wrong {
			continue
		}
		rep.MisPickTruth++
		if ei, ok := matchOf[key{s.plate, s.label}]; ok && misAt[evs[ei].Time][plates[s.plate].ID] {
			tp++
		}
	}
	rep.MisPickPrec, rep.MisPickRecall = ratio(tp, rep.MisPickEvents), ratio(tp, rep.MisPickTruth)
	return rep
}

// Windows runs the analytic chain over o's scenario and returns one model
// window per settled change the detector finds, labelled by the position
// bin of the facing of the label it matches (±1 s of settling), or "none"
// when it matches no label: the training data of plate models.
func Windows(ctx context.Context, o Options) (*features.Dataset, error) {
	w, plates, err := newScenario(o)
	if err != nil {
		return nil, err
	}
	win := classify.PlateWindow(classify.ModelRate)
	type cut struct {
		plate int
		t     time.Time
		x     []float32
	}
	var cuts []cut
	rec := &recorder{n: win.Len(), got: func(pi int, t time.Time, x []float32) { cuts = append(cuts, cut{pi, t, x}) }}
	// The detector may identify a change it then does not report (an
	// early settle it waits on): only the cuts of reported changes count.
	type key struct {
		plate string
		t     time.Time
	}
	reported := map[key]bool{}
	det, err := detector(Options{Config: o.Config, Mode: classify.ModeAnalytic}, w, plates, nil, rec)
	if err != nil {
		return nil, err
	}
	if err := feed(ctx, o, w, det, nil, nil, func(ev gateway.Event) {
		if ev.Inference != nil {
			reported[key{ev.Inference.Plate, ev.Time}] = true
		}
	}); err != nil {
		return nil, err
	}
	d := &features.Dataset{Names: win.Names(), Labels: []string{classify.NoneLabel}}
	for b := range classify.PositionBins {
		d.Labels = append(d.Labels, classify.BinLabel(b))
	}
	labels := make([][]warehouse.PlateLabel, len(plates))
	used := make([][]bool, len(plates))
	for pi := range plates {
		labels[pi] = w.PlateLabels(pi, o.Duration)
		used[pi] = make([]bool, len(labels[pi]))
	}
	for _, c := range cuts {
		if !reported[key{plates[c.plate].ID, c.t}] {
			continue
		}
		y := 0
		for li, l := range labels[c.plate] {
			d := c.t.Sub(Epoch.Add(l.Settled))
			if !used[c.plate][li] && d >= -time.Second && d <= time.Second {
				used[c.plate][li] = true
				p := plates[c.plate]
				y = 1 + classify.BinOf(p.Facings[l.Facing].XMM, p.WidthMM)
				break
			}
		}
		d.X, d.Y = append(d.X, c.x), append(d.Y, y)
	}
	d.Meta = map[string]string{"source": "gateway/classify/evaluate windows", "scenario": o.Name, "window": win.String(), "scale": "abs delta grams"}
	return d, nil
}

// recorder is the identifier Windows runs: it records each change's
// features and answers like the analytic baseline.
type recorder struct {
	n   int
	got func(plate int, t time.Time, x []float32)
}

func (r *recorder) Identify(c *classify.Change) classify.Result {
	x := make([]float32, r.n)
	if err := classify.Features(x, c); err == nil {
		r.got(c.Index, c.Time, x)
	}
	return classify.Analytic{}.Identify(c)
}
