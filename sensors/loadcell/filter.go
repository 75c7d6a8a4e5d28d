package loadcell

import "time"

// MaxSpikeWindow is the largest Options.SpikeWindow.
const MaxSpikeWindow = 15

// madSigma converts a median absolute deviation into a robust standard
// deviation for normally distributed noise.
const madSigma = 1.4826

// sample is one raw code and the time it was read.
type sample struct {
	code int32
	t    time.Time
}

// spikeFilter rejects single-sample outliers of one channel. It keeps the
// last k accepted codes; a code that departs from their median by more than
// the threshold is held back. If the next code returns within the threshold
// the held one was a spike and is dropped; if the next code departs to the
// same side too, the level really changed and both are released (the first
// one sample late) and the window restarts from them. A departure must
// therefore persist for two samples to pass, and a real step is delayed by
// one sample and never smeared. It never allocates.
type spikeFilter struct {
	k      int     // window length, 2..MaxSpikeWindow
	off    bool    // pass everything (the window is still kept)
	floor  float64 // threshold floor in counts
	madMul float64 // threshold is at least madMul robust sigmas of the window

	win  [MaxSpikeWindow]int32 // ring of accepted codes
	n    int                   // codes in win
	head int                   // next slot to write

	pend    sample // held outlier
	hasPend bool
}

// push feeds s and writes the samples it releases, in order, to out. It
// returns how many it released and how many held samples it rejected as
// spikes.
func (f *spikeFilter) push(s sample, out *[2]sample) (n, spikes int) {
	if f.off || f.n == 0 {
		f.add(s.code)
		out[0] = s
		return 1, 0
	}
	m, thr := f.stats()
	d := int64(s.code) - m
	if d >= -thr && d <= thr {
		if f.hasPend {
			spikes = 1
			f.hasPend = false
		}
		f.add(s.code)
		out[0] = s
		return 1, spikes
	}
	if f.hasPend && (int64(f.pend.code)-m > 0) == (d > 0) {
		out[0], out[1] = f.pend, s
		f.hasPend = false
		f.n, f.head = 0, 0
		f.add(out[0].code)
		f.add(s.code)
		return 2, 0
	}
	if f.hasPend {
		spikes = 1 // an outlier to the other side: the held one was a spike
	}
	f.pend, f.hasPend = s, true
	return 0, spikes
}

func (f *spikeFilter) add(code int32) {
	f.win[f.head] = code
	f.head = (f.head + 1) % f.k
	if f.n < f.k {
		f.n++
	}
}

// stats returns the median of the window and the rejection threshold, both
// in counts.
func (f *spikeFilter) stats() (median, thr int64) {
	var buf [MaxSpikeWindow]int64
	v := buf[:f.n]
	for i := range v {
		v[i] = int64(f.win[i])
	}
	median = medianOf(v)
	for i := range v {
		v[i] = abs64(v[i] - median)
	}
	mad := medianOf(v)
	t := max(f.floor, f.madMul*madSigma*float64(mad))
	return median, int64(t)
}

// spread returns max − min of the window, and whether the window is full.
func (f *spikeFilter) spread() (int64, bool) {
	if f.n == 0 {
		return 0, false
	}
	lo, hi := f.win[0], f.win[0]
	for _, c := range f.win[1:f.n] {
		lo, hi = min(lo, c), max(hi, c)
	}
	return int64(hi) - int64(lo), f.n == f.k
}

// medianOf sorts v in place (insertion sort: v is tiny) and returns its
// median, the lower middle rounded towards the upper one for even lengths.
func medianOf(v []int64) int64 {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
