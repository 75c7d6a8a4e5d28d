package quantize

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"

	"github.com/shelfgate/shelfgate/model"
	"github.com/shelfgate/shelfgate/model/train"
)

func TestActivationQuant(t *testing.T) {
	cases := []struct {
		lo, hi float64
		want   model.Quant
	}{
		{0, 6.375, model.Quant{Scale: 0.025, Zero: -128}},          // ReLU output
		{-1, 1, model.Quant{Scale: float32(2.0 / 255), Zero: -1}},  // −128 + 127.5 rounds half away from zero
		{2, 4, model.Quant{Scale: float32(4.0 / 255), Zero: -128}}, // widened to include 0
		{-5.1, 0, model.Quant{Scale: 0.02, Zero: 127}},
	}
	for _, c := range cases {
		got, err := activationQuant(c.lo, c.hi)
		if err != nil || got.Zero != c.want.Zero || math.Abs(float64(got.Scale-c.want.Scale)) > 1e-7 {
			t.Errorf("activationQuant(%g, %g) = %+v, %v; want %+v", c.lo, c.hi, got, err, c.want)
		}
	}
	if _, err := activationQuant(math.Inf(-1), 1); !errors.Is(err, ErrCalibration) {
		t.Errorf("infinite range: %v", err)
	}
}

func TestPercentileClipsOutliers(t *testing.T) {
	p := &Percentile{P: 99}
	v := make([]float32, 1000)
	for i := range v {
		v[i] = float32(i % 100)
	}
	v[0], v[1] = -1e6, 1e6
	p.Observe(v)
	lo, hi := p.Range()
	if lo < -1 || hi > 100 {
		t.Fatalf("range [%g, %g] kept the outliers", lo, hi)
	}
	mm := &MinMax{}
	mm.Observe(v)
	if lo, hi := mm.Range(); lo != -1e6 || hi != 1e6 {
		t.Fatalf("min/max [%g, %g]", lo, hi)
	}
}

func TestQuantizeAgreesWithFloat(t *testing.T) {
	d := train.Synthetic(train.SyntheticOptions{Samples: 3000, Features: 24, Classes: 6, Seed: 8})
	trainSet, test := d.Split(0.3, 1)
	c := train.DefaultConfig()
	c.Hidden, c.Epochs = []int{32}, 20
	f, _, err := train.Fit(trainSet, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, obs := range []func() Observer{nil, func() Observer { return &Percentile{P: 99.99} }} {
		for _, r := range []model.Rounding{model.DoubleRounding, model.SingleRounding} {
			q, err := Quantize(f, trainSet.X[:500], Options{Name: "t", Version: 3, Rounding: r, NewObserver: obs, Golden: 4})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Compare(f, q, test)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Agreement < 0.98 || rep.FloatAcc-rep.Int8Acc > 0.02 || rep.FloatAcc < 0.8 {
				t.Errorf("rounding %v: %+v", r, rep)
			}
			total := 0
			for _, row := range rep.Confusion {
				for _, n := range row {
					total += n
				}
			}
			if total != len(test.X) {
				t.Errorf("confusion matrix counts %d rows of %d", total, len(test.X))
			}
			// The file round-trips and its golden vectors pass at load.
			data, err := model.Encode(q, nil)
			if err != nil {
				t.Fatal(err)
			}
			back, err := model.Decode(data, model.DecodeOptions{})
			if err != nil || len(back.Golden) != 4 {
				t.Fatalf("decode: %v", err)
			}
			if !bytes.Equal(back.Digest[:], q.Digest[:]) {
				t.Fatal("digest differs")
			}
		}
	}
}

func TestLogitWindowNarrowsLogitScale(t *testing.T) {
	d := train.Synthetic(train.SyntheticOptions{Samples: 600, Features: 10, Classes: 4, Seed: 9})
	c := train.DefaultConfig()
	c.Hidden, c.Epochs = []int{16}, 15
	f, _, err := train.Fit(d, c)
	if err != nil {
		t.Fatal(err)
	}
	wide, err := Quantize(f, d.X, Options{})
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := Quantize(f, d.X, Options{LogitWindow: 2})
	if err != nil {
		t.Fatal(err)
	}
	lw, ln := wide.Layers[1].Output, narrow.Layers[1].Output
	if ln.Scale >= lw.Scale {
		t.Fatalf("logit scale %v with a window of 2, %v without", ln.Scale, lw.Scale)
	}
	if narrow.Layers[2].Input != ln {
		t.Fatal("softmax input does not follow the narrowed logits")
	}
}

func TestDefaultCalibrationAndLogitObserver(t *testing.T) {
	d := train.Synthetic(train.SyntheticOptions{Samples: 800, Features: 12, Classes: 4, Seed: 10})
	c := train.DefaultConfig()
	c.Hidden, c.Epochs = []int{16}, 8
	f, _, err := train.Fit(d, c)
	if err != nil {
		t.Fatal(err)
	}
	def, err := Quantize(f, d.X, Options{})
	if err != nil {
		t.Fatal(err)
	}
	pct, err := Quantize(f, d.X, Options{NewObserver: func() Observer { return &Percentile{P: DefaultPercentile} }})
	if err != nil {
		t.Fatal(err)
	}
	mm, err := Quantize(f, d.X, Options{NewObserver: func() Observer { return &MinMax{} }})
	if err != nil {
		t.Fatal(err)
	}
	if def.Input.Quant != pct.Input.Quant || def.Layers[0].Output != pct.Layers[0].Output {
		t.Fatalf("default calibration %+v is not the %g percentile's %+v", def.Input.Quant, DefaultPercentile, pct.Input.Quant)
	}
	if def.Input.Quant == mm.Input.Quant {
		t.Fatal("default and min-max calibration agree; the test cannot tell them apart")
	}
	// A min-max logit observer changes the logits only.
	mixed, err := Quantize(f, d.X, Options{NewLogitObserver: func() Observer { return &MinMax{} }})
	if err != nil {
		t.Fatal(err)
	}
	if mixed.Input.Quant != def.Input.Quant || mixed.Layers[1].Output != mm.Layers[1].Output {
		t.Fatalf("logit observer: input %+v (default %+v), logits %+v (min-max %+v)", mixed.Input.Quant, def.Input.Quant, mixed.Layers[1].Output, mm.Layers[1].Output)
	}
}

func TestQuantizeAndCompareStopWhenCancelled(t *testing.T) {
	d := train.Synthetic(train.SyntheticOptions{Samples: 300, Features: 8, Classes: 3, Seed: 11})
	c := train.DefaultConfig()
	c.Hidden, c.Epochs = []int{8}, 3
	f, _, err := train.Fit(d, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := QuantizeContext(ctx, f, d.X, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("QuantizeContext: %v", err)
	}
	q, err := Quantize(f, d.X, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CompareContext(ctx, f, q, d); !errors.Is(err, context.Canceled) {
		t.Fatalf("CompareContext: %v", err)
	}
}
