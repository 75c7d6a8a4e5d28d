package dataset

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/model/features"
)

var update = flag.Bool("update", false, "rewrite model/train/testdata/windows.sgds from the builder")

func corner() Options {
	cfg := warehouse.DefaultConfig()
	cfg.Shelves, cfg.BinsPerShelf = 1, 4
	return Options{Name: "test", Config: cfg, Duration: 6 * time.Hour, Seed: 1}
}

// TestBuildLabelsMatchTheScenario counts the windows per label against the
// scenario's ground truth, worked out independently: every visit whose
// window fits gets exactly one window with its kind and units, every bin
// gets round(Idle·visits) idle windows, and the features of each window
// end at the units the label says moved.
func TestBuildLabelsMatchTheScenario(t *testing.T) {
	o := corner()
	d, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	wh, err := warehouse.New(o.Config)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for bin := range wh.Bins() {
		labels := wh.Labels(bin, o.Duration)
		for _, l := range labels {
			if l.Start >= 500*time.Millisecond { // Pre = 5 samples at 10 Hz
				want[l.Kind+strconv.Itoa(l.Units)]++
			}
		}
		want[IdleLabel] += int(0.5*float64(len(labels)) + 0.5)
	}
	if got := d.Counts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("windows per label %v, scenario says %v", got, want)
	}
	var picks, puts int
	for label, n := range want {
		switch label[:3] {
		case "pic":
			picks += n
		case "put":
			puts += n
		}
	}
	// PutProbability 0.3, raised by the restocks an emptied bin forces
	// (a pick takes 2.5 units on average, a put restores as many): both
	// kinds are well represented.
	if share := float64(puts) / float64(picks+puts); share < 0.25 || share > 0.6 {
		t.Errorf("put share %.2f of %d visits", share, picks+puts)
	}
	for i, x := range d.X {
		label := d.Labels[d.Y[i]]
		units := 0.0
		if label != IdleLabel {
			n, _ := strconv.Atoi(label[len(label)-1:])
			units = float64(n)
			if label[:3] == "pic" {
				units = -units
			}
		}
		// Noise 0.5 g and drift are small against the lightest unit.
		if end := float64(x[len(x)-1]); math.Abs(end-units) > 0.3 || x[0] != 0 {
			t.Fatalf("window %d labelled %s: starts at %v, ends at %.2f units", i, label, x[0], end)
		}
	}
	w, err := d.Window()
	if err != nil || w != features.DefaultWindow(10) {
		t.Fatalf("window metadata %v %v", w, err)
	}
	if d.Meta["scale"] != "unit_grams" || d.Meta["seed"] != "1" || d.Meta["name"] != "test" || d.Meta["idle_seed"] != "1" {
		t.Errorf("metadata %v", d.Meta)
	}
}

// TestBuildIsDeterministic: same options, same bytes; another idle seed
// moves only the idle windows; another scenario seed changes the visits.
func TestBuildIsDeterministic(t *testing.T) {
	o := corner()
	o.Duration = 2 * time.Hour
	enc := func(o Options) []byte {
		d, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := enc(o)
	if !bytes.Equal(a, enc(o)) {
		t.Fatal("same options, different dataset")
	}
	o2 := o
	o2.Seed = 2
	if bytes.Equal(a, enc(o2)) {
		t.Fatal("another idle seed gave the same dataset")
	}
	o3 := o
	o3.Config.Seed = 2
	if bytes.Equal(a, enc(o3)) {
		t.Fatal("another scenario seed gave the same dataset")
	}
}

func TestBuildAt80Hz(t *testing.T) {
	o := corner()
	o.Config.SampleRate, o.Duration = 80, time.Hour
	d, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	if d.Features() != 240 || d.Counts()[IdleLabel] == 0 || len(d.Labels) < 3 {
		t.Fatalf("%d features, counts %v", d.Features(), d.Counts())
	}
}

func TestBuildRejects(t *testing.T) {
	plate := corner()
	plate.Window = features.Window{Cells: 4, Samples: 30, Pre: 5, Rate: 10}
	rate := corner()
	rate.Window = features.DefaultWindow(80)
	quiet := corner()
	quiet.Config.PicksPerBinPerHour = 0
	short := corner()
	short.Duration = time.Second
	badCfg := corner()
	badCfg.Config.Shelves = 0
	badIdle := corner()
	badIdle.Idle = -1
	badWin := corner()
	badWin.Window = features.Window{Cells: 1, Samples: 5, Pre: 5, Rate: 10}
	for name, c := range map[string]struct {
		o   Options
		err error
	}{
		"plate window":  {plate, features.ErrWindow},
		"rate mismatch": {rate, features.ErrWindow},
		"no visits":     {quiet, ErrNoVisits},
		"bad window":    {badWin, features.ErrWindow},
	} {
		if _, err := Build(c.o); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", name, err, c.err)
		}
	}
	for name, o := range map[string]Options{"short": short, "config": badCfg, "idle": badIdle} {
		if _, err := Build(o); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// TestTrainFixtureIsBuilderOutput keeps model/train's dataset fixture equal
// to what the builder produces for it; -update rewrites the fixture.
func TestTrainFixtureIsBuilderOutput(t *testing.T) {
	o := corner()
	o.Name, o.Duration = "train-fixture", 3*time.Hour
	d, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "model", "train", "testdata", "windows.sgds")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("%s is not the builder's output (%d bytes, builder %d); run go test ./firmware-sim/dataset -update", path, len(want), len(b))
	}
}
