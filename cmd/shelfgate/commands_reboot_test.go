package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/firmware-sim/scannersim"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
	"github.com/shelfgate/shelfgate/sensors/scanner"
)

// fakeRebooter answers Reboot with err and counts the calls.
type fakeRebooter struct {
	err   error
	calls *atomic.Int64
}

var _ rebooter = fakeRebooter{}

func (f fakeRebooter) Reboot(context.Context) error {
	if f.calls != nil {
		f.calls.Add(1)
	}
	return f.err
}

// goldenSensors are the golden replies' sensors: three that reboot and a
// scanner whose device is gone.
var goldenSensors = []sensorRef{
	{Name: "shelf-01", Kind: "hx711", Reboot: fakeRebooter{}},
	{Name: "plate-01", Kind: "plate", Reboot: fakeRebooter{}},
	{Name: "picking-1", Kind: "scanner", Reboot: fakeRebooter{err: errors.New("scanner: picking-1: reopen: open /dev/ttyACM0: no such file or directory")}},
	{Name: "coldroom-1", Kind: "bme280", Reboot: fakeRebooter{}},
}

// TestRebootSensorsOutcomes: each sensor's line says what happened to it:
// rebooted; not supported, for a source without Reboot or one whose
// hardware cannot be reset; error with the reason; only the named sensor
// is touched when one is named.
func TestRebootSensorsOutcomes(t *testing.T) {
	var calls [3]atomic.Int64
	d := commandDeps{Sensors: []sensorRef{
		{Name: "a", Kind: "hx711", Reboot: fakeRebooter{calls: &calls[0]}},
		{Name: "b", Kind: "feeder"},
		{Name: "c", Kind: "hx711", Reboot: fakeRebooter{calls: &calls[1], err: fmt.Errorf("loadcell: c: %w", loadcell.ErrNoPowerCycle)}},
		{Name: "d", Kind: "mfrc522", Reboot: fakeRebooter{calls: &calls[2], err: errors.New("rfid: d: re-initialise: NRSTPD high: pin busy")}},
	}}
	cmds := gatewayCommands(d)
	res, _, err := cmds["reboot-sensors"](context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := res.(rebootResult)
	want := []string{"a:rebooted", "b:not_supported", "c:not_supported", "d:error"}
	for i, o := range got.Sensors {
		if s := o.Sensor + ":" + o.Status; s != want[i] {
			t.Errorf("sensor %d: %s, want %s (%+v)", i, s, want[i], o)
		}
	}
	if got.Rebooted != 1 || got.NotSupported != 2 || got.Failed != 1 || !strings.Contains(got.Sensors[3].Error, "pin busy") || !strings.Contains(got.Sensors[1].Error, "(feeder)") {
		t.Fatalf("result %+v", got)
	}
	if _, _, err := cmds["reboot-sensors"](context.Background(), json.RawMessage(`{"sensor":"d"}`)); err != nil {
		t.Fatal(err)
	}
	if calls[0].Load() != 1 || calls[2].Load() != 2 {
		t.Fatalf("calls %d %d: a named sensor's reboot touched another", calls[0].Load(), calls[2].Load())
	}
}

// rebootRig is a gateway as run() wires it, on simulators the test can
// look into: one HX711 under a bin, a plate of four HX711s on one clock,
// a serial scanner on a pty; the real outbox, uplink, router and
// commands; a cloud side collecting every telemetry record, scan and
// reply over MQTT.
type rebootRig struct {
	cell    *hx711sim.Sim
	plate   *hx711sim.Group
	scanner *scannersim.Sim
	ss      *sensorSet
	dl      *dlGateway

	mu    sync.Mutex
	seqs  map[string]map[uint64]bool // telemetry: stream -> sequences received
	last  map[string]int64           // telemetry: stream -> newest reading time (µs)
	scans []string                   // scan codes received
}

func (r *rebootRig) telemetry(m paho.Message) error {
	b, err := shelfv1.DecodeBatch(m.Payload())
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range b.Records {
		if r.seqs[rec.Stream] == nil {
			r.seqs[rec.Stream] = map[uint64]bool{}
		}
		r.seqs[rec.Stream][rec.Seq] = true
		r.last[rec.Stream] = max(r.last[rec.Stream], rec.Time)
	}
	return nil
}

func (r *rebootRig) events(m paho.Message) error {
	b, err := shelfv1.DecodeBatch(m.Payload())
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range b.Records {
		var ev struct{ Kind, Detail string }
		if strings.HasSuffix(rec.Stream, "scanner/picking-1") && json.Unmarshal(rec.Event, &ev) == nil && ev.Kind == string(gateway.EventScan) {
			r.scans = append(r.scans, ev.Detail)
		}
	}
	return nil
}

// newerThan reports whether every load-cell stream delivered a reading
// taken after t.
func (r *rebootRig) newerThan(streams []string, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range streams {
		if r.last[s] <= t.UnixMicro() {
			return false
		}
	}
	return true
}

func (r *rebootRig) scanned(code string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.scans, code)
}

