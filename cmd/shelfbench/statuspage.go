package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/statuspage"
	"github.com/shelfgate/shelfgate/gateway/uplink"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// passThrough is the classifier chain of both arms: it derives nothing, so
// the only difference between them is the status page's Tap (last in the
// chain, as cmd/shelfgate wires it), its hub and its clients.
type passThrough struct{}

func (passThrough) Observe(gateway.Reading) []gateway.Event    { return nil }
func (passThrough) ObserveEvent(gateway.Event) []gateway.Event { return nil }

var _ gateway.Classifier = passThrough{}

// pageRun is what one arm of the status page benchmark measured.
type pageRun struct {
	rate      float64 // readings/s produced → delivered to the subscriber
	heapInuse uint64  // HeapInuse after a GC at the end of the run, clients still connected
	heapPeak  uint64  // largest HeapInuse sampled during the run
	stats     statuspage.Stats
	bytesRead int64 // SSE bytes the reading clients received
}

// statusPageBench measures the gateway pipeline (Gateway.Emit through a
// classifier chain into a real outbox, uplink to mosquitto, a QoS1
// subscriber) with the status page served on loopback to 100 reading SSE
// clients and 10 that never read, against the same pipeline without the
// page, A/B interleaved in one process.
func statusPageBench(args []string) error {
	fs := flag.NewFlagSet("statuspage", flag.ExitOnError)
	n := fs.Int("readings", 2_000_000, "readings per run")
	producers := fs.Int("producers", 8, "concurrent Emit callers (a source per sensor)")
	clients := fs.Int("clients", 100, "SSE clients that read")
	silent := fs.Int("silent", 10, "SSE clients that connect and never read")
	runs := fs.Int("runs", 3, "runs of each arm, interleaved")
	fs.Parse(args)
	url, stop, err := startMosquitto()
	if err != nil {
		return err
	}
	defer stop()

	var with, without []pageRun
	for i := range 2 * *runs {
		page := i%2 == 1 // baseline first, then alternate
		r, err := pageRunOnce(url, fmt.Sprintf("gw-%d", i), *n, *producers, page, *clients, *silent)
		if err != nil {
			return fmt.Errorf("run %d (page %v): %w", i, page, err)
		}
		fmt.Printf("run %d page=%v readings/s=%.0f heap_inuse=%dKB heap_peak=%dKB", i, page, r.rate, r.heapInuse>>10, r.heapPeak>>10)
		if page {
			fmt.Printf(" clients=%d dropped=%d refused=%d sent=%d sse_bytes=%d", r.stats.Clients, r.stats.Dropped, r.stats.Refused, r.stats.Sent, r.bytesRead)
			with = append(with, r)
		} else {
			without = append(without, r)
		}
		fmt.Println()
	}
	rate := func(rs []pageRun) float64 { return medianOf(rs, func(r pageRun) float64 { return r.rate }) }
	heap := func(rs []pageRun) float64 {
		return medianOf(rs, func(r pageRun) float64 { return float64(r.heapInuse) / 1024 })
	}
	peak := func(rs []pageRun) float64 {
		return medianOf(rs, func(r pageRun) float64 { return float64(r.heapPeak) / 1024 })
	}
	figure("statuspage_e2e_readings_per_s", rate(with), "readings/s", rate(without))
	figure("statuspage_heap_inuse_kb", heap(with), "KB", heap(without))
	figure("statuspage_heap_peak_kb", peak(with), "KB", peak(without))
	return nil
}

