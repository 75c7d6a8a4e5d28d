package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway/classify"
	"github.com/shelfgate/shelfgate/gateway/classify/evaluate"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
	"github.com/shelfgate/shelfgate/model"
	"github.com/shelfgate/shelfgate/model/quantize"
	"github.com/shelfgate/shelfgate/model/train"
)

// The retrain loop's shelves. The deployed model knows a narrow plate
// with two lanes (position bins x04 and x12 only); the gateways' shelf
// has six lanes on a wider plate, four of them at positions that model
// has never seen a change at, so it names the wrong facing for most picks.
const (
	oldFacings, oldWidth = 2, 600.0
	newFacings, newWidth = 6, 900.0
	retrainPlates        = 3
	// retrainVisits makes the gateways' plates busy: 600 visits per plate
	// per simulated hour are, at 40× real time, about 6.7 visits per plate
	// per wall second.
	retrainVisits = 600
)

// retrainRun is how fast the gateways' warehouses run and what the
// promoted model must reach on the fresh scenario's picks.
type retrainRun struct {
	speed   int     // simulated seconds per wall second
	samples int     // scan-confirmed samples the cloud waits for before retraining
	epochs  int     // shelfctl model train --epochs (--patience 30)
	minAcc  float64 // SKU identification of the promoted model
	wait    time.Duration
}

// retrainShelf is the warehouse of a plate shelf (speed 1: for the
// simulator-time tools; the gateways run it faster).
func retrainShelf(seed int64, facings int, width float64) warehouse.Config {
	c := warehouse.DefaultConfig()
	c.Seed, c.Shelves, c.BinsPerShelf, c.SampleRate, c.PicksPerBinPerHour = seed, 1, 1, 10, 1
	c.MaxUnitsPerPick, c.PutProbability, c.ScanProbability = 3, 0.3, 0
	c.Plates = warehouse.PlateConfig{Count: retrainPlates, Facings: facings, WidthMM: width, DepthMM: 400, VisitsPerHour: 120,
		UnitSpread: 0.03, LeanProbability: 0.1, AdjacentProbability: 0.1, TempDriftGrams: 2}
	return c
}

const retrainConfig = `
gateway: {id: %s, site: site-retrain}
broker:
  urls: [%q]
  keepalive: 2s
outbox: {path: %q, commit_interval: 5ms}
uplink: {flush_timeout: 15s}
models:
  trusted_keys: [%q]
  bundled_model: %q
  quiet: 1s
simulation:
  warehouse:
    seed: %d
    shelves: 1
    bins_per_shelf: 1
    sample_rate: 10
    speed: %d
    noise_grams: 0.5
    drift_grams_per_hour: 2
    picks_per_bin_per_hour: 1
    max_units_per_pick: 3
    put_probability: 0.3
    scan_probability: 0
    plates: {count: %d, facings: %d, width_mm: %v, depth_mm: 400, visits_per_hour: %d, unit_spread: 0.03,
             lean_probability: 0.1, adjacent_probability: 0.1, temp_drift_grams: 2}
  scanner: true
  wrong_scans: 0
  plate_classifier: {mode: model, model: %q, trusted_keys: [%s]}
log: {level: warn}
`

// TestRetrainLoopEndToEnd is the feedback loop of issue 11 on mosquitto
// with three gateway processes (the real run wiring, simulated plates):
//
//  1. A plate model trained only on a two-lane plate is deployed (bundled
//     and configured) to three gateways whose plates have six lanes.
//  2. Their pickers scan before each pick; the gateways turn scan-confirmed
//     picks into labelled samples (commands_samples.go) that go through
//     the outbox's samples class; `shelfctl collect --samples DIR` keeps
//     them as CSV datasets (and audits every stream all along).
//  3. `shelfctl model train --from DIR` retrains (warm start from the
//     deployed model, plus the simulator windows it was trained on),
//     signs; `shelfctl push` rolls it out to the three gateways.
//  4. Each gateway's shadow evaluation promotes it by accuracy on its
//     labelled windows (agreement with the poor deployed model is low),
//     reports model_promoted as an event, serves it (the next samples
//     carry version 2) and keeps it through the health check.
//  5. On a fresh scenario of the shelf (another seed), SKU accuracy and
//     event F1 of the deployed and of the promoted model are measured;
//     collect's audit finds nothing missing across the swaps.
//
// At 40× real time (this test, about a minute) the samples' windows are
// noisier than at 12× on a busy machine (conversions the host misses are
// missing samples; docs/inference.md, "Training/serving parity"): the
// retrained model's held-out accuracy on them was 0.78–0.91 and the
// promoted model reached 0.86–0.90 on the fresh picks there, 0.97–0.98
// (held-out 0.97) on a quieter one, so it is held to ≥ 0.75 and a gain of 0.3; at
// 12× (TestFaultRetrainLoopRealTime, make test-faults, about three
// minutes; 0.997 measured) it is held to the 0.97.
func TestRetrainLoopEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs three gateways")
	}
	testRetrainLoop(t, retrainRun{speed: 40, samples: 900, epochs: 100, minAcc: 0.75, wait: time.Minute})
}

