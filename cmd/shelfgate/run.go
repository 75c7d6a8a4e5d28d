package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/broker"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"github.com/shelfgate/shelfgate/gateway/metrics"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/sdnotify"
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/gateway/statuspage"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

func loadConfig(path string) (*config.Config, error) { return loadConfigWith(path, newHostCheck()) }

// loadConfigWith loads and checks the file as check-config, run and
// doctor do: everything run needs, before it touches the disk or a pin.
func loadConfigWith(path string, h hostCheck) (*config.Config, error) {
	cfg, err := config.Load(path, configChecks(h)...)
	if err != nil {
		return nil, fmt.Errorf("%w:\n%w", errConfig, err)
	}
	return cfg, nil
}

// runOptions are run's settings from the command line.
type runOptions struct {
	stdout, stderr io.Writer
	summary        bool
	adopt          bool            // --adopt-outbox
	reload         <-chan struct{} // SIGHUP
	host           hostCheck       // what a reload checks the new file with
}

// run wires the configured pieces together and runs them until ctx is
// done. Its failures are logged in the configured format.
func run(ctx, flushCtx context.Context, cfg *config.Config, o runOptions) error {
	log, level := newLogger(cfg, o.stderr)
	log = log.With("gateway", cfg.Gateway.ID, "site", cfg.Gateway.Site)
	err := runLogged(ctx, flushCtx, cfg, o, log, level)
	// A damaged outbox found while running (outbox.ErrCorrupt) stops the
	// pipeline with every unaccepted reading still at its source; opening
	// the outbox again moves the damaged file aside, salvages what is
	// readable and records on a fresh one. Do that here rather than leave
	// it to a supervisor, a few times at most so a disk that keeps
	// corrupting files still ends in an error.
	for restarts := 0; errors.Is(err, outbox.ErrCorrupt) && ctx.Err() == nil && restarts < maxCorruptRestarts; restarts++ {
		log.Error("outbox damaged while running; restarting the pipeline to quarantine it", "err", err, "path", cfg.Outbox.Path, "restart", restarts+1)
		err = runLogged(ctx, flushCtx, cfg, o, log, level)
	}
	if err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// Stopped (a signal, or --duration) while still starting: a step
		// that was waiting on ctx gave up. That is a clean stop, not a
		// failure; nothing was accepted that is not in the outbox.
		log.Info("stopped while starting", "err", err)
		err = nil
	}
	return fatal(log, err)
}

// maxCorruptRestarts bounds how often run reopens a damaged outbox before
// it gives up.
const maxCorruptRestarts = 3