func medianOf(rs []pageRun, f func(pageRun) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// pageRunOnce runs one arm: a fresh outbox, uplink and subscriber; with
// page, the status page and its clients around the same pipeline.
func pageRunOnce(url, gwID string, n, producers int, page bool, clients, silent int) (pageRun, error) {
	var res pageRun
	ob, closeOutbox, err := tempOutbox("shelfbench-statuspage")
	if err != nil {
		return res, err
	}
	defer closeOutbox()
	var got atomic.Int64
	topics := shelfv1.Topics{Site: "bench", Gateway: gwID}
	sub, err := subscribe(url, topics.Telemetry(), countRecords(&got))
	if err != nil {
		return res, err
	}
	defer sub.Disconnect(0)
	stopUplink, err := runUplink(ob, uplink.Options{Brokers: []string{url}, Topics: topics, BatchRecords: 1000, Window: 64})
	if err != nil {
		return res, err
	}
	defer stopUplink()

	const streams = 64
	chain := []gateway.Classifier{passThrough{}}
	gw := &gateway.Gateway{Outbox: ob, Classifiers: chain}
	var srv *statuspage.Server
	var readBytes atomic.Int64
	if page {
		tap := statuspage.NewTap()
		gw.Classifiers = append(chain, tap)
		o := statuspage.Options{Tap: tap, Gateway: gwID, Site: "bench", MaxClients: clients + silent + 8}
		for s := range streams {
			o.Bins = append(o.Bins, statuspage.Bin{ID: benchBin(s), Stream: "loadcell/" + benchBin(s), SKU: fmt.Sprintf("SKU-%02d", s), UnitGrams: 100})
		}
		srv, err = statuspage.New(o)
		if err != nil {
			return res, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		defer func() { cancel(); wg.Wait() }()
		addr, err := servePage(ctx, srv, &wg)
		if err != nil {
			return res, err
		}
		if err := connectClients(ctx, addr, clients, silent, &readBytes, &wg); err != nil {
			return res, err
		}
		deadline := time.Now().Add(20 * time.Second)
		for srv.Stats().Clients < clients+silent {
			if time.Now().After(deadline) {
				return res, fmt.Errorf("%d of %d SSE clients connected: %+v", srv.Stats().Clients, clients+silent, srv.Stats())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	// Sample the heap while the pipeline runs.
	sampleDone := make(chan struct{})
	var peak atomic.Uint64
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampleDone:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	ctx := context.Background()
	start := time.Now()
	if err := emitAll(ctx, gw, n, producers, streams); err != nil {
		close(sampleDone)
		return res, err
	}
	if err := waitCount(&got, int64(n), 120*time.Second); err != nil {
		close(sampleDone)
		return res, fmt.Errorf("gateway path: %w", err)
	}
	for ob.Backlog() > 0 && time.Since(start) < 120*time.Second {
		time.Sleep(time.Millisecond)
	}
	res.rate = float64(n) / time.Since(start).Seconds()
	close(sampleDone)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.heapInuse, res.heapPeak = ms.HeapInuse, max(peak.Load(), ms.HeapInuse)
	if srv != nil {
		res.stats = srv.Stats()
		res.bytesRead = readBytes.Load()
		if res.bytesRead == 0 {
			return res, errors.New("the SSE clients received nothing")
		}
	}
	return res, nil
}

func benchBin(s int) string { return fmt.Sprintf("shelf-%02d/bin-%02d", s/8, s%8) }

// emitAll emits n readings through gw from producers goroutines; each
// producer owns streams/producers load-cell streams and emits 128 readings
// per call across them, as a load-cell source does.
func emitAll(ctx context.Context, gw *gateway.Gateway, n, producers, streams int) error {
	const batch = 128
	per := max(streams/producers, 1)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	t0 := time.Now()
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]gateway.StreamID, per)
			for k := range ids {
				ids[k] = gateway.StreamID("loadcell/" + benchBin((p*per+k)%streams))
			}
			rs := make([]gateway.Reading, batch)
			for {
				lo := int(next.Add(batch)) - batch
				if lo >= n {
					return
				}
				m := min(batch, n-lo)
				for i := range m {
					j := lo + i
					rs[i] = gateway.Reading{Stream: ids[i%per], Time: t0.Add(time.Duration(j) * time.Microsecond), Value: 1000 + float64(j%977)/10, Unit: "g"}
				}
				if err := gw.Emit(ctx, rs[:m]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// servePage serves srv's handler on a loopback port and runs its hub until
// ctx ends.
func servePage(ctx context.Context, srv *statuspage.Server, wg *sync.WaitGroup) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	wg.Add(3)
	go func() { defer wg.Done(); srv.Run(ctx) }()
	go func() { defer wg.Done(); hs.Serve(l) }()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		hs.Close()
	}()
	return l.Addr().String(), nil
}

// connectClients connects readers SSE clients that read everything (bytes
// counted in read) and silent ones that send the request and never read.
func connectClients(ctx context.Context, addr string, readers, silent int, read *atomic.Int64, wg *sync.WaitGroup) error {
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: readers}
	hc := &http.Client{Transport: tr}
	for range readers {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/stream", nil)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 4<<10) // small: the clients share this heap
			for {
				k, err := resp.Body.Read(buf)
				read.Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
	for range silent {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		if _, err := io.WriteString(conn, "GET /api/stream HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
			conn.Close()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			conn.Close()
		}()
	}
	return nil
}
