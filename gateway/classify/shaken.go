package classify

import (
	"math"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

// Settling through vibration.
//
// A forklift passing shakes a plate for seconds: at 10 samples/s its 8–15
// Hz vibration aliases to a wobble of up to 5 Hz, each cell in a phase of
// its own, tens of grams on every cell. The plain settle test waits until
// the burst has passed, so a visit inside a burst is reported seconds
// late. But the plate's vibration has a shape: its modes move the four
// cells in fixed proportions, so the vibration lives in a subspace of the
// four cells' readings (two dimensions for one mode seen in any phase),
// while a load moves them by its bilinear shares. The detector learns that
// subspace from the steps that no load makes (mixed signs, well above the
// noise), and while the plate shakes it settles on the readings projected
// away from it: a change there is fitted, facing by facing, as whole units
// at the facing's position, and the fit must agree along the vibration
// too, within what the vibration holds in the window (alongVibration).

// shake is a plate's vibration model: the running second moment of the
// incoherent steps, its eigenvectors, and the projector onto their
// complement.
type shake struct {
	m      [4][4]float64            // decayed sum of d·dᵀ/|d|² over incoherent steps
	steps  int                      // incoherent steps seen (saturating)
	fresh  int                      // steps since the basis was last computed
	rank   int                      // nuisance dimensions, 0: none learned
	basis  [4][4]float64            // complement basis vectors (rows 0..3−rank−1)
	vib    [shakeMaxRank][4]float64 // the subspace's basis vectors (rows 0..rank−1)
	until  int64                    // the plate counts as shaken until this sample
	last   int64                    // sample of the last incoherent step
	run    int                      // incoherent steps in a row (gaps ≤ shakeGap)
	prev   [4]float64               // the last mixed line-load-like step
	prevAt int64
}

// Shake tuning.
const (
	shakeDecay   = 0.995 // per incoherent step
	shakeMinStep = 8.0   // a step's norm must exceed this many σ of one cell's noise
	shakeMixed   = 0.5   // and Σ|d| − |Σd| at least this share of Σ|d|
	shakeFloor   = 3.0   // grams: and exceed this
	shakeDet     = 0.1   // and |d0·d3 − d1·d2| at least this share of |d|²
	shakeReverse = 0.8   // cosine below −this: a step reverses the last
	shakeGap     = 3     // samples between the steps of one run
	shakeRun     = 3     // steps in a run before the plate counts as shaken
	shakeLearn   = 30    // incoherent steps before the subspace is used
	shakeShare   = 0.02  // eigenvalues above this share of the largest are nuisance
	shakeMaxRank = 2
)

// ShakenHold is how long after its last incoherent step a plate counts as
// shaken (samples at 10/s: 15).
const ShakenHold = 1.5 // seconds

// observeStep feeds the step d of plate s's four cells (one cell's noise
// σ); n is the sample index. It reports whether the step was incoherent.
func (k *shake) observeStep(d [4]float64, sigma float64, n int64, hold int64) bool {
	var abs, sum, n2 float64
	for _, x := range d {
		abs += math.Abs(x)
		sum += x
		n2 += x * x
	}
	// A load, or loads along one line of the plate (a hand and the item
	// it moves on one lane), moves the corners as a rank-one 2×2 pattern
	// [[d0, d1], [d2, d3]] = (a, b)ᵀ(1−u, u) (or its transpose) with
	// 0 ≤ u ≤ 1: d0·d3 = d1·d2, and the cells of each row (or column)
	// move together. Vibration modes in phases of their own do not.
	eps := -shakeDet * n2
	lineX := d[0]*d[1] >= eps && d[2]*d[3] >= eps
	lineY := d[0]*d[2] >= eps && d[1]*d[3] >= eps
	loadLike := math.Abs(d[0]*d[3]-d[1]*d[2]) < shakeDet*n2 && (lineX || lineY)
	th := max(shakeFloor, shakeMinStep*sigma)
	if n2 <= th*th || abs-math.Abs(sum) < shakeMixed*abs {
		return false
	}
	if loadLike {
		// A mixed step of a line load's pattern that reverses the last
		// mixed step's pattern: the plate swings back and forth (a hand
		// taking an item does not put it back within a sample).
		var dot, p2 float64
		for c := range d {
			dot += d[c] * k.prev[c]
			p2 += k.prev[c] * k.prev[c]
		}
		rev := n-k.prevAt <= 2 && dot < -shakeReverse*math.Sqrt(n2*p2)
		k.prev, k.prevAt = d, n
		if !rev {
			return false
		}
	}
	// One such step is a hand slipping; vibration is a run of them.
	if n-k.last <= shakeGap {
		k.run++
	} else {
		k.run = 1
	}
	k.last = n
	if k.run < shakeRun {
		return false
	}
	for i := range 4 {
		for j := range 4 {
			k.m[i][j] = shakeDecay*k.m[i][j] + d[i]*d[j]/n2
		}
	}
	if k.steps < 1<<30 {
		k.steps++
	}
	k.fresh++
	k.until = n + hold
	if k.steps >= shakeLearn && (k.rank == 0 || k.fresh >= 10) {
		k.update()
	}
	return true
}

// update recomputes the nuisance rank and the complement basis.
func (k *shake) update() {
	k.fresh = 0
	vals, vecs := eigSym4(k.m)
	// vals descending; vecs[i] is the unit eigenvector of vals[i].
	r := 0
	for i := 0; i < shakeMaxRank; i++ {
		if vals[i] > shakeShare*vals[0] && vals[i] > 0 {
			r++
		}
	}
	k.rank = r
	for i := 0; i < r; i++ {
		k.vib[i] = vecs[i]
	}
	for i := 0; i < 4-r; i++ {
		k.basis[i] = vecs[r+i]
	}
}

// eigSym4 returns the eigenvalues of the symmetric 4×4 matrix a in
// descending order and their unit eigenvectors (cyclic Jacobi).
func eigSym4(a [4][4]float64) (vals [4]float64, vecs [4][4]float64) {
	var v [4][4]float64
	for i := range 4 {
		v[i][i] = 1
	}
	for sweep := 0; sweep < 30; sweep++ {
		off := 0.0
		for p := 0; p < 4; p++ {
			for q := p + 1; q < 4; q++ {
				off += a[p][q] * a[p][q]
			}
		}
		if off < 1e-24 {
			break
		}
		for p := 0; p < 4; p++ {
			for q := p + 1; q < 4; q++ {
				if math.Abs(a[p][q]) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for r := 0; r < 4; r++ {
					arp, arq := a[r][p], a[r][q]
					a[r][p], a[r][q] = c*arp-s*arq, s*arp+c*arq
				}
				for r := 0; r < 4; r++ {
					apr, aqr := a[p][r], a[q][r]
					a[p][r], a[q][r] = c*apr-s*aqr, s*apr+c*aqr
				}
				for r := 0; r < 4; r++ {
					vrp, vrq := v[r][p], v[r][q]
					v[r][p], v[r][q] = c*vrp-s*vrq, s*vrp+c*vrq
				}
			}
		}
	}
	idx := [4]int{0, 1, 2, 3}
	for i := 1; i < 4; i++ { // insertion sort, descending
		for j := i; j > 0 && a[idx[j]][idx[j]] > a[idx[j-1]][idx[j-1]]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	for i, k := range idx {
		vals[i] = a[k][k]
		for r := range 4 {
			vecs[i][r] = v[r][k]
		}
	}
	return vals, vecs
}

// project returns the coordinates of x in the complement basis (the first
// 4−rank entries).
func (k *shake) project(x [4]float64) (z [4]float64) {
	for i := 0; i < 4-k.rank; i++ {
		for c := range 4 {
			z[i] += k.basis[i][c] * x[c]
		}
	}
	return z
}

// vibration returns x's coordinates in the vibration subspace (the first
// rank entries).
func (k *shake) vibration(x [4]float64) (v [shakeMaxRank]float64) {
	for j := 0; j < k.rank; j++ {
		for c := range 4 {
			v[j] += k.vib[j][c] * x[c]
		}
	}
	return v
}

// ShakenFrac is how near whole units a change settled through vibration
// must be; ShakenSlack the share of the projected change its fit may miss
// by.
const (
	ShakenFrac  = 0.12
	ShakenSlack = 0.1
)

// Choosing between facings that both fit a shaken change: the quotient's
// expected distance from whole units (unit weights spread a few per cent),
// and the cost margin the best must have over the second.
const (
	shakenFracSigma = 0.04
	shakenMargin    = 4.0
)

// shakenSettle is the settle test of a shaken plate s: the window's
// readings projected away from the vibration subspace must be still, and
// their change from the level must be whole units of one facing at its
// position. It returns the event, if any.
func (d *PlateDetector) shakenSettle(s *plateState, t time.Time) (gateway.Event, bool) {
	k := &s.shake
	n := len(s.win)
	if s.wn < n || !s.hasLevel {
		return gateway.Event{}, false
	}
	m := 4 - k.rank
	sc := s.calmSigma()
	var lo, hi [4]float64
	var mean [4]float64
	for i := 1; i <= n; i++ {
		w := s.win[(s.wpos-i+len(s.win))%len(s.win)]
		z := k.project(w)
		for j := 0; j < m; j++ {
			if i == 1 {
				lo[j], hi[j] = z[j], z[j]
			}
			lo[j], hi[j] = min(lo[j], z[j]), max(hi[j], z[j])
		}
		for c := range mean {
			mean[c] += w[c]
		}
	}
	tol := max(CellFloor, CellK*d.noiseK*sc)
	for j := 0; j < m; j++ {
		if hi[j]-lo[j] > tol {
			return gateway.Event{}, false
		}
	}
	var dc [4]float64
	for c := range mean {
		mean[c] /= float64(n)
		dc[c] = mean[c] - s.level[c]
	}
	dz := k.project(dc)
	sdz := sc * math.Sqrt(2/float64(n)) // σ of one component of dz
	var dz2 float64
	for j := 0; j < m; j++ {
		dz2 += dz[j] * dz[j]
	}
	if dz2 < (d.meanK*sc)*(d.meanK*sc) {
		return gateway.Event{}, false // nothing moved that the projection sees
	}
	vd, vr := k.vibration(dc), s.vibrationRange()
	best, second, bf := math.Inf(1), math.Inf(1), -1
	var bw float64
	p := s.p
	for f, fc := range p.Facings {
		pf, pp, pd := k.along(p, fc, dz)
		if math.Sqrt(pp)*fc.UnitGrams < 6*sdz { // one unit would not show
			continue
		}
		w := pd / pp
		u := math.Abs(w) / fc.UnitGrams
		q := math.Round(u)
		var res2 float64
		for j := 0; j < m; j++ {
			r := dz[j] - w*pf[j]
			res2 += r * r
		}
		rtol := 0.5 + ShakenSlack*math.Abs(w)*math.Sqrt(pp) + 4*sdz
		if q < 1 || math.Abs(u-q) > ShakenFrac || res2 > rtol*rtol {
			continue
		}
		// A χ²-like cost: the misfit against the projection's noise, the
		// quotient's distance from whole units against the spread of
		// unit weights, and the misfit along the vibration.
		cost := res2/(sdz*sdz) + ((u-q)/shakenFracSigma)*((u-q)/shakenFracSigma)
		cv := k.alongVibration(p, fc, math.Copysign(q*fc.UnitGrams, w), vd, vr, sdz)
		if cv > VibrationK*VibrationK {
			continue // along the vibration, the units are far off
		}
		cost += cv
		if cost < best {
			best, second, bf, bw = cost, best, f, w
		} else if cost < second {
			second = cost
		}
	}
	if bf < 0 || second < best+shakenMargin { // no facing fits, or two do
		return gateway.Event{}, false
	}
	fc := p.Facings[bf]
	if d.residual(s, bw) {
		// A hand lifting after the last change settled early: follow.
		for c := range s.level {
			s.level[c] += bw * p.share(c, fc.XMM, fc.YMM)
		}
		s.levelTot = s.level[0] + s.level[1] + s.level[2] + s.level[3]
		s.anchor, s.shaken, s.earlyAt = -1, 0, -1
		return gateway.Event{}, false
	}
	ch := &s.change
	*ch = Change{Plate: p, Index: s.idx, Before: s.level, Delta: bw, Ring: s.ring, Anchor: s.anchor, Time: t, Degraded: -1, Shaken: true}
	if ch.Anchor < 0 {
		ch.Anchor = max(0, s.ring.Count()-int64(n/s.dec)-1)
	}
	for c := range ch.After {
		ch.After[c] = s.level[c] + bw*p.share(c, fc.XMM, fc.YMM)
	}
	start := time.Now()
	res := Analytic{}.Identify(ch)
	res.Confidence *= DegradedConfidence
	s.level = ch.After
	s.levelTot = s.level[0] + s.level[1] + s.level[2] + s.level[3]
	s.anchor, s.shaken = -1, 0
	// What a hand still pressing left in the projection's fit falls away
	// as for an early settle (EarlyResidual).
	s.earlyAt, s.earlyDelta = s.n, bw
	d.cfg.Stats.observeChange(changeShaken)
	if st := d.cfg.Stats; st != nil {
		st.observe(res, nil, time.Since(start), d.cfg.LowConfidence)
	}
	if res.Facing < 0 {
		return gateway.Event{}, false
	}
	return d.event(p, ch, res, nil), true
}

// vibrationRange is the range of plate s's window along each dimension of
// its vibration subspace.
func (s *plateState) vibrationRange() (r [shakeMaxRank]float64) {
	k := &s.shake
	var lo, hi [shakeMaxRank]float64
	for i := 1; i <= len(s.win); i++ {
		v := k.vibration(s.win[(s.wpos-i+len(s.win))%len(s.win)])
		for j := 0; j < k.rank; j++ {
			if i == 1 {
				lo[j], hi[j] = v[j], v[j]
			}
			lo[j], hi[j] = min(lo[j], v[j]), max(hi[j], v[j])
		}
	}
	for j := range r {
		r[j] = hi[j] - lo[j]
	}
	return r
}

// alongVibration is the misfit, χ²-like, of w grams at facing fc along
// plate p's vibration subspace: the change's coordinates there are vd,
// the window's range vr. The vibration adds to the change what it holds
// while the window is taken, about half the range either way, so that
// widens the misfit's tolerance beside the noise (sdz) and the spread of
// unit weights. Outside the subspace, facings of one row may be told
// apart only by their unit weights; along it, the shares of their
// positions often point in opposite directions.
func (k *shake) alongVibration(p *Plate, fc Facing, w float64, vd, vr [shakeMaxRank]float64, sdz float64) float64 {
	var sh [4]float64
	for c := range sh {
		sh[c] = p.share(c, fc.XMM, fc.YMM)
	}
	vf := k.vibration(sh)
	var cv float64
	for j := 0; j < k.rank; j++ {
		r := vd[j] - w*vf[j]
		sp := shakenFracSigma * w * vf[j]
		half := vr[j] / 2
		cv += r * r / (sdz*sdz + half*half + sp*sp)
	}
	return cv
}

// VibrationK is how many σ of the noise the projected change may miss
// the units identified by before vibrationExplains calls it vibration.
const VibrationK = 4.0

// vibrationExplains reports whether the settled change of plate s that
// the plain test identified as res is rather the plate's vibration: with
// a learned vibration subspace, the change's component outside it must
// still be res's units at res's facing. A forklift's vibration near a
// multiple of the sample rate aliases to a slow drift of every cell in
// the vibration's fixed proportions, which the plain test sees as still
// and, where those proportions look like a load, as units moved; no
// incoherent steps mark the plate as shaken then.
// n is the number of samples the settled level is the mean of.
func (d *PlateDetector) vibrationExplains(s *plateState, ch *Change, res Result, n int) bool {
	k := &s.shake
	if k.rank == 0 || res.Facing < 0 || ch.Shaken || ch.Degraded >= 0 {
		return false
	}
	sdz := s.calmSigma() * math.Sqrt(2/float64(n))
	var dc [4]float64
	for c := range dc {
		dc[c] = ch.After[c] - ch.Before[c]
	}
	fc := s.p.Facings[res.Facing]
	_, pp, pd := k.along(s.p, fc, k.project(dc))
	if pp < 1e-9 {
		return false // the facing's loads lie in the vibration subspace
	}
	// Along the facing's projected share, the change must be its units,
	// within the spread of unit weights and the noise.
	want := float64(res.Quantity) * fc.UnitGrams
	if ch.Delta < 0 {
		want = -want
	}
	got := pd / math.Sqrt(pp)
	return math.Abs(got-want*math.Sqrt(pp)) > ShakenFrac*math.Abs(want)*math.Sqrt(pp)+VibrationK*sdz
}

// calmSigma is one cell's noise σ, the noisiest healthy cell's, as it was
// before the plate began to shake: the running estimate grows with the
// vibration.
func (s *plateState) calmSigma() float64 {
	sc := 0.0
	for c := range 4 {
		sc = max(sc, s.calmMed[c]/0.9539)
	}
	return sc
}

// along projects facing fc's bilinear shares on plate p away from the
// vibration (pf) and returns pf, |pf|² and pf·dz for a projected change
// dz: dz's fit as w·pf is w = pd/pp.
func (k *shake) along(p *Plate, fc Facing, dz [4]float64) (pf [4]float64, pp, pd float64) {
	var sh [4]float64
	for c := range sh {
		sh[c] = p.share(c, fc.XMM, fc.YMM)
	}
	pf = k.project(sh)
	for j := 0; j < 4-k.rank; j++ {
		pp += pf[j] * pf[j]
		pd += pf[j] * dz[j]
	}
	return pf, pp, pd
}
