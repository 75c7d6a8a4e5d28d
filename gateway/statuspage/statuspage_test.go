package statuspage

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
)

const testToken = "test-token-0123456789"

// fakeCells is a hand-written Calibrator: one cell per bin at a fixed code.
type fakeCells struct {
	mu   sync.Mutex
	code map[string]int32
	cal  map[string]CellCalibration
	sets int
}

func newFakeCells() *fakeCells {
	return &fakeCells{code: map[string]int32{"s1/b1": 100_000, "s1/b2": 50_000},
		cal: map[string]CellCalibration{"s1/b1": {Key: "s1/b1", Offset: 10_000, CountsPerGram: 400}, "s1/b2": {Key: "s1/b2:A64", Offset: 0, CountsPerGram: -200}}}
}

func (f *fakeCells) Calibration(bin string) (CellCalibration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cal[bin]
	if !ok {
		return c, fmt.Errorf("no cell %q", bin)
	}
	return c, nil
}

func (f *fakeCells) RecentCodes(bin string) ([]int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.code[bin]
	return []int32{c - 2, c, c + 1, c - 1, c + 2, c}, nil
}

func (f *fakeCells) SetCalibration(bin string, offset int32, cpg float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cal[bin]
	c.Offset, c.CountsPerGram = offset, cpg
	f.cal[bin] = c
	f.sets++
	return nil
}

type fakePipeline struct{}

func (fakePipeline) PipelineStats(context.Context) (PipelineStats, error) {
	return PipelineStats{Backlog: 12, OldestUnsent: 3 * time.Second, ShedTelemetry: 5, Connected: true, Brokers: []string{"tcp://b:1883"}, Connects: 3, Delivered: 100}, nil
}

type fakeSensors struct{}

func (fakeSensors) SensorHealth() []SensorHealth {
	return []SensorHealth{{Name: "cell-1", Kind: "hx711", Bin: "s1/b1", Healthy: false, Faults: "timeout"}, {Name: "picking-1", Kind: "scanner", Healthy: true}}
}

type fakeStock struct{}

func (fakeStock) Stock(bin string) (int, bool) { return 42, bin == "s1/b1" }

var testBins = []Bin{{ID: "s1/b1", Stream: "loadcell/s1/b1", SKU: "SKU-1", UnitGrams: 100}, {ID: "s1/b2", Stream: "loadcell/s1/b2", SKU: "SKU-2", UnitGrams: 50}}

type rig struct {
	srv   *Server
	ts    *httptest.Server
	tap   *Tap
	cells *fakeCells
	file  string
	stop  func()
}

func newRig(t testing.TB, mod func(*Options)) *rig {
	t.Helper()
	file := filepath.Join(t.TempDir(), "calibration.txt")
	os.WriteFile(file, []byte("shelfgate-calibration v1\nbin=other offset=1 counts_per_gram=2 measured=2026-01-02\n"), 0o644)
	r := &rig{tap: NewTap(), cells: newFakeCells(), file: file}
	o := Options{Tap: r.tap, Bins: testBins, Pipeline: fakePipeline{}, Sensors: fakeSensors{}, Stock: fakeStock{}, Analytic: true,
		Calibrator: r.cells, CalibrationFile: file, Token: testToken, Gateway: "gw", Site: "site", Version: "test",
		Tick: 20 * time.Millisecond, SnapshotEvery: 50 * time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	r.ts = httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	r.stop = func() { cancel(); <-done; r.ts.Close() }
	t.Cleanup(r.stop)
	return r
}

func (r *rig) feed(stream gateway.StreamID, v float64, at time.Time) {
	r.tap.Observe(gateway.Reading{Stream: stream, Time: at, Value: v, Unit: "g"})
}

func TestAssetsAreServed(t *testing.T) {
	r := newRig(t, nil)
	for path, want := range map[string]string{"/": "<title>Shelfgate status</title>", "/app.js": "EventSource", "/app.css": "--bg"} {
		res, err := http.Get(r.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, %d bytes, missing %q", path, res.StatusCode, len(b), want)
		}
		if res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no CSP", path)
		}
	}
	if res, _ := http.Get(r.ts.URL + "/nope.js"); res.StatusCode != 404 {
		t.Errorf("unknown asset: %d", res.StatusCode)
	}
}

