package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/gateway/statuspage"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
	"github.com/shelfgate/shelfgate/sensors/calibration"
)

// fakeCells is a load cell per bin: the codes it read lately and the
// calibration it converts with; SetCalibration calls are counted.
type fakeCells struct {
	mu    sync.Mutex
	cells map[string]*fakeCell
	sets  int
}

type fakeCell struct {
	offset int32
	cpg    float64
	codes  []int32
}

var _ statuspage.Calibrator = (*fakeCells)(nil)

func (f *fakeCells) cell(bin string) (*fakeCell, error) {
	c, ok := f.cells[bin]
	if !ok {
		return nil, fmt.Errorf("no load cell for bin %q", bin)
	}
	return c, nil
}

func (f *fakeCells) Calibration(bin string) (statuspage.CellCalibration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.cell(bin)
	if err != nil {
		return statuspage.CellCalibration{}, err
	}
	return statuspage.CellCalibration{Key: bin, Offset: c.offset, CountsPerGram: c.cpg}, nil
}

func (f *fakeCells) RecentCodes(bin string) ([]int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.cell(bin)
	if err != nil {
		return nil, err
	}
	return append([]int32(nil), c.codes...), nil
}

func (f *fakeCells) SetCalibration(bin string, offset int32, cpg float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.cell(bin)
	if err != nil {
		return err
	}
	c.offset, c.cpg = offset, cpg
	f.sets++
	return nil
}

// load puts grams on bin: its recent codes become the code of that load
// (with ±noise counts).
func (f *fakeCells) load(bin string, grams float64, trueOffset int32, trueCPG float64, noise int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cells[bin]
	c.codes = c.codes[:0]
	rng := rand.New(rand.NewPCG(1, 2))
	for range 40 {
		c.codes = append(c.codes, trueOffset+int32(grams*trueCPG)+rng.Int32N(2*noise+1)-noise)
	}
}

func (f *fakeCells) setCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sets
}

// fakeWindows is a windowSource answering every plate event with one window.
type fakeWindows struct{}

func (fakeWindows) Window(string, time.Time) ([]float32, float64, bool) {
	return []float32{0, 0.5, -1, 1}, classify.ModelRate, true
}

const (
	cmdBin     = "shelf-01/bin-01"
	cmdStream  = gateway.StreamID("loadcell/shelf-01/bin-01")
	cmdPlate   = "plate-01"
	trueOffset = 8000
	trueCPG    = 420.0
)

// cmdRig is a gateway's command side: fake load cells and a real detector
// behind the commands, and a sample book with one plate.
type cmdRig struct {
	cells   *fakeCells
	calFile string
	det     *shelf.Detector
	level   *slog.LevelVar
	book    *sampleBook
}

