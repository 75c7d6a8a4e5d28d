package loadcell

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/gateway"
)

func TestSpikeFilterSequences(t *testing.T) {
	// Codes are small integers, threshold 100 counts: noise is ±3, a
	// departure of 1000 is an outlier.
	for _, tc := range []struct {
		name   string
		in     []int32
		out    []int32 // released, in order
		spikes int
	}{
		{"quiet", []int32{0, 1, -1, 2, 0, 1}, []int32{0, 1, -1, 2, 0, 1}, 0},
		{"single spike up", []int32{0, 1, 2, 1000, 1, 0}, []int32{0, 1, 2, 1, 0}, 1},
		{"single spike down", []int32{0, 1, 2, -1000, 1, 0}, []int32{0, 1, 2, 1, 0}, 1},
		{"two spikes apart", []int32{0, 1, 2, 1000, 1, 900, 0, 2}, []int32{0, 1, 2, 1, 0, 2}, 2},
		// A step is released once it persists for a second sample: the
		// first sample of the step one sample late, nothing lost.
		{"step", []int32{0, 1, 2, 1, 500, 501, 499, 502}, []int32{0, 1, 2, 1, 500, 501, 499, 502}, 0},
		{"step down", []int32{600, 601, 602, 0, 1, 2}, []int32{600, 601, 602, 0, 1, 2}, 0},
		// A ramp (a pick in progress) passes too.
		{"ramp", []int32{0, 1, 0, 300, 600, 900, 901, 900}, []int32{0, 1, 0, 300, 600, 900, 901, 900}, 0},
		// Opposite outliers back to back are two spikes, not a step.
		{"flip", []int32{0, 1, 0, 1000, -1000, 1, 0}, []int32{0, 1, 0, 1, 0}, 2},
		// A spike right after a step is still caught.
		{"spike after step", []int32{0, 1, 500, 501, 500, 5000, 502}, []int32{0, 1, 500, 501, 500, 502}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := spikeFilter{k: 5, floor: 100, madMul: 8}
			var got []int32
			spikes := 0
			var rel [2]sample
			for i, c := range tc.in {
				n, sp := f.push(sample{code: c, t: time.Unix(int64(i), 0)}, &rel)
				spikes += sp
				for _, s := range rel[:n] {
					got = append(got, s.code)
					j := int(s.t.Unix()) // the index it was pushed at
					if j < 0 || j > i || tc.in[j] != s.code {
						t.Fatalf("released code %d with the time of sample %d", s.code, j)
					}
					if i-j > 1 {
						t.Errorf("sample %d (%d) released %d samples late", j, s.code, i-j)
					}
				}
			}
			if !slices.Equal(got, tc.out) || spikes != tc.spikes {
				t.Errorf("released %v with %d spikes, want %v with %d", got, spikes, tc.out, tc.spikes)
			}
		})
	}
}

func TestSpikeFilterThresholdFollowsNoise(t *testing.T) {
	// Noise of ±90 counts around 0 with a floor of 100: departures of 400
	// are then noise (8 robust sigmas of the window exceed them), not spikes.
	f := spikeFilter{k: 5, floor: 100, madMul: 8}
	var rel [2]sample
	for i, c := range []int32{0, 90, -90, 80, -80, 400, -400, 300, -300} {
		if n, sp := f.push(sample{code: c}, &rel); n != 1 || sp != 0 || rel[0].code != c {
			t.Fatalf("sample %d (%d): released %d with %d spikes, want it passed", i, c, n, sp)
		}
	}
}

// recorder passes reads through to periph's driver and keeps the codes.
type recorder struct {
	ADC
	mu    sync.Mutex
	codes []int32
}

func (r *recorder) ReadTimeout(d time.Duration) (int32, error) {
	c, err := r.ADC.ReadTimeout(d)
	if err == nil {
		r.mu.Lock()
		r.codes = append(r.codes, c)
		r.mu.Unlock()
	}
	return c, err
}

// TestSpikesRejectedThroughDriver feeds single-sample spikes and a real
// step through periph's driver and checks that exactly the spikes were
// removed: every other code read comes out, in order, the step included.
func TestSpikesRejectedThroughDriver(t *testing.T) {
	const off, cpg, stepAt = 50_000, 200, 600
	isSpike := func(k int64) bool { return k > 50 && k < stepAt-20 && k%25 == 7 } // none in the first reads
	sim, dev := newCell(t, hx711sim.SignalFunc(func(k int64) int32 {
		base := int32(off + cpg*1000)
		if k >= stepAt {
			base = off + cpg*700 // a 300 g pick
		}
		if isSpike(k) {
			return base + cpg*5000 // a one-sample 5 kg spike
		}
		return base + int32(k%1000) // low counts carry k
	}))
	rec := &recorder{ADC: dev}
	src, err := New("cells", []Channel{{Stream: "s", ADC: rec, Offset: off, CountsPerGram: cpg}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, src)
	r.waitFor("samples past the step", func() bool { return sim.Stats().LastIndex > stepAt+50 })
	r.stop()

	var want []int32
	spikes := int64(0)
	for _, c := range rec.codes {
		switch {
		case c == -1:
		case c > off+cpg*2000:
			spikes++
		default:
			want = append(want, c)
		}
	}
	var got []int32
	for _, rd := range r.sink.readings() {
		if rd.Quality != 0 {
			t.Fatalf("reading %+v flagged", rd)
		}
		got = append(got, int32(math.Round(rd.Value*cpg))+off)
	}
	// The last code read may still be held by the filter at the stop.
	if len(got) < len(want)-1 || !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("released %d codes, want the %d non-spike codes read in order\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	if spikes == 0 || !slices.ContainsFunc(got, func(c int32) bool { return c < off+cpg*800 }) {
		t.Fatalf("test did not exercise both spikes (%d) and the step", spikes)
	}
	if st := src.Stats(); st.Spikes != spikes {
		t.Errorf("stats %+v: want %d spikes", st, spikes)
	}
}

func TestProcessDoesNotAllocate(t *testing.T) {
	_, dev := newCell(t, hx711sim.SignalFunc(wobble))
	src, err := New("cells", []Channel{{Stream: "s", ADC: dev, Offset: 1, CountsPerGram: 2}}, Options{AutoZeroRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := src.cells[0]
	out := newReadingQueue(4)
	var got []gateway.Reading
	evc := make(chan gateway.Event, 4)
	now := time.Unix(0, 0)
	k := int32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		k++
		code := 1000 + k%5
		if k%50 == 0 {
			code = 1_000_000 // a spike
		}
		now = now.Add(100 * time.Millisecond)
		src.process(c, code, now, out, evc)
		got, _ = out.take(got[:0])
	})
	if allocs != 0 {
		t.Errorf("process allocates %v times per sample", allocs)
	}
	if src.Stats().Spikes == 0 {
		t.Error("no spike went through the filter: the measurement missed that path")
	}
}
