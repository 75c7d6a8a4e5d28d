package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/metrics"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/statuspage"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/sensors/env"
	"github.com/shelfgate/shelfgate/sensors/loadcell"
	"github.com/shelfgate/shelfgate/sensors/rfid"
	"github.com/shelfgate/shelfgate/sensors/scanner"
)

// Environment variables of the status page. They override the
// configuration's metrics.status_page (see docs/status-page.md). The token
// never lives in the configuration file itself: the file names a token file
// or an environment variable.
const (
	envStatusToken     = "SHELFGATE_STATUS_TOKEN"      // the action token itself
	envStatusTokenFile = "SHELFGATE_STATUS_TOKEN_FILE" // a file holding it (first line)
	envStatusTLSCert   = "SHELFGATE_STATUS_TLS_CERT"   // PEM certificate: serve HTTPS
	envStatusTLSKey    = "SHELFGATE_STATUS_TLS_KEY"
	envStatusCalFile   = "SHELFGATE_STATUS_CALIBRATION_FILE" // where tares persist; default calibration_file
)

// statusPage is the status page's wiring: its Tap goes last in the
// classifier chain; the rest is built once the gateway exists.
type statusPage struct {
	tap             *statuspage.Tap
	opts            statuspage.Options
	tlsCert, tlsKey string
}

// newStatusPage prepares the status page over the sensors and the chain
// (which it reads, never changes): bins, stock, model, sensor health,
// live calibration of the load cells, the token and TLS from
// metrics.status_page, each overridden by its environment variable.
func newStatusPage(cfg *config.Config, ss *sensorSet, chain []gateway.Classifier, log *slog.Logger) (*statusPage, error) {
	sp := cfg.Metrics.StatusPage
	if !sp.On(cfg.Metrics.Listen) {
		return nil, nil // no listener or disabled: no page, no tap
	}
	token, err := statusToken(sp)
	if err != nil {
		return nil, err
	}
	p := &statusPage{tap: statuspage.NewTap(), tlsCert: sp.TLSCertFile, tlsKey: sp.TLSKeyFile}
	if c, k := os.Getenv(envStatusTLSCert), os.Getenv(envStatusTLSKey); c != "" || k != "" {
		if c == "" || k == "" {
			return nil, fmt.Errorf("status page TLS: set both %s and %s", envStatusTLSCert, envStatusTLSKey)
		}
		p.tlsCert, p.tlsKey = c, k
	}
	if (p.tlsCert == "") != (p.tlsKey == "") {
		return nil, fmt.Errorf("status page TLS: set both metrics.status_page.tls_cert_file and tls_key_file")
	}
	cal := loadCells{}
	for _, s := range ss.sensors {
		if lc, ok := s.source.(*loadcell.Source); ok {
			for _, b := range s.bins {
				cal[b.ID] = lc
			}
		}
	}
	o := statuspage.Options{
		Tap: p.tap, Sensors: sensorHealth{ss}, Token: token,
		Gateway: cfg.Gateway.ID, Site: cfg.Gateway.Site, Version: version,
		Logger:          log.With("component", "statuspage"),
		CalibrationFile: cmp(os.Getenv(envStatusCalFile), cmp(sp.CalibrationFile, cfg.CalibrationFile)),
	}
	if len(cal) > 0 {
		// A tare or calibration from the page moves the bin's readings
		// at once: the detectors are told, so it is no pick or put.
		var dets []rebaseliner
		for _, c := range chain {
			if r, ok := c.(rebaseliner); ok {
				dets = append(dets, r)
			}
		}
		o.Calibrator = rebaselining{cal, dets}
	}
	for _, b := range ss.bins() {
		o.Bins = append(o.Bins, statuspage.Bin{ID: b.ID, Stream: string(b.Stream), SKU: b.SKU, UnitGrams: b.UnitGrams})
	}
	for _, c := range chain {
		if st, ok := c.(statuspage.Stock); ok && o.Stock == nil {
			o.Stock, o.Analytic = st, true
		}
		if m, ok := c.(statuspage.Model); ok && o.Model == nil {
			o.Model = m
		}
	}
	p.opts = o
	return p, nil
}

