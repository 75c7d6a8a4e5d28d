package shelf_test

import (
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/shelf"
)

// accuracy compares the detector's pick/put events with the warehouse's
// ground truth.
type accuracy struct {
	labels, events       int
	matched, qtyCorrect  int
	stockWrong           int
	falseEvents, missing []string
}

func (a accuracy) precision() float64 { return float64(a.matched) / float64(max(a.events, 1)) }
func (a accuracy) recall() float64    { return float64(a.matched) / float64(max(a.labels, 1)) }
func (a accuracy) qtyAccuracy() float64 {
	return float64(a.qtyCorrect) / float64(max(a.matched, 1))
}

// simulate feeds horizon (plus a tail) of every bin's samples, converted
// to tared grams, through a detector and scores the events against the
// labels settled by horizon.
func simulate(t testing.TB, cfg warehouse.Config, horizon time.Duration) accuracy {
	t.Helper()
	w, err := warehouse.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bins := w.Bins()
	scfg := shelf.Config{WindowSamples: int(cfg.SampleRate / 2)}
	for _, b := range bins {
		scfg.Bins = append(scfg.Bins, shelf.Bin{
			Stream:        gateway.StreamID("loadcell/" + b.ID),
			ID:            b.ID,
			SKU:           b.SKU,
			UnitGrams:     b.UnitGrams,
			LowStockUnits: 2,
			InitialUnits:  b.InitialUnits,
		})
	}
	d, err := shelf.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	const slack = 3 * time.Second // an event may follow the label's settle by this much
	kEnd := int64((horizon + slack) / w.SampleTime(1))
	var acc accuracy
	for _, b := range bins {
		stream := scfg.Bins[b.Index].Stream
		var events []gateway.Event
		for k := range kEnd {
			grams := float64(w.CodeAt(b.Index, k)-b.OffsetCounts)/b.CountsPerGram - b.TareGrams
			for _, ev := range d.Observe(gateway.Reading{Stream: stream, Time: epoch.Add(w.SampleTime(k)), Value: grams, Unit: "g"}) {
				if ev.Kind == gateway.EventPick || ev.Kind == gateway.EventPut {
					events = append(events, ev)
				}
			}
		}
		labels := w.Labels(b.Index, horizon)
		acc.labels += len(labels)
		units := b.InitialUnits
		li := 0
		for _, ev := range events {
			at := ev.Time.Sub(epoch)
			for li < len(labels) && labels[li].Settled+slack < at {
				acc.missing = append(acc.missing, labelString(b, labels[li]))
				li++
			}
			if li < len(labels) && labels[li].Start <= at {
				l := labels[li]
				li++
				acc.events++
				acc.matched++
				if string(ev.Kind) == l.Kind && ev.Quantity == l.Units {
					acc.qtyCorrect++
				}
				continue
			}
			if at <= horizon {
				acc.events++
				acc.falseEvents = append(acc.falseEvents, b.ID+" "+string(ev.Kind)+" at "+at.String())
			}
		}
		for ; li < len(labels); li++ {
			acc.missing = append(acc.missing, labelString(b, labels[li]))
		}
		for _, l := range w.Labels(b.Index, w.SampleTime(kEnd-1)) {
			if l.Kind == "pick" {
				units -= l.Units
			} else {
				units += l.Units
			}
		}
		if got, _ := d.Stock(b.ID); got != units {
			acc.stockWrong++
		}
	}
	return acc
}

func labelString(b warehouse.Bin, l warehouse.Label) string {
	return b.ID + " " + l.Kind + " " + l.Start.String()
}

func TestAccuracyAgainstWarehouse(t *testing.T) {
	noisy := warehouse.DefaultConfig()
	noisy.Seed = 77
	noisy.SampleRate = 80
	noisy.NoiseGrams = 2
	noisy.DriftGramsPerHour = 20
	noisy.MaxUnitsPerPick = 8
	// harsh: 5 g noise and 50 g/h drift at 10 Hz; bins with light units
	// (tolerance 3 g) settle less often and sometimes miss a visit.
	harsh := warehouse.DefaultConfig()
	harsh.Seed = 3
	harsh.NoiseGrams = 5
	harsh.DriftGramsPerHour = 50
	harsh.MaxUnitsPerPick = 8
	tests := []struct {
		name    string
		cfg     warehouse.Config
		horizon time.Duration
		min     float64 // least precision, recall and quantity accuracy
	}{
		{"default seed 2026", withSeed(warehouse.DefaultConfig(), 2026), 3 * time.Hour, 0.99},
		{"noisy 80 Hz seed 77", noisy, time.Hour, 0.99},
		{"harsh 10 Hz seed 3", harsh, time.Hour, 0.95},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			horizon := tt.horizon
			if testing.Short() || raceEnabled {
				horizon /= 6
			}
			acc := simulate(t, tt.cfg, horizon)
			t.Logf("seed %d, %v x %d bins at %g Hz: %d labels, %d events: precision %.4f recall %.4f quantity accuracy %.4f, %d bins with wrong stock",
				tt.cfg.Seed, horizon, tt.cfg.Shelves*tt.cfg.BinsPerShelf, tt.cfg.SampleRate, acc.labels, acc.events,
				acc.precision(), acc.recall(), acc.qtyAccuracy(), acc.stockWrong)
			for i, s := range acc.falseEvents {
				if i == 5 {
					break
				}
				t.Logf("false event: %s", s)
			}
			for i, s := range acc.missing {
				if i == 5 {
					break
				}
				t.Logf("missed visit: %s", s)
			}
			if acc.labels < 100 {
				t.Fatalf("only %d labels; the scenario is too quiet to measure", acc.labels)
			}
			if p := acc.precision(); p < tt.min {
				t.Errorf("precision %.4f < %g", p, tt.min)
			}
			if r := acc.recall(); r < tt.min {
				t.Errorf("recall %.4f < %g", r, tt.min)
			}
			if q := acc.qtyAccuracy(); q < tt.min {
				t.Errorf("quantity accuracy %.4f < %g", q, tt.min)
			}
			if acc.stockWrong > 0 && tt.min >= 0.99 {
				t.Errorf("%d bins end with a wrong stock estimate", acc.stockWrong)
			}
		})
	}
}

func withSeed(c warehouse.Config, seed int64) warehouse.Config {
	c.Seed = seed
	return c
}
