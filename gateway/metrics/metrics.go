// Package metrics serves Shelfgate's Prometheus metrics and health checks:
// /metrics (prometheus text format), /healthz (the process is alive) and
// /readyz (the gateway can deliver: outbox open and broker connected).
//
// Each component exports its metrics through a Collector, node_exporter
// style: on every scrape its Update takes one snapshot of the component's
// own counters and sends them, labelled (per bin, per sensor, per class),
// so nothing on the data path touches Prometheus. Collectors are
// unchecked (they describe nothing up front), so registering a second
// component of the same kind cannot panic; each scrape also reports
// shelfgate_scrape_collector_success{collector} and
// shelfgate_build_info{version,goversion}.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Collector is one component's metrics. Update sends one snapshot of the
// component per scrape; an error marks the collector failed in
// shelfgate_scrape_collector_success (what it sent is still served).
type Collector interface {
	Update(ch chan<- prometheus.Metric) error
}

// CollectorFunc is a function used as a Collector.
type CollectorFunc func(ch chan<- prometheus.Metric) error

// Update implements Collector.
func (f CollectorFunc) Update(ch chan<- prometheus.Metric) error { return f(ch) }

// Server is the metrics HTTP server.
type Server struct {
	reg   *prometheus.Registry
	ready func() error
	log   *slog.Logger
	cs    *collectorSet
}

// New returns a server with Go runtime and process metrics and
// shelfgate_build_info{version,goversion} registered. ready reports why the
// gateway cannot deliver (nil when it can).
func New(version string, ready func() error, log *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	cs := &collectorSet{}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), cs)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{reg: reg, ready: ready, log: log, cs: cs}
	buildInfo := prometheus.NewDesc("shelfgate_build_info", "Shelfgate's version and the Go version it was built with; always 1.", nil,
		prometheus.Labels{"version": version, "goversion": runtime.Version()})
	s.Register("build_info", CollectorFunc(func(ch chan<- prometheus.Metric) error {
		ch <- prometheus.MustNewConstMetric(buildInfo, prometheus.GaugeValue, 1)
		return nil
	}))
	return s
}

// Register adds c under name (the collector label of
// shelfgate_scrape_collector_success). Registering a name twice keeps both:
// two components of one kind each send their own labelled series.
func (s *Server) Register(name string, c Collector) {
	s.cs.mu.Lock()
	defer s.cs.mu.Unlock()
	s.cs.list = append(s.cs.list, named{name, c})
}

type named struct {
	name string
	c    Collector
}

// collectorSet is the one prometheus.Collector behind every registered
// Collector. It describes nothing (an unchecked collector), so duplicate
// registration cannot panic.
type collectorSet struct {
	mu   sync.Mutex
	list []named
}

var (
	scrapeSuccess  = prometheus.NewDesc("shelfgate_scrape_collector_success", "1 if the collector's last Update succeeded.", []string{"collector"}, nil)
	scrapeDuration = prometheus.NewDesc("shelfgate_scrape_collector_duration_seconds", "How long the collector's Update took.", []string{"collector"}, nil)
)

// Describe implements prometheus.Collector: it describes nothing.
func (*collectorSet) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector: every Collector's Update, in
// registration order, each followed by its success and duration.
func (cs *collectorSet) Collect(ch chan<- prometheus.Metric) {
	cs.mu.Lock()
	list := slices.Clone(cs.list)
	cs.mu.Unlock()
	ok := map[string]float64{}
	took := map[string]float64{}
	var order []string
	for _, n := range list {
		start := time.Now()
		err := n.c.Update(ch)
		if _, seen := ok[n.name]; !seen {
			ok[n.name] = 1
			order = append(order, n.name)
		}
		if err != nil {
			ok[n.name] = 0
		}
		took[n.name] += time.Since(start).Seconds()
	}
	for _, name := range order {
		ch <- prometheus.MustNewConstMetric(scrapeSuccess, prometheus.GaugeValue, ok[name], name)
		ch <- prometheus.MustNewConstMetric(scrapeDuration, prometheus.GaugeValue, took[name], name)
	}
}

// Handler serves /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.ready != nil {
			if err := s.ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// Run serves on addr until ctx is done.
func (s *Server) Run(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, l)
}

// Serve serves on l until ctx is done.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