// chain returns the classifier chain with the page's Tap last (unchanged
// without a page).
func (p *statusPage) chain(c []gateway.Classifier) []gateway.Classifier {
	if p == nil {
		return c
	}
	return append(c, p.tap)
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// statusToken reads the action token: from the file named by
// SHELFGATE_STATUS_TOKEN_FILE, or SHELFGATE_STATUS_TOKEN, or else the
// file named by metrics.status_page.token_file, or the variable named by
// token_env. None means a read-only page. A token file other users can
// read is refused, as is a token_env that names an empty variable.
func statusToken(sp config.StatusPage) (string, error) {
	fromFile := func(what, path string) (string, error) {
		if err := config.CheckTokenFile(path); err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", what, err)
		}
		tok, _, _ := strings.Cut(string(b), "\n")
		return checkToken(what+": the token in "+path, strings.TrimSpace(tok))
	}
	if path := os.Getenv(envStatusTokenFile); path != "" {
		return fromFile(envStatusTokenFile, path)
	}
	if tok := strings.TrimSpace(os.Getenv(envStatusToken)); tok != "" {
		return checkToken(envStatusToken, tok)
	}
	if sp.TokenFile != "" {
		return fromFile("metrics.status_page.token_file", sp.TokenFile)
	}
	if sp.TokenEnv != "" {
		tok := strings.TrimSpace(os.Getenv(sp.TokenEnv))
		if tok == "" {
			return "", fmt.Errorf("metrics.status_page.token_env: %s is empty or unset", sp.TokenEnv)
		}
		return checkToken("metrics.status_page.token_env: "+sp.TokenEnv, tok)
	}
	return "", nil
}

func checkToken(what, tok string) (string, error) {
	if len(tok) < 12 {
		return "", fmt.Errorf("%s is %d characters; use at least 12", what, len(tok))
	}
	return tok, nil
}

// pipeline is the status page's view of the outbox, the uplink and the
// gateway's counters.
type pipeline struct {
	ob      outboxStats
	up      uplinkStats
	gw      gatewayCounters
	brokers []string
}

func (p pipeline) PipelineStats(ctx context.Context) (statuspage.PipelineStats, error) {
	u := p.up.Stats()
	st := statuspage.PipelineStats{Connected: u.Connected, Connects: u.Connects, Delivered: u.Delivered, InFlight: u.InFlight,
		Brokers: p.brokers, Committed: p.gw.Counters().Accepted}
	o, err := p.ob.Stats(ctx)
	if err != nil {
		return st, fmt.Errorf("outbox stats: %w", err)
	}
	st.Backlog, st.OldestUnsent, st.ShedTelemetry, st.ShedEvents = o.Backlog, o.OldestAge, o.ShedTelemetry, o.ShedEvents
	return st, nil
}

var (
	_ outboxStats     = (*outbox.Outbox)(nil)
	_ uplinkStats     = (*uplink.Uplink)(nil)
	_ gatewayCounters = (*gateway.Gateway)(nil)
)

// rebaselining is a Calibrator that, once a new calibration is applied,
// rebaselines the bin in every detector (shelf.Detector.Rebaseline), as
// the tare and calibrate commands do.
type rebaselining struct {
	statuspage.Calibrator
	detectors []rebaseliner
}

func (r rebaselining) SetCalibration(bin string, offset int32, countsPerGram float64) error {
	if err := r.Calibrator.SetCalibration(bin, offset, countsPerGram); err != nil {
		return err
	}
	for _, d := range r.detectors {
		d.Rebaseline(bin)
	}
	return nil
}

// loadCells calibrates the load cells live, by bin.
type loadCells map[string]*loadcell.Source

var _ statuspage.Calibrator = loadCells(nil)

func (l loadCells) src(bin string) (*loadcell.Source, error) {
	s, ok := l[bin]
	if !ok {
		return nil, fmt.Errorf("no load cell for bin %q", bin)
	}
	return s, nil
}

func (l loadCells) Calibration(bin string) (statuspage.CellCalibration, error) {
	s, err := l.src(bin)
	if err != nil {
		return statuspage.CellCalibration{}, err
	}
	off, cpg, mode, err := s.Calibration(bin)
	return statuspage.CellCalibration{Key: loadcell.CalibrationKey(bin, mode), Offset: off, CountsPerGram: cpg}, err
}

func (l loadCells) RecentCodes(bin string) ([]int32, error) {
	s, err := l.src(bin)
	if err != nil {
		return nil, err
	}
	return s.CollectRecent(bin)
}

func (l loadCells) SetCalibration(bin string, offset int32, countsPerGram float64) error {
	s, err := l.src(bin)
	if err != nil {
		return err
	}
	return s.SetCalibration(bin, offset, countsPerGram)
}

// sensorHealth reports every sensor's health from its own snapshot.
type sensorHealth struct{ ss *sensorSet }

