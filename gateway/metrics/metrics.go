// Package metrics serves Shelfgate's Prometheus metrics and health checks:
// /metrics (prometheus text format), /healthz (the process is alive) and
// /readyz (the gateway can deliver: outbox open and broker connected).
//
// Values are read from the components' own counters when scraped
// (CounterFunc/GaugeFunc), so nothing on the data path touches Prometheus.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is the metrics HTTP server.
type Server struct {
	reg   *prometheus.Registry
	ready func() error
	log   *slog.Logger
}

// New returns a server with Go runtime and process metrics registered.
// ready reports why the gateway cannot deliver (nil when it can).
func New(ready func() error, log *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{reg: reg, ready: ready, log: log}
}

// Counter registers a monotonically increasing value read by f at scrape time.
func (s *Server) Counter(name, help string, f func() float64) {
	s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "shelfgate", Name: name, Help: help}, f))
}

// Gauge registers a value that goes up and down, read by f at scrape time.
func (s *Server) Gauge(name, help string, f func() float64) {
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "shelfgate", Name: name, Help: help}, f))
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