// steady is a loaded cell: 1000 g at 200 counts/g over an offset of
// 50,000, with a little sample-dependent noise.
func steady(k int64) int32 { return 50_000 + 200*1000 + int32(k%13) }

func startRebootRig(t *testing.T, url string) *rebootRig {
	t.Helper()
	r := &rebootRig{seqs: map[string]map[uint64]bool{}, last: map[string]int64{}}
	b := newSimBuses()
	t.Cleanup(b.close)
	// 10 samples/s at 10x: a conversion every 10 ms. The chips keep
	// hx711sim's default power-down threshold, which the simulation's
	// powerDownHold must exceed.
	opts := hx711sim.DefaultOpts
	opts.SpeedUp = 10
	opts.Name = "hx711sim-shelf-01-bin-01"
	cell, err := hx711sim.New(hx711sim.SignalFunc(steady), &opts)
	if err != nil {
		t.Fatal(err)
	}
	r.cell = cell
	cellPins := hx711Pins{Clk: opts.Name + ".PD_SCK", Data: opts.Name + ".DOUT"}
	b.pinsOut[cellPins.Clk], b.pinsIn[cellPins.Data] = cell.CLK(), cell.DOUT()

	gopts := hx711sim.GroupOpts{Opts: opts}
	gopts.Name = "hx711sim-plate-01"
	var sigs []hx711sim.Signal
	for i := range 4 {
		sigs = append(sigs, hx711sim.SignalFunc(func(k int64) int32 { return steady(k) + int32(i)*1000 }))
	}
	if r.plate, err = hx711sim.NewGroup(sigs, &gopts); err != nil {
		t.Fatal(err)
	}
	plate := &plateConfig{Plate: "plate-01", WidthMM: 800, DepthMM: 400, SampleRate: 10, Mode: "A128",
		Pins:       platePins{Clk: gopts.Name + ".PD_SCK"},
		Facings:    []plateFacing{{SKU: "SKU-A", UnitGrams: 200, XMM: 200, YMM: 200}},
		Classifier: plateClassifier{Mode: "analytic"}}
	b.pinsOut[plate.Pins.Clk] = r.plate.CLK()
	for i := range 4 {
		name := fmt.Sprintf("%s.c%d.DOUT", gopts.Name, i)
		b.pinsIn[name] = r.plate.DOUT(i)
		plate.Pins.Data = append(plate.Pins.Data, name)
		plate.Calibration = append(plate.Calibration, hx711Calibration{Offset: 50_000, CountsPerGram: 200})
	}

	so := scannersim.DefaultOpts
	so.Suffix = scannersim.CR
	if r.scanner, err = scannersim.New(&so); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.scanner.Close() })

	specs := []sensorSpec{
		{name: "cell-shelf-01/bin-01", typ: "hx711", conf: &hx711Config{Bin: "shelf-01/bin-01", SKU: "SKU-1", UnitGrams: 100,
			Calibration: &hx711Calibration{Offset: 50_000, CountsPerGram: 200}, Mode: "A128", Pins: cellPins}},
		{name: "plate-01", typ: "plate", conf: plate},
		{name: "picking-1", typ: "scanner", conf: &scannerConfig{Port: r.scanner.Path(), Baud: 9600, Suffix: "CR"}},
	}
	if r.ss, err = buildSensors(specs, b, sensorEnv{}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Gateway.ID, cfg.Gateway.Site = dlTopics.Gateway, dlTopics.Site
	r.dl = startDL(t, dlConfig{url: url, cmdsFor: func(ob *outbox.Outbox, up *uplink.Uplink) map[string]commandFunc {
		cmds, _ := commandSet(cfg, r.ss, nil, nil, func() map[string]any { return map[string]any{} }, ob, up, new(slog.LevelVar), slog.New(slog.DiscardHandler))
		return cmds
	}})
	return r
}

