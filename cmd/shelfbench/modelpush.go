package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/modelsync/rollout"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
	"github.com/shelfgate/shelfgate/model"
)

// modelPush (shelfbench modelpush) measures model sync over mosquitto:
//   - modelpush_throughput: a model pushed to one gateway (offer to
//     promoted, signature and golden checks included; the median of at
//     least --reps pushes, back to back for 3 s), beside raw QoS1
//     publishes of the same bytes in blocks of the same size;
//   - modelpush_all_promoted: push to three gateways (one canary) until
//     all promoted, beside raw QoS1 publishes of three copies;
//   - modelpush_telemetry_during: readings/s delivered by a gateway
//     producing at --rate during those back-to-back pushes, beside 3 s
//     without a transfer.
func modelPush(args []string) error {
	fs := flag.NewFlagSet("modelpush", flag.ContinueOnError)
	size := fs.Int("size", 5<<20, "model size in bytes")
	rate := fs.Int("rate", 5000, "telemetry readings/s each gateway produces")
	window := fs.Int("window", 0, "blocks a gateway asks for at once (0: the Syncer's default)")
	reps := fs.Int("reps", 3, "runs of each measurement (the median is reported)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the pushes (cloud and gateways) here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	url, stopBroker, err := startMosquitto()
	if err != nil {
		return err
	}
	defer stopBroker()
	_, priv, err := modelsync.GenerateKey(nil)
	if err != nil {
		return err
	}
	pub := priv.Public().(ed25519.PublicKey)
	// The pushed files (versions 2, 3, ...) are made before anything is
	// timed: building and signing a 5 MB model is the bench's own CPU work,
	// and inside the telemetry window it would count against telemetry (made
	// before the gateways start, so their producers are not behind either).
	// The one-gateway pushes go on until the telemetry window is as long
	// as the idle one (at most maxOne of them).
	const telemetryWindow = 3 * time.Second
	maxOne := max(*reps, 12)
	files := map[uint64][]byte{}
	for v := uint64(2); v < uint64(2+maxOne+max(*reps, 1)); v++ {
		if files[v], err = rollout.SyntheticModel("bench", v, *size, v, priv); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "shelfbench-modelpush")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cloud := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bench-cloud").SetOrderMatters(false))
	if t := cloud.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("cloud connect: %v", t.Error())
	}
	defer cloud.Disconnect(100)

	// Raw baseline: the model's bytes in DefaultBlockSize QoS1 messages,
	// 64 in flight, to one subscriber.
	file, err := rollout.SyntheticModel("bench", 2, *size, 2, priv)
	if err != nil {
		return err
	}
	raw := func(copies int) (time.Duration, error) {
		var got atomic.Int64
		sub, err := subscribe(url, "bench/raw/#", func(p []byte) { got.Add(int64(len(p))) })
		if err != nil {
			return 0, err
		}
		defer sub.Disconnect(100)
		start := time.Now()
		var toks []paho.Token
		for c := range copies {
			for off := 0; off < len(file); off += modelsync.DefaultBlockSize {
				toks = append(toks, cloud.Publish(fmt.Sprintf("bench/raw/%d", c), 1, false, file[off:min(off+modelsync.DefaultBlockSize, len(file))]))
				if len(toks) == 64 {
					for _, t := range toks {
						t.Wait()
					}
					toks = toks[:0]
				}
			}
		}
		for _, t := range toks {
			t.Wait()
		}
		if err := waitCount(&got, int64(copies*len(file)), time.Minute); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	var gws []*benchGateway
	for i := range 3 {
		g, err := startBenchGateway(url, filepath.Join(dir, fmt.Sprintf("gw-%d", i+1)), fmt.Sprintf("gw-%d", i+1), pub, *rate, *window)
		if err != nil {
			return err
		}
		defer g.stop()
		gws = append(gws, g)
	}
	time.Sleep(time.Second)
	// Baselines under the same load: the gateways run and produce.
	raw1, err := median(*reps, func() (time.Duration, error) { return raw(1) })
	if err != nil {
		return err
	}
	raw3, err := median(*reps, func() (time.Duration, error) { return raw(3) })
	if err != nil {
		return err
	}
	push := func(v uint64, gws []*benchGateway, canary int) (time.Duration, error) {
		f := files[v]
		var ids []string
		for _, g := range gws {
			ids = append(ids, g.id)
		}
		man := modelsync.NewManifest("bench", v, f, 0, modelsync.Target{Site: "bench", Gateways: ids}, time.Now().Add(time.Hour))
		offer, err := modelsync.SignManifest(man, priv)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		var lastServed time.Duration
		progress := func(p rollout.Progress) {
			if p.Served == p.Blocks && p.Outcome == "" && lastServed == 0 {
				lastServed = time.Since(start)
			}
		}
		res, err := rollout.Run(context.Background(), cloud, rollout.Plan{Site: "bench", Gateways: ids, Canary: canary, Offer: offer, Manifest: man, File: f, Idle: time.Minute, Progress: progress})
		if len(gws) == 1 {
			fmt.Printf("# version %d: last block served after %.2fs, promoted after %.2fs (verify, stage and promote %.2fs)\n", v, lastServed.Seconds(), time.Since(start).Seconds(), (time.Since(start) - lastServed).Seconds())
		}
		if err != nil {
			return 0, err
		}
		if !res.AllPromoted() {
			return 0, fmt.Errorf("push of version %d: %+v", v, res)
		}
		return time.Since(start), nil
	}

	// Telemetry without a transfer (3s), then during back-to-back
	// transfers to gw-1 for as long (a window of a few short pushes would
	// weigh the delivery lag at its edges, not the rate).
	g1 := gws[0]
	d0, t0 := g1.delivered(), time.Now()
	time.Sleep(telemetryWindow)
	idleRate := float64(g1.delivered()-d0) / time.Since(t0).Seconds()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	d1, t1 := g1.delivered(), time.Now()
	// The outbox backlog of gw-1 is sampled during the pushes: telemetry
	// keeps flowing when it stays small (the rate alone hides a stall that
	// the producer makes up for).
	var maxBacklog atomic.Int64
	sctx, stopSample := context.WithCancel(context.Background())
	defer stopSample()
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
				if b := g1.ob.Backlog(); b > maxBacklog.Load() {
					maxBacklog.Store(b)
				}
			}
		}
	}()
	v := uint64(1)
	var ones []time.Duration
	for len(ones) < max(*reps, 1) || (time.Since(t1) < telemetryWindow && len(ones) < maxOne) {
		v++
		d, err := push(v, gws[:1], 0)
		if err != nil {
			return err
		}
		ones = append(ones, d)
	}
	duringRate := float64(g1.delivered()-d1) / time.Since(t1).Seconds()
	stopSample()
	<-sampled
	slices.Sort(ones)
	one := ones[len(ones)/2]
	fmt.Printf("# telemetry: %d pushes to gw-1 in %.2fs, its outbox backlog at most %d readings (%.0f ms at --rate)\n",
		len(ones), time.Since(t1).Seconds(), maxBacklog.Load(), float64(maxBacklog.Load())/float64(*rate)*1000)
	all, err := median(*reps, func() (time.Duration, error) { v++; return push(v, gws, 1) })
	if err != nil {
		return err
	}
	mb := float64(len(file)) / 1e6
	fmt.Printf("# model %d bytes, %d blocks of %d; one gateway %.2fs, raw %.2fs; three gateways %.2fs, raw x3 %.2fs\n",
		len(file), (len(file)+modelsync.DefaultBlockSize-1)/modelsync.DefaultBlockSize, modelsync.DefaultBlockSize, one.Seconds(), raw1.Seconds(), all.Seconds(), raw3.Seconds())
	figureF("modelpush_throughput", mb/one.Seconds(), "MB/s", mb/raw1.Seconds())
	figureF("modelpush_all_promoted", all.Seconds(), "s", raw3.Seconds())
	figure("modelpush_telemetry_during", duringRate, "readings/s", idleRate)
	for _, g := range gws {
		g.stopProd()
		if err := g.waitDrained(time.Minute); err != nil {
			return err
		}
		fmt.Printf("# %s produced %d readings, delivered %d, backlog %d\n", g.id, g.produced.Load(), g.delivered(), g.ob.Backlog())
	}
	return nil
}