func testRetrainLoop(t *testing.T, run retrainRun) {
	ctx := context.Background()
	m := mqtttest.StartMosquitto(t)
	gwBin, ctlBin := binaries(t)
	dir := t.TempDir()
	keys := newMSKeys(t)
	privPEM, err := modelsync.MarshalPrivateKeyPEM(keys.priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "signer")
	if err := os.WriteFile(keyPath, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pubHex := hex.EncodeToString(keys.priv.Public().(ed25519.PublicKey))

	// 1. The deployed model: trained on the old shelf only.
	oldWin, err := evaluate.Windows(ctx, evaluate.Options{Name: "old-shelf", Config: retrainShelf(11, oldFacings, oldWidth), Duration: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	oldSim := filepath.Join(dir, "old-shelf.sgds")
	b, err := oldWin.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(oldSim, b, 0o644); err != nil {
		t.Fatal(err)
	}
	deployed := filepath.Join(dir, "plates-v1.sgm")
	trainDeployed(t, oldWin, keys.priv, deployed)

	// 2. Collect everything (audit) and the samples, from before the
	// gateways start.
	samplesDir := filepath.Join(dir, "samples")
	col := exec.Command(ctlBin, "collect", "--broker", m.URL, "--site", "site-retrain", "--client-id", "retrain-collect",
		"--out", filepath.Join(dir, "records.jsonl"), "--samples", samplesDir)
	var colOut lockedBuffer
	col.Stdout, col.Stderr = &colOut, &colOut
	if err := col.Start(); err != nil {
		t.Fatal(err)
	}
	var colErr error
	colDone := make(chan struct{})
	go func() { colErr = col.Wait(); close(colDone) }()
	t.Cleanup(func() {
		col.Process.Signal(os.Interrupt)
		<-colDone
	})
	waitFor(t, "collect subscribed", 20*time.Second, func() bool { return strings.Contains(colOut.String(), "subscribed") })

	ids := []string{"gw-a", "gw-b", "gw-c"}
	gws := make([]*exec.Cmd, len(ids))
	logs := make([]*lockedBuffer, len(ids))
	startGateways := func(seed int) {
		for i, id := range ids {
			gdir := filepath.Join(dir, id)
			if err := os.MkdirAll(gdir, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(gdir, "shelfgate.yaml")
			body := fmt.Sprintf(retrainConfig, id, m.URL, filepath.Join(gdir, "outbox.db"), keys.pubPath, deployed,
				seed+i, run.speed, retrainPlates, newFacings, newWidth, retrainVisits, deployed, pubHex)
			if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			log := &lockedBuffer{}
			cmd := exec.Command(gwBin, "run", "--config", cfg)
			cmd.Stdout, cmd.Stderr = log, log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			gws[i], logs[i] = cmd, log
			t.Cleanup(func() {
				cmd.Process.Signal(os.Interrupt)
				cmd.Wait()
				if t.Failed() {
					t.Logf("%s log:\n%s", id, log.String())
				}
			})
		}
	}
	stopGateways := func() {
		for _, g := range gws {
			g.Process.Signal(os.Interrupt)
		}
		for i, g := range gws {
			if err := g.Wait(); err != nil {
				t.Errorf("%s: %v\n%s", ids[i], err, logs[i].String())
			}
		}
	}
	startGateways(21)
	rows := func(version uint64) map[string]int {
		n := map[string]int{}
		for _, id := range ids {
			n[id] = csvRows(t, filepath.Join(samplesDir, "site-retrain", id, fmt.Sprintf("model-v%d.csv", version)))
		}
		return n
	}
	total := func(n map[string]int) (s int) {
		for _, v := range n {
			s += v
		}
		return s
	}
	start := time.Now()
	// A deadline, not a timing claim: alone on two cores this takes about
	// a minute; beside the rest of `make test` it has taken over two.
	var got map[string]int
	t.Cleanup(func() {
		if t.Failed() && got != nil {
			t.Logf("scan-confirmed samples of v1 when it failed: %v", got)
		}
	})
	waitFor(t, fmt.Sprintf("%d scan-confirmed samples", run.samples), 5*run.wait, func() bool {
		got = rows(1)
		return total(got) >= run.samples
	})
	t.Logf("samples from the deployed model after %s: %v", time.Since(start).Round(time.Millisecond), rows(1))

	// 3. Retrain from the collected samples, sign, push.
	retrained := filepath.Join(dir, "plates-v2.sgm")
	out, err := exec.Command(ctlBin, "model", "train", "--from", samplesDir, "--warm-start", deployed+".float.json", "--sim", oldSim,
		"--epochs", strconv.Itoa(run.epochs), "--patience", "30", "--sign-key", keyPath, "--version", "2", "-o", retrained).CombinedOutput()
	t.Logf("shelfctl model train:\n%s", out)
	if err != nil {
		t.Fatalf("model train: %v", err)
	}
	pushStart := time.Now()
	args := []string{"push", "--broker", m.URL, "--site", "site-retrain", "--canary", "1", "--idle", "30s", "--key", keyPath}
	for _, id := range ids {
		args = append(args, "--gateway", id)
	}
	out, err = exec.Command(ctlBin, append(args, retrained)...).CombinedOutput()
	t.Logf("shelfctl push (%s):\n%s", time.Since(pushStart).Round(time.Millisecond), out)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^(gw-.) +(\S+) +\d+/\d+ +\d+ +[0-9.]+ `)
	promoted := 0
	for _, mm := range row.FindAllStringSubmatch(string(out), -1) {
		if mm[2] == "promoted" {
			promoted++
		}
	}
	if err != nil || promoted != len(ids) {
		t.Fatalf("push: %v, %d of %d gateways promoted", err, promoted, len(ids))
	}

	// 4. The promoted model serves: the next samples carry version 2; it
	// stays through its health check (20 labelled changes by default).
	waitFor(t, "30 samples from v2 on every gateway", 3*run.wait, func() bool {
		for _, n := range rows(2) {
			if n < 30 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second) // the health check polls every second
	for i, id := range ids {
		if l := logs[i].String(); strings.Contains(l, "rolled back") {
			t.Errorf("%s rolled the retrained model back:\n%s", id, l)
		}
		data, err := os.ReadFile(filepath.Join(dir, id, "models", "active.sgm"))
		if err != nil {
			t.Fatal(err)
		}
		mod, err := model.Decode(data, model.DecodeOptions{TrustedKeys: []ed25519.PublicKey{keys.priv.Public().(ed25519.PublicKey)}})
		if err != nil || mod.Version != 2 {
			t.Fatalf("%s active model: %v, version %d", id, err, mod.Version)
		}
	}

	// 5. A fresh scenario of the shelf: the gateways restart on other
	// seeds (other products and weights on the same six-lane plates); the
	// promoted model is served from the model store (the configured file
	// is still v1) and labels the new picks.
	stopGateways()
	freshFrom := settledRows(rows)
	startGateways(31)
	waitFor(t, "100 fresh samples on every gateway", 3*run.wait, func() bool {
		for id, n := range rows(2) {
			if n < freshFrom[id]+100 {
				return false
			}
		}
		return true
	})
	stopGateways()
	time.Sleep(2 * time.Second) // the last batches reach collect
	col.Process.Signal(os.Interrupt)
	<-colDone
	audit := colOut.String()
	tot := regexp.MustCompile(`AUDIT total streams=(\d+) received=(\d+) .*missing=(\d+) .*result=(\w+)`).FindStringSubmatch(audit)
	if colErr != nil || tot == nil || tot[3] != "0" || tot[4] != "OK" {
		t.Fatalf("collect: %v, audit:\n%s", colErr, lastLines(audit, 30))
	}
	t.Logf("collect audit: %s", tot[0])
	events := modelEventsIn(t, filepath.Join(dir, "records.jsonl"))
	for _, id := range ids {
		e, ok := events[id]
		if !ok || e.Kind != shelfv1.EventModelPromoted || e.ModelVersion != 2 || e.PreviousVersion != 1 || !strings.Contains(e.Note, "accuracy") {
			t.Errorf("%s model event %+v, want model_promoted v2 on accuracy", id, e)
		}
	}

	// 6. SKU identification on the fresh scenario's picks: the deployed
	// and the promoted model on the same scan-confirmed windows.
	var fresh []labelledWindow
	for _, id := range ids {
		fresh = append(fresh, csvWindows(t, filepath.Join(samplesDir, "site-retrain", id, "model-v2.csv"), freshFrom[id])...)
	}
	v1 := loadPlateModel(t, deployed, keys.priv)
	v2 := loadPlateModel(t, filepath.Join(dir, "gw-a", "models", "active.sgm"), keys.priv)
	before, _, err := accuracy(v1, fresh)
	if err != nil {
		t.Fatal(err)
	}
	after, _, err := accuracy(v2, fresh)
	if err != nil {
		t.Fatal(err)
	}
	// How often a sample's label names the lane its own window shows
	// (the centre of the settled change, from the window's last sample
	// of each cell): label noise, apart from window noise.
	var v1Samples []labelledWindow
	for _, id := range ids {
		v1Samples = append(v1Samples, csvWindows(t, filepath.Join(samplesDir, "site-retrain", id, "model-v1.csv"), 0)...)
	}
	t.Logf("labels agreeing with their window's centre: %.4f of %d v1 samples, %.4f of %d fresh v2 samples",
		labelAgreement(v1Samples, newFacings), len(v1Samples), labelAgreement(fresh, newFacings), len(fresh))
	// Event F1 (and, for reference, SKU accuracy) in simulated time on
	// a fresh scenario of the shelf, scored against the simulator's truth
	// (shelfctl eval's scoring).
	scen := retrainShelf(977, newFacings, newWidth)
	evBefore, evAfter := evalModel(t, scen, v1), evalModel(t, scen, v2)
	// The same models on evaluate.Windows of that scenario (the training
	// path's windows), picks and puts apart: the gateways label picks
	// only, so the retrained model has seen puts at the new lanes never.
	picks, puts := evalWindows(t, scen)
	for _, m := range []struct {
		name string
		l    *classify.Loaded
	}{{"v1", v1}, {"v2", v2}} {
		pa, _, _ := accuracy(m.l, picks)
		ua, _, _ := accuracy(m.l, puts)
		t.Logf("%s on evaluate.Windows of the fresh scenario: class accuracy %.4f on %d pick windows, %.4f on %d put windows", m.name, pa, len(picks), ua, len(puts))
	}
	t.Logf("fresh scenario, %d scan-confirmed picks on the gateways: SKU identification %.4f (deployed v1) → %.4f (promoted v2)", len(fresh), before, after)
	t.Logf("fresh scenario in simulated time (%d labels): event F1 %.4f → %.4f, SKU accuracy %.4f → %.4f",
		evAfter.Labels, evBefore.F1, evAfter.F1, evBefore.SKUAccuracy, evAfter.SKUAccuracy)
	fmt.Printf("FIGURE retrain_x%d_sku_accuracy=%.4f unit=ratio baseline=%.4f ratio=%.3f\n", run.speed, after, before, after/before)
	fmt.Printf("FIGURE retrain_x%d_event_f1=%.4f unit=ratio baseline=%.4f ratio=%.3f\n", run.speed, evAfter.F1, evBefore.F1, evAfter.F1/evBefore.F1)
	// A loop that does not learn the new lanes stays near the deployed
	// model's third.
	if len(fresh) < 300 || after < run.minAcc || after < before+0.3 {
		t.Errorf("SKU identification %.4f after retraining (deployed %.4f) on %d fresh picks, want ≥ %.2f and ≥ 0.3 above the deployed model's",
			after, before, len(fresh), run.minAcc)
	}
	if evAfter.F1 < 0.98 {
		t.Errorf("event F1 %.4f after retraining, want ≥ 0.98", evAfter.F1)
	}
}

// loadPlateModel loads a signed plate model file.
func loadPlateModel(t *testing.T, path string, priv ed25519.PrivateKey) *classify.Loaded {
	t.Helper()
	l, err := classify.LoadFile(context.Background(), path, []ed25519.PublicKey{priv.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// csvWindows reads the rows of a samples CSV from data row skip on.
func csvWindows(t *testing.T, path string, skip int) []labelledWindow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []labelledWindow
	for _, r := range recs[1+skip:] {
		x := make([]float32, len(r)-1)
		for i, v := range r[:len(r)-1] {
			f, err := strconv.ParseFloat(v, 32)
			if err != nil {
				t.Fatal(err)
			}
			x[i] = float32(f)
		}
		out = append(out, labelledWindow{x: x, label: r[len(r)-1]})
	}
	return out
}

// trainDeployed trains, quantizes and signs the model the gateways start
// with (version 1) from ds, writing it to path and its float model to
// path + ".float.json" (the warm start of the retraining).
func trainDeployed(t *testing.T, ds *train.Dataset, priv ed25519.PrivateKey, path string) {
	t.Helper()
	cfg := train.DefaultConfig()
	cfg.Hidden, cfg.Epochs, cfg.Seed, cfg.Patience = []int{64}, 60, 1, 8
	f, _, err := train.Fit(ds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := quantize.QuantizeContext(context.Background(), f, ds.X[:min(2000, len(ds.X))], quantize.Options{Name: "plates", Version: 1, Golden: 8,
		NewObserver: func() quantize.Observer { return &quantize.Percentile{P: 99.99} }})
	if err != nil {
		t.Fatal(err)
	}
	data, err := model.Encode(q, priv)
	if err != nil {
		t.Fatal(err)
	}
	var fb bytes.Buffer
	if err := f.Save(&fb); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".float.json", fb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// evalModel scores model l on scenario c (one simulated hour).
func evalModel(t *testing.T, c warehouse.Config, l *classify.Loaded) *evaluate.Report {
	t.Helper()
	rep, err := evaluate.Run(context.Background(), evaluate.Options{Name: "fresh", Config: c, Duration: time.Hour, Mode: classify.ModeModel,
		Holder: classify.NewHolder(l), Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// csvRows is the number of data rows of a samples CSV (0 when absent).
func csvRows(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return max(0, bytes.Count(data, []byte("\n"))-1)
}

// modelEventsIn is the last model event of each gateway in collect's
// records file.
func modelEventsIn(t *testing.T, path string) map[string]shelfv1.ModelEvent {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]shelfv1.ModelEvent{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(`"events/model"`)) {
			continue
		}
		var r collectedLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		e, err := shelfv1.DecodeModelEvent(r.Event)
		if err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		out[r.Gateway] = e
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// collectedLine is the part of a line of collect's --out file read here.
type collectedLine struct {
	Gateway string          `json:"gw"`
	Stream  string          `json:"stream"`
	Event   json.RawMessage `json:"event"`
}

// settledRows is rows(2) once it has not changed for a second (what the
// stopped gateways flushed has reached collect).
func settledRows(rows func(uint64) map[string]int) map[string]int {
	last := rows(2)
	for range 20 {
		time.Sleep(time.Second)
		n := rows(2)
		if fmt.Sprint(n) == fmt.Sprint(last) {
			return n
		}
		last = n
	}
	return last
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// labelAgreement is the share of ws whose label is the position bin of
// the lane nearest the centre of the change the window shows (bilinear
// shares of the four cells' last samples), on a plate of facings equal
// lanes.
func labelAgreement(ws []labelledWindow, facings int) float64 {
	win := classify.PlateWindow(classify.ModelRate)
	ok := 0
	for _, w := range ws {
		var d [4]float64
		for c := range d {
			d[c] = float64(w.x[c*win.Samples+win.Samples-1])
		}
		tot := d[0] + d[1] + d[2] + d[3]
		if tot == 0 {
			continue
		}
		u := (d[1] + d[3]) / tot // x / width
		lane := min(facings-1, max(0, int(u*float64(facings))))
		want := classify.BinLabel(classify.BinOf((float64(lane)+0.5)/float64(facings), 1))
		if w.label == want {
			ok++
		}
	}
	return float64(ok) / float64(max(len(ws), 1))
}

// evalWindows is evaluate.Windows of c (one simulated hour), the labelled
// windows of picks and of puts apart (by the sign of the window's settled
// change; the none windows are left out).
func evalWindows(t *testing.T, c warehouse.Config) (picks, puts []labelledWindow) {
	t.Helper()
	ds, err := evaluate.Windows(context.Background(), evaluate.Options{Name: "fresh", Config: c, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	win := classify.PlateWindow(classify.ModelRate)
	for i, x := range ds.X {
		label := ds.Labels[ds.Y[i]]
		if label == classify.NoneLabel {
			continue
		}
		var tot float32
		for c := range 4 {
			tot += x[c*win.Samples+win.Samples-1]
		}
		w := labelledWindow{x: x, label: label}
		if tot < 0 {
			picks = append(picks, w)
		} else {
			puts = append(puts, w)
		}
	}
	return picks, puts
}