func runLogged(ctx, flushCtx context.Context, cfg *config.Config, o runOptions, log *slog.Logger, level *slog.LevelVar) error {
	log.Info("starting", "version", version, "config", cfg.File())
	log.Debug("configuration", "brokers", cfg.Broker.URLs, "outbox", cfg.Outbox.Path, "max_bytes", cfg.Outbox.MaxBytes.String(),
		"commit_interval", cfg.Outbox.CommitInterval, "commit_rows", cfg.Outbox.CommitRows, "batch_records", cfg.Uplink.BatchRecords,
		"window", cfg.Uplink.Window, "ack_mode", cfg.Uplink.AckMode, "replay_rate", cfg.Uplink.ReplayRate, "sensors", len(cfg.Sensors), "simulation", cfg.Simulation != nil)
	notifier, err := sdnotify.FromEnv(os.Getenv, os.Getpid())
	if err != nil {
		log.Warn("systemd notification disabled", "err", err)
		notifier = nil
	}

	// Sensors first: a missing pin or bus fails before anything is touched.
	// They get the gateway only when it runs, complete.
	sensors, err := buildSources(cfg, log.With("component", "sensors"))
	if err != nil {
		return err
	}
	defer sensors.close()
	for _, s := range sensors.sensors {
		log.Debug("sensor ready", "sensor", s.name, "kind", s.kind, "bins", len(s.bins))
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	brokers, stopBroker, err := startEmbeddedBroker(cfg, o.stderr, log, &wg)
	if err != nil {
		return err
	}
	defer stopBroker() // after the uplink said goodbye

	// One gateway per outbox: the lock and the recorded gateway id come
	// before the database is opened.
	claim, adopted, err := claimOutbox(cfg.Outbox.Path, cfg.Gateway.ID, o.adopt)
	if err != nil {
		return err
	}
	defer claim.release()
	if adopted != "" {
		log.Warn("adopted the outbox of another gateway: its backlog is delivered under this gateway's id", "previous_gateway", adopted, "path", cfg.Outbox.Path)
	}
	ob, err := outbox.Open(cfg.Outbox.Path, outbox.Options{MaxBatchRows: cfg.Outbox.CommitRows, MaxDelay: cfg.Outbox.CommitInterval, MaxBytes: int64(cfg.Outbox.MaxBytes), Logger: log.With("component", "outbox")})
	if err != nil {
		return err
	}
	defer func() {
		if err := ob.Close(); err != nil {
			log.Error("closing outbox", "err", err)
		}
	}()
	log.Debug("outbox open", "path", cfg.Outbox.Path, "backlog", ob.Backlog())
	if n := ob.Backlog(); n > 0 {
		log.Info("outbox has a backlog from an earlier run; delivering it first", "rows", n, "path", cfg.Outbox.Path)
	}

	tlsConf, err := tlsConfig(cfg.Broker.TLS)
	if err != nil {
		return err
	}
	topics := shelfv1.Topics{Site: cfg.Gateway.Site, Gateway: cfg.Gateway.ID}
	router := downlink.New(log.With("component", "downlink"))
	batchKey, err := ob.Secret(ctx) // batch tags that consumer acks must echo, stable across restarts
	if err != nil {
		return err
	}
	plateLinks, plateModel, plateStats, err := plateChain(ctx, sensors) // shelf plates: kind_plate.go
	if err != nil {
		return err
	}
	cfgState, err := openDesiredState(desiredStatePath(cfg.Outbox.Path)) // desiredconfig.go
	if err != nil {
		return err
	}
	birth := withConfigVersion(withModel(birthStatus(ob, cfg.Uplink.AckMode), plateModel), cfgState)
	up, err := uplink.New(ob, uplink.Options{
		Brokers: brokers, Topics: topics,
		Username: cfg.Broker.Username, Password: cfg.Broker.Password, TLS: tlsConf,
		KeepAlive: cfg.Broker.KeepAlive, AckTimeout: cfg.Uplink.AckTimeout,
		BatchRecords: cfg.Uplink.BatchRecords, Window: cfg.Uplink.Window, ReplayRate: cfg.Uplink.ReplayRate, Compress: cfg.Uplink.Compress,
		ConsumerAcks: cfg.Uplink.AckMode == "consumer", ConsumerAckTimeout: cfg.Uplink.ConsumerAckTimeout,
		Birth: birth, BatchKey: batchKey, Downlink: router,
		Logger: log.With("component", "uplink"),
	})
	if err != nil {
		return err
	}
	models, stopModels, err := startModelSync(ctx, cfg, router, up, ob, plateModel, plateStats.modelWindows(), log.With("component", "modelsync"))
	if err != nil {
		return err
	}
	defer stopModels()

	classifiers, err := classifierChain(sensors)
	if err != nil {
		return err
	}
	classifiers = append(classifiers, plateLinks...)
	// Commands (commands.go); a gateway with plates labels samples too.
	cmds, samples := commandSet(cfg, sensors, classifiers, plateStats.sampleWindows(), birth, ob, up, level, log.With("component", "commands"))
	if samples != nil {
		classifiers = append(classifiers, samples)
	}
	models.useLabels(samples) // labelled windows judge plate models (modelsync.go)
	if err := registerDownlink(router, topics, ob, up, cmds, cfg.Uplink.AckMode == "consumer", log.With("component", "downlink")); err != nil {
		return err
	}
	// SIGHUP and the cloud's desired config share one apply path.
	rl, err := wireConfig(cfg, o.host, level, router, topics, up, classifiers, ob, birth, cfgState, log)
	if err != nil {
		return err
	}
	page, err := newStatusPage(cfg, sensors, classifiers, log)
	if err != nil {
		return err
	}
	gw := &gateway.Gateway{
		Sources: sensors.sources(), Outbox: ob, Uplink: up, Classifiers: page.chain(classifiers),
		Logger: log, FlushTimeout: cfg.Uplink.FlushTimeout,
	}
	if cfg.Metrics.Listen != "" {
		stopMetrics, err := serveMetrics(cfg.Metrics.Listen, withPlateMetrics(newMetrics(gw, ob, up, router, sensors, log), plateStats), page.builder(gw, ob, up, brokers, log), log, &wg)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	// SIGHUP reloads; systemd hears READY=1, watchdog pings and STOPPING=1.
	bgCtx, stopBackground := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer bg.Wait()
	defer stopBackground()
	if o.reload != nil && cfg.File() != "" {
		bg.Add(1)
		go func() { defer bg.Done(); rl.run(bgCtx, o.reload) }()
	}
	if samples != nil {
		bg.Add(1)
		go func() { defer bg.Done(); samples.Run(bgCtx, ob, log.With("component", "samples")) }()
	}
	bg.Add(1)
	go func() { defer bg.Done(); notifySystemd(bgCtx, notifier, gw, sensors.sampling(), log) }()
	bg.Add(1)
	go func() {
		defer bg.Done()
		<-bgCtx.Done() // a signal, or the gateway stopped by itself
		if err := notifier.Stopping(context.Background()); err != nil {
			log.Warn("systemd notify STOPPING=1", "err", err)
		}
	}()
	start := time.Now()
	err = gw.RunWithFlush(ctx, flushCtx)
	stopBackground()
	c, us := gw.Counters(), up.Stats()
	log.Info("stopped", "produced", c.Produced, "committed", c.Accepted, "events", c.Events,
		"delivered", us.Delivered, "backlog", ob.Backlog(), "uptime", time.Since(start).Round(time.Millisecond))
	if o.summary {
		fmt.Fprintf(o.stdout, "SUMMARY produced=%d committed=%d events=%d delivered=%d backlog=%d seconds=%.1f\n",
			c.Produced, c.Accepted, c.Events, us.Delivered, ob.Backlog(), time.Since(start).Seconds())
	}
	return err
}

// startEmbeddedBroker starts the in-process broker when the broker list
// names it, and returns the broker list with its URL in place and a
// function that stops it (its goroutine is counted in wg).
func startEmbeddedBroker(cfg *config.Config, stderr io.Writer, log *slog.Logger, wg *sync.WaitGroup) (brokers []string, stop func(), err error) {
	brokers = append([]string(nil), cfg.Broker.URLs...)
	if !cfg.UsesEmbeddedBroker() {
		return brokers, func() {}, nil
	}
	// The broker's own info logs (hooks, listeners) are noise here.
	blog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})).With("component", "broker")
	b, err := broker.New(cfg.Broker.EmbeddedAddr, blog)
	if err != nil {
		return nil, nil, fmt.Errorf("embedded broker (broker.embedded_addr %s; is another broker running there?): %w", cfg.Broker.EmbeddedAddr, err)
	}
	bctx, stopBroker := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := b.Run(bctx); err != nil {
			log.Error("embedded broker", "err", err)
		}
	}()
	for i, u := range brokers {
		if u == config.Embedded {
			brokers[i] = b.URL()
		}
	}
	log.Info("embedded broker listening", "url", b.URL())
	return brokers, stopBroker, nil
}

