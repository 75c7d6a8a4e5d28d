package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/faultproxy"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/modelsync/rollout"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

const msSite = "site-ms"

// msKeys is the cloud's signing key, written as the gateways' trusted key
// file, and a key the gateways do not trust.
type msKeys struct {
	priv, other ed25519.PrivateKey
	pubPath     string
}

func newMSKeys(t *testing.T) msKeys {
	t.Helper()
	_, priv, _ := modelsync.GenerateKey(nil)
	_, other, _ := modelsync.GenerateKey(nil)
	pem, err := modelsync.MarshalPublicKeyPEM(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "signer.pub")
	if err := os.WriteFile(p, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return msKeys{priv: priv, other: other, pubPath: p}
}

// msGateway is a gateway's delivery half plus model sync as run() wires
// them, with a producer appending telemetry to its outbox.
type msGateway struct {
	id       string
	ob       *outbox.Outbox
	up       *uplink.Uplink
	router   *downlink.Router
	ms       *modelSync
	logs     *logBuffer
	produced atomic.Int64
	stopProd func()
	stop     func()
}

func startMSGateway(t *testing.T, url, id string, keys msKeys, bundled string) *msGateway {
	t.Helper()
	dir := t.TempDir()
	cfg := &config.Config{
		Gateway: config.Gateway{ID: id, Site: msSite},
		Outbox:  config.Outbox{Path: filepath.Join(dir, "outbox.db")},
		Models:  config.ModelSync{TrustedKeys: []string{keys.pubPath}, Quiet: time.Second, MaxRounds: 5, BundledModel: bundled},
	}
	if es := cfg.Models.Validate(cfg); len(es) > 0 {
		t.Fatal(es)
	}
	ob, err := outbox.Open(cfg.Outbox.Path, outbox.DefaultOptions)
	if err != nil {
		t.Fatal(err)
	}
	g := &msGateway{id: id, ob: ob, logs: &logBuffer{}}
	log := slog.New(slog.NewTextHandler(g.logs, nil))
	g.router = downlink.New(log)
	topics := shelfv1.Topics{Site: msSite, Gateway: id}
	key, err := ob.Secret(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g.up, err = uplink.New(ob, uplink.Options{Brokers: []string{url}, Topics: topics, BatchKey: key, Downlink: g.router, Logger: log,
		ClientID: "gw-" + id, BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, KeepAlive: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := registerDownlink(g.router, topics, ob, g.up, builtinCommands(nil), false, log); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ms, stopModels, err := startModelSync(ctx, cfg, g.router, g.up, nil, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	g.ms = ms
	done := make(chan error, 1)
	go func() { done <- g.up.Run(ctx) }()
	pctx, stopProd := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Go(func() { g.produce(t, pctx) })
	g.stopProd = func() { stopProd(); pwg.Wait() }
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			g.stopProd()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("uplink: %v", err)
			}
			stopModels()
			if err := ob.Close(); err != nil {
				t.Errorf("close outbox: %v", err)
			}
		})
	}
	t.Cleanup(g.stop)
	return g
}

// produce appends 50 telemetry readings every 10ms until ctx is done.
func (g *msGateway) produce(t *testing.T, ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		recs := make([]gateway.Record, 50)
		for i := range recs {
			recs[i] = gateway.Record{Class: gateway.ClassTelemetry, Stream: "loadcell/s/b0", Time: time.Now(), Value: float64(i), Unit: "g"}
		}
		if err := g.ob.Append(context.Background(), recs); err != nil {
			t.Errorf("append: %v", err)
			return
		}
		g.produced.Add(int64(len(recs)))
	}
}

// drained stops the producer and waits until every reading was delivered.
func (g *msGateway) drained(t *testing.T) {
	t.Helper()
	g.stopProd()
	dlWait(t, g.id+" telemetry backlog delivered", 60*time.Second, func() bool { return g.ob.Backlog() == 0 })
	if d, p := g.up.Stats().Delivered, g.produced.Load(); d < p {
		t.Fatalf("%s: delivered %d of %d readings", g.id, d, p)
	}
}

func (g *msGateway) active() uint64 { _, v := g.ms.store.Active(); return v }