func TestStateShowsEverything(t *testing.T) {
	r := newRig(t, nil)
	now := time.Now()
	for i := range 20 {
		r.feed("loadcell/s1/b1", 1000+float64(i), now.Add(time.Duration(i-20)*100*time.Millisecond))
	}
	r.tap.ObserveEvent(gateway.Event{Kind: gateway.EventPick, Stream: "loadcell/s1/b1", Bin: "s1/b1", SKU: "SKU-1", Quantity: 2, Time: now})
	time.Sleep(120 * time.Millisecond) // a snapshot or two
	res, err := http.Get(r.ts.URL + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var h struct {
		Streams map[string]struct {
			P [][4]float64 `json:"p"`
			V float64      `json:"v"`
		} `json:"streams"`
		Events  []EventRecord `json:"events"`
		Bins    []Bin         `json:"bins"`
		Actions bool          `json:"actions"`
		Snap    snapshot      `json:"snap"`
		History []PipelineSample
	}
	if err := json.NewDecoder(res.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	s := h.Streams["loadcell/s1/b1"]
	if s.V != 1019 || len(s.P) == 0 {
		t.Errorf("stream: %+v", s)
	}
	if len(h.Events) != 1 || h.Events[0].Event.SKU != "SKU-1" || h.Events[0].Event.Quantity != 2 {
		t.Errorf("events: %+v", h.Events)
	}
	if !h.Actions || len(h.Bins) != 2 {
		t.Errorf("actions %v bins %v", h.Actions, h.Bins)
	}
	if h.Snap.Pipe.Backlog != 12 || h.Snap.Pipe.Reconnects != 2 || h.Snap.Stock["s1/b1"] != 42 || len(h.Snap.Sensors) != 2 || len(h.History) == 0 {
		t.Errorf("snapshot: %+v history %d", h.Snap, len(h.History))
	}
}

// sseClient reads a stream's events.
func sseClient(t *testing.T, ctx context.Context, url string) (<-chan [2]string, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/stream", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != 200 {
		res.Body.Close()
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	out := make(chan [2]string, 64)
	go func() {
		defer res.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 4<<20)
		var ev string
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				ev = e
			} else if d, ok := strings.CutPrefix(line, "data: "); ok {
				select {
				case out <- [2]string{ev, d}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// A stream starts with a hello and then carries what the Tap records.
func TestStreamDeliversUpdates(t *testing.T) {
	r := newRig(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sseClient(t, ctx, r.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m := <-msgs; m[0] != "hello" {
		t.Fatalf("first message %q", m[0])
	}
	r.tap.ObserveEvent(gateway.Event{Kind: gateway.EventPick, Bin: "s1/b2", SKU: "SKU-2", Quantity: 3, Time: time.Now()})
	deadline := time.After(10 * time.Second)
	sawEvent, sawPoints := false, false
	for !sawEvent || !sawPoints {
		r.feed("loadcell/s1/b2", 777, time.Now())
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("stream ended")
			}
			var u update
			if err := json.Unmarshal([]byte(m[1]), &u); err != nil {
				t.Fatal(err)
			}
			for _, e := range u.Events {
				sawEvent = sawEvent || e.Event.Quantity == 3 && e.Event.SKU == "SKU-2"
			}
			su := u.Streams["loadcell/s1/b2"]
			sawPoints = sawPoints || su.Value == 777 && len(su.Points) > 0 && su.Points[len(su.Points)-1].Mean == 777
		case <-deadline:
			t.Fatalf("no update with the pick (%v) and the bin's plot points (%v)", sawEvent, sawPoints)
		}
		time.Sleep(30 * time.Millisecond)
	}
}
