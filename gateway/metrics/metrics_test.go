package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func TestServer(t *testing.T) {
	var n atomic.Int64
	var notReady atomic.Bool
	s := New(func() error {
		if notReady.Load() {
			return errors.New("broker not connected")
		}
		return nil
	}, nil)
	s.Counter("readings_total", "Readings committed.", func() float64 { return float64(n.Load()) })
	s.Gauge("outbox_backlog_rows", "Rows waiting.", func() float64 { return 7 })
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
	for _, want := range []string{"shelfgate_readings_total 42", "shelfgate_outbox_backlog_rows 7", "go_goroutines"} {
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
