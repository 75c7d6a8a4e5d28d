package main

import (
	"bytes"
	"context"
	"github.com/shelfgate/shelfgate/gateway/downlink"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/firmware-sim/hx711sim"
	"github.com/shelfgate/shelfgate/firmware-sim/warehouse"
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
)

// smallWarehouse is one shelf of two bins at 80 samples/s in real time.
func smallWarehouse() warehouse.Config {
	wc := warehouse.DefaultConfig()
	wc.Shelves, wc.BinsPerShelf, wc.SampleRate, wc.Speed = 1, 2, 80, 1
	return wc
}

type fakeUplink struct{ st uplink.Stats }

func (f fakeUplink) Stats() uplink.Stats { return f.st }

// scrapeServer serves ms on a free port until the test ends and returns a
// function that scrapes /metrics.
func scrapeServer(t *testing.T, ms interface {
	Serve(context.Context, net.Listener) error
}) func() string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ms.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() string {
		resp, err := http.Get("http://" + l.Addr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("/metrics: %d\n%s", resp.StatusCode, b)
		}
		return string(b)
	}
}

// value returns the value of the series line that starts with series, -1 if absent.
func value(body, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// A broken HX711 under one bin shows on that bin's labelled series only,
// scraped from the real /metrics handler; two load-cell sources export the
// same metric names side by side; build_info is there, and shed is one
// metric with a class label, from the real outbox.
func TestPerBinMetricsFindTheBrokenCell(t *testing.T) {
	b, specs, _, err := simulators(&simConfig{Warehouse: smallWarehouse()})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := buildSensors(specs, b, sensorEnv{})
	if err != nil {
		t.Fatal(err)
	}
	defer ss.close()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "o.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	gw := &gateway.Gateway{Sources: ss.sources(), Outbox: ob}
	scrape := scrapeServer(t, newMetrics(gw, ob, fakeUplink{}, fakeRouter{}, ss, nil))

	// Break the second bin's HX711: it never signals data-ready.
	b.hx711["shelf-01/bin-02"].InjectFault(hx711sim.FaultNotReady)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); gw.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	good := `{bin="shelf-01/bin-01",sensor="cell-shelf-01/bin-01"}`
	bad := `{bin="shelf-01/bin-02",sensor="cell-shelf-01/bin-02"}`
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; {
		body = scrape()
		if value(body, "shelfgate_loadcell_faulty"+bad) == 1 && value(body, "shelfgate_loadcell_readings_total"+good) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broken cell's fault never showed:\n%s", grep(body, "shelfgate_loadcell_"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, tc := range []struct {
		series string
		ok     func(float64) bool
	}{
		{"shelfgate_loadcell_faulty" + good, func(v float64) bool { return v == 0 }},
		{"shelfgate_loadcell_faults_total" + good, func(v float64) bool { return v == 0 }},
		{"shelfgate_loadcell_timeouts_total" + good, func(v float64) bool { return v == 0 }},
		{"shelfgate_loadcell_faults_total" + bad, func(v float64) bool { return v == 1 }},
		{"shelfgate_loadcell_timeouts_total" + bad, func(v float64) bool { return v >= 3 }},
		{"shelfgate_loadcell_readings_total" + bad, func(v float64) bool { return v == 0 }},
		{`shelfgate_outbox_shed_rows_total{class="telemetry"}`, func(v float64) bool { return v == 0 }},
		{`shelfgate_outbox_shed_rows_total{class="event"}`, func(v float64) bool { return v == 0 }},
		{`shelfgate_scrape_collector_success{collector="outbox"}`, func(v float64) bool { return v == 1 }},
		{"shelfgate_uplink_connected", func(v float64) bool { return v == 0 }},
		{"shelfgate_readings_committed_total", func(v float64) bool { return v > 0 }},
	} {
		if v := value(body, tc.series); !tc.ok(v) {
			t.Errorf("%s = %v\n%s", tc.series, v, grep(body, "shelfgate_"))
		}
	}
	if !regexp.MustCompile(`(?m)^shelfgate_build_info\{goversion="go[^"]+",version="[^"]+"\} 1$`).MatchString(body) {
		t.Errorf("no build_info:\n%s", grep(body, "shelfgate_build"))
	}
	if !strings.Contains(body, "go_goroutines ") {
		t.Error("go_goroutines missing (the fault suite reads it)")
	}
}

func grep(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

type fakeRouter []downlink.HandlerStats

func (f fakeRouter) Stats() []downlink.HandlerStats { return f }

// The downlink router's per-handler counts come out labelled by handler and
// reason, next to the other collectors.
func TestDownlinkCollector(t *testing.T) {
	ms := newMetrics(&gateway.Gateway{}, fakeOutbox{}, fakeUplink{uplink.Stats{Takeovers: 3}}, fakeRouter{
		{Name: "acks", Received: 24, Rejected: map[string]int64{"unknown batch": 20, "malformed": 4}},
		{Name: "commands", Received: 3},
	}, &sensorSet{}, nil)
	body := scrapeServer(t, ms)()
	for series, want := range map[string]float64{
		`shelfgate_downlink_messages_total{handler="acks"}`:                        24,
		`shelfgate_downlink_rejected_total{handler="acks",reason="unknown batch"}`: 20,
		`shelfgate_downlink_rejected_total{handler="acks",reason="malformed"}`:     4,
		`shelfgate_downlink_messages_total{handler="commands"}`:                    3,
		`shelfgate_scrape_collector_success{collector="downlink"}`:                 1,
		`shelfgate_uplink_takeovers_total`:                                         3,
		`shelfgate_outbox_shed_rows_total{class="telemetry"}`:                      7,
		`shelfgate_scrape_collector_success{collector="outbox"}`:                   1,
	} {
		if v := value(body, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
}

// fakeOutbox reports fixed Stats.
type fakeOutbox struct{}

func (fakeOutbox) Stats(context.Context) (outbox.Stats, error) {
	return outbox.Stats{ShedTelemetry: 7}, nil
}

// An outbox that was damaged when the gateway opened it is moved aside and
// recording goes on; /metrics says so.
func TestQuarantinedOutboxShowsInMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 512), 0o644); err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	body := scrapeServer(t, newMetrics(&gateway.Gateway{}, ob, fakeUplink{}, fakeRouter{}, &sensorSet{}, nil))()
	for series, want := range map[string]float64{
		"shelfgate_outbox_quarantined_total": 1,
		"shelfgate_outbox_damaged":           0,
	} {
		if v := value(body, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	if v := value(body, "shelfgate_outbox_integrity_checks_total"); v < 0 {
		t.Errorf("shelfgate_outbox_integrity_checks_total missing")
	}
}
