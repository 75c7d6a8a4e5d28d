package main

import (
	"bufio"
	"fmt"
	simdata "github.com/shelfgate/shelfgate/firmware-sim/dataset"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/model"
	"github.com/shelfgate/shelfgate/model/quantize"
	"github.com/shelfgate/shelfgate/model/train"
)

// agreementSet is one data set of the calibration study: a training part
// (the float model's training rows, whose first calibRows calibrate the
// int8 model) and an independent test part.
type agreementSet struct {
	name        string
	generator   string // who made the rows
	train, test *train.Dataset
	hidden      []int
}

// calibration is one way of choosing the activation ranges.
type calibration struct {
	name string
	opts func(o *quantize.Options)
}

const calibRows = 2000

func calibrations() []calibration {
	pct := func(p float64) func() quantize.Observer {
		return func() quantize.Observer { return &quantize.Percentile{P: p} }
	}
	minmax := func() quantize.Observer { return &quantize.MinMax{} }
	return []calibration{
		{name: "minmax", opts: func(o *quantize.Options) { o.NewObserver = minmax }},
		{name: "p99.9", opts: func(o *quantize.Options) { o.NewObserver = pct(99.9) }},
		{name: "p99.99", opts: func(o *quantize.Options) { o.NewObserver = pct(99.99) }},
		{name: "p99.999", opts: func(o *quantize.Options) { o.NewObserver = pct(99.999) }},
		{name: "p99.99+minmax-logits", opts: func(o *quantize.Options) { o.NewObserver, o.NewLogitObserver = pct(99.99), minmax }},
		{name: "default", opts: func(o *quantize.Options) {}},
	}
}

// agreementSets builds the data sets: the training generator's own
// (train.Synthetic), a harder 100-class set from a different generator
// (hardSet, below: more noise, heavy tails, two modes per class), and
// load-cell windows from the warehouse simulator.
func agreementSets(testRows int) ([]agreementSet, error) {
	so := train.SyntheticOptions{Samples: 20000, Features: 1000, Classes: 100, Noise: 0.9, Seed: 1}
	st := train.Synthetic(so)
	so.Samples, so.SampleSeed = testRows, 99
	ste := train.Synthetic(so)

	var hard []agreementSet
	for _, noise := range []float64{0.55, 0.8, 1.1} {
		gen := hardSet(hardOptions{Features: 1000, Classes: 100, Noise: noise, Seed: 5})
		hard = append(hard, agreementSet{
			name:      fmt.Sprintf("hard100-n%g", noise),
			generator: fmt.Sprintf("modelbench hardSet (not train's generator), 1000 features, 100 classes, 2 modes per class, latent noise %g, Student-t feature noise", noise),
			train:     gen(20000, 1), test: gen(testRows, 2), hidden: []int{500},
		})
	}

	wcfg := warehouse.DefaultConfig()
	wcfg.NoiseGrams = 8
	wtr, err := simdata.Build(simdata.Options{Config: wcfg, Duration: 48 * time.Hour, Seed: 1})
	if err != nil {
		return nil, err
	}
	wcfg.Seed = 2
	wte, err := simdata.Build(simdata.Options{Config: wcfg, Duration: 48 * time.Hour, Seed: 2})
	if err != nil {
		return nil, err
	}
	// Both runs must name the same classes in the same order.
	if strings.Join(wtr.Labels, ",") != strings.Join(wte.Labels, ",") {
		wte, err = relabel(wte, wtr.Labels)
		if err != nil {
			return nil, err
		}
	}
	sets := []agreementSet{{name: "synthetic", generator: "train.Synthetic (the training generator), 1000 features, 100 classes, noise 0.9", train: st, test: ste, hidden: []int{500}}}
	sets = append(sets, hard...)
	return append(sets, agreementSet{name: "windows", generator: "warehouse simulator load-cell windows, noise 8 g, another seed for the test part", train: wtr, test: wte, hidden: []int{64}}), nil
}

func relabel(d *train.Dataset, labels []string) (*train.Dataset, error) {
	idx := map[string]int{}
	for i, l := range labels {
		idx[l] = i
	}
	out := &train.Dataset{Names: d.Names, Labels: labels}
	for i, x := range d.X {
		j, ok := idx[d.Labels[d.Y[i]]]
		if !ok {
			continue // a class the training part never saw
		}
		out.X = append(out.X, x)
		out.Y = append(out.Y, j)
	}
	return out, nil
}

