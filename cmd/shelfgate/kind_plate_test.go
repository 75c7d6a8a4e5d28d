package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
)

const plateSensorYAML = `  - name: plate-a
    type: plate
    plate: plate-01
    width_mm: 600
    depth_mm: 400
    pins: {clk: GPIO5, data: [GPIO6, GPIO13, GPIO19, GPIO26]}
    calibration: [{offset: 1, counts_per_gram: 2}, {offset: 1, counts_per_gram: 2}, {offset: 1, counts_per_gram: 2}, {offset: 1, counts_per_gram: 2}]
    facings: [{sku: "4000000000001", unit_grams: 250, x_mm: 150, y_mm: 200}, {sku: "4000000000002", unit_grams: 120, x_mm: 450, y_mm: 200}]
`

func TestPlateKindChecks(t *testing.T) {
	dir := t.TempDir()
	base := "gateway: {id: g, site: s}\nbroker: {urls: [embedded]}\noutbox: {path: o.db}\nsensors:\n"
	for _, tc := range []struct{ name, edit, want string }{
		{"ok", "", ""},
		{"three cells", "data: [GPIO6, GPIO13, GPIO19, GPIO26]|data: [GPIO6, GPIO13, GPIO19]", "pins.data: has 3 pins; a plate has 4 cells"},
		{"clock reused as data", "GPIO26]|GPIO5]", "pins.data[3]: GPIO5 is already used for clk"},
		{"model without file", "facings:|classifier: {mode: model}\n    facings:", "classifier.model: is empty"},
		{"unknown classifier", "facings:|classifier: {mode: neural}\n    facings:", `classifier.mode: classifier "neural"`},
		{"facing off the plate", "x_mm: 450|x_mm: 650", "facings[1]: position (650, 200) mm is off"},
		{"rate", "facings:|sample_rate: 20\n    facings:", "sample_rate: 20 is not an HX711 rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := plateSensorYAML
			if tc.edit != "" {
				from, to, _ := strings.Cut(tc.edit, "|")
				y = strings.Replace(y, from, to, 1)
			}
			p := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(p, []byte(base+y), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(p, checkSensors, checkSimulation)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// A plate sensor over the shared-clock simulator (four hx711sim chips on
// one PD_SCK, fed by a simulated plate), the real loadcell Source and
// Group driver, the gateway and the plate chain with the shipped model:
// picks and puts come out with their inference, the status names the
// model and /metrics counts the inferences.
func TestPlateSensorThroughGateway(t *testing.T) {
	wc := warehouse.DefaultConfig()
	wc.Shelves, wc.BinsPerShelf, wc.PicksPerBinPerHour = 1, 1, 0
	wc.SampleRate, wc.Speed = 10, 20
	wc.Plates = warehouse.DefaultPlateConfig()
	wc.Plates.Count, wc.Plates.VisitsPerHour, wc.Plates.LightShare = 1, 600, 0
	wc.Plates.LeanProbability, wc.Plates.AdjacentProbability, wc.Plates.VibrationPerHour = 0, 0, 0
	wh, err := warehouse.New(wc)
	if err != nil {
		t.Fatal(err)
	}
	p := wh.Plates()[0]
	opts := hx711sim.GroupOpts{Opts: hx711sim.DefaultOpts}
	opts.Rate, opts.SpeedUp = 10, wc.Speed
	g, err := hx711sim.NewPlate(wh, 0, &opts)
	if err != nil {
		t.Fatal(err)
	}
	b := newSimBuses()
	b.pinsOut["CLK"] = g.CLK()
	conf := &plateConfig{Plate: p.ID, WidthMM: p.WidthMM, DepthMM: p.DepthMM, SampleRate: 10, Mode: "A128",
		Pins:       platePins{Clk: "CLK"},
		Classifier: plateClassifier{Mode: "model", Model: "../../configs/models/plate.sgm", TrustedKeys: []string{readTestKey(t)}}}
	for c := range 4 {
		name := "D" + string(rune('0'+c))
		b.pinsIn[name] = g.DOUT(c)
		conf.Pins.Data = append(conf.Pins.Data, name)
		conf.Calibration = append(conf.Calibration, hx711Calibration{Offset: p.Cells[c].OffsetCounts, CountsPerGram: p.Cells[c].CountsPerGram})
	}
	for _, f := range p.Facings {
		conf.Facings = append(conf.Facings, plateFacing{SKU: f.SKU, UnitGrams: f.UnitGrams, XMM: f.XMM, YMM: f.YMM})
	}
	ss, err := buildSensors([]sensorSpec{{name: "plate-a", typ: "plate", conf: conf}}, b, sensorEnv{})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	links, holder, stats, err := plateChain(ctx, ss)
	if err != nil {
		t.Fatal(err)
	}
	if holder == nil || len(links) != 1 {
		t.Fatalf("holder %v, %d links", holder, len(links))
	}
	seen := &eventsSeen{}
	gw := &gateway.Gateway{Sources: ss.sources(), Outbox: &memStore{}, Classifiers: append(links, seen)}
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	deadline := time.Now().Add(40 * time.Second)
	for seen.n() < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs := seen.all()
	if len(evs) < 3 {
		t.Fatalf("%d plate events in 40 s (%d inferences)", len(evs), stats.Snapshot().Inferences)
	}
	skus := map[string]bool{}
	for _, f := range p.Facings {
		skus[f.SKU] = true
	}
	for _, ev := range evs {
		inf := ev.Inference
		if inf == nil || inf.Plate != p.ID || inf.Classifier != "model" || inf.ModelVersion != 1 || !skus[ev.SKU] || ev.Quantity < 1 || inf.Shadow == nil {
			t.Errorf("event %+v inference %+v", ev, inf)
		}
		// The model window the event was decided on is kept for samples.
		if x, _, ok := stats.sampleWindows().Window(p.ID, ev.Time); !ok || len(x) == 0 {
			t.Errorf("no sample window for the %s at %s", ev.Kind, ev.Time.Format(time.RFC3339Nano))
		}
	}
	birth := withModel(func() map[string]any { return map[string]any{"model": "none"} }, holder)()
	if birth["model"] != "plates v1" {
		t.Errorf("status model %v", birth["model"])
	}
	// The collector reports what the detector counted.
	ch := make(chan prometheus.Metric, 64)
	if err := plateCollector(stats).Update(ch); err != nil {
		t.Fatal(err)
	}
	close(ch)
	found := false
	paths := map[string]bool{}
	for m := range ch {
		var pb dto.Metric
		m.Write(&pb)
		if strings.Contains(m.Desc().String(), "shelfgate_inferences_total") {
			found = pb.Counter.GetValue() >= float64(len(evs))
		}
		if strings.Contains(m.Desc().String(), "shelfgate_plate_settle_total") {
			for _, l := range pb.GetLabel() {
				paths[l.GetValue()] = true
			}
		}
	}
	if !found {
		t.Error("shelfgate_inferences_total missing or below the events seen")
	}
	if len(paths) != 4 || !paths["degraded"] || !paths["shaken"] || !paths["vibration"] || !paths["followed"] {
		t.Errorf("shelfgate_plate_settle_total paths %v, want degraded, shaken, vibration and followed", paths)
	}
}

func readTestKey(t *testing.T) string {
	b, err := os.ReadFile("../../configs/models/test-signing.pub")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// eventsSeen is a chain link recording the picks and puts it is shown.
type eventsSeen struct {
	mu  sync.Mutex
	evs []gateway.Event
}

func (e *eventsSeen) Observe(gateway.Reading) []gateway.Event { return nil }

func (e *eventsSeen) ObserveEvent(ev gateway.Event) []gateway.Event {
	if ev.Kind == gateway.EventPick || ev.Kind == gateway.EventPut {
		e.mu.Lock()
		e.evs = append(e.evs, ev)
		e.mu.Unlock()
	}
	return nil
}

func (e *eventsSeen) n() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.evs)
}

func (e *eventsSeen) all() []gateway.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]gateway.Event(nil), e.evs...)
}

// A plate's four cells are one loadcell.Source under one bin: their
// samples must still be distinct, or the registry refuses the whole
// /metrics page.
func TestPlateLoadcellMetricsDistinct(t *testing.T) {
	var chans []loadcell.Channel
	for i := range 4 {
		chans = append(chans, loadcell.Channel{Stream: gateway.StreamID(fmt.Sprintf("loadcell/plate-01/c%d", i)), ADC: idleADC{}, CountsPerGram: 1})
	}
	src, err := loadcell.New("plate-01", chans, loadcell.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectorFunc(func(ch chan<- prometheus.Metric) { collectLoadcell(ch, src, []string{"plate-01", "plate-01"}) }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "shelfgate_loadcell_readings_total" && len(mf.GetMetric()) != 4 {
			t.Errorf("%s: %d samples, want one per cell", mf.GetName(), len(mf.GetMetric()))
		}
	}
}

type idleADC struct{}

func (idleADC) ReadTimeout(time.Duration) (int32, error) { return 0, nil }

// collectorFunc is an unchecked collector (no Describe).
type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }
