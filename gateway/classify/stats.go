package classify

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the inference
// latency histogram (features plus identifiers, per settled change).
var LatencyBuckets = [...]float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3}

// MaxFacings bounds the per-class counts: classes are facings 0..MaxFacings−1
// and "none" (index MaxFacings).
const MaxFacings = 16

// Stats counts a detector's inferences. Safe for concurrent use; the zero
// value is ready.
type Stats struct {
	inferences    atomic.Int64
	lowConfidence atomic.Int64
	buckets       [len(LatencyBuckets) + 1]atomic.Int64
	sumNanos      atomic.Int64
	classes       [2][MaxFacings + 1]atomic.Int64 // by primary classifier (analytic, model), facing or none
	disagree      atomic.Int64
	changes       [changeKinds]atomic.Int64
}

// changeKind is how a plate change was settled or held, for Stats.
type changeKind int

const (
	changeDegraded  changeKind = iota // reported with one cell out
	changeShaken                      // settled through vibration
	changeVibration                   // a settled window held back as the plate's vibration
	changeFollowed                    // a change no single load explains, followed without an event
	changeKinds
)

// observeChange counts one change of kind k; s may be nil.
func (s *Stats) observeChange(k changeKind) {
	if s != nil {
		s.changes[k].Add(1)
	}
}

// StatsSnapshot is a copy of Stats.
type StatsSnapshot struct {
	Inferences    int64
	LowConfidence int64
	// Buckets[i] counts latencies ≤ LatencyBuckets[i] (not cumulative);
	// the last counts the rest.
	Buckets    [len(LatencyBuckets) + 1]int64
	SumSeconds float64
	// Classes[classifier][facing], classifier 0 analytic and 1 model,
	// facing MaxFacings meaning "no item moved".
	Classes [2][MaxFacings + 1]int64
	// Disagreements counts changes where the shadow named another facing.
	Disagreements int64
	// Degraded counts events reported with one cell out (Change.Degraded).
	Degraded int64
	// Shaken counts changes settled through vibration (Change.Shaken).
	Shaken int64
	// Vibration counts settled windows (one per sample) whose change was
	// held back as the plate's own vibration (vibrationExplains).
	Vibration int64
	// Followed counts changes of at least half the plate's lightest unit
	// that no single load explained for ShakenWait and that the level then
	// followed without an event: a hand resting that long, a vibration
	// the detector could not tell, or a visit it lost.
	Followed int64
}

func (s *Stats) observe(r Result, shadow *Result, d time.Duration, low float64) {
	s.inferences.Add(1)
	if r.Confidence < low {
		s.lowConfidence.Add(1)
	}
	i := 0
	for i < len(LatencyBuckets) && d.Seconds() > LatencyBuckets[i] {
		i++
	}
	s.buckets[i].Add(1)
	s.sumNanos.Add(int64(d))
	k := 0
	if r.Classifier == "model" {
		k = 1
	}
	f := r.Facing
	if f < 0 || f >= MaxFacings {
		f = MaxFacings
	}
	s.classes[k][f].Add(1)
	if shadow != nil && shadow.Facing != r.Facing {
		s.disagree.Add(1)
	}
}

// Snapshot returns the counts.
func (s *Stats) Snapshot() StatsSnapshot {
	var o StatsSnapshot
	o.Inferences = s.inferences.Load()
	o.LowConfidence = s.lowConfidence.Load()
	for i := range s.buckets {
		o.Buckets[i] = s.buckets[i].Load()
	}
	o.SumSeconds = float64(s.sumNanos.Load()) / 1e9
	for k := range s.classes {
		for f := range s.classes[k] {
			o.Classes[k][f] = s.classes[k][f].Load()
		}
	}
	o.Disagreements = s.disagree.Load()
	o.Degraded, o.Shaken, o.Vibration = s.changes[changeDegraded].Load(), s.changes[changeShaken].Load(), s.changes[changeVibration].Load()
	o.Followed = s.changes[changeFollowed].Load()
	return o
}