type hardOptions struct {
	Features, Classes int
	Noise             float64
	Seed              uint64
}

// hardSet returns a generator of rows of a classification problem made
// independently of train.Synthetic: every class has two modes in a
// 24-dimensional latent space; features are random projections passed
// through ReLU, |·|, sin and pairwise products, with per-feature offsets and
// log-normal scales, plus Student-t (3 degrees of freedom) feature noise,
// so a few values lie far out in the tails.
func hardSet(o hardOptions) func(rows int, sampleSeed uint64) *train.Dataset {
	const latent = 24
	rng := rand.New(rand.NewPCG(o.Seed, 0x4a7d))
	modes := make([][2][latent]float64, o.Classes)
	for c := range modes {
		for m := range modes[c] {
			for j := range modes[c][m] {
				modes[c][m][j] = rng.NormFloat64()
			}
		}
	}
	proj := make([][latent]float64, o.Features)
	offset, scale, kind := make([]float64, o.Features), make([]float64, o.Features), make([]int, o.Features)
	pair := make([]int, o.Features)
	for i := range proj {
		for j := range proj[i] {
			proj[i][j] = rng.NormFloat64() / math.Sqrt(latent)
		}
		offset[i] = rng.NormFloat64() * 3
		scale[i] = math.Exp(rng.NormFloat64() * 0.7)
		kind[i] = rng.IntN(4)
		pair[i] = rng.IntN(o.Features)
	}
	studentT := func(r *rand.Rand) float64 {
		z := r.NormFloat64()
		var chi float64
		for k := 0; k < 3; k++ {
			g := r.NormFloat64()
			chi += g * g
		}
		return z / math.Sqrt(chi/3)
	}
	names := make([]string, o.Features)
	for i := range names {
		names[i] = fmt.Sprintf("h%d", i)
	}
	labels := make([]string, o.Classes)
	for c := range labels {
		labels[c] = fmt.Sprintf("k%d", c)
	}
	return func(rows int, sampleSeed uint64) *train.Dataset {
		r := rand.New(rand.NewPCG(o.Seed, sampleSeed^0x77e1))
		d := &train.Dataset{Names: names, Labels: labels}
		var z [latent]float64
		lin := make([]float64, o.Features)
		for s := 0; s < rows; s++ {
			c := r.IntN(o.Classes)
			m := r.IntN(2)
			for j := range z {
				z[j] = modes[c][m][j] + r.NormFloat64()*o.Noise
			}
			for i := range lin {
				var v float64
				for j, zj := range z {
					v += proj[i][j] * zj
				}
				lin[i] = v
			}
			x := make([]float32, o.Features)
			for i, v := range lin {
				switch kind[i] {
				case 0:
					v = max(v, 0)
				case 1:
					v = math.Abs(v)
				case 2:
					v = math.Sin(2 * v)
				case 3:
					v = v * lin[pair[i]]
				}
				x[i] = float32(offset[i] + scale[i]*(v+0.5*studentT(r)))
			}
			d.X = append(d.X, x)
			d.Y = append(d.Y, c)
		}
		return d
	}
}

