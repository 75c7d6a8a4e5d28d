package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/collect"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

const fleetUsage = "shelfsim fleet [-n N] [--broker URL [--restart-cmd CMD]] [--rate R] [--streams S] [--steady D] [--down D] [--after D] [--collectors C] [--dir DIR]"

// fleetConfig is what `shelfsim fleet` runs.
type fleetConfig struct {
	N          int           // simulated gateways
	Broker     string        // "" = start a mosquitto of our own (and restart it)
	RestartCmd string        // with Broker: a shell command that restarts it ("" = no restart)
	Rate       float64       // readings/s per gateway
	Streams    int           // load-cell streams per gateway
	Tick       time.Duration // how often a simulated source emits (one commit per tick)
	Steady     time.Duration // measured steady state before the restart
	Down       time.Duration // how long our own broker stays down
	After      time.Duration // running time after the last gateway reconnected
	Collectors int           // members of the $share group
	BackoffMax time.Duration // the uplinks' reconnect backoff cap
	Dir        string        // outboxes go here ("" = a temporary directory, removed)
	Site       string
	// ConsumerAcks: gateways keep rows until the collectors confirm them
	// (uplink ack_mode consumer), so a broker restart costs re-sends, not
	// rows. Without it rows go at the broker's PUBACK, and whatever the
	// broker had not handed on when it stopped is lost.
	ConsumerAcks bool
	MemProfile   string        // heap profile written in steady state ("" = none)
	AckTimeout   time.Duration // consumer_ack_timeout of every gateway
}

func parseFleetFlags(args []string, stderr io.Writer) (fleetConfig, error) {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := fleetConfig{Site: "fleet", Tick: 250 * time.Millisecond}
	fs.IntVar(&c.N, "n", 500, "simulated gateways in this process")
	fs.StringVar(&c.Broker, "broker", "", "MQTT broker URL (tcp://host:port); empty starts a mosquitto of its own on a free loopback port")
	fs.StringVar(&c.RestartCmd, "restart-cmd", "", "with --broker: shell command that restarts the broker for the reconnect storm (empty: no restart)")
	fs.Float64Var(&c.Rate, "rate", 20, "readings/s per gateway")
	fs.IntVar(&c.Streams, "streams", 4, "load-cell streams per gateway")
	fs.DurationVar(&c.Steady, "steady", 20*time.Second, "measured steady state before the broker restart")
	fs.DurationVar(&c.Down, "down", 3*time.Second, "how long the broker stays down (own broker only)")
	fs.DurationVar(&c.After, "after", 5*time.Second, "running time after the last gateway reconnected")
	fs.IntVar(&c.Collectors, "collectors", 2, "collectors in the $share group")
	fs.DurationVar(&c.BackoffMax, "backoff-max", 10*time.Second, "the uplinks' reconnect backoff cap (uplink default 10s)")
	acks := fs.String("acks", "consumer", "consumer (rows kept until the collectors confirm them) or broker (rows deleted at the broker's PUBACK)")
	fs.DurationVar(&c.AckTimeout, "ack-timeout", 30*time.Second, "with --acks consumer: re-send rows unconfirmed this long (the uplink's consumer_ack_timeout; 5s made a saturated 500-gateway run re-send 4x what it committed)")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write a heap profile here in steady state")
	fs.StringVar(&c.Dir, "dir", "", "directory for the outboxes (default: a temporary directory, removed afterwards)")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("%w: %v", errUsage, err)
	}
	switch *acks {
	case "consumer":
		c.ConsumerAcks = true
	case "broker":
	default:
		return c, fmt.Errorf("%w: --acks %q: want consumer or broker", errUsage, *acks)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q; %s", errUsage, fs.Arg(0), fleetUsage)
	}
	switch {
	case c.N < 1 || c.N > 100000:
		return c, fmt.Errorf("%w: -n %d: want 1-100000", errUsage, c.N)
	case c.Rate <= 0 || math.IsInf(c.Rate, 0) || c.Rate > 100000:
		return c, fmt.Errorf("%w: --rate %v: want readings/s in (0, 100000]", errUsage, c.Rate)
	case c.Streams < 1 || c.Streams > 1000:
		return c, fmt.Errorf("%w: --streams %d: want 1-1000", errUsage, c.Streams)
	case c.Collectors < 1 || c.Collectors > 64:
		return c, fmt.Errorf("%w: --collectors %d: want 1-64", errUsage, c.Collectors)
	case c.Steady <= 0:
		return c, fmt.Errorf("%w: --steady %s: want > 0", errUsage, c.Steady)
	case c.Down < 0 || c.After < 0:
		return c, fmt.Errorf("%w: --down %s / --after %s: want >= 0", errUsage, c.Down, c.After)
	case c.AckTimeout < time.Second:
		return c, fmt.Errorf("%w: --ack-timeout %s: want >= 1s", errUsage, c.AckTimeout)
	case c.BackoffMax < 500*time.Millisecond:
		return c, fmt.Errorf("%w: --backoff-max %s: want >= 500ms", errUsage, c.BackoffMax)
	case c.Broker != "" && !strings.Contains(c.Broker, "://"):
		return c, fmt.Errorf("%w: --broker %q: want tcp://host:port", errUsage, c.Broker)
	case c.Broker == "" && c.RestartCmd != "":
		return c, fmt.Errorf("%w: --restart-cmd needs --broker (without it the fleet restarts its own mosquitto)", errUsage)
	}
	return c, nil
}

