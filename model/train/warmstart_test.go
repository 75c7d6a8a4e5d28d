package train

import (
	"errors"
	"testing"
)

// TestWarmStart: a warm start begins where its model left off (its first
// epoch's validation loss is near the model's own, far below a cold
// start's), keeps the model's shape and standardization and does not
// change the model it started from; a model for other labels or inputs is
// refused.
func TestWarmStart(t *testing.T) {
	d := Synthetic(SyntheticOptions{Samples: 1200, Features: 12, Classes: 4, Seed: 3})
	c := DefaultConfig()
	c.Hidden, c.Epochs = []int{16}, 15
	base, baseRes, err := Fit(d, c)
	if err != nil {
		t.Fatal(err)
	}
	w0 := append([]float32(nil), base.W[0]...)

	first := func(c Config) EpochStats {
		var got []EpochStats
		c.Epochs, c.Progress = 1, func(s EpochStats) { got = append(got, s) }
		if _, _, err := Fit(d, c); err != nil {
			t.Fatal(err)
		}
		return got[0]
	}
	cold := first(c)
	wc := c
	wc.Init, wc.Hidden, wc.LR = base, []int{99}, 1e-5 // Hidden is ignored
	warm := first(wc)
	if warm.ValLoss > baseRes.ValLoss*1.5 || warm.ValLoss >= cold.ValLoss {
		t.Errorf("warm start's first validation loss %.4f, the model's %.4f, a cold start's %.4f", warm.ValLoss, baseRes.ValLoss, cold.ValLoss)
	}
	m, _, err := Fit(d, wc)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sizes[1] != 16 || &m.W[0][0] == &base.W[0][0] {
		t.Errorf("warm-started sizes %v (want the model's), weights shared: %v", m.Sizes, &m.W[0][0] == &base.W[0][0])
	}
	for i, v := range base.W[0] {
		if v != w0[i] {
			t.Fatal("training changed the model it warm-started from")
		}
	}
	other := Synthetic(SyntheticOptions{Samples: 200, Features: 12, Classes: 3, Seed: 4})
	if _, _, err := Fit(other, wc); !errors.Is(err, ErrData) {
		t.Errorf("warm start from a 4-class model on 3-class data: %v", err)
	}
}
