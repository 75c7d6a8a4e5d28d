package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServer(t *testing.T) {
	var n atomic.Int64
	var notReady atomic.Bool
	s := New("v1.2.3", func() error {
		if notReady.Load() {
			return errors.New("broker not connected")
		}
		return nil
	}, nil)
	readings := prometheus.NewDesc("shelfgate_readings_total", "Readings committed.", nil, nil)
	backlog := prometheus.NewDesc("shelfgate_outbox_backlog_rows", "Rows waiting.", nil, nil)
	s.Register("test", CollectorFunc(func(ch chan<- prometheus.Metric) error {
		ch <- prometheus.MustNewConstMetric(readings, prometheus.CounterValue, float64(n.Load()))
		ch <- prometheus.MustNewConstMetric(backlog, prometheus.GaugeValue, 7)
		return nil
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()
	base := "http://" + l.Addr().String()
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	n.Store(42)
	code, body := get("/metrics")
	for _, want := range []string{"shelfgate_readings_total 42", "shelfgate_outbox_backlog_rows 7", "go_goroutines",
		`shelfgate_build_info{goversion="` + runtime.Version() + `",version="v1.2.3"} 1`, `shelfgate_scrape_collector_success{collector="test"} 1`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	notReady.Store(true)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "broker not connected") {
		t.Errorf("/readyz = %d %q", code, body)
	}
}

// Two components of one kind register the same metric names with their own
// labels: no panic, both series served; a failing Update is reported.
func TestSameKindTwiceAndFailure(t *testing.T) {
	s := New("dev", nil, nil)
	faults := prometheus.NewDesc("shelfgate_loadcell_faults_total", "Fault episodes.", []string{"sensor", "bin"}, nil)
	for _, bin := range []string{"a", "b"} {
		s.Register("loadcell", CollectorFunc(func(ch chan<- prometheus.Metric) error {
			ch <- prometheus.MustNewConstMetric(faults, prometheus.CounterValue, 1, "cell-"+bin, bin)
			return nil
		}))
	}
	s.Register("broken", CollectorFunc(func(chan<- prometheus.Metric) error { return errors.New("no snapshot") }))
	body := scrape(t, s)
	for _, want := range []string{`shelfgate_loadcell_faults_total{bin="a",sensor="cell-a"} 1`, `shelfgate_loadcell_faults_total{bin="b",sensor="cell-b"} 1`,
		`shelfgate_scrape_collector_success{collector="broken"} 0`, `shelfgate_scrape_collector_success{collector="loadcell"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func scrape(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()
	resp, err := http.Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}