// median runs f n times and returns the median duration.
func median(n int, f func() (time.Duration, error)) (time.Duration, error) {
	var ds []time.Duration
	for range max(n, 1) {
		d, err := f()
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// benchGateway is a gateway's delivery half with model sync: outbox,
// uplink, router, model store and Syncer (as cmd/shelfgate wires them),
// and a producer of telemetry at a fixed rate.
type benchGateway struct {
	id       string
	ob       *outbox.Outbox
	up       *uplink.Uplink
	store    *modelsync.Store
	produced atomic.Int64
	stopProd func()
	stop     func()
}

func startBenchGateway(url, dir, id string, key ed25519.PublicKey, rate, window int) (*benchGateway, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.DefaultOptions)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	router := downlink.New(log)
	g := &benchGateway{id: id, ob: ob}
	topics := shelfv1.Topics{Site: "bench", Gateway: id}
	g.up, err = uplink.New(ob, uplink.Options{Brokers: []string{url}, Topics: topics, Downlink: router, Logger: log})
	if err != nil {
		return nil, err
	}
	keys := []ed25519.PublicKey{key}
	g.store, err = modelsync.OpenStore(context.Background(), filepath.Join(dir, "models"), modelsync.StoreOptions{Decode: model.DecodeOptions{TrustedKeys: keys}})
	if err != nil {
		return nil, err
	}
	mt := modelsync.Topics{Site: "bench", Gateway: id}
	syncer := modelsync.New(g.store, benchRequester{up: g.up, t: mt}, modelsync.Config{Site: "bench", Gateway: id, TrustedKeys: keys, Quiet: time.Second, Window: window})
	reject := func(err error) error {
		if err != nil {
			return downlink.Reject(modelsync.Code(err), err)
		}
		return nil
	}
	router.Handle(mt.Offer(), downlink.HandlerFunc(func(ctx context.Context, m downlink.Message) error { return reject(syncer.Offer(ctx, m.Payload)) }),
		downlink.Options{Name: "model-offers", MaxPayload: modelsync.MaxOfferBytes})
	router.Handle(mt.Block(), downlink.HandlerFunc(func(ctx context.Context, m downlink.Message) error { return reject(syncer.Block(ctx, m.Payload)) }),
		downlink.Options{Name: "model-blocks", MaxPayload: modelsync.MaxBlockPayload})
	ctx, cancel := context.WithCancel(context.Background())
	upDone, syncDone := make(chan error, 1), make(chan error, 1)
	go func() { upDone <- g.up.Run(ctx) }()
	go func() { syncDone <- syncer.Run(ctx) }()
	pctx, stopProd := context.WithCancel(ctx)
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		const group = 100
		recs := make([]gateway.Record, group)
		start := time.Now()
		for sent := 0; pctx.Err() == nil; sent += group {
			if d := time.Until(start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
			now := time.Now()
			for i := range recs {
				recs[i] = gateway.Record{Class: gateway.ClassTelemetry, Stream: "loadcell/a", Time: now, Value: float64(i), Unit: "g"}
			}
			if ob.Append(context.Background(), recs) != nil {
				return
			}
			g.produced.Add(group)
		}
	}()
	g.stopProd = func() { stopProd(); <-prodDone }
	g.stop = func() {
		g.stopProd()
		cancel()
		<-upDone
		<-syncDone
		g.store.Close()
		ob.Close()
	}
	return g, nil
}

func (g *benchGateway) delivered() int64 { return g.up.Stats().Delivered }

func (g *benchGateway) waitDrained(d time.Duration) error {
	deadline := time.Now().Add(d)
	for g.ob.Backlog() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: backlog %d after %s", g.id, g.ob.Backlog(), d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// benchRequester publishes requests and the retained status over the uplink.
type benchRequester struct {
	up *uplink.Uplink
	t  modelsync.Topics
}

func (r benchRequester) RequestBlocks(_ context.Context, q modelsync.Request) error {
	return r.up.Publish(r.t.Request(), q.Payload())
}

func (r benchRequester) PublishStatus(_ context.Context, st modelsync.Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return r.up.PublishRetained(r.t.Status(), b)
}