// TestRebootSensorsOverMQTT sends reboot-sensors over MQTT to a gateway on
// simulated hardware: the HX711 and the plate's four HX711s see PD_SCK
// held high long enough to power down and come back (once each: the
// plate's shared clock is cycled once), the scanner's device is closed
// and opened again, the durable reply lists each sensor as rebooted,
// readings and scans continue, a repeat of the id is answered from its
// record without a second reset, an unknown sensor is refused by field,
// and every reading the sources took is delivered, sequences gap-free.
func TestRebootSensorsOverMQTT(t *testing.T) {
	url := mqtttest.StartEmbedded(t)
	r := startRebootRig(t, url)
	rep := watchReplies(t, url)
	cloud := mqttClient(t, url, "cloud-"+t.Name())
	fail := func(err error) {
		if err != nil {
			t.Error(err)
		}
	}
	dlSubscribe(t, cloud, dlTopics.Telemetry(), func(m paho.Message) { fail(r.telemetry(m)) })
	dlSubscribe(t, cloud, dlTopics.Events(), func(m paho.Message) { fail(r.events(m)) })

	gw := &gateway.Gateway{Sources: r.ss.sources(), Outbox: r.dl.ob}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway: %v", err)
			}
		}
	}
	defer stop()

	cells := []string{"loadcell/shelf-01/bin-01", "loadcell/plate-01/c0", "loadcell/plate-01/c1", "loadcell/plate-01/c2", "loadcell/plate-01/c3"}
	start := time.Now()
	dlWait(t, "readings from every cell", 20*time.Second, func() bool { return r.newerThan(cells, start) })
	dlWait(t, "the scanner open", 20*time.Second, func() bool { return r.scannerStats().Opens == 1 })
	if err := r.scanner.Scan("96385074"); err != nil {
		t.Fatal(err)
	}
	dlWait(t, "the scan before the reboot", 20*time.Second, func() bool { return r.scanned("96385074") })

	send := func(id, args string) (direct, durable []byte) {
		t.Helper()
		body := `{"id":"` + id + `"` + map[bool]string{true: `,"args":` + args, false: ""}[args != ""] + `}`
		dlWait(t, "reply to "+id, 30*time.Second, func() bool {
			cloud.Publish(dlTopics.Base()+"/cmd/reboot-sensors", 1, false, body).Wait()
			time.Sleep(300 * time.Millisecond)
			direct, durable = rep.get(id)
			return direct != nil && durable != nil
		})
		return direct, durable
	}
	direct, durable := send("reboot-1", "")
	if !bytes.Equal(direct, durable) {
		t.Fatalf("best-effort reply %s differs from the durable one %s", direct, durable)
	}
	reply, err := shelfv1.DecodeReply(durable)
	if err != nil || !reply.OK {
		t.Fatalf("reply %s (%v)", durable, err)
	}
	var res rebootResult
	if err := json.Unmarshal(reply.Result, &res); err != nil {
		t.Fatal(err)
	}
	want := []rebootOutcome{
		{Sensor: "cell-shelf-01/bin-01", Kind: "hx711", Status: rebootDone},
		{Sensor: "plate-01", Kind: "plate", Status: rebootDone},
		{Sensor: "picking-1", Kind: "scanner", Status: rebootDone},
	}
	if !slices.Equal(res.Sensors, want) || res.Rebooted != 3 || res.Failed != 0 {
		t.Fatalf("result %s, want every sensor rebooted", reply.Result)
	}

	// At the bus: one power-down and one reset of each chip.
	resetAt := r.cell.Stats().LastReset
	chips := []*hx711sim.Sim{r.cell}
	for i := range r.plate.Len() {
		chips = append(chips, r.plate.Chip(i))
	}
	for i, c := range chips {
		if st := c.Stats(); st.PowerDowns != 1 || st.Resets != 1 {
			t.Fatalf("chip %d: %d power-downs, %d resets, want 1 and 1", i, st.PowerDowns, st.Resets)
		} else if st.LastReset.After(resetAt) {
			resetAt = st.LastReset
		}
	}
	if st := r.scannerStats(); st.Opens != 2 || st.Reboots != 1 || st.ReadErrors != 0 {
		t.Fatalf("scanner %+v: want its device reopened once by the reboot", st)
	}

	// Readings and scans go on.
	dlWait(t, "readings after the reset from every cell", 20*time.Second, func() bool { return r.newerThan(cells, resetAt) })
	if err := r.scanner.Scan("4006381333931"); err != nil {
		t.Fatal(err)
	}
	dlWait(t, "the scan after the reboot", 20*time.Second, func() bool { return r.scanned("4006381333931") })

	// Exactly once: the same id is answered from its record.
	cloud.Publish(dlTopics.Base()+"/cmd/reboot-sensors", 1, false, `{"id":"reboot-1"}`).Wait()
	dlWait(t, "the repeat handled", 20*time.Second, func() bool {
		h := r.dl.handler(t, "commands")
		return h.Received >= 2 && settled(h, h.Received)
	})
	if st := r.cell.Stats(); st.Resets != 1 {
		t.Fatalf("the repeated id reset the chip again (%d resets)", st.Resets)
	}
	// An unknown sensor is refused, naming the field.
	if _, durable := send("reboot-2", `{"sensor":"shelf-09"}`); !strings.Contains(string(durable), `args.sensor: \"shelf-09\" is not a configured sensor`) {
		t.Fatalf("unknown sensor: %s", durable)
	}

	// No reading lost: stop the sources (their last readings are
	// committed), let the uplink deliver, and audit every cell's stream.
	stop()
	dlWait(t, "the outbox delivered", 30*time.Second, func() bool { return r.dl.ob.Backlog() == 0 })
	emitted := map[string]int64{}
	for _, s := range r.ss.sensors {
		if src, ok := s.source.(*loadcell.Source); ok {
			for _, h := range src.Health() {
				emitted[string(h.Stream)] = h.Readings
			}
		}
		if ps, ok := s.source.(*plateSource); ok {
			for _, h := range ps.Health() {
				emitted[string(h.Stream)] = h.Readings
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range cells {
		n := emitted[s]
		got := r.seqs[s]
		if n == 0 || int64(len(got)) != n {
			t.Errorf("%s: %d readings taken, %d sequences delivered", s, n, len(got))
			continue
		}
		for q := uint64(1); q <= uint64(n); q++ {
			if !got[q] {
				t.Errorf("%s: sequence %d missing", s, q)
				break
			}
		}
		t.Logf("%s: %d readings taken, all delivered", s, n)
	}
}

func (r *rebootRig) scannerStats() scanner.Stats {
	for _, s := range r.ss.sensors {
		if src, ok := s.source.(*scanner.Source); ok {
			return src.Stats()
		}
	}
	return scanner.Stats{}
}