// fleetResult is what a fleet run measured.
type fleetResult struct {
	Gateways         int
	Offered          float64 // readings/s the sources were asked for
	Collected        float64 // distinct readings/s the collectors received in steady state
	RSSBytes         int64   // VmRSS of this process in steady state
	HWMBytes         int64   // VmHWM at the end
	FDs              int     // open descriptors in steady state
	Restarted        bool
	Reconnects       []time.Duration // per gateway, after the broker was back (sorted)
	PeakPer100ms     int             // most reconnects in one 100 ms bucket
	BrokerUp         bool            // the broker process survived the storm
	Committed        uint64          // readings committed by all gateways (sum of last seqs)
	Audit            collect.Audit
	TailMismatches   int // streams whose last collected seq is not the outbox's last seq
	CollectedRecords int64
}

func runFleetCmd(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFleetFlags(args, stderr)
	if err != nil {
		return err
	}
	raiseNoFile()
	ctx, stop := signalContext()
	defer stop()
	res, err := runFleet(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	printFleetFigures(stdout, cfg, res)
	if !res.Audit.OK() || res.TailMismatches > 0 || (res.Restarted && len(res.Reconnects) < res.Gateways) || !res.BrokerUp {
		return errors.New("fleet: FAIL (see above)")
	}
	return nil
}

// raiseNoFile lifts the soft descriptor limit to the hard one: each
// gateway holds a socket and its SQLite files.
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

type simGateway struct {
	name string
	ob   *outbox.Outbox
	up   *uplink.Uplink
	gw   *gateway.Gateway
	done chan error
}

// runFleet runs cfg.N gateways (gateway.Gateway + outbox + uplink each,
// with a simulated source instead of sensors) against one broker, restarts
// the broker, and audits what a $share group of collectors received.
func runFleet(ctx context.Context, cfg fleetConfig, w io.Writer) (fleetResult, error) {
	res := fleetResult{Gateways: cfg.N, Offered: float64(cfg.N) * cfg.Rate}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "shelfsim-fleet")
		if err != nil {
			return res, fmt.Errorf("fleet: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	var own *broker
	url := cfg.Broker
	if url == "" {
		bdir := filepath.Join(dir, "broker")
		if err := os.MkdirAll(bdir, 0o755); err != nil {
			return res, fmt.Errorf("fleet: %w", err)
		}
		b, err := startBroker(bdir)
		if err != nil {
			return res, fmt.Errorf("fleet: %w", err)
		}
		defer b.kill()
		own, url = b, b.url()
	}
	mode := "broker"
	if cfg.ConsumerAcks {
		mode = "consumer"
	}
	fmt.Fprintf(w, "fleet: acks=%s; %d gateways x %d streams at %.0f readings/s each (%.0f offered) against %s, %d collectors in $share/shelfsim-fleet\n", mode,
		cfg.N, cfg.Streams, cfg.Rate, res.Offered, url, cfg.Collectors)

	// Collectors first, so that nothing is published before the shared
	// subscription exists. One Collector (safe for concurrent use) audits
	// the union of what the group's members received.
	col := collect.New()
	var collected atomic.Int64
	colCtx, stopCollectors := context.WithCancel(context.Background())
	var colWG sync.WaitGroup
	defer func() { stopCollectors(); colWG.Wait() }()
	subscribed := make(chan struct{}, cfg.Collectors*4)
	colErr := make(chan error, cfg.Collectors)
	for i := range cfg.Collectors {
		colWG.Go(func() {
			err := collect.Subscribe(colCtx, col, collect.SubscribeOptions{
				Broker: url, ClientID: fmt.Sprintf("shelfsim-fleet-collector-%d", i+1), Site: cfg.Site,
				Share: "shelfsim-fleet", Persistent: true, Ack: cfg.ConsumerAcks,
				OnBatch:      func(_ *shelfv1.Batch, fresh []shelfv1.WireRecord) { collected.Add(int64(len(fresh))) },
				OnSubscribed: func() { subscribed <- struct{}{} },
			})
			if err != nil {
				colErr <- err
			}
		})
	}
	for range cfg.Collectors {
		select {
		case <-subscribed:
		case err := <-colErr:
			return res, fmt.Errorf("fleet: collector: %w", err)
		case <-time.After(30 * time.Second):
			return res, errors.New("fleet: collectors did not subscribe within 30s")
		}
	}

	// The gateways.
	gwCtx, stopGateways := context.WithCancel(ctx)
	defer stopGateways()
	gws := make([]*simGateway, 0, cfg.N)
	defer func() {
		stopGateways()
		for _, g := range gws {
			<-g.done
			g.ob.Close()
		}
	}()
	// Open every outbox first (several at a time: each open is a few
	// fsyncs), then start them all, so the open phase is not slowed by
	// gateways already running.
	opened := time.Now()
	all := make([]*simGateway, cfg.N)
	errs := make([]error, cfg.N)
	var next atomic.Int64
	var openWG sync.WaitGroup
	for range min(cfg.N, 8) {
		openWG.Go(func() {
			for i := int(next.Add(1) - 1); i < cfg.N; i = int(next.Add(1) - 1) {
				all[i], errs[i] = newSimGateway(dir, cfg, url, i)
			}
		})
	}
	openWG.Wait()
	for i := range all {
		if errs[i] != nil {
			for _, g := range all {
				if g != nil {
					g.ob.Close()
				}
			}
			return res, errs[i]
		}
	}
	fmt.Fprintf(w, "fleet: %d outboxes opened in %s\n", cfg.N, time.Since(opened).Round(time.Millisecond))
	for _, g := range all {
		gws = append(gws, g)
		go func() { g.done <- g.gw.Run(gwCtx) }()
	}
	if err := waitAll(ctx, gws, func(g *simGateway) bool { return g.up.Stats().Connected }, 120*time.Second); err != nil {
		return res, fmt.Errorf("fleet: first connection: %w", err)
	}
	fmt.Fprintf(w, "fleet: %d gateways connected %s after the first open\n", cfg.N, time.Since(opened).Round(time.Millisecond))

	// Steady state.
	c0, t0 := collected.Load(), time.Now()
	if !sleepCtx(ctx, cfg.Steady) {
		return res, ctx.Err()
	}
	res.Collected = float64(collected.Load()-c0) / time.Since(t0).Seconds()
	res.RSSBytes, _ = procStatus("VmRSS")
	res.FDs = countFDs()
	if cfg.MemProfile != "" {
		if err := writeHeapProfile(cfg.MemProfile); err != nil {
			return res, err
		}
	}
	fmt.Fprintf(w, "fleet: steady state %s: %.0f readings/s collected of %.0f offered; RSS %.1f MiB (%.0f KiB per gateway), %d fds\n",
		cfg.Steady, res.Collected, res.Offered, mib(res.RSSBytes), float64(res.RSSBytes)/1024/float64(cfg.N), res.FDs)

	// The reconnect storm.
	if own != nil || cfg.RestartCmd != "" {
		before := make([]int64, len(gws))
		for i, g := range gws {
			before[i] = g.up.Stats().Connects
		}
		var back time.Time
		if own != nil {
			own.stop()
			fmt.Fprintf(w, "fleet: broker stopped (SIGTERM); down for %s\n", cfg.Down)
			sleepCtx(ctx, cfg.Down)
			back = time.Now() // reconnect times count from the broker's (re)start
			if err := own.start(); err != nil {
				return res, fmt.Errorf("fleet: restart broker: %w", err)
			}
		} else {
			cmd := exec.CommandContext(ctx, "sh", "-c", cfg.RestartCmd)
			cmd.Stdout, cmd.Stderr = w, w
			if err := cmd.Run(); err != nil {
				return res, fmt.Errorf("fleet: --restart-cmd: %w", err)
			}
			if err := waitListening(hostPort(url), 60*time.Second); err != nil {
				return res, fmt.Errorf("fleet: after --restart-cmd: %w", err)
			}
			back = time.Now() // listening again
		}
		res.Restarted = true
		res.Reconnects = make([]time.Duration, len(gws))
		seen := make([]bool, len(gws))
		left := len(gws)
		deadline := back.Add(3*cfg.BackoffMax + 60*time.Second)
		for left > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			for i, g := range gws {
				if !seen[i] && g.up.Stats().Connects > before[i] {
					seen[i], res.Reconnects[i] = true, time.Since(back)
					left--
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		var got []time.Duration
		for i, ok := range seen {
			if ok {
				got = append(got, res.Reconnects[i])
			}
		}
		slices.Sort(got)
		res.Reconnects = got
		res.PeakPer100ms = peakPerBucket(got, 100*time.Millisecond)
		res.BrokerUp = own == nil || own.alive()
		if own == nil {
			res.BrokerUp = waitListening(hostPort(url), time.Second) == nil
		}
		if len(got) > 0 {
			fmt.Fprintf(w, "fleet: reconnects after the broker was back: %d/%d; first %s, median %s, p99 %s, last %s; peak %d in 100 ms; broker up: %v\n",
				len(got), len(gws), rd(got[0]), rd(quantile(got, 0.5)), rd(quantile(got, 0.99)), rd(got[len(got)-1]), res.PeakPer100ms, res.BrokerUp)
		}
		if left > 0 {
			fmt.Fprintf(w, "fleet: %d gateways did not reconnect within %s\n", left, time.Since(back).Round(time.Second))
		}
		sleepCtx(ctx, cfg.After)
	} else {
		res.BrokerUp = true
		fmt.Fprintln(w, "fleet: no broker restart (external --broker without --restart-cmd)")
	}

	// Stop the sources and let every gateway flush its backlog.
	stopGateways()
	for _, g := range gws {
		if err := <-g.done; err != nil {
			fmt.Fprintf(w, "fleet: %s: %v\n", g.name, err)
		}
		g.done <- nil // for the deferred cleanup
	}
	backlog := int64(0)
	streams := 0
	last := map[string]uint64{} // "site/gw stream" -> last committed seq
	for _, g := range gws {
		backlog += g.ob.Backlog()
		seqs, err := g.ob.LastSeqs(context.Background())
		if err != nil {
			return res, fmt.Errorf("fleet: %s: %w", g.name, err)
		}
		for s, q := range seqs {
			last[cfg.Site+"/"+g.name+" "+string(s)] = q
			res.Committed += q
			streams++
		}
	}
	if backlog > 0 {
		fmt.Fprintf(w, "fleet: %d rows still in the outboxes after the flush\n", backlog)
	}
	wait := time.Now().Add(10 * time.Second)
	for uint64(collected.Load()) < res.Committed && time.Now().Before(wait) {
		time.Sleep(20 * time.Millisecond)
	}
	res.CollectedRecords = collected.Load()
	res.HWMBytes, _ = procStatus("VmHWM")
	res.Audit = col.Audit(false)
	seenStreams := 0
	for _, s := range res.Audit.Streams {
		want, ok := last[s.Gateway+" "+s.Stream]
		if !ok {
			continue
		}
		seenStreams++
		if s.Last != want {
			res.TailMismatches++
		}
	}
	res.TailMismatches += streams - seenStreams
	verdict := "OK"
	if !res.Audit.OK() || res.TailMismatches > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "fleet: collect audit via $share (%d collectors): streams=%d committed=%d received=%d duplicates=%d missing=%d tail_mismatches=%d result=%s\n",
		cfg.Collectors, streams, res.Committed, res.Audit.Received, res.Audit.Duplicates, res.Audit.Missing, res.TailMismatches, verdict)
	fmt.Fprintf(w, "fleet: peak RSS %.1f MiB\n", mib(res.HWMBytes))
	return res, nil
}

func newSimGateway(dir string, cfg fleetConfig, url string, i int) (*simGateway, error) {
	name := fmt.Sprintf("gw-%04d", i)
	gdir := filepath.Join(dir, name)
	if err := os.MkdirAll(gdir, 0o755); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	opts := outbox.DefaultOptions
	opts.ReserveBytes = -1 // 500 × 8 MiB of reserve files measure nothing here
	opts.CheckEvery = -1
	ob, err := outbox.Open(filepath.Join(gdir, "outbox.db"), opts)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", name, err)
	}
	topics := shelfv1.Topics{Site: cfg.Site, Gateway: name}
	uo := uplink.Options{Brokers: []string{url}, Topics: topics, BackoffMax: cfg.BackoffMax}
	var router *downlink.Router
	if cfg.ConsumerAcks {
		router = downlink.New(nil)
		uo.Downlink, uo.ConsumerAcks, uo.ConsumerAckTimeout = router, true, cfg.AckTimeout
	}
	up, err := uplink.New(ob, uo)
	if err == nil && router != nil {
		err = router.Handle(topics.Ack(), downlink.HandlerFunc(func(ctx context.Context, m downlink.Message) error {
			ref, err := shelfv1.DecodeAck(m.Payload)
			if err != nil {
				return downlink.Reject(downlink.ReasonMalformed, err)
			}
			return up.Confirm(ctx, ref)
		}), downlink.Options{Name: "acks", QueueLen: 1024, MaxPayload: shelfv1.MaxAckBytes})
	}
	if err != nil {
		ob.Close()
		return nil, fmt.Errorf("fleet: %s: %w", name, err)
	}
	streams := make([]gateway.StreamID, cfg.Streams)
	for s := range streams {
		streams[s] = gateway.StreamID(fmt.Sprintf("loadcell/bin-%02d", s))
	}
	src := &simSource{streams: streams, rate: cfg.Rate, tick: cfg.Tick, phase: time.Duration(i) * cfg.Tick / time.Duration(max(cfg.N, 1))}
	return &simGateway{name: name, ob: ob, up: up, done: make(chan error, 1),
		gw: &gateway.Gateway{Sources: []gateway.Source{src}, Outbox: ob, Uplink: up, FlushTimeout: 60 * time.Second}}, nil
}

// simSource emits rate readings/s round-robin over its streams, one Emit
// (one commit) per tick.
type simSource struct {
	streams []gateway.StreamID
	rate    float64
	tick    time.Duration
	phase   time.Duration // spreads the fleet's ticks over one period
}

var _ gateway.Source = (*simSource)(nil)

func (s *simSource) Name() string { return "fleet-sim" }

func (s *simSource) Run(ctx context.Context, emit gateway.Emitter) error {
	if !sleepCtx(ctx, s.phase) {
		return nil
	}
	t := time.NewTicker(s.tick)
	defer t.Stop()
	var owed float64
	next := 0
	buf := make([]gateway.Reading, 0, 64)
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			owed += s.rate * s.tick.Seconds()
			buf = buf[:0]
			for ; owed >= 1; owed-- {
				buf = append(buf, gateway.Reading{Stream: s.streams[next%len(s.streams)], Time: now, Value: 1000 + float64(next%97)/10, Unit: "g"})
				next++
			}
			if len(buf) > 0 {
				if err := emit.Emit(ctx, buf); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		}
	}
}

func waitAll(ctx context.Context, gws []*simGateway, ok func(*simGateway) bool, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		n := 0
		for _, g := range gws {
			if ok(g) {
				n++
			}
		}
		if n == len(gws) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d gateways within %s", n, len(gws), d)
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// quantile of sorted ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// peakPerBucket is the most of sorted ds falling in one bucket of width b.
func peakPerBucket(ds []time.Duration, b time.Duration) int {
	peak, lo := 0, 0
	for hi := range ds {
		for ds[hi]-ds[lo] >= b {
			lo++
		}
		peak = max(peak, hi-lo+1)
	}
	return peak
}

// procStatus reads one "Key: N kB" line of /proc/self/status, in bytes.
func procStatus(key string) (int64, error) {
	return procStatusOf("/proc/self/status", key)
}

func procStatusOf(path, key string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseStatusField(string(data), key)
}

// parseStatusField finds "key:   1234 kB" in a /proc/PID/status text.
func parseStatusField(status, key string) (int64, error) {
	for line := range strings.Lines(status) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status field %s: unexpected value %q", key, strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("status field %s: unexpected value %q", key, strings.TrimSpace(v))
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("status field %s: not found", key)
}

func countFDs() int {
	es, _ := os.ReadDir("/proc/self/fd")
	return len(es)
}

func hostPort(url string) string {
	_, hp, _ := strings.Cut(url, "://")
	return hp
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func rd(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// signalContext is done on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// printFleetFigures prints the run's FIGURE lines, each beside the
// baseline it is judged against in the same run.
func printFleetFigures(w io.Writer, cfg fleetConfig, res fleetResult) {
	fig := func(name string, v float64, unit string, base float64) {
		fmt.Fprintf(w, "FIGURE %s=%.1f unit=%s baseline=%.1f ratio=%.3f\n", name, v, unit, base, v/base)
	}
	// Readings/s the collectors got, against what the sources offered.
	fig(fmt.Sprintf("fleet%d_collected_readings_per_s", cfg.N), res.Collected, "readings/s", res.Offered)
	if len(res.Reconnects) > 0 {
		// Reconnect times after the broker's return, against the backoff
		// cap (the width of the jitter window a reconnect may fall in).
		capMs := float64(cfg.BackoffMax.Milliseconds())
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fig(fmt.Sprintf("fleet%d_reconnect_first_ms", cfg.N), ms(res.Reconnects[0]), "ms", capMs)
		fig(fmt.Sprintf("fleet%d_reconnect_median_ms", cfg.N), ms(quantile(res.Reconnects, 0.5)), "ms", capMs)
		fig(fmt.Sprintf("fleet%d_reconnect_p99_ms", cfg.N), ms(quantile(res.Reconnects, 0.99)), "ms", capMs)
		fig(fmt.Sprintf("fleet%d_reconnect_last_ms", cfg.N), ms(res.Reconnects[len(res.Reconnects)-1]), "ms", capMs)
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("fleet: memprofile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		return fmt.Errorf("fleet: memprofile %s: %w", path, err)
	}
	return nil
}
