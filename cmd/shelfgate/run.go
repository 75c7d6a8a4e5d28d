package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	"github.com/shelfgate/shelfgate/gateway/shelf"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path, checkSensors, checkSimulation)
	if err != nil {
		return nil, fmt.Errorf("%w:\n%v", errConfig, err)
	}
	return cfg, nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// run wires the configured pieces together and runs them until ctx is done.
func run(ctx, flushCtx context.Context, cfg *config.Config, stdout, stderr io.Writer, summary bool) error {
	log := newLogger(cfg, stderr).With("gateway", cfg.Gateway.ID, "site", cfg.Gateway.Site)
	log.Info("starting", "version", version)

	// Sensors first: a missing pin or bus fails before anything is touched.
	// They get the gateway only when it runs, complete.
	sensors, err := buildSources(cfg)
	if err != nil {
		return err
	}
	defer sensors.close()

	var wg sync.WaitGroup
	defer wg.Wait()
	brokers, stopBroker, err := startEmbeddedBroker(cfg, stderr, log, &wg)
	if err != nil {
		return err
	}
	defer stopBroker() // after the uplink said goodbye

	ob, err := outbox.Open(cfg.Outbox.Path, outbox.Options{MaxBatchRows: cfg.Outbox.CommitRows, MaxDelay: cfg.Outbox.CommitInterval, MaxBytes: int64(cfg.Outbox.MaxBytes)})
	if err != nil {
		return err
	}
	defer func() {
		if err := ob.Close(); err != nil {
			log.Error("closing outbox", "err", err)
		}
	}()
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
	birth := birthStatus(ob, cfg.Uplink.AckMode)
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
	if err := registerDownlink(router, topics, ob, up, builtinCommands(birth), cfg.Uplink.AckMode == "consumer", log.With("component", "downlink")); err != nil {
		return err
	}
	_, stopModels, err := startModelSync(ctx, cfg, router, up, log.With("component", "modelsync"))
	if err != nil {
		return err
	}
	defer stopModels()

	classifiers, err := classifierChain(sensors)
	if err != nil {
		return err
	}
	gw := &gateway.Gateway{
		Sources: sensors.sources(), Outbox: ob, Uplink: up, Classifiers: classifiers,
		Logger: log, FlushTimeout: cfg.Uplink.FlushTimeout,
	}
	if cfg.Metrics.Listen != "" {
		stopMetrics, err := serveMetrics(cfg.Metrics.Listen, newMetrics(gw, ob, up, router, sensors, log), log, &wg)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	start := time.Now()
	err = gw.RunWithFlush(ctx, flushCtx)
	c, us := gw.Counters(), up.Stats()
	log.Info("stopped", "produced", c.Produced, "committed", c.Accepted, "events", c.Events,
		"delivered", us.Delivered, "backlog", ob.Backlog(), "uptime", time.Since(start).Round(time.Millisecond))
	if summary {
		fmt.Fprintf(stdout, "SUMMARY produced=%d committed=%d events=%d delivered=%d backlog=%d seconds=%.1f\n",
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

// serveMetrics serves ms on addr (its goroutine counted in wg) until the
// returned function is called.
func serveMetrics(addr string, ms *metrics.Server, log *slog.Logger, wg *sync.WaitGroup) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	mctx, stopMetrics := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := ms.Serve(mctx, l); err != nil {
			log.Error("metrics", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", l.Addr().String())
	return stopMetrics, nil
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
