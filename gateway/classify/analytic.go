package classify

import "math"

// Analytic is the honest baseline: the facing whose position is nearest
// the centre of mass of the change (from the four cells' Δ, bilinear) and
// whose unit weight divides |Δ| most nearly into whole units. Quantity is
// round(|Δ|/unit); a quotient more than 0.2 from an integer lowers the
// confidence.
type Analytic struct{}

var _ Identifier = Analytic{}

// Cost weights. Along the plate, the centre's error is scaled by
// σx = √((LaneSpread·s)² + CentreSigma²): s is the least spacing of two
// facings' lanes (a share of the width), LaneSpread·s the spread of where
// in its lane a hand takes units (uniform across the lane: 1/√12), and
// Change.CentreSigma what the cells' noise adds. A quotient 0.15 off an
// integer costs as much as one σx.
const (
	LaneSpread = 0.2887 // 1/√12
	fracScale  = 0.15
)

// Centre returns the centre of mass, in millimetres, of the change from
// before to after on plate p, and false if the change is too small to
// place.
func Centre(p *Plate, before, after [4]float64) (x, y float64, ok bool) {
	var d [4]float64
	tot := 0.0
	for c := range d {
		d[c] = after[c] - before[c]
		tot += d[c]
	}
	if math.Abs(tot) < 1e-6 {
		return 0, 0, false
	}
	u := (d[1] + d[3]) / tot
	v := (d[2] + d[3]) / tot
	return u * p.WidthMM, v * p.DepthMM, true
}

// Identify implements Identifier.
func (Analytic) Identify(c *Change) Result {
	p := c.Plate
	x, y, ok := Centre(p, c.Before, c.After)
	if !ok {
		return Result{Facing: -1, Classifier: "analytic"}
	}
	best, second := math.Inf(1), math.Inf(1)
	bi := -1
	sx := math.Hypot(LaneSpread*minSpacing(p), c.CentreSigma)
	for i, f := range p.Facings {
		dx := (x - f.XMM) / (sx * p.WidthMM)
		dy := (y - f.YMM) / (p.DepthMM) // units are taken anywhere ±depth/4 of the lane
		u := math.Abs(c.Delta) / f.UnitGrams
		q := math.Round(u)
		fr := (u - q) / fracScale
		if q < 1 {
			fr = (1 - u) / fracScale * 2
		}
		cost := dx*dx + dy*dy + fr*fr
		if cost < best {
			best, second, bi = cost, best, i
		} else if cost < second {
			second = cost
		}
	}
	q, whole := quantity(c.Delta, p.Facings[bi].UnitGrams)
	// Confidence: the margin to the runner-up as a two-way softmax of the
	// costs, lowered when the quantity is not whole.
	conf := 1.0
	if !math.IsInf(second, 1) {
		conf = 1 / (1 + math.Exp(-(second-best)/2))
	}
	if !whole {
		conf *= 0.5
	}
	return Result{Facing: bi, Quantity: max(q, 1), Confidence: conf, Classifier: "analytic"}
}

// minSpacing is the least distance between two facings' lanes along the
// plate, as a share of its width (1 with one facing).
func minSpacing(p *Plate) float64 {
	m := 1.0
	for i, a := range p.Facings {
		for _, b := range p.Facings[i+1:] {
			if d := math.Abs(a.XMM-b.XMM) / p.WidthMM; d > 0 {
				m = min(m, d)
			}
		}
	}
	return m
}