// serveMetrics serves ms and, when newPage is not nil, the status page it
// builds for the listener on addr (goroutines counted in wg) until the
// returned function is called.
func serveMetrics(addr string, ms *metrics.Server, newPage pageBuilder, log *slog.Logger, wg *sync.WaitGroup) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	var ps *statuspage.Server
	var tlsConf *tls.Config
	if newPage != nil {
		if ps, tlsConf, err = newPage(l.Addr()); err != nil {
			l.Close()
			return nil, err
		}
	}
	log.Info("metrics and status page listening", "addr", l.Addr().String(), "tls", tlsConf != nil)
	return serveHTTP(l, ms, ps, tlsConf, log, wg), nil
}

// classifierChain is the gateway's classifier chain, in order: the
// settled-weight detector over the load cells' bins (when there are any).
// Later links (the int8 model, scan/weight fusion) go after it.
func classifierChain(ss *sensorSet) ([]gateway.Classifier, error) {
	var chain []gateway.Classifier
	if bins := ss.bins(); len(bins) > 0 {
		det, err := shelf.New(shelf.Config{Bins: bins, WindowSamples: ss.window})
		if err != nil {
			return nil, err
		}
		chain = append(chain, det)
	}
	return chain, nil
}

// tlsConfig builds the client TLS configuration: the system roots or the
// configured CA, an optional client certificate, TLS 1.2 at least. Server
// verification is never turned off.
func tlsConfig(t config.TLS) (*tls.Config, error) {
	if t.CAFile == "" && t.CertFile == "" && t.ServerName == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("broker.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("broker.tls.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// birthStatus returns the fields of the uplink's retained status: version,
// backlog, ack mode, each stream's last sequence number and the outbox's
// shed counts and sizes. last_seq is read before backlog: when backlog is
// 0, every sequence number up to last_seq has left the outbox, so a
// consumer can tell loss at a stream's tail (shelfv1.StatusLastSeq).
func birthStatus(ob *outbox.Outbox, ackMode string) func() map[string]any {
	return func() map[string]any {
		seqs, seqErr := ob.LastSeqs(context.Background())
		b := map[string]any{"version": version, "model": "none", "backlog": ob.Backlog(), "ack_mode": ackMode}
		if seqErr == nil {
			b[shelfv1.StatusLastSeq] = seqs
		}
		if st, err := ob.Stats(context.Background()); err == nil {
			b["shed_telemetry"], b["shed_events"] = st.ShedTelemetry, st.ShedEvents
			b["oldest_unsent_s"] = st.OldestAge.Seconds()
			b["outbox_bytes"], b["outbox_max_bytes"] = st.UsedBytes, st.MaxBytes
		}
		return b
	}
}