func newCmdRig(t testing.TB, dir string) *cmdRig {
	t.Helper()
	det, err := shelf.New(shelf.Config{Bins: []shelf.Bin{{Stream: cmdStream, ID: cmdBin, SKU: "SKU-1", UnitGrams: 100, InitialUnits: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	r := &cmdRig{
		// Calibrated with an offset 2000 counts off: the empty bin reads about 4.8 g.
		cells:   &fakeCells{cells: map[string]*fakeCell{cmdBin: {offset: trueOffset - 2000, cpg: trueCPG}}},
		calFile: filepath.Join(dir, "calibration.txt"),
		det:     det,
		level:   new(slog.LevelVar),
		book: newSampleBook("gw-dl", []classify.Plate{{ID: cmdPlate, Stream: "loadcell/plate-01", WidthMM: 800, DepthMM: 400,
			Facings: []classify.Facing{{SKU: "SKU-A", UnitGrams: 200, XMM: 100}, {SKU: "SKU-B", UnitGrams: 300, XMM: 700}}}}, fakeWindows{}),
	}
	r.cells.load(cmdBin, 0, trueOffset, trueCPG, 50)
	return r
}

func (r *cmdRig) commands(ob *outbox.Outbox, up *uplink.Uplink) map[string]commandFunc {
	return gatewayCommands(commandDeps{
		Birth: func() map[string]any { return map[string]any{"version": "test"} },
		Cells: r.cells, CalibrationFile: r.calFile, Detectors: []rebaseliner{r.det},
		Level: r.level, Uplink: up, Outbox: ob, Sensors: []sensorRef{{Name: "shelf-01", Kind: "hx711", Reboot: fakeRebooter{}}}, Samples: r.book,
	})
}

// cloudSide sends commands and collects their durable replies and the
// samples the gateway delivers.
type cloudSide struct {
	t       *testing.T
	c       paho.Client
	rep     *replies
	mu      sync.Mutex
	samples map[int64]shelfv1.Sample // by record id
}

func newCloudSide(t *testing.T, url string) *cloudSide {
	cs := &cloudSide{t: t, c: mqttClient(t, url, "cloud-"+t.Name()), rep: watchReplies(t, url), samples: map[int64]shelfv1.Sample{}}
	dlSubscribe(t, cs.c, dlTopics.Samples(), func(m paho.Message) {
		b, err := shelfv1.DecodeBatch(m.Payload())
		if err != nil {
			t.Errorf("samples: %v", err)
			return
		}
		cs.mu.Lock()
		defer cs.mu.Unlock()
		for _, rec := range b.Records {
			s, err := shelfv1.DecodeSample(rec.Event)
			if err != nil {
				t.Errorf("sample %d: %v", rec.ID, err)
				continue
			}
			cs.samples[rec.ID] = s
		}
	})
	return cs
}

// send publishes command name with id and args until its durable reply
// arrives, and returns the reply.
func (cs *cloudSide) send(name, id, args string) shelfv1.Reply {
	cs.t.Helper()
	body := `{"id":"` + id + `"`
	if args != "" {
		body += `,"args":` + args
	}
	body += "}"
	var durable []byte
	dlWait(cs.t, "reply to "+name+" "+id, 20*time.Second, func() bool {
		if _, durable = cs.rep.get(id); durable != nil {
			return true
		}
		cs.c.Publish(dlTopics.Base()+"/cmd/"+name, 1, false, body).Wait()
		time.Sleep(100 * time.Millisecond)
		_, durable = cs.rep.get(id)
		return durable != nil
	})
	r, err := shelfv1.DecodeReply(durable)
	if err != nil {
		cs.t.Fatal(err)
	}
	return r
}

func (cs *cloudSide) sampleCount() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.samples)
}

// TestCommands runs every command through a broker, the router and a real
// outbox and checks its effect and its reply; bad args get an error
// naming the field.
func TestCommands(t *testing.T) {
	url := mqtttest.StartEmbedded(t)
	r := newCmdRig(t, t.TempDir())
	g := startDL(t, dlConfig{url: url, cmdsFor: r.commands})
	cs := newCloudSide(t, url)

	// The detector has a settled level at the old calibration's ~4.8 g... of
	// a loaded bin: 1000 g.
	feed := func(grams float64, n int, from time.Time) []gateway.Event {
		var evs []gateway.Event
		for i := range n {
			evs = append(evs, r.det.Observe(gateway.Reading{Stream: cmdStream, Time: from.Add(time.Duration(i) * 100 * time.Millisecond), Value: grams, Unit: "g"})...)
		}
		return evs
	}
	t0 := time.Now()
	feed(1000, 20, t0)

	errCases := []struct{ name, args, want string }{
		{"tare", `{}`, "args.bin: missing"},
		{"tare", `{"bin":7}`, "args.bin: number is not a string"},
		{"tare", `{"bin":"x","force":true}`, `unknown field "force"`},
		{"tare", `{"bin":"shelf-09/bin-09"}`, `args.bin: "shelf-09/bin-09"`},
		{"calibrate", `{"bin":"` + cmdBin + `"}`, "args.reference_grams: missing"},
		{"calibrate", `{"bin":"` + cmdBin + `","reference_grams":-5}`, "args.reference_grams: -5 must be above 0"},
		{"set-log-level", `{"level":"verbose"}`, `args.level: "verbose" is not one of debug, info, warn, error`},
		{"reboot-sensors", `{"sensor":"nope"}`, `args.sensor: "nope" is not a configured sensor`},
		{"reboot-sensors", `{"sensor":7}`, "args.sensor: number is not a string"},
		{"correct", `{"sku":"SKU-A","qty":1}`, "args.event: missing"},
		{"correct", `{"event":{"stream":"loadcell/plate-01","t":5},"sku":"SKU-A"}`, "args.qty: missing"},
		{"correct", `{"event":{"stream":"loadcell/plate-01","t":5},"sku":"SKU-A","qty":1}`, "args.event: no plate event"},
		{"flush", `{"now":1}`, `unknown field "now"`},
	}
	for i, tc := range errCases {
		rep := cs.send(tc.name, fmt.Sprintf("bad-%d", i), tc.args)
		if rep.OK || !strings.Contains(rep.Error, tc.want) {
			t.Errorf("%s %s: reply ok=%v error %q, want an error containing %q", tc.name, tc.args, rep.OK, rep.Error, tc.want)
		}
	}
	if n := r.cells.setCount(); n != 0 {
		t.Fatalf("bad commands changed the calibration %d times", n)
	}

	// A bin that is not steady is not tared.
	r.cells.load(cmdBin, 0, trueOffset, trueCPG, 5000)
	if rep := cs.send("tare", "tare-noisy", `{"bin":"`+cmdBin+`"}`); rep.OK || !strings.Contains(rep.Error, "not steady") {
		t.Fatalf("tare of a moving bin: %+v", rep)
	}

	// tare: the empty bin's median becomes the offset, in the file and
	// live, and the detector takes the jump for a new level, not a pick.
	r.cells.load(cmdBin, 0, trueOffset, trueCPG, 50)
	rep := cs.send("tare", "tare-1", `{"bin":"`+cmdBin+`"}`)
	if !rep.OK {
		t.Fatalf("tare: %s", rep.Error)
	}
	var tr tareResult
	if err := json.Unmarshal(rep.Result, &tr); err != nil {
		t.Fatal(err)
	}
	if d := tr.Offset - trueOffset; d < -50 || d > 50 || tr.OldOffset != trueOffset-2000 || !tr.Rebaselined || tr.File != r.calFile {
		t.Fatalf("tare result %+v", tr)
	}
	if c, _ := r.cells.Calibration(cmdBin); c.Offset != tr.Offset {
		t.Fatalf("live offset %d, reply says %d", c.Offset, tr.Offset)
	}
	assertCalFile(t, r.calFile, cmdBin, tr.Offset, trueCPG)
	if evs := feed(0, 40, t0.Add(time.Minute)); len(evs) != 0 {
		t.Fatalf("the tare looked like %v", evs)
	}
	if evs := feed(-200, 40, t0.Add(2*time.Minute)); len(evs) != 1 || evs[0].Kind != gateway.EventPick || evs[0].Quantity != 2 {
		t.Fatalf("a pick of 2 after the tare gave %v", evs)
	}

	// calibrate, one step: 500 g reference on the tared bin.
	r.cells.load(cmdBin, 500, trueOffset, trueCPG, 50)
	rep = cs.send("calibrate", "cal-1", `{"bin":"`+cmdBin+`","reference_grams":500}`)
	if !rep.OK {
		t.Fatalf("calibrate: %s", rep.Error)
	}
	var cr tareResult
	if err := json.Unmarshal(rep.Result, &cr); err != nil {
		t.Fatal(err)
	}
	if cr.Offset != tr.Offset || cr.CountsPerGram < trueCPG*0.99 || cr.CountsPerGram > trueCPG*1.01 {
		t.Fatalf("calibrate result %+v, want counts per gram near %v", cr, trueCPG)
	}
	assertCalFile(t, r.calFile, cmdBin, cr.Offset, cr.CountsPerGram)
	// Without the reference on, calibrate refuses.
	r.cells.load(cmdBin, 0, trueOffset, trueCPG, 50)
	if rep := cs.send("calibrate", "cal-empty", `{"bin":"`+cmdBin+`","reference_grams":500}`); rep.OK || !strings.Contains(rep.Error, "is the 500 g reference on the bin") {
		t.Fatalf("calibrate of an empty bin: %+v", rep)
	}

	// set-log-level changes the running level.
	if rep := cs.send("set-log-level", "lvl-1", `{"level":"debug"}`); !rep.OK || string(rep.Result) != `{"level":"debug","previous":"info"}` {
		t.Fatalf("set-log-level: %+v %s", rep, rep.Result)
	}
	if r.level.Level() != slog.LevelDebug {
		t.Fatalf("level %v after set-log-level debug", r.level.Level())
	}

	// status and flush report the backlog by class.
	rep = cs.send("status", "st-1", "")
	var st struct {
		Version  string        `json:"version"`
		LogLevel string        `json:"log_level"`
		Outbox   backlogReport `json:"outbox"`
	}
	if err := json.Unmarshal(rep.Result, &st); err != nil || !rep.OK || st.Version != "test" || st.LogLevel != "debug" || st.Outbox.ByClass == nil {
		t.Fatalf("status %s (%v)", rep.Result, err)
	}
	rep = cs.send("flush", "fl-1", "")
	var fl struct {
		Connected bool          `json:"connected"`
		Outbox    backlogReport `json:"outbox"`
	}
	if err := json.Unmarshal(rep.Result, &fl); err != nil || !rep.OK || !fl.Connected || fl.Outbox.ByClass["samples"] != 0 {
		t.Fatalf("flush %s (%v)", rep.Result, err)
	}
	if g.up.Stats().Flushes != 1 {
		t.Fatalf("uplink flushes %d, want 1", g.up.Stats().Flushes)
	}

	// correct: a plate event the model got wrong becomes a labelled
	// sample on the samples topic.
	evTime := time.Now().Truncate(time.Microsecond)
	plateEv := gateway.Event{Kind: gateway.EventPick, Stream: "loadcell/plate-01", Bin: cmdPlate, SKU: "SKU-A", Quantity: 1, Time: evTime,
		Inference: &gateway.Inference{Plate: cmdPlate, Facing: 0, SKU: "SKU-A", Action: "pick", Quantity: 1, Classifier: "model", ModelVersion: 3}}
	r.book.ObserveEvent(plateEv)
	// Named by its record's stream (events/ + the event's stream).
	args := fmt.Sprintf(`{"event":{"stream":"events/loadcell/plate-01","t":%d},"sku":"SKU-B","qty":1}`, evTime.UnixMicro())
	if rep := cs.send("correct", "fix-1", `{"event":{"stream":"loadcell/plate-01","t":`+fmt.Sprint(evTime.UnixMicro())+`},"sku":"SKU-C","qty":1}`); rep.OK || !strings.Contains(rep.Error, `args.sku: "SKU-C" is not on plate plate-01`) {
		t.Fatalf("correct to a SKU not on the plate: %+v", rep)
	}
	if rep := cs.send("correct", "fix-1b", args); !rep.OK || string(rep.Result) != `{"features":true,"label":"x14","plate":"plate-01","predicted_sku":"SKU-A"}` {
		t.Fatalf("correct: %+v %s", rep, rep.Result)
	}
	dlWait(t, "the sample delivered", 20*time.Second, func() bool { return cs.sampleCount() == 1 })
	for _, s := range cs.samples {
		if s.Source != shelfv1.SampleCorrection || s.SKU != "SKU-B" || s.Label != "x14" || s.PredictedSKU != "SKU-A" || s.ModelVersion != 3 || len(s.Features) != 4 || s.Event.T != evTime.UnixMicro() {
			t.Fatalf("sample %+v", s)
		}
	}
}

// TestCommandsExactlyOnceAfterRestart: tare and correct, replayed with the
// same ids after the gateway restarted on its outbox (over mosquitto),
// are answered from the record: no second calibration, no second sample.
func TestCommandsExactlyOnceAfterRestart(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	r := newCmdRig(t, dir)
	evTime := time.Now().Truncate(time.Microsecond)
	r.book.ObserveEvent(gateway.Event{Kind: gateway.EventPick, Stream: "loadcell/plate-01", Bin: cmdPlate, SKU: "SKU-A", Quantity: 1, Time: evTime,
		Inference: &gateway.Inference{Plate: cmdPlate, Facing: 0, SKU: "SKU-A", Action: "pick", Quantity: 1, Classifier: "model", ModelVersion: 3}})
	correct := fmt.Sprintf(`{"event":{"stream":"loadcell/plate-01","t":%d},"sku":"SKU-B","qty":2}`, evTime.UnixMicro())
	tare := `{"bin":"` + cmdBin + `"}`

	cs := newCloudSide(t, url)
	g := startDL(t, dlConfig{url: url, path: path, cmdsFor: r.commands})
	first := cs.send("tare", "once-tare", tare)
	fix := cs.send("correct", "once-fix", correct)
	if !first.OK || !fix.OK {
		t.Fatalf("tare %+v, correct %+v", first, fix)
	}
	dlWait(t, "the sample delivered", 20*time.Second, func() bool { return cs.sampleCount() == 1 })
	g.stop()

	// The bin moved meanwhile: a second tare would change the offset.
	r.cells.load(cmdBin, 0, trueOffset+300, trueCPG, 50)
	g2 := startDL(t, dlConfig{url: url, path: path, cmdsFor: r.commands})
	cs.rep.mu.Lock()
	delete(cs.rep.direct, "once-tare")
	delete(cs.rep.direct, "once-fix")
	cs.rep.mu.Unlock()
	for _, id := range []string{"once-tare", "once-fix"} {
		name, args := "tare", tare
		if id == "once-fix" {
			name, args = "correct", correct
		}
		dlWait(t, "the replayed "+id+" answered", 20*time.Second, func() bool {
			cs.c.Publish(dlTopics.Base()+"/cmd/"+name, 1, false, `{"id":"`+id+`","args":`+args+`}`).Wait()
			time.Sleep(100 * time.Millisecond)
			d, _ := cs.rep.get(id)
			return d != nil
		})
	}
	if d, _ := cs.rep.get("once-tare"); string(d) != string(mustEncode(first)) {
		t.Fatalf("replayed tare answered %s, want the recorded %s", d, mustEncode(first))
	}
	if n := r.cells.setCount(); n != 1 {
		t.Fatalf("calibration set %d times, want once", n)
	}
	// Everything the gateway had to deliver is delivered; still one sample.
	dlWait(t, "the outbox drained", 20*time.Second, func() bool { return g2.ob.Backlog() == 0 })
	time.Sleep(300 * time.Millisecond)
	if n := cs.sampleCount(); n != 1 {
		t.Fatalf("%d samples delivered, want 1", n)
	}
}

func mustEncode(r shelfv1.Reply) []byte { return r.Encode() }

func assertCalFile(t *testing.T, path, bin string, offset int32, cpg float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cf, err := calibration.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := cf.Lookup(bin)
	if !ok || c.Offset != offset || c.CountsPerGram < cpg*0.999 || c.CountsPerGram > cpg*1.001 {
		t.Fatalf("calibration file has %+v (%v), want offset %d and %v counts/g", c, ok, offset, cpg)
	}
}

// TestScanConfirmedSamples: a pick on a plate shortly after a scan of a
// SKU on that plate becomes a sample labelled by the scan; a pick with no
// scan, or long after it, does not; each scan labels one pick.
func TestScanConfirmedSamples(t *testing.T) {
	r := newCmdRig(t, t.TempDir())
	b := r.book
	t0 := time.Now()
	pick := func(at time.Time, sku string) {
		b.ObserveEvent(gateway.Event{Kind: gateway.EventPick, Stream: "loadcell/plate-01", Bin: cmdPlate, SKU: sku, Quantity: 1, Time: at,
			Inference: &gateway.Inference{Plate: cmdPlate, SKU: sku, Action: "pick", Quantity: 1, Classifier: "model", ModelVersion: 1}})
	}
	pick(t0, "SKU-A") // no scan yet
	b.ObserveEvent(gateway.Event{Kind: gateway.EventScan, Stream: "scanner/s1", Detail: "SKU-B*2", Time: t0.Add(time.Second)})
	pick(t0.Add(3*time.Second), "SKU-A") // the model says A; the picker scanned B
	pick(t0.Add(4*time.Second), "SKU-A") // the scan is used
	b.ObserveEvent(gateway.Event{Kind: gateway.EventScan, Stream: "scanner/s1", Detail: "SKU-A", Time: t0.Add(5 * time.Second)})
	pick(t0.Add(5*time.Second+scanConfirm+time.Second), "SKU-A") // too late
	if len(b.queue) != 1 {
		t.Fatalf("%d samples queued, want 1", len(b.queue))
	}
	rec := <-b.queue
	s, err := shelfv1.DecodeSample(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Class != gateway.ClassSamples || s.Source != shelfv1.SampleScan || s.SKU != "SKU-B" || s.Quantity != 2 || s.Label != "x14" || s.PredictedSKU != "SKU-A" {
		t.Fatalf("sample %+v", s)
	}
	// The sample's window and label are kept to judge plate models by.
	if lw := b.Labelled(time.Time{}, 10); len(lw) != 1 || lw[0].label != "x14" || !lw[0].at.Equal(t0.Add(3*time.Second)) || len(lw[0].x) == 0 {
		t.Fatalf("labelled windows %+v, want the one sample's", lw)
	}
	if lw := b.Labelled(t0.Add(3*time.Second), 10); len(lw) != 0 {
		t.Fatalf("labelled after its own time: %+v", lw)
	}
	// Run commits queued samples to the outbox.
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, ob, slog.New(slog.DiscardHandler)) }()
	b.ObserveEvent(gateway.Event{Kind: gateway.EventScan, Stream: "scanner/s2", Detail: "SKU-A", Time: t0.Add(time.Hour)})
	pick(t0.Add(time.Hour+time.Second), "SKU-A")
	dlWait(t, "the sample committed", 10*time.Second, func() bool {
		st, _ := ob.Stats(context.Background())
		return st.Samples == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestScanConfirmedInOrderAndByWeight: a picker who scans the next line
// before the previous pick is reported still gets each pick labelled by
// its own scan (the oldest scan whose units explain the weight change),
// and a scan whose SKU × quantity does not explain a pick's weight change
// (a wrong line) labels nothing.
func TestScanConfirmedInOrderAndByWeight(t *testing.T) {
	b := newCmdRig(t, t.TempDir()).book
	t0 := time.Now()
	pick := func(at time.Time, grams float64) {
		b.ObserveEvent(gateway.Event{Kind: gateway.EventPick, Stream: "loadcell/plate-01", Bin: cmdPlate, SKU: "SKU-A", Quantity: 1, DeltaGrams: -grams, Time: at,
			Inference: &gateway.Inference{Plate: cmdPlate, SKU: "SKU-A", Action: "pick", Quantity: 1, Classifier: "model", ModelVersion: 1}})
	}
	scan := func(at time.Time, line string) {
		b.ObserveEvent(gateway.Event{Kind: gateway.EventScan, Stream: "scanner/s1", Detail: line, Time: at})
	}
	scan(t0, "SKU-B*2")                      // 600 g
	scan(t0.Add(time.Second), "SKU-A")       // 200 g, typed before the first pick is reported
	pick(t0.Add(1500*time.Millisecond), 598) // SKU-B*2
	pick(t0.Add(2500*time.Millisecond), 203) // SKU-A
	scan(t0.Add(3*time.Second), "SKU-B")     // a wrong line: 300 g
	pick(t0.Add(3500*time.Millisecond), 401) // two of SKU-A: nothing scanned explains it
	var got []string
	for len(b.queue) > 0 {
		s, err := shelfv1.DecodeSample((<-b.queue).Body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s*%d=%s", s.SKU, s.Quantity, s.Label))
	}
	scan(t0.Add(4*time.Second), "SKU-B")     // no quantity on the line: the weight says 2
	pick(t0.Add(4500*time.Millisecond), 605) // SKU-B×2
	for len(b.queue) > 0 {
		s, err := shelfv1.DecodeSample((<-b.queue).Body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s*%d=%s", s.SKU, s.Quantity, s.Label))
	}
	if want := "SKU-B*2=x14 SKU-A*1=x02 SKU-B*2=x14"; strings.Join(got, " ") != want {
		t.Fatalf("samples %q, want %q", got, want)
	}
}