// trainOrLoad trains the float model of a set, or loads it from cacheDir
// when an earlier run left it there.
func trainOrLoad(s agreementSet, cacheDir string, epochs int) (*train.MLP, error) {
	path := ""
	if cacheDir != "" {
		path = filepath.Join(cacheDir, fmt.Sprintf("%s-%d-%d.float.json", s.name, epochs, len(s.train.X)))
		if f, err := os.Open(path); err == nil {
			defer f.Close()
			return train.LoadMLP(bufio.NewReader(f))
		}
	}
	c := train.DefaultConfig()
	c.Hidden, c.Epochs, c.Patience, c.Batch = s.hidden, epochs, 2, 64
	start := time.Now()
	m, res, err := train.Fit(s.train, c)
	if err != nil {
		return nil, err
	}
	fmt.Printf("# %s: trained %v on %d rows in %v: %d epochs, validation accuracy %.4f\n", s.name, m.Sizes, len(s.train.X), time.Since(start).Round(time.Second), res.Epochs, res.ValAcc)
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		w := bufio.NewWriter(f)
		if err := m.Save(w); err != nil {
			return nil, err
		}
		if err := w.Flush(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// agreementRow is one measurement: a calibration on a data set.
type agreementRow struct {
	set, calib       string
	rows             int
	tieBreak, plain  float64 // top-1 agreement with float, in %
	floatAcc, int8Ac float64
}

// runAgreement measures int8/float top-1 agreement for every calibration on
// every data set and prints a table and FIGURE lines, each calibration's
// agreement against min-max's on the same set in the same run.
func runAgreement(cacheDir string, epochs, testRows int) error {
	sets, err := agreementSets(testRows)
	if err != nil {
		return err
	}
	var all []agreementRow
	for _, s := range sets {
		f, err := trainOrLoad(s, cacheDir, epochs)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fpred := make([]int, len(s.test.X))
		var fc int
		for i, x := range s.test.X {
			fpred[i] = f.Predict(x)
			if fpred[i] == s.test.Y[i] {
				fc++
			}
		}
		fmt.Printf("# %s: %s; %d test rows, float accuracy %.2f%%\n", s.name, s.generator, len(s.test.X), 100*float64(fc)/float64(len(s.test.X)))
		calib := s.train.X[:min(calibRows, len(s.train.X))]
		for _, c := range calibrations() {
			o := quantize.Options{Name: s.name, Version: 1}
			c.opts(&o)
			q, err := quantize.Quantize(f, calib, o)
			if err != nil {
				return fmt.Errorf("%s %s: %w", s.name, c.name, err)
			}
			r, err := measure(q, s.test, fpred)
			if err != nil {
				return fmt.Errorf("%s %s: %w", s.name, c.name, err)
			}
			r.set, r.calib, r.floatAcc = s.name, c.name, 100*float64(fc)/float64(len(s.test.X))
			all = append(all, r)
			fmt.Printf("# %-10s %-22s agreement %.2f%% (plain argmax %.2f%%), int8 accuracy %.2f%%, float %.2f%%\n", r.set, r.calib, r.tieBreak, r.plain, r.int8Ac, r.floatAcc)
		}
	}
	base := map[string]agreementRow{}
	for _, r := range all {
		if r.calib == "minmax" {
			base[r.set] = r
		}
	}
	fmt.Println("# | data set | calibration | test rows | agreement, tie-break | agreement, plain argmax | float acc | int8 acc |")
	for _, r := range all {
		fmt.Printf("# | %s | %s | %d | %.2f %% | %.2f %% | %.2f %% | %.2f %% |\n", r.set, r.calib, r.rows, r.tieBreak, r.plain, r.floatAcc, r.int8Ac)
	}
	for _, r := range all {
		b := base[r.set]
		figure(fmt.Sprintf("model_agreement_%s_%s", r.set, r.calib), r.tieBreak, "%", b.tieBreak)
		figure(fmt.Sprintf("model_agreement_plain_%s_%s", r.set, r.calib), r.plain, "%", b.plain)
	}
	return nil
}

// measure counts rows where the int8 model's class equals the float one,
// with the engine's accumulator tie-break (Output.Class) and with a plain
// first-index argmax of the int8 output.
func measure(q *model.Model, d *train.Dataset, fpred []int) (agreementRow, error) {
	s := q.NewSession()
	var tb, plain, acc int
	for i, x := range d.X {
		out, err := s.Infer(x)
		if err != nil {
			return agreementRow{}, fmt.Errorf("row %d: %w", i, err)
		}
		last := out.Last()
		p := 0
		for j, v := range last {
			if v > last[p] {
				p = j
			}
		}
		if out.Class == fpred[i] {
			tb++
		}
		if p == fpred[i] {
			plain++
		}
		if out.Class == d.Y[i] {
			acc++
		}
	}
	n := float64(len(d.X))
	return agreementRow{rows: len(d.X), tieBreak: 100 * float64(tb) / n, plain: 100 * float64(plain) / n, int8Ac: 100 * float64(acc) / n}, nil
}