// msModel writes a signed model file of about size bytes at version v.
func msModel(t *testing.T, v uint64, size int, key ed25519.PrivateKey) []byte {
	t.Helper()
	data, err := rollout.SyntheticModel("shelf-mlp", v, size, v, key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.sgm")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// msPlan signs a manifest for file (targeting gws) with key.
func msPlan(t *testing.T, file []byte, v uint64, gws []string, key ed25519.PrivateKey) rollout.Plan {
	t.Helper()
	man := modelsync.NewManifest("shelf-mlp", v, file, modelsync.DefaultBlockSize,
		modelsync.Target{Site: msSite, Gateways: gws}, time.Now().Add(24*time.Hour))
	offer, err := modelsync.SignManifest(man, key)
	if err != nil {
		t.Fatal(err)
	}
	return rollout.Plan{Site: msSite, Gateways: gws, Offer: offer, Manifest: man, File: file, Idle: 30 * time.Second}
}

func cloudClient(t *testing.T, url string) paho.Client {
	return mqttClient(t, url, fmt.Sprintf("cloud-%d", time.Now().UnixNano()))
}

func waitOnline(t *testing.T, gws ...*msGateway) {
	for _, g := range gws {
		dlWait(t, g.id+" connected", 20*time.Second, func() bool { return g.up.Stats().Connected })
	}
	time.Sleep(200 * time.Millisecond) // subscriptions follow the birth status
}

// TestModelPushThreeGateways pushes a 5 MB model to three gateways (one
// canary, then two) over mosquitto while each produces telemetry: all
// promote, and every reading produced during the transfer is delivered.
func TestModelPushThreeGateways(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL
	keys := newMSKeys(t)
	bundled := writeFile(t, msModel(t, 1, 16<<10, keys.priv))
	var gws []*msGateway
	var ids []string
	for i := range 3 {
		g := startMSGateway(t, url, fmt.Sprintf("gw-%02d", i+1), keys, bundled)
		if g.active() != 1 {
			t.Fatalf("%s: bundled model not active (version %d)", g.id, g.active())
		}
		gws, ids = append(gws, g), append(ids, g.id)
	}
	waitOnline(t, gws...)
	file := msModel(t, 2, 5<<20, keys.priv)
	plan := msPlan(t, file, 2, ids, keys.priv)
	plan.Canary = 1
	var order []string
	var mu sync.Mutex
	plan.Progress = func(p rollout.Progress) {
		if p.Outcome != "" {
			mu.Lock()
			order = append(order, p.Gateway+":"+p.Outcome)
			mu.Unlock()
		}
	}
	var before []int64
	for _, g := range gws {
		before = append(before, g.up.Stats().Delivered)
	}
	res, err := rollout.Run(context.Background(), cloudClient(t, url), plan)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range gws {
		if d := g.up.Stats().Delivered - before[i]; d == 0 {
			t.Errorf("%s delivered no telemetry during the rollout", g.id)
		} else {
			t.Logf("%s delivered %d readings during the rollout", g.id, d)
		}
	}
	for _, p := range res {
		t.Logf("%s %s blocks %d/%d resent %d in %s %s", p.Gateway, p.Outcome, p.Served, p.Blocks, p.Resent, p.Finished.Sub(p.Started).Round(time.Millisecond), p.Reason)
	}
	if !res.AllPromoted() {
		t.Fatalf("not all promoted: %+v", res)
	}
	if len(order) == 0 || order[0] != "gw-01:promoted" {
		t.Errorf("the canary did not finish first: %v", order)
	}
	if !res[1].Started.After(res[0].Finished.Add(-time.Millisecond)) {
		t.Errorf("gw-02 offered at %s before the canary promoted at %s", res[1].Started, res[0].Finished)
	}
	for _, g := range gws {
		if g.active() != 2 || g.ms.store.Live().Load().Version != 2 {
			t.Errorf("%s: active %d, live %d", g.id, g.active(), g.ms.store.Live().Load().Version)
		}
		g.drained(t)
		if g.produced.Load() == 0 {
			t.Errorf("%s produced no telemetry", g.id)
		}
	}
}

// TestModelPushResumesAfterCut cuts the gateway's link when half of a 5 MB
// model has been served: the transfer resumes from the blocks held (block
// 0 is not sent again), with at most two windows re-sent, and promotes.
func TestModelPushResumesAfterCut(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	proxy, err := faultproxy.New(strings.TrimPrefix(mq.URL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	keys := newMSKeys(t)
	g := startMSGateway(t, proxy.URL(), "gw-cut", keys, writeFile(t, msModel(t, 1, 16<<10, keys.priv)))
	waitOnline(t, g)
	file := msModel(t, 2, 5<<20, keys.priv)
	plan := msPlan(t, file, 2, []string{g.id}, keys.priv)
	var cut atomic.Bool
	plan.Progress = func(p rollout.Progress) {
		if p.Served >= p.Blocks/2 && cut.CompareAndSwap(false, true) {
			go proxy.Cut()
		}
	}
	var mu sync.Mutex
	sends := map[int]int{} // block index -> times sent
	plan.Tamper = func(_ string, i int, b []byte) []byte {
		mu.Lock()
		sends[i]++
		mu.Unlock()
		return b
	}
	res, err := rollout.Run(context.Background(), cloudClient(t, mq.URL), plan)
	if err != nil {
		t.Fatal(err)
	}
	p := res[0]
	t.Logf("outcome %s, %d blocks, %d re-sent, gateway connects %d, %s", p.Outcome, p.Blocks, p.Resent, g.up.Stats().Connects, p.Reason)
	if !cut.Load() || g.up.Stats().Connects < 2 {
		t.Fatalf("link was not cut (cut %v, connects %d)", cut.Load(), g.up.Stats().Connects)
	}
	if p.Outcome != rollout.Promoted || g.active() != 2 {
		t.Logf("gateway log:\n%s", g.logs.String())
		t.Fatalf("outcome %s, active %d", p.Outcome, g.active())
	}
	// A restart from zero asks for block 0 again. A resume does not: the
	// gateway asks beyond its first window (64 blocks of 32 KiB) only when
	// a quarter of it arrived, in order, so at the cut (half served)
	// blocks 0-15 are held. Re-sent are the blocks asked for and lost at
	// the cut: at most a window, once more when a re-ask is lost too.
	mu.Lock()
	first := sends[0]
	mu.Unlock()
	if first != 1 {
		t.Fatalf("block 0 sent %d times: the transfer restarted instead of resuming (%d of %d blocks re-sent)", first, p.Resent, p.Blocks)
	}
	if p.Resent > 2*64 {
		t.Fatalf("%d of %d blocks re-sent after the cut, more than two windows", p.Resent, p.Blocks)
	}
	g.drained(t)
}

// TestModelPushRejections: a file signed by an untrusted key, an older
// version and a file whose bytes do not match the signed manifest are
// each rejected with their reason while the old model keeps serving.
func TestModelPushRejections(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL
	keys := newMSKeys(t)
	g := startMSGateway(t, url, "gw-rej", keys, writeFile(t, msModel(t, 3, 16<<10, keys.priv)))
	waitOnline(t, g)
	cloud := cloudClient(t, url)
	corrupt := msModel(t, 5, 256<<10, keys.priv)
	cases := []struct {
		name string
		plan rollout.Plan
		code string
	}{
		{"file signed by an untrusted key", msPlan(t, msModel(t, 4, 256<<10, keys.other), 4, []string{g.id}, keys.priv), "bad-signature"},
		{"offer signed by an untrusted key", msPlan(t, msModel(t, 4, 256<<10, keys.priv), 4, []string{g.id}, keys.other), "unknown-key"},
		{"older version", msPlan(t, msModel(t, 2, 64<<10, keys.priv), 2, []string{g.id}, keys.priv), "rollback"},
		{"corrupt block", func() rollout.Plan {
			p := msPlan(t, corrupt, 5, []string{g.id}, keys.priv)
			bad := append([]byte(nil), corrupt...)
			bad[len(bad)/2] ^= 0xff // blocks are self-consistent; the signed SHA-256 is not
			p.File = bad
			return p
		}(), "hash-mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := rollout.Run(context.Background(), cloud, tc.plan)
			if err != nil {
				t.Fatal(err)
			}
			p := res[0]
			t.Logf("%s: %s %s %s", tc.name, p.Outcome, p.Code, p.Reason)
			if p.Outcome != rollout.Rejected || p.Code != tc.code || p.Reason == "" {
				t.Fatalf("outcome %s code %q reason %q, want rejected %s", p.Outcome, p.Code, p.Reason, tc.code)
			}
			if g.active() != 3 || g.ms.store.Live().Load().Version != 3 {
				t.Fatalf("active model %d after a rejection, want 3", g.active())
			}
		})
	}
	g.drained(t)
}

// TestModelPushCorruptBlocks: a block damaged in transit once is dropped,
// counted and asked for again, and the model promotes; a block damaged
// every time fails the transfer after the unanswered rounds, reported as
// rejected (transfer-failed) while the old model keeps serving.
func TestModelPushCorruptBlocks(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL
	keys := newMSKeys(t)
	g := startMSGateway(t, url, "gw-corrupt", keys, writeFile(t, msModel(t, 1, 16<<10, keys.priv)))
	waitOnline(t, g)
	cloud := cloudClient(t, url)
	damage := func(b []byte) []byte {
		d := append([]byte(nil), b...)
		d[len(d)-1] ^= 0x55 // data no longer matches the block's SHA-256
		return d
	}
	corrupted := func() int64 { return g.handler(t, "model-blocks").Rejected["corrupt-block"] }

	plan := msPlan(t, msModel(t, 2, 512<<10, keys.priv), 2, []string{g.id}, keys.priv)
	var once atomic.Bool
	plan.Tamper = func(_ string, i int, b []byte) []byte {
		if i == 3 && once.CompareAndSwap(false, true) {
			return damage(b)
		}
		return b
	}
	res, err := rollout.Run(context.Background(), cloud, plan)
	if err != nil {
		t.Fatal(err)
	}
	if p := res[0]; p.Outcome != rollout.Promoted || p.Resent < 1 || corrupted() != 1 || g.active() != 2 {
		t.Fatalf("damaged once: outcome %s, resent %d, corrupt-block rejections %d, active %d", p.Outcome, p.Resent, corrupted(), g.active())
	}

	plan = msPlan(t, msModel(t, 3, 512<<10, keys.priv), 3, []string{g.id}, keys.priv)
	plan.Tamper = func(_ string, i int, b []byte) []byte {
		if i == 5 {
			return damage(b)
		}
		return b
	}
	res, err = rollout.Run(context.Background(), cloud, plan)
	if err != nil {
		t.Fatal(err)
	}
	p := res[0]
	t.Logf("damaged always: %s %s %s", p.Outcome, p.Code, p.Reason)
	if p.Outcome != rollout.Rejected || p.Code != "transfer-failed" || !strings.Contains(p.Reason, "corrupt block") || g.active() != 2 {
		t.Fatalf("damaged always: outcome %s code %s reason %q, active %d", p.Outcome, p.Code, p.Reason, g.active())
	}
	g.drained(t)
}

// msGateway handler stats by name.
func (g *msGateway) handler(t *testing.T, name string) downlink.HandlerStats {
	t.Helper()
	for _, h := range g.router.Stats() {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no handler %q", name)
	return downlink.HandlerStats{}
}

// TestModelFlood sends 3,000 offers, blocks and commands (a third
// malformed, some oversized) while the gateway produces telemetry: every
// reading is delivered and every flood message is counted as handled or
// rejected. (10,000 took 106 s under -race, the broker dropping a fifth
// of them past its queue limit, and found nothing 3,000 does not.)
func TestModelFlood(t *testing.T) {
	url := mqtttest.StartMosquitto(t).URL
	keys := newMSKeys(t)
	g := startMSGateway(t, url, "gw-flood", keys, writeFile(t, msModel(t, 1, 16<<10, keys.priv)))
	waitOnline(t, g)
	cloud := cloudClient(t, url)
	mt := modelsync.Topics{Site: msSite, Gateway: g.id}
	cmd := shelfv1.Topics{Site: msSite, Gateway: g.id}.Base() + "/cmd/ping"
	olderPlan := msPlan(t, msModel(t, 1, 8<<10, keys.priv), 1, []string{g.id}, keys.priv)
	big := make([]byte, modelsync.MaxOfferBytes+1)
	blockBig := make([]byte, modelsync.MaxBlockPayload+1)
	const n = 3000
	var toks []paho.Token
	for i := range n {
		var topic string
		var p []byte
		switch i % 6 {
		case 0:
			topic, p = mt.Offer(), []byte(`{"manifest":"bm90IGpzb24=","sig":"","key":"x"}`)
		case 1:
			topic, p = mt.Offer(), olderPlan.Offer
		case 2:
			topic, p = mt.Block(), modelsync.EncodeBlock(9, i%100, []byte("stray block"))
		case 3:
			topic, p = cmd, []byte(fmt.Sprintf(`{"id":"flood-%d"}`, i))
		case 4:
			topic, p = cmd, []byte(`not json`)
		case 5:
			if i%12 == 5 {
				topic, p = mt.Offer(), big
			} else {
				topic, p = mt.Block(), blockBig
			}
		}
		toks = append(toks, cloud.Publish(topic, 1, false, p))
		if len(toks) == 256 {
			for _, tok := range toks {
				tok.WaitTimeout(20 * time.Second)
			}
			toks = toks[:0]
		}
	}
	for _, tok := range toks {
		tok.WaitTimeout(20 * time.Second)
	}
	total := func() (recv, settled int64) {
		for _, h := range g.router.Stats() {
			recv += h.Received
			settled += h.Handled
			for _, v := range h.Rejected {
				settled += v
			}
		}
		return
	}
	// The broker may drop QoS1 messages beyond its queue limit for a slow
	// subscriber; what reaches the router must all be settled.
	last, stableSince := int64(-1), time.Now()
	dlWait(t, "every flood message received handled or rejected", 120*time.Second, func() bool {
		r, s := total()
		if r != last {
			last, stableSince = r, time.Now()
		}
		return r >= n || (s == r && time.Since(stableSince) > 3*time.Second)
	})
	dlWait(t, "every received flood message settled", 60*time.Second, func() bool { r, s := total(); return s == r })
	if r, _ := total(); r < n/2 {
		t.Fatalf("router received %d of %d flood messages", r, n)
	}
	for _, h := range g.router.Stats() {
		t.Logf("%s: received %d handled %d rejected %v", h.Name, h.Received, h.Handled, h.Rejected)
	}
	if g.active() != 1 {
		t.Fatalf("active model %d after the flood", g.active())
	}
	g.drained(t)
	t.Logf("telemetry: %d readings produced and delivered during the flood", g.produced.Load())
}
