package train

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
)

// TestGradientMatchesFiniteDifferences checks backpropagation against
// central differences of the loss.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	d := Synthetic(SyntheticOptions{Samples: 8, Features: 5, Classes: 3, Seed: 1})
	m := NewMLP(rand.New(rand.NewPCG(1, 2)), 5, 7, 3)
	fitScaler(m, d)
	idx := []int{0, 1, 2, 3, 4, 5, 6, 7}
	tr := newTrainer(m, Config{LR: 0}) // LR 0: update leaves weights alone
	tr.c.Optimizer = SGD
	tr.step(d, idx)
	loss := func() float64 {
		tr.forward(d, idx)
		return tr.lossAndDelta(d, idx)
	}
	for l := range m.W {
		for _, i := range []int{0, 3, len(m.W[l]) - 1} {
			old := m.W[l][i]
			const h = 1e-2
			m.W[l][i] = old + h
			up := loss()
			m.W[l][i] = old - h
			down := loss()
			m.W[l][i] = old
			num := (up - down) / (2 * h)
			if got := float64(tr.gW[l][i]); math.Abs(got-num) > 1e-3+0.02*math.Abs(num) {
				t.Errorf("layer %d weight %d: backprop %g, numeric %g", l, i, got, num)
			}
		}
	}
}

func TestFitLearnsAndIsDeterministic(t *testing.T) {
	d := Synthetic(SyntheticOptions{Samples: 1200, Features: 12, Classes: 4, Seed: 3})
	tr, test := d.Split(0.25, 9)
	for _, opt := range []string{Adam, SGD} {
		c := DefaultConfig()
		c.Hidden, c.Epochs, c.Optimizer = []int{16}, 15, opt
		if opt == SGD {
			c.LR = 0.05
		}
		var epochs []EpochStats
		c.Progress = func(s EpochStats) { epochs = append(epochs, s) }
		m, res, err := Fit(tr, c)
		if err != nil {
			t.Fatal(err)
		}
		if acc := m.Accuracy(test); acc < 0.8 {
			t.Errorf("%s: test accuracy %.3f after %d epochs (val %.3f)", opt, acc, res.Epochs, res.ValAcc)
		}
		if epochs[0].TrainLoss <= epochs[len(epochs)-1].TrainLoss {
			t.Errorf("%s: training loss did not fall: %v", opt, epochs)
		}
		c.Progress = nil
		m2, _, _ := Fit(tr, c)
		for l := range m.W {
			if !slices.Equal(m.W[l], m2.W[l]) {
				t.Fatalf("%s: same seed gave different weights", opt)
			}
		}
	}
}

func TestEarlyStoppingKeepsBestEpoch(t *testing.T) {
	d := Synthetic(SyntheticOptions{Samples: 200, Features: 6, Classes: 3, Seed: 4, Noise: 1.5})
	c := DefaultConfig()
	c.Hidden, c.Epochs, c.Patience, c.LR = []int{64}, 200, 3, 0.01
	var last EpochStats
	c.Progress = func(s EpochStats) { last = s }
	_, res, err := Fit(d, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Epochs == 200 || res.Epochs != res.BestEpoch+3 || last.Epoch != res.Epochs {
		t.Fatalf("ran %d epochs, best %d, patience 3", res.Epochs, res.BestEpoch)
	}
}

func TestCSVRoundTripAndErrors(t *testing.T) {
	d := Synthetic(SyntheticOptions{Samples: 10, Features: 3, Classes: 2, Seed: 5})
	var b bytes.Buffer
	if err := d.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(&b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Names, d.Names) || len(got.X) != 10 || !slices.Equal(got.X[3], d.X[3]) || got.Labels[got.Y[3]] != d.Labels[d.Y[3]] {
		t.Fatalf("round trip differs")
	}
	for _, c := range []struct{ in, msg string }{
		{"1,2,a\nb\n", "line 2: 1 fields"},
		{"1,2,a\n1,b\n", "line 2: 1 features"},
		{"1,2,a\n1,2,3,b\n", "line 2: 3 features"},
		{"1,x,a\n", "line 1 field 2"},
		{"1,NaN,a\n", "finite"},
		{"", "no rows"},
	} {
		_, err := ReadCSV(strings.NewReader(c.in), nil)
		if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v, want %q", c.in, err, c.msg)
		}
	}
	if _, err := ReadCSV(strings.NewReader("1,2,zzz\n"), []string{"a"}); !errors.Is(err, ErrData) {
		t.Errorf("unknown fixed label: %v", err)
	}
}

func TestSaveLoad(t *testing.T) {
	m := NewMLP(rand.New(rand.NewPCG(6, 7)), 4, 3, 2)
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	got, err := LoadMLP(&b)
	if err != nil || !slices.Equal(got.W[1], m.W[1]) {
		t.Fatalf("load: %v", err)
	}
	m.W[0] = m.W[0][:5]
	b.Reset()
	m.Save(&b)
	if _, err := LoadMLP(&b); !errors.Is(err, ErrData) {
		t.Fatalf("bad shape accepted: %v", err)
	}
}

func TestSyntheticSampleSeed(t *testing.T) {
	o := SyntheticOptions{Samples: 50, Features: 4, Classes: 3, Seed: 1}
	a := Synthetic(o)
	o.SampleSeed = 2
	b := Synthetic(o)
	if slices.Equal(a.X[0], b.X[0]) {
		t.Fatal("different sample seeds drew the same first row")
	}
	if c := Synthetic(o); !slices.Equal(c.X[7], b.X[7]) {
		t.Fatal("same seeds drew different rows")
	}
}

func TestWindowsFromSimulatorAreLearnable(t *testing.T) {
	cfg := warehouse.DefaultConfig()
	cfg.Shelves, cfg.BinsPerShelf = 1, 4
	d, err := Windows(WindowOptions{Config: cfg, Duration: 6 * time.Hour, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, y := range d.Y {
		counts[d.Labels[y]]++
	}
	if counts["idle"] == 0 || counts["pick1"] == 0 || d.Features() != 30 {
		t.Fatalf("classes %v, %d features", counts, d.Features())
	}
	again, _ := Windows(WindowOptions{Config: cfg, Duration: 6 * time.Hour, Seed: 1})
	if !slices.Equal(again.X[10], d.X[10]) {
		t.Fatal("same seed, different windows")
	}
	tr, test := d.Split(0.25, 2)
	c := DefaultConfig()
	c.Hidden, c.Epochs = []int{64}, 60
	m, _, err := Fit(tr, c)
	if err != nil {
		t.Fatal(err)
	}
	acc := m.Accuracy(test)
	t.Logf("accuracy %.3f on %d held-out windows", acc, len(test.X))
	if acc < 0.85 {
		t.Fatalf("accuracy %.3f on %d held-out windows (classes %v)", acc, len(test.X), counts)
	}
}

func TestWeightDecayShrinksWeights(t *testing.T) {
	d := Synthetic(SyntheticOptions{Samples: 400, Features: 8, Classes: 3, Seed: 6})
	norm := func(decay float64) float64 {
		c := DefaultConfig()
		c.Hidden, c.Epochs, c.WeightDecay, c.ValFrac = []int{16}, 10, decay, 0
		m, _, err := Fit(d, c)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for _, w := range m.W {
			for _, v := range w {
				s += float64(v) * float64(v)
			}
		}
		return s
	}
	if none, strong := norm(0), norm(0.5); strong >= none*0.8 {
		t.Fatalf("weight decay 0.5 left ‖W‖² at %.1f, without decay %.1f", strong, none)
	}
}