func (h sensorHealth) SensorHealth() []statuspage.SensorHealth {
	var out []statuspage.SensorHealth
	for _, s := range h.ss.sensors {
		base := statuspage.SensorHealth{Name: s.name, Kind: s.kind, Healthy: true}
		switch src := s.source.(type) {
		case *loadcell.Source:
			for i, ch := range src.Health() {
				sh := base
				if i < len(s.bins) {
					sh.Bin = s.bins[i].ID
				}
				sh.Healthy, sh.Faults, sh.LastReading = ch.Healthy(), ch.Faults.String(), ch.LastReading
				sh.Counters = map[string]int64{"readings": ch.Readings, "timeouts": ch.Timeouts, "glitches": ch.Glitches, "spikes": ch.Spikes, "errors": ch.Errors, "faults": ch.Episodes}
				out = append(out, sh)
			}
			continue
		case *scanner.Source:
			st := src.Stats()
			base.Counters = map[string]int64{"scans": st.Scans, "rejected": st.RejectedTotal(), "open_errors": st.OpenErrors, "read_errors": st.ReadErrors}
		case *rfid.Source:
			st := src.Stats()
			base.Counters = map[string]int64{"reads": st.Reads, "polls": st.Polls, "errors": st.Errors}
		case *env.Source:
			st := src.Stats()
			base.Counters = map[string]int64{"readings": st.Readings, "errors": st.Errors, "out_of_range": st.OutOfRange, "glitches": st.Glitches}
		}
		out = append(out, base)
	}
	return out
}

// serveHTTP serves /metrics, /healthz and /readyz and, when page is not
// nil, the status page at / on l (with TLS when configured), and runs the
// page's hub; both stop when the returned function is called. Their
// goroutines are counted in wg.
func serveHTTP(l net.Listener, ms *metrics.Server, page *statuspage.Server, tlsConf *tls.Config, log *slog.Logger, wg *sync.WaitGroup) (stop func()) {
	mux := http.NewServeMux()
	mh := ms.Handler()
	for _, p := range []string{"/metrics", "/healthz", "/readyz"} {
		mux.Handle(p, mh)
	}
	if page != nil {
		mux.Handle("/", page.Handler())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, TLSConfig: tlsConf}
	ctx, cancel := context.WithCancel(context.Background())
	if page != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			page.Run(ctx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		go func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			defer c()
			srv.Shutdown(sctx)
		}()
		var err error
		if tlsConf != nil {
			err = srv.ServeTLS(l, "", "")
		} else {
			err = srv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics and status page", "err", err)
		}
	}()
	return cancel
}

// pageBuilder builds the status page and the TLS configuration for the
// listener at addr.
type pageBuilder func(addr net.Addr) (*statuspage.Server, *tls.Config, error)

// builder returns what builds the page over the running gateway's
// components; nil without a page.
func (p *statusPage) builder(gw gatewayCounters, ob outboxStats, up uplinkStats, brokers []string, log *slog.Logger) pageBuilder {
	if p == nil {
		return nil
	}
	return func(addr net.Addr) (*statuspage.Server, *tls.Config, error) {
		return p.server(addr, gw, ob, up, brokers, log)
	}
}

// server builds the status page over the running gateway's components
// and the TLS configuration of the listener, and warns when actions are
// enabled on a non-loopback listener without TLS.
func (p *statusPage) server(addr net.Addr, gw gatewayCounters, ob outboxStats, up uplinkStats, brokers []string, log *slog.Logger) (*statuspage.Server, *tls.Config, error) {
	o := p.opts
	if ob != nil && up != nil && gw != nil {
		o.Pipeline = pipeline{ob: ob, up: up, gw: gw, brokers: brokers}
	}
	srv, err := statuspage.New(o)
	if err != nil {
		return nil, nil, err
	}
	var tlsConf *tls.Config
	if p.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(p.tlsCert, p.tlsKey)
		if err != nil {
			return nil, nil, fmt.Errorf("status page TLS (%s, %s): %w", p.tlsCert, p.tlsKey, err)
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	loopback := false
	if ta, ok := addr.(*net.TCPAddr); ok {
		loopback = ta.IP.IsLoopback()
	}
	switch {
	case o.Token == "":
		log.Info("status page is read-only: set metrics.status_page.token_file (or " + envStatusTokenFile + ") to enable tare and calibration")
	case !loopback && tlsConf == nil:
		log.Warn("status page actions are enabled on a non-loopback listener without TLS: the token crosses the network in clear; set metrics.status_page.tls_cert_file and tls_key_file", "addr", addr.String())
	}
	return srv, tlsConf, nil
}
